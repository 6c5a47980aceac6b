//! `ApiError`: the only place that knows HTTP status codes and error code strings. Every
//! failure becomes the canonical body `{"error":{"code","message","detail"?}}`; 429 and 503
//! carry `Retry-After: 1`.

use crate::model::json::limits::LimitError;
use crate::model::record::RecordError;
use crate::model::router::{DefError, GraphError};
use crate::registry::CreateError;
use crate::router::PutError;
use crate::topic::TopicError;
use crate::watch::WatchError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<Value>,
    /// For a `429`: which cap refused (counted in `/v0/metrics`, never on the wire).
    pub cap: Option<&'static str>,
}

/// Response extension of a `429`: the cap that refused it.
#[derive(Debug, Clone, Copy)]
pub struct ThrottledBy(pub &'static str);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
            cap: None,
        }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn topic_not_found(topic: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "topic_not_found",
            format!("no topic named {topic:?}"),
        )
        .with_detail(json!({ "topic": topic }))
    }

    /// Auth on and no valid key (API.md §1).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A key without the scope, or a name outside its prefix allowlist (`{topic}` when a
    /// topic name was refused).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// A topic name outside the key's prefix allowlist.
    pub fn forbidden_topic(topic: &str) -> Self {
        Self::forbidden(format!("this key may not use topic {topic:?}"))
            .with_detail(json!({ "topic": topic }))
    }

    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )
    }

    pub fn payload_too_large(max: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {max} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body needs Content-Type: application/json",
        )
    }

    /// `429 throttled` by `cap` (a config key name, or `queue_full` for a full topic
    /// mailbox or WAL queue).
    pub fn throttled(cap: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message);
        e.cap = Some(cap);
        e
    }

    /// The disk is full: nothing was applied; the write may be retried (it resumes by itself
    /// once space is freed).
    pub fn insufficient_storage() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the disk is full; durable writes resume by themselves once space is freed",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn not_ready(progress: f64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "write-ahead log replay still running",
        )
        .with_detail(json!({ "replay_progress": progress }))
    }

    /// Map a topic-actor failure for the topic named `topic`.
    pub fn from_topic(topic: &str, e: TopicError) -> Self {
        match e {
            TopicError::Gone => Self::topic_not_found(topic),
            TopicError::Throttled => {
                Self::throttled("queue_full", "topic or WAL queue is full; retry shortly")
            }
            TopicError::Storage(err) if err.is_no_space() => Self::insufficient_storage(),
            TopicError::Storage(err) => {
                tracing::error!(topic, error = %err, "storage failure on a request");
                Self::internal("storage failure; nothing was applied")
            }
            TopicError::NotEmpty { count } => Self::new(
                StatusCode::CONFLICT,
                "topic_not_empty",
                format!("topic {topic:?} still holds {count} live records"),
            )
            .with_detail(json!({ "topic": topic, "count": count })),
            TopicError::TypeChange {
                existing,
                requested,
            } => Self::new(
                StatusCode::CONFLICT,
                "topic_exists_incompatible",
                format!("topic {topic:?} is a {existing}; its type cannot change to {requested}"),
            )
            .with_detail(json!({
                "topic": topic, "existing_type": existing, "requested_type": requested
            })),
            TopicError::TopicFull {
                cap_records,
                cap_bytes,
                head_seq,
                earliest_seq,
            } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "topic_full",
                format!("topic {topic:?} is full and discards new writes"),
            )
            .with_detail(
                json!({ "topic": topic, "cap_records": cap_records, "cap_bytes": cap_bytes,
                "head_seq": head_seq, "earliest_seq": earliest_seq }),
            ),
            TopicError::LargerThanCap { what, size, cap } => Self::new(
                StatusCode::BAD_REQUEST,
                "record_too_large",
                format!("this write alone ({size} {what}) exceeds the topic's cap of {cap} {what}"),
            ),
            TopicError::Quota { max } => Self::throttled(
                "max_total_bytes",
                format!("the server-wide retained byte quota of {max} is reached"),
            )
            .with_detail(json!({ "limit": "max_total_bytes", "max": max })),
        }
    }

    /// An SSE GET whose `Accept` excludes `text/event-stream`.
    pub fn not_acceptable() -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "this stream is text/event-stream; send Accept: text/event-stream",
        )
    }

    pub fn from_watch(e: WatchError) -> Self {
        match e {
            WatchError::SessionLimit { max } => Self::throttled(
                "max_watch_sessions",
                format!("watch session limit of {max} reached"),
            )
            .with_detail(json!({ "limit": "max_watch_sessions", "max": max })),
            WatchError::StreamLimit { max } => Self::throttled(
                "max_sse_connections",
                format!("{max} SSE streams are open; retry shortly"),
            ),
            WatchError::UnknownSession => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "unknown or expired watch session; create a new one with POST /v0/watch",
            ),
        }
    }

    pub fn from_create(topic: &str, e: CreateError) -> Self {
        match e {
            CreateError::Limit { max } => {
                Self::throttled("max_topics", format!("topic limit of {max} reached"))
                    .with_detail(json!({ "limit": "max_topics", "max": max }))
            }
            CreateError::Topic(e) => Self::from_topic(topic, e),
        }
    }
}

impl From<DefError> for ApiError {
    fn from(e: DefError) -> Self {
        match e {
            DefError::Field(field, message) => {
                Self::invalid(message).with_detail(json!({ "field": field }))
            }
            DefError::RouterName => Self::invalid("invalid router name"),
            DefError::SameTopic => Self::invalid("dest must differ from source"),
            DefError::SourceName => Self::invalid("invalid source topic name"),
            DefError::DestName => Self::invalid("invalid dest topic name"),
        }
    }
}

