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
            init_logging(&config);
            for w in &warnings {
                log::warn!("{w}");
            }
            println!("natrium: configuration is valid");
            return ExitCode::SUCCESS;
        }
        Command::Signal(request) => return send_signal(&request),
        Command::Run(config) => config,
    };
    if let Err(e) = natrium::server::logging::init(&config) {
        let path = config
            .logfile
            .as_deref()
            .unwrap_or(std::path::Path::new("-"));
        eprintln!("natrium: cannot open log file {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    for w in &warnings {
        log::warn!("{w}");
    }
    raise_open_files_limit();
    let mut server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("{e}");
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

/// Logging for `-t`: stderr, whatever `logfile` says.
fn init_logging(config: &natrium::Config) {
    let stderr_only = natrium::Config {
        logfile: None,
        ..config.clone()
    };
    let _ = natrium::server::logging::init(&stderr_only);
}

/// `--signal CMD[=PID]`: sends the command's signal to the process (its
/// id given, or read from the pid file), as nats-server does.
fn send_signal(request: &config::SignalRequest) -> ExitCode {
    use config::{SignalKind, SignalTarget};
    use rustix::process::{Pid, Signal, kill_process};
    let pid = match &request.target {
        SignalTarget::Pid(p) => *p,
        SignalTarget::PidFile(path) => match std::fs::read_to_string(path) {
            Ok(text) => match text.trim().parse::<i32>() {
                Ok(p) if p > 0 => p,
                _ => {
                    eprintln!("natrium: pid file {} holds no process id", path.display());
                    return ExitCode::from(1);
                }
            },
            Err(e) => {
                eprintln!("natrium: cannot read pid file {}: {e}", path.display());
                return ExitCode::from(1);
            }
        },
    };
    let signal = match request.signal {
        SignalKind::Kill => Signal::KILL,
        SignalKind::Int => Signal::INT,
        SignalKind::Term => Signal::TERM,
        SignalKind::Hup => Signal::HUP,
        SignalKind::Usr1 => Signal::USR1,
        SignalKind::Usr2 => Signal::USR2,
    };
    let Some(target) = Pid::from_raw(pid) else {
        eprintln!("natrium: invalid pid {pid}");
        return ExitCode::from(1);
    };
    match kill_process(target, signal) {
        Ok(()) => {
            println!(
                "natrium: signal \"{}\" sent to process {pid}",
                request.command
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natrium: cannot signal process {pid}: {e}");
            ExitCode::from(1)
        }
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
