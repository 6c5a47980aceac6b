//! The topic config object (API.md §2): input parsing with every rule, the normalised stored
//! form, and its wire rendering. Input fields are all optional; output always has all 17.

use super::name::is_valid_topic_name;
use serde::{Deserialize, Serialize};

/// Bounds applied when a config is stored (clamps, not errors).
pub const LEASE_MS_MIN: u64 = 100;
pub const LEASE_MS_MAX: u64 = 86_400_000;
pub const CLAIM_JITTER_MS_MAX: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicType {
    Log,
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    Old,
    Reject,
}

/// Where a write is acknowledged; see API.md §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// RAM only; never touches the WAL for records.
    Ephemeral,
    /// WAL path, best effort: acked on enqueue, never forces a sync.
    Memory,
    /// Acked on enqueue; group-synced soon after.
    Disk,
    /// Acked only after the group fsync covering the frame.
    Fsync,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Ephemeral => "ephemeral",
            Durability::Memory => "memory",
            Durability::Disk => "disk",
            Durability::Fsync => "fsync",
        }
    }

    /// Whether records of this class are written to the WAL.
    pub fn uses_wal(self) -> bool {
        self != Durability::Ephemeral
    }

    /// Whether seqs must be reserved ahead durably (every class that acks before a sync).
    pub fn reserves_seqs(self) -> bool {
        self != Durability::Fsync
    }
}

/// Request form: every field optional, unknown fields ignored, types strict.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TopicConfigInput {
    #[serde(rename = "type")]
    pub kind: Option<TopicType>,
    pub ttl_ms: Option<u64>,
    pub cap_records: Option<u64>,
    pub cap_bytes: Option<u64>,
    pub discard: Option<Discard>,
    pub durable: Option<bool>,
    pub durability: Option<Durability>,
    pub priority: Option<i32>,
    pub auto_priority: Option<bool>,
    pub auto_create: Option<bool>,
    pub idempotency_window_ms: Option<u64>,
    pub dedupe_node: Option<bool>,
    pub lease_ms: Option<u64>,
    pub claim_jitter_ms: Option<u64>,
    pub max_deliveries: Option<u64>,
    pub dead_letter: Option<String>,
    pub leases_durable: Option<bool>,
    /// Extension, off unless given: back off redeliveries after an expiry or a plain nack.
    pub retry_backoff: Option<RetryBackoff>,
}

/// Exponential retry backoff with jitter for a queue (an extension of the contract): the
/// n-th redelivery after an expired lease or a nack without `delay_ms` waits between half
/// and all of `min(max_ms, base_ms · 2^(n-1))`, invisible to claims, and then queues behind
/// the fresh work that was waiting when it became due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBackoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

/// Stored, normalised form; also the durable encoding (JSON inside WAL config frames).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    #[serde(rename = "type")]
    pub kind: TopicType,
    pub ttl_ms: u64,
    pub cap_records: u64,
    pub cap_bytes: u64,
    pub discard: Discard,
    pub durable: bool,
    pub durability: Durability,
    pub priority: Option<i32>,
    pub auto_priority: bool,
    pub auto_create: bool,
    pub idempotency_window_ms: u64,
    pub dedupe_node: bool,
    pub lease_ms: u64,
    pub claim_jitter_ms: u64,
    pub max_deliveries: u64,
    pub dead_letter: Option<String>,
    pub leases_durable: bool,
    /// Absent from the stored and served config unless set, so the contract's config shape
    /// holds for every topic that does not opt in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<RetryBackoff>,
}

/// A config input that breaks a rule; rendered as `400 invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRuleError {
    pub message: String,
    /// `Some(name)` when the offending field is `dead_letter`.
    pub dead_letter: Option<String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfigInput::default()
            .resolve("default")
            .expect("the empty config is valid")
    }
}

