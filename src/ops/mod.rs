//! Process-level operations: signals, giving freed memory back, the log writer thread.

pub mod log_pipe;
pub mod memory;

/// Resolves on SIGTERM or SIGINT.
/// SIGHUP's default action would kill the process without a drain or a final checkpoint
/// (a closed terminal, a stray `kill -HUP`): it is caught and logged instead. There is no
/// reload; a config change takes a restart.
pub fn ignore_hangups() {
    use tokio::signal::unix::{signal, SignalKind};
    if let Ok(mut hup) = signal(SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::warn!(
                    "SIGHUP ignored: topics has no reload; restart it to apply a config change"
                );
            }
        });
    }
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// systemd `Type=notify` integration; every call is a no-op outside systemd (no
/// `NOTIFY_SOCKET`), so it is safe to call unconditionally.
pub mod systemd {
    use sd_notify::NotifyState;

    pub fn status(text: &str) {
        let _ = sd_notify::notify(&[NotifyState::Status(text)]);
    }

    /// READY=1 only after replay: systemd starts dependents once we can take traffic.
    pub fn ready(topics: usize) {
        let status = format!("ready: {topics} topics");
        let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// During a long replay: report progress and ask for more start-up time, so systemd's
    /// start timeout bounds a stuck replay, not a long one.
    pub fn replay_progress(fraction: f64) {
        let status = format!("replaying the write-ahead log: {:.0}%", fraction * 100.0);
        let _ = sd_notify::notify(&[
            NotifyState::Status(&status),
            NotifyState::ExtendTimeoutUsec(30_000_000),
        ]);
    }

    pub fn stopping() {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }
}
