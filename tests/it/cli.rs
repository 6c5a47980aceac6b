//! Command line, environment and config file (GUIDE API.md §6): --help/--version, precedence
//! file < env < flags, unknown keys fail startup naming the key, log formats.

use crate::harness::server::command;
use crate::harness::*;
use serde_json::json;
use std::path::Path;

const FLAGS_AND_ENVS: [(&str, &str); 4] = [
    ("--listen", "TOPICS_LISTEN"),
    ("--data-dir", "TOPICS_DATA_DIR"),
    ("--config", "TOPICS_CONFIG"),
    ("--log-format", "TOPICS_LOG_FORMAT"),
];

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

#[test]
fn help_lists_every_flag_with_its_env_var() {
    let mut cmd = command();
    cmd.arg("--help");
    let (status, out, err) = run_to_exit(cmd);
    assert!(status.success(), "--help exit {status}; stderr: {err}");
    for (flag, env) in FLAGS_AND_ENVS {
        assert!(out.contains(flag), "--help lacks {flag}:\n{out}");
        assert!(out.contains(env), "--help lacks {env}:\n{out}");
    }
    // Every option block (a line starting with `-`, up to the next one) names a TOPICS_ env var,
    // except --help and --version.
    let mut blocks: Vec<String> = Vec::new();
    for line in out.lines() {
        if line.trim_start().starts_with('-') {
            blocks.push(line.to_string());
        } else if let Some(last) = blocks.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    assert!(blocks.len() >= 4, "no option lines found in --help:\n{out}");
    for block in blocks {
        let head = block.lines().next().unwrap();
        if head.contains("--help") || head.contains("--version") {
            continue;
        }
        assert!(
            block.contains("TOPICS_"),
            "flag without an env var in --help: {head}\n{block}"
        );
    }
}

#[test]
fn version_prints_the_package_version() {
    let mut cmd = command();
    cmd.arg("--version");
    let (status, out, err) = run_to_exit(cmd);
    assert!(status.success(), "--version exit {status}; stderr: {err}");
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")),
        "--version output: {out}"
    );
}

#[test]
fn unknown_flag_fails() {
    let tmp = TempDir::new();
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .arg("--no-such-flag");
    let (status, _, err) = run_to_exit(cmd);
    assert!(!status.success());
    assert!(err.contains("no-such-flag"), "stderr: {err}");
}

fn startup_with_config_fails_naming(config: &str, key: &str) {
    let tmp = TempDir::new();
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let data = tmp.path().join("data");
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(&data);
    let (status, _, err) = run_to_exit(cmd);
    assert!(!status.success(), "config {config:?} must fail startup");
    assert!(err.contains(key), "stderr must name `{key}`: {err}");
}

#[test]
fn unknown_top_level_config_key_fails_startup_naming_it() {
    startup_with_config_fails_naming("bogus_key = 1\n", "bogus_key");
}

#[test]
fn unknown_key_inside_a_section_fails_startup_naming_it() {
    startup_with_config_fails_naming("[server]\nlisten_addr = \"127.0.0.1:0\"\n", "listen_addr");
    startup_with_config_fails_naming("[limits]\nmax_bodybytes = 5\n", "max_bodybytes");
}

#[test]
fn unknown_config_section_fails_startup_naming_it() {
    startup_with_config_fails_naming("[nonsense]\nx = 1\n", "nonsense");
}

#[test]
fn wrongly_typed_config_value_fails_startup() {
    let tmp = TempDir::new();
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, "[limits]\nmax_batch_records = \"many\"\n").unwrap();
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(tmp.path().join("d"));
    let (status, _, err) = run_to_exit(cmd);
    assert!(!status.success(), "stderr: {err}");
}

#[test]
fn missing_config_file_fails_startup() {
    let tmp = TempDir::new();
    let path = tmp.path().join("absent.toml");
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(tmp.path().join("d"));
    let (status, _, err) = run_to_exit(cmd);
    assert!(!status.success());
    assert!(
        err.contains("absent.toml"),
        "stderr must name the file: {err}"
    );
}

#[test]
fn config_file_given_by_env_var_is_used() {
    let tmp = TempDir::new();
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, "bogus_key = 1\n").unwrap();
    let mut cmd = command();
    cmd.env("TOPICS_CONFIG", &path)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("d"));
    let (status, _, err) = run_to_exit(cmd);
    assert!(!status.success(), "TOPICS_CONFIG must be read");
    assert!(err.contains("bogus_key"), "stderr: {err}");
}

