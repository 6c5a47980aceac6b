//! Log lines leave the process through one writer thread. Written straight from the request
//! path, every access-log line cost a `write` syscall on stderr under its lock, with the
//! runtime's workers contending for that lock: about a fifth of the server's time on
//! single-record writes (`docs/BENCHMARKS.md`). Here a worker hands the formatted line to a
//! bounded channel and goes on; the writer thread lets lines gather for a moment, drains
//! whatever is queued into one buffer and writes it at once. Nothing is dropped: a full channel makes the logging thread wait,
//! as a slow stderr did before. `flush` (at exit, and from the panic hook) waits until every
//! line queued so far is written.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

/// Lines queued at most before loggers wait.
const QUEUED_LINES: usize = 65_536;
/// How long the thread lets lines gather after the first one of a batch.
const LINGER: Duration = Duration::from_millis(2);
/// One write at most this large (a burst is written in several).
const WRITE_BYTES: usize = 1 << 20;

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

static PIPE: OnceLock<SyncSender<Msg>> = OnceLock::new();

/// Start the writer thread; lines written before this go to stderr directly.
pub fn start() {
    let (tx, rx) = sync_channel(QUEUED_LINES);
    let started = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || run(rx, &mut std::io::stderr()));
    if started.is_ok() {
        let _ = PIPE.set(tx);
    }
}

/// Wait (at most 5 s) until every line queued before this call is written.
pub fn flush() {
    let Some(tx) = PIPE.get() else { return };
    let (ack, done) = sync_channel(1);
    if tx.send(Msg::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(Duration::from_secs(5));
    }
}

/// Queue one complete line. With no writer thread (not started, or gone) it is written
/// directly. A closed stderr never fails the caller: the process keeps serving when its log
/// pipe is gone.
pub fn write_line(line: Vec<u8>) {
    let unsent = match PIPE.get() {
        Some(tx) => match tx.send(Msg::Line(line)) {
            Ok(()) => return,
            Err(e) => e.0,
        },
        None => Msg::Line(line),
    };
    if let Msg::Line(l) = unsent {
        let _ = std::io::stderr().write_all(&l);
    }
}

/// The `tracing` writer: one formatted event per `write`.
pub struct PipeWriter;

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_line(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer loop: block for one message, take whatever else is queued, write it in one go.
fn run(rx: Receiver<Msg>, out: &mut impl Write) {
    let mut buf = Vec::with_capacity(64 << 10);
    let mut acks = Vec::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        // Sleeping rather than blocking on the channel while lines gather: a sender wakes
        // the thread only when it is blocked on the channel, so a busy log costs one wake-up
        // per batch, not one per line.
        std::thread::sleep(LINGER);
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Line(l) => buf.extend_from_slice(&l),
                Msg::Flush(a) => acks.push(a),
            }
            if buf.len() < WRITE_BYTES {
                next = rx.try_recv().ok();
            }
        }
        // Errors are ignored like a closed stderr's: logging never stops the server.
        let _ = out.write_all(&buf);
        let _ = out.flush();
        buf.clear();
        acks.drain(..).for_each(|a| {
            let _ = a.send(());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records each `write_all` as one chunk.
    #[derive(Clone, Default)]
    struct Chunks(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn queued_lines_are_written_in_order_in_few_writes_and_a_flush_waits_for_them() {
        let (tx, rx) = sync_channel(QUEUED_LINES);
        let lines: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("line {i}\n").into_bytes())
            .collect();
        for l in &lines {
            tx.send(Msg::Line(l.clone())).unwrap();
        }
        let (ack, done) = sync_channel(1);
        tx.send(Msg::Flush(ack)).unwrap();
        let chunks = Chunks::default();
        let mut out = chunks.clone();
        let writer = std::thread::spawn(move || run(rx, &mut out));
        done.recv_timeout(Duration::from_secs(10))
            .expect("the flush was acknowledged");
        let written = chunks.0.lock().unwrap().clone();
        assert_eq!(written.concat(), lines.concat(), "every line, in order");
        assert!(
            written.len() < 10,
            "{} writes for 1000 lines",
            written.len()
        );
        drop(tx);
        writer.join().unwrap();
    }
}
