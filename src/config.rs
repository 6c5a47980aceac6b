//! Server configuration: every tunable of the API contract's API.md §10, loaded from an optional TOML
//! file and overridden by environment variables and flags (file < env < flags; clap merges the
//! last two). Unknown keys are rejected so a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole configuration. Sections mirror `config.example.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub read: ReadConfig,
    pub watch: WatchConfig,
    pub queue: QueueConfig,
    pub router: RouterConfig,
    pub storage: StorageConfig,
    pub priority: PriorityConfig,
    pub metrics: MetricsConfig,
    /// Where the settings came from (for the startup log line); not a setting.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Bind address; a non-loopback address needs auth or `allow_insecure_no_auth`.
    pub listen: String,
    /// Data directory; holds the WAL and the lock file.
    pub data_dir: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout_ms: u64,
    /// HTTP/1 header read timeout (slowloris guard).
    pub header_read_timeout_ms: u64,
    pub http2_stream_window_bytes: u32,
    pub http2_connection_window_bytes: u32,
    pub http2_max_streams: u32,
    pub http2_ping_interval_ms: u64,
    pub http2_ping_timeout_ms: u64,
    /// One log line per request (target `access`) with its request id.
    pub access_log: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Key entries (`secret[:scopes[:prefixes]]`). Empty = auth disabled (dev mode).
    pub api_keys: Vec<String>,
    /// Permit serving a non-loopback address without keys.
    pub allow_insecure_no_auth: bool,
    /// Require a valid key on the probes too.
    pub probe_auth: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: u64,
    pub max_batch_records: usize,
    pub max_record_bytes: usize,
    pub max_meta_bytes: usize,
    pub max_meta_keys: usize,
    pub max_tag_bytes: usize,
    pub max_node_bytes: usize,
    pub max_idempotency_key_bytes: usize,
    pub max_topics: u64,
    pub max_routers: u64,
    pub max_watch_sessions: u64,
    pub max_total_bytes: u64,
    pub max_sse_connections: u64,
    pub max_sse_connections_per_key: u64,
    pub max_inflight_per_key: u64,
    /// Commands that may wait in one topic's mailbox before writes get 429.
    pub topic_mailbox: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadConfig {
    pub diff_limit_default: u32,
    pub diff_limit_max: u32,
    pub wait_ms_max: u64,
    pub diff_batch_bytes_default: u64,
    pub batch_bytes_max: u64,
    pub page_size_default: usize,
    pub page_size_max: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    pub max_watch_topics: usize,
    pub session_ttl_ms: u64,
    pub heartbeat_ms_default: u64,
    pub heartbeat_ms_min: u64,
    pub heartbeat_ms_max: u64,
    pub sse_retry_ms: u64,
    pub batch_bytes_default: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub max_claim: u32,
    pub lease_ms_min: u64,
    pub lease_ms_max: u64,
    pub claim_jitter_ms_max: u64,
    pub nack_delay_ms_max: u64,
    pub work_heartbeat_ms: u64,
    pub work_poll_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    pub max_hops: u32,
    pub tick_ms: u64,
    pub batch: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// WAL writer threads; 0 = min(CPU count, 8). Hard max 8.
    pub wal_shards: usize,
    /// Frames that may wait in one shard's ingest queue before writes get 429.
    pub wal_queue_frames: usize,
    /// Bytes that may wait in one shard's ingest queue before writes get 429.
    pub wal_queue_bytes: u64,
    /// A WAL file is closed and a new one started past this size.
    pub wal_file_bytes: u64,
    /// Upper bound on how long a `disk`-class frame may sit written but un-synced.
    pub wal_sync_interval_ms: u64,
    pub segment_seal_records: u64,
    pub segment_seal_bytes: u64,
    pub segment_seal_age_ms: u64,
    /// RAM for un-sealed records across all topics; past it, topics seal early.
    pub hot_budget_bytes: u64,
    pub snapshot_wal_bytes: u64,
    pub snapshot_max_interval_ms: u64,
    pub snapshot_check_interval_ms: u64,
    /// Seqs reserved ahead durably for `ephemeral`, `memory` and `disk` topics.
    pub seq_reserve_ahead: u64,
    /// Start even when the WAL holds damaged once-durable bytes or a missing file: skip the
    /// damage and report the seqs it may have held as lost (tombstone reason `damaged`).
    /// An operator's explicit choice after reading the refusal; never the default.
    pub wal_skip_damage: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriorityConfig {
    pub clamp: i64,
    pub auto_max: f64,
    pub half_life_ms: u64,
    pub idle_cutoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub max_topic_series: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4000".into(),
            data_dir: PathBuf::from("./topics-data"),
            log_format: LogFormat::Text,
            drain_timeout_ms: 10_000,
            header_read_timeout_ms: 60_000,
            http2_stream_window_bytes: 1 << 20,
            http2_connection_window_bytes: 4 << 20,
            http2_max_streams: 1024,
            http2_ping_interval_ms: 20_000,
            http2_ping_timeout_ms: 20_000,
            access_log: true,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
            max_batch_records: 10_000,
            max_record_bytes: 1 << 20,
            max_meta_bytes: 16_384,
            max_meta_keys: 64,
            max_tag_bytes: 256,
            max_node_bytes: 128,
            max_idempotency_key_bytes: 256,
            max_topics: 100_000,
            max_routers: 10_000,
            max_watch_sessions: 10_000,
            max_total_bytes: 0,
            max_sse_connections: 10_000,
            max_sse_connections_per_key: 1_000,
            max_inflight_per_key: 1_000,
            topic_mailbox: 1024,
        }
    }
}

