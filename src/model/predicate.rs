//! Tag predicates (API.md §7): `["tag","Eq","v"]`, `["tag","Glob","p*"]` (only a final `*` is
//! special), or a bare string (Glob when it ends in `*`, else Eq). Untagged records never match.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagPredicate {
    Eq(String),
    /// Tag starts with this prefix.
    Prefix(String),
}

impl TagPredicate {
    /// Parse the wire form; `Err` carries the reason for a 400.
    pub fn parse(v: &Value) -> Result<TagPredicate, String> {
        match v {
            Value::String(s) => Ok(match s.strip_suffix('*') {
                Some(p) => TagPredicate::Prefix(p.to_string()),
                None => TagPredicate::Eq(s.clone()),
            }),
            Value::Array(items) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                match parts.as_deref() {
                    Some(["tag", "Eq", v]) => Ok(TagPredicate::Eq((*v).to_string())),
                    Some(["tag", "Glob", p]) => match p.strip_suffix('*') {
                        Some(prefix) => Ok(TagPredicate::Prefix(prefix.to_string())),
                        None => Err("a Glob pattern must end with *".into()),
                    },
                    _ => Err(r#"match must be ["tag","Eq"|"Glob",<string>] or a string"#.into()),
                }
            }
            _ => Err(r#"match must be ["tag","Eq"|"Glob",<string>] or a string"#.into()),
        }
    }

    pub fn matches(&self, tag: Option<&str>) -> bool {
        match (self, tag) {
            (_, None) => false,
            (TagPredicate::Eq(v), Some(t)) => t == v,
            (TagPredicate::Prefix(p), Some(t)) => t.starts_with(p.as_str()),
        }
    }

    /// The tuple form echoed in responses.
    pub fn to_wire(&self) -> Value {
        match self {
            TagPredicate::Eq(v) => serde_json::json!(["tag", "Eq", v]),
            TagPredicate::Prefix(p) => serde_json::json!(["tag", "Glob", format!("{p}*")]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            TagPredicate::parse(&json!(["tag", "Eq", "a*"])),
            Ok(TagPredicate::Eq("a*".into()))
        );
        assert_eq!(
            TagPredicate::parse(&json!(["tag", "Glob", "a*"])),
            Ok(TagPredicate::Prefix("a".into()))
        );
        assert_eq!(
            TagPredicate::parse(&json!("cust-42:*")),
            Ok(TagPredicate::Prefix("cust-42:".into()))
        );
        assert_eq!(
            TagPredicate::parse(&json!("x")),
            Ok(TagPredicate::Eq("x".into()))
        );
        assert_eq!(
            TagPredicate::parse(&json!("*")),
            Ok(TagPredicate::Prefix(String::new()))
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            json!(["tag", "Glob", "a"]),
            json!(["tag", "eq", "a"]),
            json!(["node", "Eq", "a"]),
            json!(["tag", "Eq"]),
            json!(["tag", "Eq", "a", "b"]),
            json!(["tag", "Eq", 1]),
            json!(1),
            json!(null),
            json!({"tag": "a"}),
        ] {
            assert!(TagPredicate::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn untagged_never_matches() {
        assert!(!TagPredicate::Prefix(String::new()).matches(None));
        assert!(TagPredicate::Prefix(String::new()).matches(Some("")));
        assert!(TagPredicate::Eq("a".into()).matches(Some("a")));
        assert!(!TagPredicate::Eq("a".into()).matches(Some("ab")));
    }
}