#[test]
fn config_file_alone_sets_listen_and_data_dir() {
    let tmp = TempDir::new();
    let data = tmp.path().join("from-file");
    std::fs::create_dir_all(&data).unwrap();
    let path = tmp.path().join("c.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[limits]\nmax_batch_records = 2\n",
        data.to_str().unwrap()
    );
    std::fs::write(&path, text).unwrap();
    let s = Server::start_raw(&["--config", path.to_str().unwrap()], &[], &data);
    s.write("t", records(2));
    assert_error(
        &s.post("/v0/topics/t", &json!({"records": records(3)})),
        400,
        "batch_too_large",
    );
    assert!(
        !dir_is_empty(&data),
        "data_dir from the config file is used"
    );
}

#[test]
fn env_vars_set_listen_and_data_dir() {
    let tmp = TempDir::new();
    let data = tmp.path().join("from-env");
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start_raw(
        &[],
        &[
            ("TOPICS_LISTEN", "127.0.0.1:0"),
            ("TOPICS_DATA_DIR", data.to_str().unwrap()),
        ],
        &data,
    );
    s.create("t", json!({"durable": true}));
    assert!(!dir_is_empty(&data), "TOPICS_DATA_DIR is used");
}

#[test]
fn flags_beat_env_vars_and_env_vars_beat_the_config_file() {
    let tmp = TempDir::new();
    let (file_dir, env_dir, flag_dir) = (
        tmp.path().join("file"),
        tmp.path().join("env"),
        tmp.path().join("flag"),
    );
    for d in [&file_dir, &env_dir, &flag_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let path = tmp.path().join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            file_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let cfg = path.to_str().unwrap();

    // env beats file
    let s = Server::start_raw(
        &["--config", cfg],
        &[("TOPICS_DATA_DIR", env_dir.to_str().unwrap())],
        &env_dir,
    );
    s.create("t", json!({"durable": true}));
    drop(s);
    assert!(
        !dir_is_empty(&env_dir),
        "TOPICS_DATA_DIR must beat the config file"
    );
    assert!(
        dir_is_empty(&file_dir),
        "config file data_dir must be overridden by env"
    );

    // flag beats env
    let s = Server::start_raw(
        &["--config", cfg, "--data-dir", flag_dir.to_str().unwrap()],
        &[("TOPICS_DATA_DIR", env_dir.to_str().unwrap())],
        &flag_dir,
    );
    s.create("t", json!({"durable": true}));
    drop(s);
    assert!(
        !dir_is_empty(&flag_dir),
        "--data-dir must beat TOPICS_DATA_DIR"
    );
    assert!(dir_is_empty(&file_dir));
}

#[test]
fn json_log_format_writes_json_lines() {
    for args in [vec!["--log-format", "json"], vec![]] {
        let tmp = TempDir::new();
        let data = tmp.path().join("d");
        std::fs::create_dir_all(&data).unwrap();
        let mut full = vec![
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        full.extend(args.iter().copied());
        let envs: &[(&str, &str)] = if args.is_empty() {
            &[("TOPICS_LOG_FORMAT", "json")]
        } else {
            &[]
        };
        let s = Server::start_raw(&full, envs, &data);
        s.write("t", records(1));
        let logs = s.logs();
        assert!(!logs.is_empty());
        for line in logs.iter().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v.is_object(), "{line}");
        }
    }
}

#[test]
fn text_log_format_logs_the_listening_address() {
    let s = Server::start();
    let want = format!("listening on {}", s.addr);
    assert!(
        s.logs().iter().any(|l| l.contains(&want)),
        "no `{want}` line in {:?}",
        s.logs()
    );
}

#[test]
fn example_config_file_starts_a_server() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    assert!(
        example.exists(),
        "config.example.toml must ship at the repo root"
    );
    // Flags override its listen address and data dir.
    let s = Server::start_with(&["--config", example.to_str().unwrap()], None);
    s.write("t", records(1));
}

/// Settings that cannot work are refused at startup (exit 2), naming the setting.
#[test]
fn settings_that_cannot_work_fail_startup_naming_them() {
    startup_with_config_fails_naming("[read]\nwait_ms_max = 0\n", "read.wait_ms_max");
    startup_with_config_fails_naming(
        "[read]\ndiff_limit_default = 5000\n",
        "read.diff_limit_default",
    );
    startup_with_config_fails_naming(
        "[watch]\nheartbeat_ms_default = 500\n",
        "watch.heartbeat_ms_default",
    );
    startup_with_config_fails_naming("[queue]\nlease_ms_min = 0\n", "queue.lease_ms_min");
}

/// A malformed `--listen` is a usage error naming the address, not an auth refusal.
#[test]
fn a_malformed_listen_address_is_a_usage_error() {
    let tmp = TempDir::new();
    let mut cmd = command();
    cmd.args(["--listen", "localhost", "--data-dir"])
        .arg(tmp.path().join("d"));
    let (status, _, err) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.listen") && !err.contains("authentication"),
        "{err}"
    );
}

