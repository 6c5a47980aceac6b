//! Pure domain rules: names, topic configuration, record validation and JSON byte handling,
//! read planning and loss ranges. No I/O, no tokio, no axum — everything here is unit-testable in isolation.

pub mod auth;
pub mod json;
pub mod loss;
pub mod merge;
pub mod name;
pub mod predicate;
pub mod priority;
pub mod queue;
pub mod read;
pub mod record;
pub mod router;
pub mod sink;
pub mod topic_config;
