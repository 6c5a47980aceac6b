//! `GET /v0/openapi.json`: the OpenAPI 3.1 description of the HTTP surface, written by hand
//! in `openapi.json` beside this file and compiled into the binary, so the document a server
//! serves always belongs to that build. It needs no key (`auth::check` lets it through).
//! `tests/it/openapi/` keeps it in step with the routes and the live responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// The path the document is served at (the route in `super::routes` names it literally);
/// `auth::check` opens it.
pub const PATH: &str = "/v0/openapi.json";

/// The document, as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    let mut resp = Response::new(axum::body::Body::from(DOCUMENT));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_embedded_document_is_openapi_3_1_of_this_version() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["paths"][PATH]["get"].is_object(), "documents itself");
    }
}
