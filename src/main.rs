//! `topics` binary: parse flags, load config, init logging, run the server (the default), or
//! run `topics verify`, `topics check-config` or a client subcommand (`topics::cli`). No logic
//! here.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use topics::config::{Config, LogFormat};

/// A single-binary HTTP/JSON event-log server. Serving is the default action.
#[derive(Parser, Debug)]
#[command(
    name = "topics",
    version,
    about,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on [default: 127.0.0.1:4000]
    #[arg(long, env = "TOPICS_LISTEN")]
    listen: Option<String>,
    /// Data directory [default: ./topics-data]
    #[arg(long, env = "TOPICS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file (every tunable; see config.example.toml)
    #[arg(long, env = "TOPICS_CONFIG")]
    config: Option<PathBuf>,
    /// Log format [default: text]
    #[arg(long, env = "TOPICS_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Start even if the WAL is damaged: skip the damage and report the seqs it may have held
    /// as lost (tombstone reason "damaged"). Only after reading the refusal; see OPERATIONS.md
    #[arg(long, env = "TOPICS_SKIP_WAL_DAMAGE")]
    skip_wal_damage: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every checksum in a data directory or a backup archive (segments, snapshots,
    /// WAL) without changing it; exits 0 when clean, 1 when damage is found, 2 on usage
    /// errors. Example: topics verify /var/backups/topics-2026-12-02
    Verify {
        /// Data directory or backup archive (`.tar`) to check
        #[arg(required_unless_present = "data_dir")]
        path: Option<PathBuf>,
        /// Data directory to check (PATH, when given, wins)
        #[arg(long, env = "TOPICS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate the configuration the server would run with (file, environment and these
    /// flags merged) and print it as TOML with API key secrets redacted; exits 0 when valid,
    /// 2 otherwise. Example: topics check-config --config /etc/topics/config.toml
    CheckConfig {
        /// TOML config file
        #[arg(long, env = "TOPICS_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on
        #[arg(long, env = "TOPICS_LISTEN")]
        listen: Option<String>,
        /// Data directory
        #[arg(long, env = "TOPICS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Client subcommands: they talk to a running server (`--url`, `TOPICS_URL`).
    #[command(flatten)]
    Client(topics::cli::ClientCommand),
}

/// `topics check-config`: the merged config, validated, secrets redacted.
fn check_config(
    config: Option<PathBuf>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> ExitCode {
    let cli = Cli {
        command: None,
        listen,
        data_dir,
        config,
        log_format: None,
        skip_wal_damage: false,
    };
    match load(&cli) {
        Ok(mut c) => {
            let n = c
                .auth
                .api_keys
                .iter()
                .flat_map(|e| e.split(','))
                .filter(|e| !e.trim().is_empty())
                .count();
            c.auth.api_keys = vec![format!("<{n} key entries redacted>")];
            match toml::to_string(&c) {
                Ok(text) => {
                    use std::io::Write;
                    let _ = writeln!(std::io::stdout(), "# valid; from {}\n{text}", c.source);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    say_error(&format!("cannot print the config: {e}"));
                    ExitCode::from(2)
                }
            }
        }
        Err(e) => {
            say_error(&e);
            ExitCode::from(2)
        }
    }
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    config.source = match &cli.config {
        Some(path) => format!("{} (+ environment and flags)", path.display()),
        None => "built-in defaults (+ environment and flags)".into(),
    };
    if let Some(l) = &cli.listen {
        config.server.listen = l.clone();
    }
    if let Some(d) = &cli.data_dir {
        config.server.data_dir = d.clone();
    }
    if let Some(f) = cli.log_format {
        config.server.log_format = f;
    }
    if cli.skip_wal_damage {
        config.storage.wal_skip_damage = true;
    }
    // Key entries from the environment add to the config file's (never on the command line,
    // where every user of the machine could read them).
    if let Ok(keys) = std::env::var("TOPICS_API_KEYS") {
        config.auth.api_keys.push(keys);
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// `error: …` on stderr, ignoring a closed stderr: a closed log pipe (a stopped journald
/// reader, `| head`) is never worth a panic (`ops::log_pipe` writes log lines the same way).
fn say_error(e: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "error: {e}");
}

fn init_logging(format: LogFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        // A typo in RUST_LOG must not silently log at another level.
        Ok(spec) => tracing_subscriber::EnvFilter::try_new(&spec)
            .map_err(|e| format!("invalid RUST_LOG {spec:?}: {e}"))?,
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
    };
    // Colour only on a terminal: logs shipped to journald or files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| topics::ops::log_pipe::PipeWriter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    // Plain text: the access line skips `tracing`'s formatter (same bytes, far cheaper).
    topics::http::access_line::write_directly(format == LogFormat::Text && !ansi);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Verify { path, data_dir }) => {
            let Some(path) = path.or(data_dir) else {
                return ExitCode::from(topics::verify::EXIT_USAGE);
            };
            let code = topics::verify::run_path(&path, &mut std::io::stdout().lock());
            return ExitCode::from(code);
        }
        Some(Command::CheckConfig {
            config,
            listen,
            data_dir,
        }) => return check_config(config, listen, data_dir),
        Some(Command::Client(command)) => return ExitCode::from(topics::cli::run(command)),
        None => {}
    }
    let config = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            say_error(&e);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(config.server.log_format) {
        say_error(&e);
        return ExitCode::from(2);
    }
    topics::ops::log_pipe::start();
    // A panic's message goes to stderr directly: the lines logged before it go out first.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        topics::ops::log_pipe::flush();
        report(info)
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say_error(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(topics::app::run(config));
    // Blocking work stuck on a failing disk must not hold the exit (and the restart) back.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    topics::ops::log_pipe::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say_error(&e);
            ExitCode::FAILURE
        }
    }
}
