//! Composition root: check the bind, lock the data dir, start serving (503 until ready),
//! replay the WAL, start WAL writers and topic actors, flip ready; on SIGTERM/SIGINT stop
//! accepting, drain, take a final checkpoint, sync the WAL and return. A storage failure
//! (poisoned `StorageHealth`) stops the process the same way but at once and without the
//! checkpoint, and `run` returns `Err` so the exit status is non-zero.

use crate::checkpoint::{Checkpointer, Schedule};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::model::priority::PriorityParams;
use crate::registry::Registry;
use crate::storage::fs::injected::InjectedFs;
use crate::storage::fs::{Fs, RealFs};
use crate::storage::health::StorageHealth;
use crate::storage::lock::lock_data_dir;
use crate::storage::recovery::ReplayProgress;
use crate::storage::wal::{Wal, WalOptions};
use crate::topic::recovered::recover_dir;
use crate::topic::TopicCtx;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let addr = resolve_listen(&config)?;
    let _lock = lock_data_dir(&config.server.data_dir)?;
    let progress = Arc::new(ReplayProgress::default());
    let health = StorageHealth::new();
    let manual_clock = test_clock()?;
    let clock: Arc<dyn Clock> = match &manual_clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let fs = test_fs()?;
    crate::ops::ignore_hangups();
    let state = AppState::new(config.clone(), progress.clone(), health.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("listening on {local}");
    tracing::info!(version = env!("CARGO_PKG_VERSION"), listen = %local,
        data_dir = %config.server.data_dir.display(), config = %config.source, "topics starting");
    match state.keys().len() {
        0 => tracing::warn!(
            "authentication is OFF (no auth.api_keys, no TOPICS_API_KEYS): \
            every client has full access; fine on loopback for development only"
        ),
        n => tracing::info!(keys = n, "bearer authentication on"),
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(crate::server::serve(
        listener,
        http::router(state.clone(), manual_clock),
        config.server.clone(),
        stop_rx,
    ));
    let started = tokio::select! {
        r = start(&config, &progress, &health, clock, fs.clone()) => Some(r?),
        _ = crate::ops::shutdown_signal() => None,
    };
    let Some(started) = started else {
        tracing::info!("stopped during recovery");
        return Ok(());
    };
    #[cfg(feature = "kafka")]
    let sinks = start_sinks(&config, &state, &started.0, &fs)?;
    #[allow(unused_mut)]
    let mut running = Running::begin(&config, &state, started, fs);
    #[cfg(feature = "kafka")]
    {
        running.sinks = Some(sinks);
    }
    // A storage failure stops the process like a signal does, minus the final checkpoint:
    // the exit status tells the supervisor to restart it on whatever storage is there.
    let cause = tokio::select! {
        _ = crate::ops::shutdown_signal() => StopCause::Signal,
        _ = health.poisoned() => StopCause::StorageFailed,
    };
    crate::ops::systemd::stopping();
    let drain = drain_deadline(&config, cause, &health);
    state.begin_shutdown();
    let _ = stop_tx.send(drain);
    let _ = server.await;
    running.finish(&health).await
}

/// Load the sink files and start their tasks (before ready, so every route sees them).
#[cfg(feature = "kafka")]
fn start_sinks(
    config: &Config,
    state: &AppState,
    registry: &Arc<Registry>,
    fs: &Arc<dyn Fs>,
) -> Result<Arc<crate::sink::Sinks>, String> {
    let store = crate::sink::Store {
        fs: fs.clone(),
        data_dir: config.server.data_dir.clone(),
    };
    let sinks = crate::sink::Sinks::load(registry.clone(), store)?;
    state.set_sinks(sinks.clone());
    Ok(sinks)
}

/// Why serving ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    Signal,
    StorageFailed,
}

/// How long in-flight requests get after a storage failure: on poisoned storage they fail
/// fast anyway, and what matters is exiting so a supervisor restarts the process.
const POISONED_DRAIN: Duration = Duration::from_millis(500);