impl Default for ReadConfig {
    fn default() -> Self {
        Self {
            diff_limit_default: 256,
            diff_limit_max: 1000,
            wait_ms_max: 30_000,
            diff_batch_bytes_default: 1 << 20,
            batch_bytes_max: 8 << 20,
            page_size_default: 100,
            page_size_max: 1000,
        }
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            max_watch_topics: 256,
            session_ttl_ms: 300_000,
            heartbeat_ms_default: 15_000,
            heartbeat_ms_min: 1_000,
            heartbeat_ms_max: 60_000,
            sse_retry_ms: 2_000,
            batch_bytes_default: 262_144,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_claim: 1000,
            lease_ms_min: 100,
            lease_ms_max: 86_400_000,
            claim_jitter_ms_max: 5_000,
            nack_delay_ms_max: 86_400_000,
            work_heartbeat_ms: 15_000,
            work_poll_ms: 250,
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_hops: 8,
            tick_ms: 50,
            batch: 1024,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            wal_shards: 0,
            wal_queue_frames: 4096,
            wal_queue_bytes: 256 << 20,
            wal_file_bytes: 64 << 20,
            wal_sync_interval_ms: 20,
            segment_seal_records: 10_000,
            segment_seal_bytes: 64 << 20,
            segment_seal_age_ms: 3_600_000,
            hot_budget_bytes: 128 << 20,
            snapshot_wal_bytes: 64 << 20,
            snapshot_max_interval_ms: 60_000,
            snapshot_check_interval_ms: 5_000,
            seq_reserve_ahead: 256,
            wal_skip_damage: false,
        }
    }
}

impl Default for PriorityConfig {
    fn default() -> Self {
        Self {
            clamp: 1000,
            auto_max: 500.0,
            half_life_ms: 30_000,
            idle_cutoff_ms: 300_000,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_topic_series: 1000,
        }
    }
}

/// Why a configuration could not be used. Rendered to the operator at startup.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl LimitsConfig {
    /// The per-record write rules these limits configure.
    pub fn write_limits(&self) -> crate::model::record::WriteLimits {
        crate::model::record::WriteLimits {
            max_batch_records: self.max_batch_records,
            max_record_bytes: self.max_record_bytes,
            max_meta_bytes: self.max_meta_bytes,
            max_meta_keys: self.max_meta_keys,
            max_tag_bytes: self.max_tag_bytes,
            max_node_bytes: self.max_node_bytes,
            max_idempotency_key_bytes: self.max_idempotency_key_bytes,
        }
    }
}