impl ApiError {
    pub fn router_not_found(router: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "router_not_found",
            format!("no router named {router:?}"),
        )
        .with_detail(json!({ "router": router }))
    }

    /// Map a refused router PUT for router `router` (API.md §12).
    pub fn from_router_put(router: &str, e: PutError) -> Self {
        let incompatible =
            |m: String| Self::new(StatusCode::CONFLICT, "topic_exists_incompatible", m);
        match e {
            PutError::DestMissing(topic) => Self::topic_not_found(&topic),
            PutError::Graph(GraphError::FanIn { topic }) => incompatible(format!(
                "topic {topic:?} is already fed by a router with another source"
            ))
            .with_detail(json!({ "topic": topic, "reason": "router_dest_fan_in" })),
            PutError::Graph(GraphError::Repoint {
                existing_source,
                existing_dest,
            }) => incompatible(format!(
                "router {router:?} exists with another source or dest"
            ))
            .with_detail(
                json!({ "router": router, "reason": "router_repoint_forbidden",
                        "existing_source": existing_source, "existing_dest": existing_dest }),
            ),
            PutError::Graph(GraphError::Cycle(cycle)) => Self::new(
                StatusCode::CONFLICT,
                "router_cycle",
                "the router would close a cycle (set allow_cycle to permit it)",
            )
            .with_detail(json!({ "cycle": cycle })),
            PutError::Limit { max } => {
                Self::throttled("max_routers", format!("router limit of {max} reached"))
                    .with_detail(json!({ "limit": "max_routers", "max": max }))
            }
            PutError::Create { topic, err } => Self::from_create(&topic, err),
            PutError::Topic(e) => Self::from_topic(router, e),
        }
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Invalid(m) => Self::invalid(m),
            RecordError::BatchTooLarge { count, max } => Self::new(
                StatusCode::BAD_REQUEST,
                "batch_too_large",
                format!("{count} records in one write; the limit is {max}"),
            ),
            RecordError::RecordTooLarge { index, bytes, max } => Self::new(
                StatusCode::BAD_REQUEST,
                "record_too_large",
                format!("records[{index}] is {bytes} bytes (data + meta); the limit is {max}"),
            ),
        }
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        let detail = match e {
            LimitError::TooDeep { max, offset } => {
                json!({ "limit": "json_depth", "max": max, "offset": offset })
            }
            LimitError::NumberTooLong { max, offset } => {
                json!({ "limit": "json_number_chars", "max": max, "offset": offset })
            }
            LimitError::LoneSurrogate { offset } => {
                json!({ "limit": "json_lone_surrogate", "offset": offset })
            }
        };
        Self::invalid(format!("invalid request body: {e}")).with_detail(detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut inner = serde_json::Map::new();
        inner.insert("code".into(), Value::from(self.code));
        inner.insert("message".into(), Value::from(self.message));
        if let Some(d) = self.detail {
            inner.insert("detail".into(), d);
        }
        let body = serde_json::to_vec(&json!({ "error": inner })).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(cap) = self.cap {
            resp.extensions_mut().insert(ThrottledBy(cap));
        }
        let h = resp.headers_mut();
        match self.status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // Space rarely comes back within a second: a longer hint spares the disk a storm.
            StatusCode::INSUFFICIENT_STORAGE => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::model::sink::SinkDefError> for ApiError {
    fn from(e: crate::model::sink::SinkDefError) -> Self {
        use crate::model::sink::SinkDefError;
        match e {
            SinkDefError::Field(field, message) => {
                Self::invalid(message).with_detail(json!({ "field": field }))
            }
            SinkDefError::SinkName => Self::invalid("invalid sink name"),
            SinkDefError::SourceName => Self::invalid("invalid source topic name"),
            SinkDefError::Property(p) => Self::invalid(format!(
                "property {p:?} is set by the sink itself or refused"
            ))
            .with_detail(json!({ "field": "properties", "property": p })),
        }
    }
}

impl ApiError {
    pub fn sink_not_found(sink: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "sink_not_found",
            format!("no sink named {sink:?}"),
        )
        .with_detail(json!({ "sink": sink }))
    }

    pub fn forbidden_sink(sink: &str) -> Self {
        Self::forbidden(format!("the key may not use sink {sink:?}"))
            .with_detail(json!({ "sink": sink }))
    }

    /// Map a refused sink PUT for sink `sink` (API.md §15).
    #[cfg(feature = "kafka")]
    pub fn from_sink_put(sink: &str, e: crate::sink::PutError) -> Self {
        use crate::sink::PutError;
        match e {
            PutError::Repoint { field, existing } => Self::new(
                StatusCode::CONFLICT,
                "topic_exists_incompatible",
                format!("sink {sink:?} exists with another {field}; delete it first"),
            )
            .with_detail(json!({ "sink": sink, "reason": "sink_repoint_forbidden",
                "field": field, "existing_source": existing.source,
                "existing_kafka_topic": existing.kafka_topic,
                "existing_guarantee": existing.guarantee.as_str(),
                "existing_progress_topic": existing.progress_topic })),
            PutError::Limit { max } => {
                Self::throttled("max_sinks", format!("sink limit of {max} reached"))
                    .with_detail(json!({ "limit": "max_sinks", "max": max }))
            }
            PutError::Create { topic, err } => Self::from_create(&topic, err),
            PutError::Io(e) => {
                tracing::error!(sink, error = %e, "sink file not written");
                Self::internal("the sink definition could not be saved")
            }
        }
    }
}