/// A closed log pipe (the reader of stderr went away) must not kill the server: it keeps
/// serving and a SIGTERM still ends with a clean drain and exit 0.
#[test]
fn a_closed_log_pipe_does_not_kill_the_server() {
    use std::io::BufRead;
    let tmp = TempDir::new();
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("d"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    /// Kills the server if the test fails before its SIGTERM (no process outlives a test).
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(cmd.spawn().unwrap());
    let mut lines = std::io::BufReader::new(child.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a listening line").unwrap();
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().to_string();
        }
    };
    drop(lines); // the pipe's read end closes: every later log line hits EPIPE
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let t0 = std::time::Instant::now();
    while crate::harness::http::request(addr, "GET", "/v0/ready", &[], b"").status != 200 {
        assert!(t0.elapsed().as_secs() < 10, "not ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for i in 0..3 {
        let body = format!(r#"{{"records":[{{"data":{i}}}]}}"#);
        let h = [("Content-Type", "application/json")];
        let r = crate::harness::http::request(
            addr,
            "POST",
            &format!("/v0/topics/t{i}"),
            &h,
            body.as_bytes(),
        );
        assert_eq!(r.status, 201);
    }
    let pid = child.0.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit {status}");
}

/// The unit file shipped in `docs/deploy/` is the one `docs/OPERATIONS.md` shows.
#[test]
fn the_shipped_systemd_unit_is_the_documented_one() {
    let doc = include_str!("../../docs/OPERATIONS.md");
    let unit = include_str!("../../docs/deploy/topics.service");
    let start = doc.find("```ini\n").expect("the unit in OPERATIONS.md") + 7;
    let end = start + doc[start..].find("```").unwrap();
    assert_eq!(&doc[start..end], unit);
    assert!(unit.contains("Type=notify") && unit.contains("EnvironmentFile=-/etc/topics/keys.env"));
}

/// `topics check-config` prints the merged config with key secrets redacted (exit 0), and
/// refuses an invalid one (exit 2) without starting anything.
#[test]
fn check_config_prints_the_merged_config_redacted_or_refuses() {
    let tmp = TempDir::new();
    let path = tmp.path().join("c.toml");
    std::fs::write(&path, "[read]\nwait_ms_max = 5000\n").unwrap();
    let mut cmd = command();
    cmd.args(["check-config", "--listen", "127.0.0.1:4999", "--config"])
        .arg(&path)
        .env("TOPICS_API_KEYS", "very-secret-1:read,very-secret-2");
    let (status, out, err) = run_to_exit(cmd);
    assert!(status.success(), "{err}");
    assert!(
        out.contains("wait_ms_max = 5000") && out.contains("127.0.0.1:4999"),
        "{out}"
    );
    assert!(
        out.contains("2 key entries redacted") && !out.contains("very-secret"),
        "{out}"
    );
    std::fs::write(&path, "[read]\nwait_ms_max = 0\n").unwrap();
    let mut cmd = command();
    cmd.args(["check-config", "--config"]).arg(&path);
    let (status, _, err) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("read.wait_ms_max"), "{err}");
}

/// An invalid `RUST_LOG` is a usage error, not a silent fallback; a valid start logs the
/// version, address, data dir and config source.
#[test]
fn an_invalid_rust_log_is_refused_and_startup_names_what_it_runs_with() {
    let tmp = TempDir::new();
    let mut cmd = command();
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("d"))
        .env("RUST_LOG", "info,topics=loud");
    let (status, _, err) = run_to_exit(cmd);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("RUST_LOG"), "{err}");
    let s = Server::start();
    let line = s
        .logs()
        .into_iter()
        .find(|l| l.contains("topics starting"))
        .expect("a start line");
    assert!(
        line.contains(env!("CARGO_PKG_VERSION")) && line.contains("data_dir"),
        "{line}"
    );
    assert!(line.contains("built-in defaults"), "{line}");
}

/// The shipped unit passes `systemd-analyze verify` (with ExecStart pointed at this build);
/// skipped with a printed reason where systemd-analyze is missing.
#[test]
fn the_shipped_systemd_unit_verifies() {
    let Ok(probe) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("cli: skipped: no systemd-analyze on this machine");
        return;
    };
    assert!(probe.status.success());
    let tmp = TempDir::new();
    let unit = include_str!("../../docs/deploy/topics.service")
        .replace("/usr/local/bin/topics", env!("CARGO_BIN_EXE_topics"));
    let path = tmp.path().join("topics.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}