fn drain_deadline(config: &Config, cause: StopCause, health: &StorageHealth) -> Duration {
    let configured = Duration::from_millis(config.server.drain_timeout_ms);
    match cause {
        StopCause::Signal => {
            tracing::info!("shutting down: draining requests");
            configured
        }
        StopCause::StorageFailed => {
            tracing::error!(error = %health.error(), "storage failed: stopping now, without a final checkpoint, so a supervisor restarts the process");
            configured.min(POISONED_DRAIN)
        }
    }
}

/// The serving phase: what shutdown has to stop, in order.
struct Running {
    registry: Arc<Registry>,
    routers: Arc<crate::router::Routers>,
    wal: Wal,
    checkpointer: Arc<Checkpointer>,
    periodic: tokio::task::JoinHandle<()>,
    /// Kafka sinks, stopped first at shutdown (their tasks save their files as they end).
    #[cfg(feature = "kafka")]
    sinks: Option<Arc<crate::sink::Sinks>>,
}

impl Running {
    /// Start periodic checkpoints and turn ready.
    fn begin(config: &Config, state: &AppState, started: Started, fs: Arc<dyn Fs>) -> Running {
        let (registry, wal, last_snapshot, segments, routers, queues) = started;
        let checkpointer = Arc::new(Checkpointer::new(
            registry.clone(),
            routers.clone(),
            queues.clone(),
            wal.clone(),
            config.server.data_dir.clone(),
            crate::checkpoint::PrevSnapshot {
                number: last_snapshot,
                segments,
            },
            fs,
        ));
        let periodic = tokio::spawn(checkpointer.clone().run_periodically(schedule(config)));
        let hot = registry.clone();
        tokio::spawn(crate::ops::memory::trim_when_memory_shrinks(move || {
            hot.memory_signal()
        }));
        state.set_routers(routers.clone());
        state.set_queues(queues);
        state.set_checkpointer(checkpointer.clone());
        state.set_ready(registry.clone());
        tracing::info!(topics = registry.len(), "ready");
        crate::ops::systemd::ready(registry.len());
        Running {
            registry,
            routers,
            wal,
            checkpointer,
            periodic,
            #[cfg(feature = "kafka")]
            sinks: None,
        }
    }

    /// After the drain: a final checkpoint, then stop the actors and the WAL. `Err` (exit
    /// status 1) whenever storage failed or the checkpoint did, so `Restart=on-failure`
    /// restarts the server and replay rebuilds from what is on disk. Poisoned storage gets no
    /// final checkpoint and no final WAL sync: nothing on it is trusted, and nothing is retried.
    async fn finish(self, health: &StorageHealth) -> Result<(), String> {
        self.periodic.abort();
        #[cfg(feature = "kafka")]
        if let Some(sinks) = &self.sinks {
            sinks.stop_all().await;
        }
        // Routers stop before the final checkpoint, so the cursors it stores are final.
        self.routers.stop_all().await;
        if health.is_poisoned() {
            return Err(format!("storage failed: {}", health.error()));
        }
        // A final snapshot makes the next start replay almost nothing.
        if let Err(e) = self.checkpointer.run(true).await {
            tracing::error!(error = %e, "final checkpoint failed");
            if !health.is_poisoned() {
                // The WAL still works: record every topic's exact head there instead.
                self.registry.finalize_all().await;
                stop_wal(self.wal).await?;
            }
            return Err(format!("final checkpoint failed: {e}"));
        }
        self.registry.stop_all().await;
        stop_wal(self.wal).await?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Drain and sync every shard on a blocking thread. `Err` when a shard could not write
/// everything it held (the disk stayed full).
async fn stop_wal(wal: Wal) -> Result<(), String> {
    let clean = tokio::task::spawn_blocking(move || wal.shutdown())
        .await
        .unwrap_or(false);
    match clean {
        true => Ok(()),
        false => Err(
            "the WAL could not write everything it held (the disk stayed full); \
                       the next start reports those seqs to readers as lost"
                .into(),
        ),
    }
}

/// `TOPICS_TEST_CLOCK_MS=<epoch ms>` replaces the system clock with a manual one that only
/// moves through `POST /v0/_test/clock`. It exists so tests of TTL and other time rules never
/// sleep; it is never set in production (and is logged loudly when it is).
fn test_clock() -> Result<Option<Arc<ManualClock>>, String> {
    match std::env::var("TOPICS_TEST_CLOCK_MS") {
        Ok(v) => {
            let start: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("TOPICS_TEST_CLOCK_MS={v:?} is not an integer"))?;
            tracing::warn!(
                start,
                "manual test clock in use: time moves only via POST /v0/_test/clock"
            );
            Ok(Some(ManualClock::new(start)))
        }
        Err(_) => Ok(None),
    }
}

/// `TOPICS_TEST_FAIL_FSYNC_AFTER=N` and `TOPICS_TEST_FAIL_RENAME_AFTER=N`: the first `N` WAL
/// fdatasyncs (or renames, which snapshots and segments are written with) succeed and every
/// later one fails with EIO. They exist so tests can run the real binary on a failing disk;
/// they are never set in production (and are logged loudly when they are).
fn test_fs() -> Result<Arc<dyn Fs>, String> {
    let fsyncs = test_count("TOPICS_TEST_FAIL_FSYNC_AFTER")?;
    let renames = test_count("TOPICS_TEST_FAIL_RENAME_AFTER")?;
    if fsyncs.is_none() && renames.is_none() {
        return Ok(Arc::new(RealFs));
    }
    tracing::warn!(
        fsyncs_before_failure = ?fsyncs,
        renames_before_failure = ?renames,
        "test-only fault injection in use: storage operations will fail with EIO"
    );
    Ok(Arc::new(InjectedFs::new(fsyncs, renames)))
}

fn test_count(var: &str) -> Result<Option<u64>, String> {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{var}={v:?} is not a non-negative integer")),
        Err(_) => Ok(None),
    }
}

