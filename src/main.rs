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
            init_logging(config.debug, config.trace);
            for w in &warnings {
                log::warn!("{w}");
            }
            println!("natrium: configuration is valid");
            return ExitCode::SUCCESS;
        }
        Command::Run(config) => config,
    };
    init_logging(config.debug, config.trace);
    for w in &warnings {
        log::warn!("{w}");
    }
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

/// Info by default, debug with `-D`, trace with `-V`; `RUST_LOG` wins when set.
fn init_logging(debug: bool, trace: bool) {
    let level = if trace {
        "trace"
    } else if debug {
        "debug"
    } else {
        "info"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .init();
}
