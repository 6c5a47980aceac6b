//! Process-level operations: signals.

/// Resolves on SIGTERM or SIGINT.
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
