//! The composite cursor carried in every event `id:` and read back from `Last-Event-ID`
//! (API.md §11, API.md §11): unpadded base64url of the JSON map topic → last consumed seq, keys
//! in ascending byte order. Also the session id (`wid_` + 16 CSPRNG bytes).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;
use std::io::Read;

/// `id:` value for the cursor map (a `BTreeMap` iterates in ascending byte order).
pub fn encode(cursors: &BTreeMap<String, u64>) -> String {
    let json = serde_json::to_vec(cursors).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// A `Last-Event-ID` value; `None` when it is not base64url of a topic → u64 object (the
/// contract says an undecodable header is ignored).
pub fn decode(text: &str) -> Option<BTreeMap<String, u64>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A fresh session id from the kernel's CSPRNG.
pub fn new_wid() -> std::io::Result<String> {
    let mut raw = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    Ok(format!("wid_{}", URL_SAFE_NO_PAD.encode(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_with_sorted_keys() {
        let mut m = BTreeMap::new();
        m.insert("payments".to_string(), 9120);
        m.insert("orders".to_string(), 48213);
        let id = encode(&m);
        assert_eq!(id, "eyJvcmRlcnMiOjQ4MjEzLCJwYXltZW50cyI6OTEyMH0");
        assert_eq!(decode(&id), Some(m));
    }

    #[test]
    fn undecodable_ids_are_none() {
        for bad in ["", "!!", "bnVsbA", "eyJhIjotMX0", "WzFd"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn wids_are_prefixed_and_distinct() {
        let (a, b) = (new_wid().unwrap(), new_wid().unwrap());
        assert!(a.starts_with("wid_") && a.len() == 4 + 22, "{a}");
        assert_ne!(a, b);
    }
}
