//! The shortcut in front of the router for the request that carries most of the traffic:
//! `POST /v0/topics/{topic}`, a write. Through axum's router a write spends about a tenth of
//! its instructions on routing (the route match, path parameters stored in request
//! extensions, a boxed route service cloned per request); this matches that one shape by
//! hand and runs the same handler code. Everything else — other methods and paths, and topic
//! segments with percent-escapes, whose decoding stays with axum — goes to the router as is.

use super::{write, AppState};
use axum::body::{Body, HttpBody};
use axum::extract::Query;
use axum::http::{Method, Request};
use axum::response::{IntoResponse, Response};
use axum::{BoxError, Router};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tracing::Instrument;

/// The whole HTTP surface as one tower service: the shortcut, then the router.
#[derive(Clone)]
pub struct Service {
    router: Router,
    state: AppState,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service {
    pub fn new(router: Router, state: AppState) -> Self {
        Service { router, state }
    }
}

/// The `{topic}` of `POST /v0/topics/{topic}` when it needs no percent-decoding.
fn write_target<'a>(method: &Method, path: &'a str) -> Option<&'a str> {
    if method != Method::POST {
        return None;
    }
    let topic = path.strip_prefix("/v0/topics/")?;
    (!topic.is_empty() && !topic.contains(['/', '%'])).then_some(topic)
}

impl<B> tower::Service<Request<B>> for Service
where
    B: HttpBody<Data = bytes::Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError> + Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> BoxFuture {
        let id = super::access::request_id(req.headers());
        let log = self.state.config().server.access_log;
        let stats = self.state.inner.request_stats.clone();
        let caller = super::auth::check(&self.state, req.method(), req.uri(), req.headers());
        let key = caller
            .as_ref()
            .ok()
            .and_then(|c| c.0.as_ref().map(|k| k.digest));
        let entry = super::access::Entry::new(id, req.method(), req.uri(), key.as_ref());
        let slot = match caller.and_then(|c| self.request_slot(&req, &c).map(|s| (c, s))) {
            Ok((c, slot)) => {
                req.extensions_mut().insert(c);
                slot
            }
            Err(e) => {
                let resp = entry.finish(e.into_response(), log, &stats);
                return Box::pin(async move { Ok(resp) });
            }
        };
        if let Some(topic) = write_target(req.method(), req.uri().path()) {
            let topic = topic.to_owned();
            // Parsed exactly as the `Query` extractor would; unparseable counts as empty.
            let query = Query::try_from_uri(req.uri())
                .map(|Query(q)| q)
                .unwrap_or_default();
            let state = self.state.clone();
            let span = tracing::info_span!("request", id = %entry.id);
            return Box::pin(
                async move {
                    let resp = write::write_topic(state, Ok(topic), query, req)
                        .await
                        .unwrap_or_else(IntoResponse::into_response);
                    drop(slot);
                    Ok(entry.finish(resp, log, &stats))
                }
                .instrument(span),
            );
        }
        let span = tracing::info_span!("request", id = %entry.id);
        let routed = tower::Service::call(&mut self.router, req.map(Body::new));
        Box::pin(
            async move {
                let resp = routed.await?;
                drop(slot);
                Ok(entry.finish(resp, log, &stats))
            }
            .instrument(span),
        )
    }
}

impl Service {
    /// `max_inflight_per_key` (API.md §10): a slot for an authenticated request, SSE GETs excluded
    /// (their streams count against the per-key stream cap instead).
    fn request_slot<B>(
        &self,
        req: &Request<B>,
        caller: &super::auth::Caller,
    ) -> Result<Option<super::caps::Slot>, crate::error::ApiError> {
        let Some(key) = &caller.0 else {
            return Ok(None);
        };
        if super::auth::sse_get(req.method(), req.uri().path()) {
            return Ok(None);
        }
        let max = self.state.config().limits.max_inflight_per_key;
        self.state.inner.key_caps.request(key.digest, max).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_topic_writes_take_the_shortcut() {
        let post = Method::POST;
        assert_eq!(write_target(&post, "/v0/topics/orders"), Some("orders"));
        assert_eq!(write_target(&post, "/v0/topics/a.b-c_d"), Some("a.b-c_d"));
        for path in [
            "/v0/topics/",
            "/v0/topics",
            "/v0/topics/a/diff",
            "/v0/topics/a/",
            "/v0/topics/a%20b",
            "/v0/topicsx/a",
            "/v1/topics/a",
        ] {
            assert_eq!(write_target(&post, path), None, "{path}");
        }
        assert_eq!(write_target(&Method::GET, "/v0/topics/a"), None);
        assert_eq!(write_target(&Method::PUT, "/v0/topics/a"), None);
    }
}
