//! A validator for exactly the JSON Schema (2020-12) subset `src/http/openapi.json` uses, so
//! the document's examples and the live server's answers can be checked without a schema
//! crate and its dependency tree. `lint` refuses every keyword it does not implement and every
//! `pattern` it has no matcher for: a schema it cannot fully check fails the test instead of
//! passing unchecked.
//!
//! Strict mode (the tests use it) treats an object schema with `properties` and no
//! `additionalProperties` as closed, so a field the server sends but the document does not
//! name is caught. The document itself leaves response objects open (clients must ignore
//! fields they do not know); strictness is this test's choice, not the contract's. It would
//! misjudge `allOf` over object schemas, which the document does not use.

use serde_json::{Map, Value};

/// Keywords that constrain an instance, all implemented below.
const ASSERTIONS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
];

/// Keywords that only annotate; `default` and `examples` are checked against their schema.
const ANNOTATIONS: &[&str] = &["description", "title", "default", "examples"];

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "integer", "string",
];

/// `$ref` chains and nesting deeper than this are a broken document, not a deep instance.
const DEPTH_MAX: usize = 64;

/// The patterns the document uses, each with a matcher written out by hand.
fn pattern_matcher(pattern: &str) -> Option<fn(&str) -> bool> {
    Some(match pattern {
        "^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$" => |s| name_rule(s, b""),
        "^[A-Za-z0-9][A-Za-z0-9._:>-]{0,254}$" => |s| name_rule(s, b">"),
        "^[A-Za-z0-9][A-Za-z0-9._:-]{0,239}$" => |s| s.len() <= 240 && name_rule(s, b""),
        "^[A-Za-z0-9._-]{1,249}$" => |s| {
            (1..=249).contains(&s.len())
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
        },
        "^lease_[0-9a-f]+$" => |s| lease_id(s, false),
        "^(lease_[0-9a-fA-F]+)?$" => |s| s.is_empty() || lease_id(s, true),
        _ => return None,
    })
}

fn name_rule(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_alphanumeric() || b"._:-".contains(c) || extra.contains(c);
    (1..=255).contains(&b.len()) && b[0].is_ascii_alphanumeric() && b[1..].iter().all(ok)
}

fn lease_id(s: &str, upper: bool) -> bool {
    let hex = |c: char| {
        c.is_ascii_digit() || ('a'..='f').contains(&c) || (upper && c.is_ascii_hexdigit())
    };
    s.strip_prefix("lease_")
        .is_some_and(|h| !h.is_empty() && h.chars().all(hex))
}

pub struct Validator<'d> {
    doc: &'d Value,
    strict: bool,
}

impl<'d> Validator<'d> {
    pub fn new(doc: &'d Value, strict: bool) -> Self {
        Validator { doc, strict }
    }

    /// Why `instance` does not match `schema` (empty: it does).
    pub fn validate(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(schema, instance, "$", 0, &mut errs);
        errs
    }

