use super::*;

fn keys(entries: &[&str]) -> Vec<ApiKey> {
    parse_keys(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn entries_parse_into_scopes_and_prefixes() {
    let k = keys(&[
        "all1",
        "ro:read",
        "rw:r+w:tenant1:|shared.",
        "adm::ops.",
        "x:RW+Del",
    ]);
    assert_eq!(k.len(), 5);
    assert_eq!((k[0].scopes, k[0].prefixes.len()), (ALL, 0));
    assert_eq!(k[1].scopes, READ);
    assert_eq!(k[2].scopes, READ | WRITE);
    assert_eq!(k[2].prefixes, ["tenant1:", "shared."]);
    assert_eq!(
        (k[3].scopes, k[3].prefixes.clone()),
        (ALL, vec!["ops.".to_string()])
    );
    assert_eq!(k[4].scopes, READ | WRITE | DELETE);
    assert_eq!(keys(&["a,b:r", " , "]).len(), 2, "comma-separated entries");
}

#[test]
fn unknown_scopes_and_empty_secrets_are_refused() {
    assert!(parse_keys(&["k:read+fly".to_string()]).is_err());
    assert!(parse_keys(&[":read".to_string()]).is_err());
}

#[test]
fn only_the_right_token_authenticates_and_digests_hide_the_secret() {
    let k = keys(&["s3cret:r", "other"]);
    assert_eq!(authenticate(&k, "s3cret").map(|k| k.scopes), Some(READ));
    assert!(authenticate(&k, "s3cre").is_none());
    assert!(authenticate(&k, "").is_none());
    assert_ne!(k[0].digest[..6], *b"s3cret");
}

#[test]
fn prefixes_allow_by_byte_prefix() {
    let k = &keys(&["k::tenant1:|shared."])[0];
    assert!(k.allows("tenant1:orders") && k.allows("shared.x"));
    assert!(!k.allows("tenant2:orders") && !k.allows("share"));
    assert!(keys(&["k"])[0].allows("anything"));
}

#[test]
fn the_route_table_follows_the_contract() {
    let s = |m, p| need(m, p, false);
    let n = |scopes, name: Option<&str>| Need::Scopes {
        scopes,
        name: name.map(String::from),
    };
    assert_eq!(s("GET", "/v0/health"), Need::Open);
    assert_eq!(need("GET", "/readyz", true), Need::Key);
    assert_eq!(s("GET", "/v0/topics"), n(READ, None));
    assert_eq!(s("GET", "/v0/topics/a"), n(READ, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a"), n(WRITE, Some("a")));
    assert_eq!(s("PUT", "/v0/topics/a"), n(ADMIN, Some("a")));
    assert_eq!(s("DELETE", "/v0/topics/a"), n(DELETE, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a/diff"), n(READ, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a/delete"), n(DELETE, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a/claim"), n(READ | WRITE, Some("a")));
    assert_eq!(s("GET", "/v0/topics/a/work"), n(READ | WRITE, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a/ack"), n(WRITE, Some("a")));
    assert_eq!(s("POST", "/v0/topics/a/whatever"), n(WRITE, Some("a")));
    assert_eq!(s("GET", "/v0/routers"), n(READ, None));
    assert_eq!(s("PUT", "/v0/routers/a->b"), n(ADMIN, Some("a->b")));
    assert_eq!(s("PATCH", "/v0/routers/r"), n(ADMIN, Some("r")));
    assert_eq!(s("DELETE", "/v0/routers/r"), n(DELETE, Some("r")));
    assert_eq!(s("POST", "/v0/watch"), n(READ, None));
    assert_eq!(s("GET", "/v0/watch/wid_x"), Need::Open);
    assert_eq!(s("GET", "/v0/metrics"), n(READ, None));
    assert_eq!(s("GET", "/nope"), Need::Key);
}

#[test]
fn paths_are_percent_decoded() {
    assert_eq!(percent_decode("/v0/routers/a-%3Eb"), "/v0/routers/a->b");
    assert_eq!(percent_decode("/x%2"), "/x%2");
    assert_eq!(percent_decode("%41%zz"), "A%zz");
}