/// Every 5 s of replay: progress to the log and to systemd (with a start-timeout extension).
fn spawn_replay_ticker(progress: Arc<ReplayProgress>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            tick.tick().await;
            let f = progress.fraction();
            tracing::info!(progress = f, "WAL replay in progress");
            crate::ops::systemd::replay_progress(f);
        }
    })
}

/// Refuse a non-loopback bind without auth unless explicitly allowed (API.md §1).
fn resolve_listen(config: &Config) -> Result<SocketAddr, String> {
    let listen = &config.server.listen;
    let addr: Option<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(listen.as_str())
        .ok()
        .and_then(|mut a| a.next());
    let loopback = addr.is_some_and(|a| a.ip().is_loopback());
    let keys = !config.auth.api_keys.iter().all(|k| k.trim().is_empty());
    if !loopback && !keys && config.auth.allow_insecure_no_auth {
        tracing::warn!(%listen, "serving a non-loopback address WITHOUT authentication \
            (auth.allow_insecure_no_auth): anyone who can reach it has full access");
    }
    if !loopback && !keys && !config.auth.allow_insecure_no_auth {
        return Err(format!(
            "refusing to serve {listen} without authentication: bind a loopback address, \
             or set auth.allow_insecure_no_auth = true"
        ));
    }
    addr.ok_or_else(|| format!("cannot resolve listen address {listen}"))
}

/// What startup hands to the serving phase: the registry, the WAL, the snapshot recovery
/// started from and the segment files it referred to.
type Started = (
    Arc<Registry>,
    Wal,
    u64,
    std::collections::HashSet<String>,
    Arc<crate::router::Routers>,
    Arc<crate::queue::Queues>,
);

