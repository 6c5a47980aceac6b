//! The client subcommands (`topics write|tail|watch|work|ls|stat|create|rm|backup|export`) run
//! as the real binary against a real server: batching and retries of `write`, cursors and gap
//! reports of `tail` and `export`, resume of `watch` across a dropped connection, the worker
//! runner's ack/nack, lease keeping and clean stop, admin, auth and exit codes.

mod admin;
mod backup;
mod export;
mod tail;
mod watch;
mod work;
mod write;

use crate::harness::server::command;
use crate::harness::Server;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary as a client of `s` (`TOPICS_URL` from the environment, as a user would set it).
pub fn cli(s: &Server, args: &[&str]) -> Command {
    let mut cmd = command();
    cmd.env("TOPICS_URL", format!("http://{}", s.addr))
        .args(args);
    cmd
}

/// Run to exit with `input` on stdin; (status, stdout, stderr).
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::piped());
    let mut child = Running::spawn(cmd);
    let mut stdin = child.child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let status = child.wait(Duration::from_secs(30));
    let _ = feeder.join();
    (status, child.stdout().join("\n"), child.stderr().join("\n"))
}

/// Run to exit with nothing on stdin.
pub fn run(cmd: Command) -> (ExitStatus, String, String) {
    run_with_stdin(cmd, b"")
}

/// A client process running in the background, its output collected line by line. Killed
/// (by its own PID) on drop, so a failing test leaves nothing running.
pub struct Running {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn topics");
        let out = Arc::<Mutex<Vec<String>>>::default();
        let err = Arc::<Mutex<Vec<String>>>::default();
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), out.clone()),
            collect(child.stderr.take().expect("stderr"), err.clone()),
        ];
        Running {
            child,
            out,
            err,
            readers,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.err.lock().unwrap().clone()
    }

    /// Wait (bounded) until stdout holds `n` lines; returns them.
    #[track_caller]
    pub fn wait_stdout(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.stdout();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{n} stdout lines never came; stdout {lines:?}; stderr {:?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
    }

    /// Wait (bounded) for the exit; every output line is collected once this returns.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {timeout:?}; stderr {:?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- client stderr ----\n{}", self.stderr().join("\n"));
        }
    }
}

fn collect(
    r: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    })
}

/// Stdout lines as JSON values.
pub fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `$seq` of each JSON line.
pub fn seqs(lines: &[serde_json::Value]) -> Vec<u64> {
    lines
        .iter()
        .map(|v| v["$seq"].as_u64().unwrap_or_else(|| panic!("no $seq: {v}")))
        .collect()
}

/// Wait (bounded) until `check` holds.
#[track_caller]
pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