impl TopicConfigInput {
    /// Apply defaults, aliases and clamps; check cross-field rules for topic `topic`.
    pub fn resolve(self, topic: &str) -> Result<TopicConfig, ConfigRuleError> {
        let kind = self.kind.unwrap_or(TopicType::Log);
        let durability = match (self.durability, self.durable) {
            (Some(d), _) => d,
            (None, Some(true)) => Durability::Fsync,
            (None, _) => Durability::Disk,
        };
        if let Some(dl) = &self.dead_letter {
            let rule = |message: &str| ConfigRuleError {
                message: message.to_string(),
                dead_letter: Some(dl.clone()),
            };
            if !is_valid_topic_name(dl) {
                return Err(rule("dead_letter is not a valid topic name"));
            }
            if kind == TopicType::Queue && dl == topic {
                return Err(rule("dead_letter must differ from the queue itself"));
            }
        }
        if let Some(b) = &self.retry_backoff {
            if b.base_ms == 0 || b.max_ms < b.base_ms || b.max_ms > LEASE_MS_MAX {
                return Err(ConfigRuleError {
                    message: format!(
                        "retry_backoff needs 1 <= base_ms <= max_ms <= {LEASE_MS_MAX}"
                    ),
                    dead_letter: None,
                });
            }
        }
        Ok(TopicConfig {
            kind,
            ttl_ms: self.ttl_ms.unwrap_or(0),
            cap_records: self.cap_records.unwrap_or(0),
            cap_bytes: self.cap_bytes.unwrap_or(0),
            discard: self.discard.unwrap_or(Discard::Old),
            durable: durability == Durability::Fsync,
            durability,
            priority: self.priority,
            auto_priority: self.auto_priority.unwrap_or(true),
            auto_create: self.auto_create.unwrap_or(true),
            idempotency_window_ms: self.idempotency_window_ms.unwrap_or(120_000),
            dedupe_node: self.dedupe_node.unwrap_or(true),
            lease_ms: self
                .lease_ms
                .unwrap_or(30_000)
                .clamp(LEASE_MS_MIN, LEASE_MS_MAX),
            claim_jitter_ms: self.claim_jitter_ms.unwrap_or(0).min(CLAIM_JITTER_MS_MAX),
            max_deliveries: self.max_deliveries.unwrap_or(0),
            dead_letter: self.dead_letter,
            leases_durable: self.leases_durable.unwrap_or(false),
            retry_backoff: self.retry_backoff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Result<TopicConfigInput, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = TopicConfig::default();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 17);
        assert_eq!(v["type"], "log");
        assert_eq!(v["durability"], "disk");
        assert_eq!(v["durable"], false);
        assert_eq!(v["priority"], serde_json::Value::Null);
        assert_eq!(v["dead_letter"], serde_json::Value::Null);
        assert_eq!(v["idempotency_window_ms"], 120_000);
        assert_eq!(v["lease_ms"], 30_000);
    }

    #[test]
    fn durable_alias_and_explicit_durability() {
        let c = input(r#"{"durable":true}"#).unwrap().resolve("t").unwrap();
        assert_eq!((c.durability, c.durable), (Durability::Fsync, true));
        let c = input(r#"{"durable":true,"durability":"memory"}"#)
            .unwrap()
            .resolve("t")
            .unwrap();
        assert_eq!((c.durability, c.durable), (Durability::Memory, false));
    }

    #[test]
    fn clamps_lease_and_jitter() {
        let c = input(r#"{"lease_ms":1,"claim_jitter_ms":99999}"#)
            .unwrap()
            .resolve("t")
            .unwrap();
        assert_eq!(
            (c.lease_ms, c.claim_jitter_ms),
            (LEASE_MS_MIN, CLAIM_JITTER_MS_MAX)
        );
        let c = input(r#"{"lease_ms":999999999999}"#)
            .unwrap()
            .resolve("t")
            .unwrap();
        assert_eq!(c.lease_ms, LEASE_MS_MAX);
    }

    #[test]
    fn strict_types() {
        assert!(input(r#"{"ttl_ms":-1}"#).is_err());
        assert!(input(r#"{"ttl_ms":1.5}"#).is_err());
        assert!(input(r#"{"durability":"tape"}"#).is_err());
        assert!(input(r#"{"priority":3000000000}"#).is_err());
        assert!(input(r#"{"unknown_field":1}"#).is_ok());
    }

    #[test]
    fn dead_letter_rules() {
        let e = input(r#"{"dead_letter":"bad name"}"#)
            .unwrap()
            .resolve("q")
            .unwrap_err();
        assert_eq!(e.dead_letter.as_deref(), Some("bad name"));
        let e = input(r#"{"type":"queue","dead_letter":"q"}"#)
            .unwrap()
            .resolve("q")
            .unwrap_err();
        assert!(e.message.contains("differ"));
        assert!(input(r#"{"dead_letter":"q"}"#)
            .unwrap()
            .resolve("q")
            .is_ok());
    }
}