    /// The schema a local `$ref` (`#/a/b`) points at.
    pub fn resolve(&self, reference: &str) -> Result<&'d Value, String> {
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("only local $ref is supported: {reference}"))?;
        self.doc
            .pointer(pointer)
            .ok_or_else(|| format!("$ref {reference} points at nothing"))
    }

    fn check(&self, schema: &Value, v: &Value, at: &str, depth: usize, errs: &mut Vec<String>) {
        if depth > DEPTH_MAX {
            errs.push(format!("{at}: schema nests deeper than {DEPTH_MAX}"));
            return;
        }
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return errs.push(format!("{at}: no value is allowed here")),
            Value::Object(s) => s,
            _ => return errs.push(format!("{at}: a schema must be an object or a boolean")),
        };
        if let Some(Value::String(r)) = s.get("$ref") {
            match self.resolve(r) {
                Ok(target) => self.check(target, v, at, depth + 1, errs),
                Err(e) => errs.push(format!("{at}: {e}")),
            }
        }
        if let Some(t) = s.get("type") {
            let names: Vec<&str> = match t {
                Value::String(n) => vec![n.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !names.iter().any(|n| has_type(v, n)) {
                errs.push(format!("{at}: {} is not of type {t}", brief(v)));
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                errs.push(format!(
                    "{at}: {} is not one of {}",
                    brief(v),
                    Value::from(e.clone())
                ));
            }
        }
        if let Some(c) = s.get("const") {
            if c != v {
                errs.push(format!("{at}: {} is not {c}", brief(v)));
            }
        }
        self.combinators(s, v, at, depth, errs);
        match v {
            Value::Number(_) => bounds(s, v, at, errs),
            Value::String(text) => strings(s, text, at, errs),
            Value::Array(items) => self.array(s, items, at, depth, errs),
            Value::Object(fields) => self.object(s, fields, at, depth, errs),
            _ => {}
        }
    }

    fn combinators(
        &self,
        s: &Map<String, Value>,
        v: &Value,
        at: &str,
        d: usize,
        errs: &mut Vec<String>,
    ) {
        let passes = |sub: &Value| self.validate_at(sub, v, at, d).is_empty();
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, v, at, d + 1, errs);
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            if !any.iter().any(passes) {
                errs.push(format!("{at}: {} matches no anyOf branch", brief(v)));
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let n = one.iter().filter(|sub| passes(sub)).count();
            if n != 1 {
                errs.push(format!(
                    "{at}: {} matches {n} oneOf branches, not 1",
                    brief(v)
                ));
            }
        }
    }

    fn validate_at(&self, schema: &Value, v: &Value, at: &str, depth: usize) -> Vec<String> {
        let mut errs = Vec::new();
        self.check(schema, v, at, depth + 1, &mut errs);
        errs
    }

    fn array(
        &self,
        s: &Map<String, Value>,
        items: &[Value],
        at: &str,
        d: usize,
        errs: &mut Vec<String>,
    ) {
        let n = items.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{at}: {n} items are too few"));
        }
        if s.get("maxItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{at}: {n} items are too many"));
        }
        let prefix = s
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[][..], |p| p);
        for (i, item) in items.iter().enumerate() {
            let sub = prefix.get(i).or_else(|| s.get("items"));
            if let Some(sub) = sub {
                self.check(sub, item, &format!("{at}[{i}]"), d + 1, errs);
            }
        }
    }

    fn object(
        &self,
        s: &Map<String, Value>,
        fields: &Map<String, Value>,
        at: &str,
        d: usize,
        errs: &mut Vec<String>,
    ) {
        for name in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                errs.push(format!("{at}: required field {name:?} is missing"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let extra = match s.get("additionalProperties") {
            Some(x) => Some(x.clone()),
            None if self.strict && props.is_some() => Some(Value::Bool(false)),
            None => None,
        };
        for (k, fv) in fields {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => self.check(sub, fv, &here, d + 1, errs),
                None => match &extra {
                    Some(Value::Bool(false)) => {
                        errs.push(format!("{here}: field not in the schema"))
                    }
                    Some(sub) => self.check(sub, fv, &here, d + 1, errs),
                    None => {}
                },
            }
        }
    }

    /// Every problem of the schema itself: keywords this validator does not implement,
    /// unknown types, unmatched patterns, dangling `$ref`s, and `default`/`examples` values
    /// that do not match the schema they sit in. Walks every subschema.
    pub fn lint(&self, schema: &Value, at: &str) -> Vec<String> {
        let mut errs = Vec::new();
        self.lint_into(schema, at, &mut errs);
        errs
    }

    fn lint_into(&self, schema: &Value, at: &str, errs: &mut Vec<String>) {
        let s = match schema {
            Value::Bool(_) => return,
            Value::Object(s) => s,
            _ => return errs.push(format!("{at}: a schema must be an object or a boolean")),
        };
        for (k, v) in s {
            let here = format!("{at}/{k}");
            if !ASSERTIONS.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
                errs.push(format!(
                    "{here}: keyword not implemented by the test's validator"
                ));
            }
            match k.as_str() {
                "$ref" => match v.as_str().map(|r| self.resolve(r)) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => errs.push(format!("{here}: {e}")),
                    None => errs.push(format!("{here}: not a string")),
                },
                "type" => lint_type(v, &here, errs),
                "pattern" if v.as_str().and_then(pattern_matcher).is_none() => {
                    errs.push(format!("{here}: no matcher for pattern {v}"));
                }
                "properties" => {
                    for (name, sub) in v.as_object().into_iter().flatten() {
                        self.lint_into(sub, &format!("{here}/{name}"), errs);
                    }
                }
                "items" | "additionalProperties" => self.lint_into(v, &here, errs),
                "prefixItems" | "oneOf" | "anyOf" | "allOf" => {
                    for (i, sub) in v.as_array().into_iter().flatten().enumerate() {
                        self.lint_into(sub, &format!("{here}/{i}"), errs);
                    }
                }
                "default" => self.expect_valid(schema, v, &here, errs),
                "examples" => match v.as_array() {
                    Some(list) => {
                        for (i, ex) in list.iter().enumerate() {
                            self.expect_valid(schema, ex, &format!("{here}/{i}"), errs);
                        }
                    }
                    None => errs.push(format!("{here}: a schema's examples must be an array")),
                },
                _ => {}
            }
        }
    }

    fn expect_valid(&self, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
        for e in self.validate(schema, v) {
            errs.push(format!("{at}: {e}"));
        }
    }
}

