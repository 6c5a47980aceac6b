//! The web console's files (docs/OPERATIONS.md, "Web console") through the real binary: the
//! page at `/` and its assets under a strict CSP, served without a key even when keys are
//! configured, GET/HEAD only, while every data route the page calls still needs the key.
//! The page itself is driven in a browser by `browser::console`.

use crate::harness::{assert_error, Server};

/// Every file the page loads, with its content type.
const ASSETS: [(&str, &str); 6] = [
    ("/", "text/html; charset=utf-8"),
    ("/console/console.css", "text/css; charset=utf-8"),
    ("/console/console.js", "text/javascript; charset=utf-8"),
    ("/console/api.js", "text/javascript; charset=utf-8"),
    ("/console/tail.js", "text/javascript; charset=utf-8"),
    ("/console/charts.js", "text/javascript; charset=utf-8"),
];

/// A server with one API key configured (`TOPICS_API_KEYS`).
fn start_with_key() -> Server {
    Server::start_with_keys("console-key")
}

#[test]
fn console_page_and_assets_are_served_under_a_strict_csp() {
    let s = Server::start();
    for (path, content_type) in ASSETS {
        let r = s.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: CSP {csp:?} lacks {directive}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: CSP {csp:?}");
        assert!(!r.body.is_empty(), "{path}");
    }
    let page = s.get("/").text();
    assert!(
        page.contains(r#"<body data-app="topics-console">"#),
        "{page}"
    );
    // No inline script or style: the CSP would block it.
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains(" style="));
}

#[test]
fn an_unchanged_asset_revalidates_with_304() {
    let s = Server::start();
    let first = s.get("/console/console.js");
    let etag = first.header("etag").expect("an ETag").to_string();
    let again = s.req(
        "GET",
        "/console/console.js",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let other = s.req(
        "GET",
        "/console/console.js",
        &[("If-None-Match", "\"x\"")],
        b"",
    );
    assert_eq!(other.status, 200);
}

#[test]
fn console_needs_no_key_but_every_data_route_it_calls_does() {
    let s = start_with_key();
    for (path, _) in ASSETS {
        assert_eq!(s.get(path).status, 200, "GET {path} without a key");
    }
    let head = s.req("HEAD", "/", &[], b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // Only the embedded files are open: a made-up path under /console/ is an unknown route.
    assert_error(&s.get("/console/secret.js"), 401, "unauthorized");
    for (method, path) in [
        ("GET", "/v0/topics"),
        ("GET", "/v0/topics/t?touch=false"),
        ("GET", "/v0/routers"),
        ("GET", "/v0/metrics"),
        ("POST", "/v0/watch"),
        ("POST", "/v0/topics/t"),
    ] {
        let r = s.req(method, path, &[("Content-Type", "application/json")], b"{}");
        assert_error(&r, 401, "unauthorized");
    }
    let authed = s.req(
        "GET",
        "/v0/topics",
        &[("Authorization", "Bearer console-key")],
        b"",
    );
    assert_eq!(authed.status, 200, "{}", authed.text());
}

#[test]
fn console_paths_answer_other_methods_with_the_canonical_405() {
    let authed = start_with_key();
    let open = Server::start();
    for s in [&authed, &open] {
        for (method, path) in [
            ("POST", "/"),
            ("PUT", "/"),
            ("DELETE", "/console/console.js"),
        ] {
            let r = s.req(method, path, &[], b"");
            assert_error(&r, 405, "method_not_allowed");
        }
    }
    // A non-API path that is not the console stays the canonical JSON 404.
    assert_error(&open.get("/index.html"), 404, "not_found");
    assert_error(&open.get("/console/"), 404, "not_found");
}