/// Replay, then start the WAL and every topic actor.
async fn start(
    config: &Arc<Config>,
    progress: &Arc<ReplayProgress>,
    health: &Arc<StorageHealth>,
    clock: Arc<dyn Clock>,
    fs: Arc<dyn Fs>,
) -> Result<Started, String> {
    let t0 = Instant::now();
    crate::ops::systemd::status("replaying the write-ahead log");
    let dir = crate::storage::wal_dir(&config.server.data_dir);
    let p = progress.clone();
    let data_dir = config.server.data_dir.clone();
    let ticker = spawn_replay_ticker(progress.clone());
    let rfs = fs.clone();
    let opts = crate::storage::recovery::ReplayOptions {
        skip_damage: config.storage.wal_skip_damage,
    };
    let replayed =
        tokio::task::spawn_blocking(move || recover_dir(&*rfs, &data_dir, &p, opts)).await;
    ticker.abort();
    let rec = replayed.map_err(|e| format!("recovery task failed: {e}"))??;
    let (topics, next_id, summary) = (rec.topics, rec.next_id, rec.summary);
    tracing::info!(
        files = summary.files,
        frames = summary.frames,
        truncated_bytes = summary.truncated_bytes,
        topics = topics.len(),
        snapshot = rec.snapshot_number,
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "WAL replay complete"
    );
    let opts = WalOptions {
        dir,
        shards: config.wal_shards(),
        boot: summary.next_boot,
        queue_frames: config.storage.wal_queue_frames,
        queue_bytes: config.storage.wal_queue_bytes,
        file_bytes: config.storage.wal_file_bytes,
        sync_interval: Duration::from_millis(config.storage.wal_sync_interval_ms.max(1)),
        fs: fs.clone(),
        prev_boot: summary.last_boot,
    };
    let wal = Wal::start(opts, health.clone()).map_err(|e| format!("cannot start the WAL: {e}"))?;
    let p = &config.priority;
    let ctx = Arc::new(TopicCtx {
        wal: wal.clone(),
        clock,
        seq_reserve_ahead: config.storage.seq_reserve_ahead,
        mailbox: config.limits.topic_mailbox,
        priority: PriorityParams {
            clamp: p.clamp as f64,
            auto_max: p.auto_max,
            half_life_ms: p.half_life_ms as f64,
            idle_cutoff_ms: p.idle_cutoff_ms as i64,
        },
        total_bytes: std::sync::atomic::AtomicU64::new(0),
        records_written: std::sync::atomic::AtomicU64::new(0),
        max_total_bytes: config.limits.max_total_bytes,
        segments_dir: Some(crate::storage::segment::dir(&config.server.data_dir)),
        seal: crate::topic::seal::SealPolicy {
            records: config.storage.segment_seal_records,
            bytes: config.storage.segment_seal_bytes,
            age_ms: config.storage.segment_seal_age_ms,
            budget: config.storage.hot_budget_bytes,
        },
        hot_total: std::sync::atomic::AtomicU64::new(0),
        sealer: Default::default(),
        fs: fs.clone(),
        integrity: Default::default(),
    });
    let (damaged_records, damaged_segments) = rec.damaged;
    ctx.integrity.add(damaged_records, damaged_segments);
    let mut topics = topics;
    // Lease state goes to the queue set; the topic actors never see it.
    let queue_states: Vec<_> = topics
        .iter_mut()
        .filter(|t| !t.queue.is_empty())
        .map(|t| (t.name.clone(), std::mem::take(&mut t.queue)))
        .collect();
    let clock = ctx.clock.clone();
    let registry = Arc::new(Registry::new(ctx, config.limits.max_topics));
    registry.install(topics, next_id);
    let routers = crate::router::Routers::new(registry.clone(), router_params(config));
    routers.install(rec.routers);
    let params = crate::queue::QueueParams::from_config(&config.queue);
    let queues = crate::queue::Queues::new(registry.clone(), clock, params);
    queues.install(queue_states).await;
    Ok((
        registry,
        wal,
        rec.snapshot_number,
        rec.segment_files,
        routers,
        queues,
    ))
}

fn router_params(config: &Config) -> crate::router::RouterParams {
    crate::router::RouterParams {
        max_routers: config.limits.max_routers,
        max_hops: config.router.max_hops.min(u32::from(u8::MAX)) as u8,
        batch: config.router.batch,
        retry_ms: config.router.tick_ms,
        max_meta_bytes: config.limits.max_meta_bytes,
        max_record_bytes: config.limits.max_record_bytes,
    }
}

fn schedule(config: &Config) -> Schedule {
    let s = &config.storage;
    Schedule {
        wal_bytes: s.snapshot_wal_bytes,
        max_interval: Duration::from_millis(s.snapshot_max_interval_ms.max(1)),
        check_interval: Duration::from_millis(s.snapshot_check_interval_ms.max(10)),
    }
}