fn lint_type(v: &Value, at: &str, errs: &mut Vec<String>) {
    let names: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        one => vec![one],
    };
    for n in names {
        if !n.as_str().is_some_and(|n| TYPES.contains(&n)) {
            errs.push(format!("{at}: unknown type {n}"));
        }
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        // JSON Schema counts 2.0 as an integer.
        "integer" => v.is_u64() || v.is_i64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// `minimum`/`maximum`, exact for integers (u64 bounds exceed f64's exact range).
fn bounds(s: &Map<String, Value>, v: &Value, at: &str, errs: &mut Vec<String>) {
    use std::cmp::Ordering::{Greater, Less};
    let cmp = |bound: &Value| -> Option<std::cmp::Ordering> {
        match (v.as_i64(), v.as_u64(), bound.as_i64(), bound.as_u64()) {
            (_, Some(a), _, Some(b)) => Some(a.cmp(&b)),
            (Some(a), _, Some(b), _) => Some(a.cmp(&b)),
            (Some(_), None, _, Some(_)) => Some(Less),
            (None, Some(_), Some(_), None) => Some(Greater),
            _ => v.as_f64()?.partial_cmp(&bound.as_f64()?),
        }
    };
    if s.get("minimum").and_then(cmp) == Some(Less) {
        errs.push(format!("{at}: {v} is below the minimum {}", s["minimum"]));
    }
    if s.get("maximum").and_then(cmp) == Some(Greater) {
        errs.push(format!("{at}: {v} is above the maximum {}", s["maximum"]));
    }
}

fn strings(s: &Map<String, Value>, text: &str, at: &str, errs: &mut Vec<String>) {
    // JSON Schema counts characters, not bytes.
    let n = text.chars().count() as u64;
    if s.get("minLength")
        .and_then(Value::as_u64)
        .is_some_and(|m| n < m)
    {
        errs.push(format!("{at}: string of {n} characters is too short"));
    }
    if s.get("maxLength")
        .and_then(Value::as_u64)
        .is_some_and(|m| n > m)
    {
        errs.push(format!("{at}: string of {n} characters is too long"));
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        match pattern_matcher(p) {
            Some(m) if m(text) => {}
            Some(_) => errs.push(format!("{at}: {text:?} does not match {p}")),
            None => errs.push(format!("{at}: no matcher for pattern {p}")),
        }
    }
}

/// A value shortened for messages.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "U64": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615u64},
            "Name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"},
            "Thing": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/U64"},
                    "name": {"$ref": "#/components/schemas/Name"},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                    "kind": {"enum": ["a", "b"]},
                    "note": {"type": ["string", "null"], "maxLength": 3},
                    "pred": {"oneOf": [
                        {"type": "string"},
                        {"type": "array", "prefixItems": [{"const": "tag"}, {"type": "string"}],
                         "minItems": 2, "maxItems": 2}
                    ]},
                    "map": {"type": "object", "additionalProperties": {"type": "boolean"}}
                }
            }
        }}})
    }

    fn errors(strict: bool, instance: Value) -> Vec<String> {
        let d = doc();
        let v = Validator::new(&d, strict);
        v.validate(&json!({"$ref": "#/components/schemas/Thing"}), &instance)
    }

    #[test]
    fn accepts_a_matching_instance() {
        let ok = json!({"id": 18446744073709551615u64, "name": "tenant:a.b", "tags": ["x"],
            "kind": "a", "note": null, "pred": ["tag", "v"], "map": {"k": true}});
        assert_eq!(errors(true, ok), Vec::<String>::new());
    }

    #[test]
    fn rejects_each_kind_of_mismatch() {
        let base = json!({"id": 1, "name": "ok"});
        let cases = [
            (json!({"name": "ok"}), "required"),
            (json!({"id": -1}), "minimum"),
            (json!({"id": 1.5}), "type"),
            (json!({"id": "1"}), "type"),
            (json!({"name": "-bad"}), "does not match"),
            (json!({"name": ""}), "does not match"),
            (json!({"tags": ["a", "b", "c"]}), "too many"),
            (json!({"tags": [1]}), "type"),
            (json!({"kind": "c"}), "one of"),
            (json!({"note": "long"}), "too long"),
            (json!({"note": 1}), "type"),
            (json!({"pred": ["nottag", "v"]}), "oneOf"),
            (json!({"pred": ["tag"]}), "oneOf"),
            (json!({"pred": 7}), "oneOf"),
            (json!({"map": {"k": 1}}), "type"),
        ];
        for (patch, why) in cases {
            let mut inst = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                inst[k] = v.clone();
            }
            if why == "required" {
                inst.as_object_mut().unwrap().remove("id");
            }
            let errs = errors(false, inst.clone());
            assert!(
                errs.iter().any(|e| e.contains(why)),
                "{inst}: want {why}, got {errs:?}"
            );
        }
    }

    #[test]
    fn strict_mode_closes_objects_with_properties() {
        let extra = json!({"id": 1, "name": "ok", "surprise": true});
        assert!(errors(false, extra.clone()).is_empty());
        let errs = errors(true, extra);
        assert!(errs.iter().any(|e| e.contains("surprise")), "{errs:?}");
        // A map schema stays open to any key.
        assert!(errors(true, json!({"id": 1, "name": "ok", "map": {"any": false}})).is_empty());
    }

    #[test]
    fn lint_refuses_what_the_validator_cannot_check() {
        let d = json!({"components": {"schemas": {}}});
        let v = Validator::new(&d, true);
        let bad = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "format": "uuid"},
                "b": {"type": "string", "pattern": "^x+$"},
                "c": {"$ref": "#/components/schemas/Missing"},
                "d": {"type": "float"},
                "e": {"type": "integer", "default": "zero"},
                "f": {"type": "string", "example": "x"}
            },
            "unevaluatedProperties": false
        });
        let errs = v.lint(&bad, "#");
        for want in [
            "format",
            "pattern",
            "Missing",
            "float",
            "default",
            "example",
            "unevaluatedProperties",
        ] {
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "no complaint about {want}: {errs:?}"
            );
        }
    }

    #[test]
    fn hand_written_pattern_matchers_follow_their_patterns() {
        let topic = pattern_matcher("^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$").unwrap();
        let router = pattern_matcher("^[A-Za-z0-9][A-Za-z0-9._:>-]{0,254}$").unwrap();
        assert!(topic("a") && topic("tenant42:orders") && topic(&"x".repeat(255)));
        assert!(
            !topic("")
                && !topic(".a")
                && !topic("a b")
                && !topic("a>b")
                && !topic(&"x".repeat(256))
        );
        assert!(router("payments->ledger") && !router(">a"));
        let lease = pattern_matcher("^lease_[0-9a-f]+$").unwrap();
        assert!(lease("lease_1f4") && !lease("lease_") && !lease("lease_1F4") && !lease("x_1"));
        let fence = pattern_matcher("^(lease_[0-9a-fA-F]+)?$").unwrap();
        assert!(fence("") && fence("lease_1F4") && !fence("lease_g"));
    }
}
