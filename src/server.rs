//! The HTTP accept loop: HTTP/1.1 keep-alive and HTTP/2 cleartext (prior knowledge) on one
//! port, `TCP_NODELAY` on every socket, header-read timeout and HTTP/2 limits from config, and
//! a graceful stop that lets in-flight requests finish within the drain deadline.

use crate::config::ServerConfig;
use crate::http::fast::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Request header bytes accepted over HTTP/2 (hyper counts name + value + 32 per header);
/// HTTP/1.1 heads are bounded by hyper's ~400 KiB read buffer.
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;

fn builder(cfg: &ServerConfig) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(cfg.header_read_timeout_ms.max(1)))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(cfg.http2_stream_window_bytes)
        .initial_connection_window_size(cfg.http2_connection_window_bytes)
        .max_concurrent_streams(cfg.http2_max_streams)
        // A watch's `Last-Event-ID` names every topic of its session (up to ~95 KB for 256
        // long names); hyper's 16 KiB default would refuse it over HTTP/2 alone.
        .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
        .keep_alive_interval(Some(Duration::from_millis(
            cfg.http2_ping_interval_ms.max(1),
        )))
        .keep_alive_timeout(Duration::from_millis(cfg.http2_ping_timeout_ms.max(1)));
    b
}

/// Serve until `stop` delivers a drain deadline (or is dropped: `server.drain_timeout_ms`),
/// then stop accepting and let in-flight requests finish for at most that long.
pub async fn serve(
    listener: TcpListener,
    app: Service,
    cfg: ServerConfig,
    stop: oneshot::Receiver<Duration>,
) {
    let builder = builder(&cfg);
    let graceful = GracefulShutdown::new();
    let mut drain = Duration::from_millis(cfg.drain_timeout_ms);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            deadline = &mut stop => {
                if let Ok(d) = deadline {
                    drain = d;
                }
                break;
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?drain, "drain deadline passed with requests still running");
    }
}
