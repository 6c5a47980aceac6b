//! The HTTP ceiling of the machine: an axum server that answers `GET /` with a short body and
//! `POST /` by reading the whole body first — the same stack topics is built on, doing nothing.
//!
//!   hello --port PORT

use axum::routing::get;
use axum::Router;

use crate::{Args, Res};

pub async fn cmd_hello(a: &Args) -> Res<()> {
    let port = a.n("port", 4100);
    let app = Router::new().route(
        "/",
        get(|| async { "hello" })
            .post(|body: axum::body::Bytes| async move { format!("{{\"len\":{}}}", body.len()) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port as u16)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