impl Config {
    /// Parse a TOML document; the error names the offending key (toml's message does).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read and parse a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| ConfigError(format!("config {}: {e}", path.display())))
    }

    /// Reject values no server could run with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError(format!("invalid config: {what}")));
        if self.storage.wal_shards > 8 {
            return bad("storage.wal_shards must be 0 (auto) or 1..=8");
        }
        if self.limits.max_batch_records == 0 || self.limits.max_record_bytes == 0 {
            return bad("limits.max_batch_records and limits.max_record_bytes must be > 0");
        }
        if self.limits.max_body_bytes == 0 {
            return bad("limits.max_body_bytes must be > 0");
        }
        if self.limits.topic_mailbox == 0 || self.storage.wal_queue_frames == 0 {
            return bad("limits.topic_mailbox and storage.wal_queue_frames must be > 0");
        }
        if self.read.diff_limit_max == 0 || self.read.diff_limit_default == 0 {
            return bad("read.diff_limit_default and read.diff_limit_max must be > 0");
        }
        self.validate_ranges()?;
        let listen = &self.server.listen;
        let port_ok = listen
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return bad(&format!(
                "server.listen {listen:?} is not HOST:PORT (e.g. 127.0.0.1:4000, [::1]:4000)"
            ));
        }
        if self.storage.wal_file_bytes < 4096 {
            return bad("storage.wal_file_bytes must be at least 4096");
        }
        if let Err(e) = crate::model::auth::parse_keys(&self.auth.api_keys) {
            return bad(&format!("auth.api_keys: {e}"));
        }
        Ok(())
    }

    /// Defaults within their bounds, bounds that can hold a value: a setting that cannot
    /// work is refused at startup instead of surprising a client later.
    fn validate_ranges(&self) -> Result<(), ConfigError> {
        let (r, w, q) = (&self.read, &self.watch, &self.queue);
        let checks: [(bool, &str); 9] = [
            (r.wait_ms_max > 0, "read.wait_ms_max must be > 0"),
            (r.diff_limit_default <= r.diff_limit_max, "read.diff_limit_default must be <= read.diff_limit_max"),
            (r.diff_batch_bytes_default <= r.batch_bytes_max && r.batch_bytes_max > 0,
                "read.diff_batch_bytes_default must be <= read.batch_bytes_max (> 0)"),
            (r.page_size_default <= r.page_size_max && r.page_size_default > 0,
                "read.page_size_default must be > 0 and <= read.page_size_max"),
            (w.heartbeat_ms_min <= w.heartbeat_ms_default && w.heartbeat_ms_default <= w.heartbeat_ms_max,
                "watch.heartbeat_ms_default must lie within watch.heartbeat_ms_min..=heartbeat_ms_max"),
            (w.batch_bytes_default <= r.batch_bytes_max && w.batch_bytes_default > 0,
                "watch.batch_bytes_default must be > 0 and <= read.batch_bytes_max"),
            (w.max_watch_topics > 0, "watch.max_watch_topics must be > 0"),
            (q.lease_ms_min > 0 && q.lease_ms_min <= q.lease_ms_max,
                "queue.lease_ms_min must be > 0 and <= queue.lease_ms_max"),
            (q.max_claim > 0 && q.work_poll_ms > 0, "queue.max_claim and queue.work_poll_ms must be > 0"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err(ConfigError(format!("invalid config: {msg}"))),
            None => Ok(()),
        }
    }

    /// WAL shard count after resolving `0 = auto`.
    pub fn wal_shards(&self) -> usize {
        match self.storage.wal_shards {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 8),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../config.example.toml");
        let cfg = Config::from_toml(text).expect("config.example.toml must parse");
        let def = Config::default();
        assert_eq!(cfg.server.listen, def.server.listen);
        assert_eq!(cfg.limits.max_body_bytes, def.limits.max_body_bytes);
        assert_eq!(cfg.storage.seq_reserve_ahead, def.storage.seq_reserve_ahead);
        assert_eq!(cfg.read.diff_limit_max, def.read.diff_limit_max);
    }

    #[test]
    fn example_config_documents_every_key() {
        let text = include_str!("../config.example.toml");
        let example: toml::Table = toml::from_str(text).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, fields) in &defaults {
            let fields = fields.as_table().unwrap();
            let documented = example
                .get(section)
                .and_then(|v| v.as_table())
                .unwrap_or_else(|| panic!("config.example.toml lacks [{section}]"));
            for key in fields.keys() {
                assert!(
                    documented.contains_key(key),
                    "config.example.toml lacks {section}.{key}"
                );
            }
        }
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.0.contains("listen_addr"), "{err}");
        let err = Config::from_toml("bogus_key = 1\n").unwrap_err();
        assert!(err.0.contains("bogus_key"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected() {
        assert!(Config::from_toml("[limits]\nmax_batch_records = \"many\"\n").is_err());
    }

    #[test]
    fn too_many_shards_is_rejected() {
        assert!(Config::from_toml("[storage]\nwal_shards = 9\n").is_err());
    }
}
