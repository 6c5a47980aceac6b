//! Topic and router name rules (API.md §1). Names are opaque bytes to the server and are
//! never used as filesystem paths.

/// Longest valid name in bytes.
pub const NAME_MAX_BYTES: usize = 255;

/// `^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$`
pub fn is_valid_topic_name(name: &str) -> bool {
    valid_with(name, |_| false)
}

/// The topic rule plus `>` after the first byte (`payments->ledger`).
pub fn is_valid_router_name(name: &str) -> bool {
    valid_with(name, |b| b == b'>')
}

fn valid_with(name: &str, extra: impl Fn(u8) -> bool) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= NAME_MAX_BYTES
        && first.is_ascii_alphanumeric()
        && rest.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') || extra(b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "Z9", "tenant42:orders", "a.b_c-d:e", &"x".repeat(255)] {
            assert!(is_valid_topic_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "a/b",
            "a b",
            "é",
            "a>b",
            &"x".repeat(256),
            "_a",
        ] {
            assert!(!is_valid_topic_name(bad), "{bad}");
        }
    }

    #[test]
    fn router_names_allow_arrow_after_first_byte() {
        assert!(is_valid_router_name("payments->ledger"));
        assert!(!is_valid_router_name(">x"));
        assert!(!is_valid_router_name("a/b"));
    }
}
