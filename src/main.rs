//! The `natrium` binary: command line → configuration → logging → server.

use natrium::Server;
use natrium::config::{self, Command, USAGE};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (command, warnings) = match config::parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("natrium: {e}");
            return ExitCode::from(2);
        }
    };
    // The TLS files are read now, so that a bad certificate is a
    // configuration error (exit 2), with `-t` too.
    if let Command::Run(config) | Command::Check(config) = &command
        && let Some(tls) = &config.tls
        && let Err(e) = tls.server_config()
    {
        eprintln!("natrium: {e}");
        return ExitCode::from(2);
    }
    let config = match command {
        Command::Help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("natrium version {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Check(config) => {
            init_logging(config.debug, config.trace, None);
            for w in &warnings {
                log::warn!("{w}");
            }
            println!("natrium: configuration is valid");
            return ExitCode::SUCCESS;
        }
        Command::Run(config) => config,
    };
    let log_file = match &config.logfile {
        None => None,
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(file) => Some(file),
            Err(e) => {
                eprintln!("natrium: cannot open log file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    init_logging(config.debug, config.trace, log_file);
    for w in &warnings {
        log::warn!("{w}");
    }
    raise_open_files_limit();
    let addr = format!("{}:{}", config.host, config.port);
    let mut server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("Cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.handle_signals() {
        log::warn!("Cannot install signal handlers: {e}");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("Server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Info by default, debug with `-D`, trace with `-V`; `RUST_LOG` wins when
/// set. Without `RUST_LOG` the level is a global maximum that a reload can
/// change. Logs go to stderr, or to `log_file` (the `logfile` option).
fn init_logging(debug: bool, trace: bool, log_file: Option<std::fs::File>) {
    let mut builder = if std::env::var_os("RUST_LOG").is_some() {
        env_logger::Builder::from_env(env_logger::Env::default())
    } else {
        let mut b = env_logger::Builder::new();
        b.filter_level(log::LevelFilter::Trace);
        b
    };
    builder.format_target(false);
    if let Some(file) = log_file {
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    }
    builder.init();
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(config::log_level(debug, trace));
    }
}

/// Every connection is a file descriptor, and many systems start processes
/// with a soft limit of 1024 open files: raise it to the hard limit (capped
/// at 1M when unlimited), as the Go runtime does for nats-server, so that the
/// default `max_connections` (65536) is reachable where the system allows.
fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const CAP: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or(CAP).min(CAP);
    if let Some(current) = limit.current
        && current < target
    {
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => log::debug!("Raised the open files limit from {current} to {target}"),
            Err(e) => log::warn!("Cannot raise the open files limit from {current}: {e}"),
        }
    }
}
