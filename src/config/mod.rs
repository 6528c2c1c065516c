//! Configuration: what the server is asked to be. Defaults equal to
//! nats-server's, the command line, and the keys of a nats-server
//! configuration file.
//!
//! - this module: [`Config`] and its defaults, checks across options, the
//!   size and duration syntax shared by flags and keys;
//! - [`cli`]: the command line;
//! - [`keys`]: what each configuration-file key means;
//! - [`syntax`]: the configuration file syntax itself (no meaning).
//!
//! Precedence: defaults, then the file given with `-c`, then flags. This
//! subsystem never logs and knows no loop or connection: it builds plain
//! values (including [`crate::auth`]'s and [`crate::tls`]'s option types)
//! for `main` and the server's reload to use. Problems that should not stop
//! the server are returned as warnings for the caller to log.

pub mod cli;
pub mod keys;
pub mod syntax;

pub use cli::{USAGE, parse_args};
pub use keys::{apply_map, load_file};

use crate::auth::AuthConfig;
use crate::tls::TlsOptions;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// When a stored message counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fdatasync before the PubAck (natrium's default; group commit makes
    /// it fast). `sync_interval: always`.
    Always,
    /// nats-server's lazy mode: written to the OS before the PubAck,
    /// synced every interval. Not durable against power loss.
    Interval(Duration),
}

/// The `jetstream` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// Where streams are kept (`store_dir`, `-sd`); nats-server's default
    /// is `<tmp>/nats/jetstream`. Streams live under
    /// `<store_dir>/jetstream/$G/streams/`.
    pub store_dir: PathBuf,
    /// `max_memory_store` in bytes, -1 for the default (75% of RAM).
    pub max_memory: i64,
    /// `max_file_store` in bytes, -1 for the default (1 TB).
    pub max_file: i64,
    /// `sync_interval`.
    pub sync: SyncPolicy,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        JetStreamOptions {
            store_dir: std::env::temp_dir().join("nats").join("jetstream"),
            max_memory: -1,
            max_file: -1,
            sync: SyncPolicy::Always,
        }
    }
}

/// Default client port.
pub const DEFAULT_PORT: u16 = 4222;
/// nats-server's `lame_duck_duration` default.
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// The shortest `lame_duck_duration` nats-server accepts.
pub const MIN_LAME_DUCK_DURATION: Duration = Duration::from_secs(30);
/// nats-server's `lame_duck_grace_period` default.
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bind address for clients.
    pub host: String,
    /// Client port; 0 asks the OS for a free port.
    pub port: u16,
    /// Name announced in INFO (defaults to the server id).
    pub server_name: Option<String>,
    /// Largest payload a client may publish (`max_payload`, 1 MiB).
    pub max_payload: usize,
    /// Longest argument part of a control line (`max_control_line`, 4096).
    pub max_control_line: usize,
    /// Outbound bytes a client may have pending before it is cut off as a
    /// slow consumer (`max_pending`, 64 MiB).
    pub max_pending: usize,
    /// Most simultaneous client connections (`max_connections`, 65536).
    pub max_connections: usize,
    /// Most subscriptions per connection; 0 means unlimited.
    pub max_subscriptions: usize,
    /// Interval between server PINGs (`ping_interval`, 2 minutes).
    pub ping_interval: Duration,
    /// Unanswered PINGs before a connection is stale (`ping_max`, 2).
    pub ping_max: u32,
    /// How long a client with pending output may go without the socket
    /// accepting any of it before it is closed (`write_deadline`, 10 s).
    pub write_deadline: Duration,
    /// Credentials and the auth timeout.
    pub auth: AuthConfig,
    /// TLS for client connections (`tls { ... }`, `--tls*`); `None` is plain.
    pub tls: Option<TlsOptions>,
    /// Debug logging (`-D`, `debug`).
    pub debug: bool,
    /// Protocol tracing (`-V`, `trace`).
    pub trace: bool,
    /// The file the configuration was read from, for reloads.
    pub config_file: Option<PathBuf>,
    /// Verbose tracing (`-VV`, `trace_verbose`). nats-server's also traces
    /// its system account; natrium has none, so it traces as `-V` does.
    pub trace_verbose: bool,
    /// Log to this file instead of stderr (`logfile`, `-l`).
    pub logfile: Option<PathBuf>,
    /// Timestamps on log lines (`logtime`, `-T`; on by default).
    pub logtime: bool,
    /// Timestamps in UTC (`logtime_utc`); natrium writes UTC either way.
    pub logtime_utc: bool,
    /// Rotate the log file when it would grow past this many bytes
    /// (`log_size_limit`, `--log_size_limit`); 0 never rotates.
    pub log_size_limit: u64,
    /// Write the process id to this file (`pid_file`, `-P`).
    pub pid_file: Option<PathBuf>,
    /// Write `<exe>_<pid>.ports` with the listen URLs into this directory
    /// (`ports_file_dir`, `--ports_file_dir`).
    pub ports_file_dir: Option<PathBuf>,
    /// Lame duck mode: clients are closed spread over this long
    /// (`lame_duck_duration`, 2 minutes; at least 30 s).
    pub lame_duck_duration: Duration,
    /// Lame duck mode: wait this long after announcing it before closing
    /// anyone (`lame_duck_grace_period`, 10 s).
    pub lame_duck_grace_period: Duration,
    /// Traced payloads and lines are cut to this many bytes
    /// (`max_traced_msg_len`); 0 is no limit.
    pub max_traced_msg_len: usize,
    /// `host[:port]` announced in INFO instead of the bind address
    /// (`client_advertise`, `--client_advertise`).
    pub client_advertise: Option<String>,
    /// The command line this configuration came from: a reload parses it
    /// again, so that the file is re-read and flags still override it.
    pub args: Vec<String>,
    /// HTTP monitoring (`-m`, `http_port`, `http`): see [`MonitorConfig`].
    pub monitor: MonitorConfig,
    /// Leaf-node links (`leafnodes { ... }`): see `crate::leaf::options`.
    pub leafnodes: crate::leaf::options::LeafOptions,
    /// JetStream, when enabled (`-js`, or a `jetstream` block).
    pub jetstream: Option<JetStreamOptions>,
}

/// Options of the HTTP monitoring endpoint (`src/monitor/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Bind address; `None` uses the client `host` (as nats-server does).
    pub http_host: Option<String>,
    /// Port; `None` (the default, or 0 written as nats-server does) means no
    /// monitoring, `Some(0)` asks the OS for a free port (`-m -1`).
    pub http_port: Option<u16>,
    /// How many closed connections `/connz?state=closed` remembers
    /// (`max_closed_clients`, 10000).
    pub max_closed_clients: usize,
    /// The monitoring port speaks HTTPS with the `tls` certificate
    /// (`https_port`, `-ms`) rather than HTTP.
    pub https: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            http_host: None,
            http_port: None,
            max_closed_clients: 10_000,
            https: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".to_string(),
            port: DEFAULT_PORT,
            server_name: None,
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_pending: 64 * 1024 * 1024,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            auth: AuthConfig::default(),
            tls: None,
            debug: false,
            trace: false,
            config_file: None,
            trace_verbose: false,
            logfile: None,
            logtime: true,
            logtime_utc: false,
            log_size_limit: 0,
            pid_file: None,
            ports_file_dir: None,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            max_traced_msg_len: 0,
            client_advertise: None,
            args: Vec::new(),
            monitor: MonitorConfig::default(),
            leafnodes: Default::default(),
            jetstream: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the server.
    Run(Config),
    /// Check the configuration and exit (`-t`).
    Check(Config),
    /// Send a signal to a running server and exit (`--signal`).
    Signal(SignalRequest),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// `--signal CMD[=PID]`: which signal, to which process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRequest {
    /// The command as given (`stop`, `quit`, `reload`, `reopen`, `ldm`, `term`).
    pub command: String,
    /// The Unix signal it sends.
    pub signal: SignalKind,
    /// Where the process id comes from.
    pub target: SignalTarget,
}

/// The signals `--signal` can send, as nats-server maps its commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// `stop`: SIGKILL.
    Kill,
    /// `quit`: SIGINT.
    Int,
    /// `term`: SIGTERM.
    Term,
    /// `reload`: SIGHUP.
    Hup,
    /// `reopen`: SIGUSR1.
    Usr1,
    /// `ldm`: SIGUSR2.
    Usr2,
}

/// The process `--signal` is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    /// A process id given on the command line (`ldm=1234`).
    Pid(i32),
    /// A pid file (`ldm=/run/natrium.pid`, or `-P`/`pid_file`).
    PidFile(PathBuf),
}

impl SignalRequest {
    /// Parses `CMD[=PID]` (PID a number or a pid file); `pid_file` is the
    /// `-P` file used when no PID is given.
    pub fn parse(
        v: &str,
        pid_file: Option<&std::path::Path>,
    ) -> Result<SignalRequest, ConfigError> {
        let (command, pid) = match v.split_once('=') {
            Some((c, p)) => (c, Some(p)),
            None => (v, None),
        };
        let signal = match command {
            "stop" => SignalKind::Kill,
            "quit" => SignalKind::Int,
            "term" => SignalKind::Term,
            "reload" => SignalKind::Hup,
            "reopen" => SignalKind::Usr1,
            "ldm" => SignalKind::Usr2,
            _ => return err(format!("unknown signal {command:?}")),
        };
        let target = match (pid, pid_file) {
            (Some(p), _) => match p.trim().parse::<i32>() {
                Ok(n) if n > 0 => SignalTarget::Pid(n),
                Ok(_) => return err(format!("invalid pid {p:?}")),
                Err(_) => SignalTarget::PidFile(PathBuf::from(p)),
            },
            (None, Some(f)) => SignalTarget::PidFile(f.to_path_buf()),
            (None, None) => {
                return err(format!(
                    "--signal {command} needs a process: {command}=PID, {command}=PIDFILE or -P PIDFILE"
                ));
            }
        };
        Ok(SignalRequest {
            command: command.to_string(),
            signal,
            target,
        })
    }
}

/// A configuration problem that stops the server (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// `client_advertise` as host and port: `host:port`, `[v6]:port` or just a
/// host (then the client port is announced).
pub fn advertise_host_port(adv: &str, port: u16) -> Result<(String, u16), ConfigError> {
    let adv = adv.trim();
    let (host, p) = match adv.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (adv, None),
    };
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let port = match p {
        None => port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return err(format!("client_advertise {adv:?}: invalid port {p:?}")),
        },
    };
    if host.is_empty() {
        return err(format!("client_advertise {adv:?}: no host"));
    }
    Ok((host.to_string(), port))
}

/// Checks a `lame_duck_duration`, as nats-server does (at least 30 s).
pub fn check_lame_duck_duration(d: Duration) -> Result<Duration, ConfigError> {
    if d < MIN_LAME_DUCK_DURATION {
        return err(format!(
            "invalid lame_duck_duration of {d:?}, minimum is 30 seconds"
        ));
    }
    Ok(d)
}

/// The log level for the `debug` and `trace` options.
pub fn log_level(debug: bool, trace: bool) -> log::LevelFilter {
    if trace {
        log::LevelFilter::Trace
    } else if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    }
}

/// Checks relations between options, as nats-server does at start-up.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    if config.max_payload == 0 {
        return err("max_payload must be greater than 0");
    }
    if config.max_payload > config.max_pending {
        return err(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            config.max_payload, config.max_pending
        ));
    }
    if config.max_control_line == 0 {
        return err("max_control_line must be greater than 0");
    }
    if config.ping_interval.is_zero() {
        return err("ping_interval must be greater than 0");
    }
    if config.ping_max == 0 {
        return err("ping_max must be greater than 0");
    }
    if config.monitor.https && config.monitor.http_port.is_some() && config.tls.is_none() {
        return err("TLS cert and key required for HTTPS (https_port needs the tls options)");
    }
    if let Some(adv) = &config.client_advertise {
        advertise_host_port(adv, 0)?;
    }
    if config.auth.timeout.is_zero() {
        return err("authorization timeout must be greater than 0");
    }
    if let Some(name) = &config.auth.no_auth_user
        && config.auth.no_auth_user_entry().is_none()
        && !config.auth.nkeys.iter().any(|n| &n.nkey == name)
    {
        return err(format!(
            "no_auth_user: \"{name}\" not present as user or nkey in authorization block or account configuration"
        ));
    }
    Ok(())
}

/// Sets the monitoring port, HTTP or HTTPS. natrium serves one monitoring
/// port: asking for both is an error (a port of `None`, "off", clears).
pub(crate) fn set_monitor_port(
    monitor: &mut MonitorConfig,
    https: bool,
    port: Option<u16>,
) -> Result<(), ConfigError> {
    if port.is_some() && monitor.http_port.is_some() && monitor.https != https {
        return err("natrium serves one monitoring port: set http_port or https_port, not both");
    }
    if port.is_some() || monitor.https == https {
        monitor.http_port = port;
        monitor.https = https && port.is_some();
    }
    Ok(())
}

/// `-p`: nats-server treats 0 as the default port and -1 as "any free port".
pub fn parse_port(v: &str) -> Result<u16, ConfigError> {
    match v.trim().parse::<i64>() {
        Ok(-1) => Ok(0),
        Ok(0) => Ok(DEFAULT_PORT),
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => err(format!(
            "invalid port '{v}': expected 1-65535, 0 (default) or -1 (random)"
        )),
    }
}

/// `-m`/`http_port`: as nats-server, 0 turns monitoring off and -1 asks
/// for any free port.
pub fn parse_http_port(v: &str) -> Result<Option<u16>, ConfigError> {
    match v.trim().parse::<i64>() {
        Ok(-1) => Ok(Some(0)),
        Ok(0) => Ok(None),
        Ok(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        _ => err(format!(
            "invalid http port '{v}': expected 1-65535, 0 (off) or -1 (random)"
        )),
    }
}

/// A size with an optional suffix, as the config format writes them:
/// `k/m/g` are powers of 1000, `kb/mb/gb` and `ki/mi/gi(b)` powers of 1024.
pub fn parse_size_str(v: &str) -> Option<usize> {
    let v = v.trim();
    let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, suffix) = v.split_at(digits_end);
    let n: usize = num.parse().ok()?;
    let mult: usize = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "m" => 1000 * 1000,
        "g" => 1000 * 1000 * 1000,
        "kb" | "ki" | "kib" => 1 << 10,
        "mb" | "mi" | "mib" => 1 << 20,
        "gb" | "gi" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A Go-style duration (`500ms`, `2m`, `1h30m`) or a bare number of seconds.
pub fn parse_duration_str(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    syntax::parse_duration(v)
}

#[cfg(test)]
mod tests {
    use super::cli::*;
    use super::keys::*;
    use super::*;
    use crate::auth::permissions::ResponsePermission;
    use crate::tls::{DEFAULT_HANDSHAKE_FIRST_FALLBACK, HandshakeFirst};

    fn run(args: &[&str]) -> Config {
        match parse_args(args.iter().copied()).unwrap().0 {
            Command::Run(c) => c,
            other => panic!("expected run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_nats_server() {
        let c = run(&[]);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.port, 4222);
        assert_eq!(c.max_payload, 1048576);
        assert_eq!(c.max_control_line, 4096);
        assert_eq!(c.max_pending, 64 * 1024 * 1024);
        assert_eq!(c.max_connections, 65536);
        assert_eq!(c.ping_interval, Duration::from_secs(120));
        assert_eq!(c.ping_max, 2);
        assert_eq!(c.auth.timeout, Duration::from_secs(2));
    }

    #[test]
    fn flags() {
        let c = run(&[
            "-a",
            "127.0.0.1",
            "--port=5222",
            "--user",
            "u",
            "--pass",
            "p",
            "-DV",
            "--max-payload",
            "64KB",
            "--ping_interval",
            "500ms",
        ]);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 5222);
        assert_eq!(c.max_payload, 65536);
        assert_eq!(c.ping_interval, Duration::from_millis(500));
        assert!(c.debug && c.trace);
        assert_eq!(c.auth.users.len(), 1);
        assert_eq!(run(&["-p", "-1"]).port, 0);
        assert_eq!(run(&["-p", "0"]).port, 4222);
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            &["--bogus"][..],
            &["-p"],
            &["-p", "70000"],
            &["-p", "x"],
            &["--max_payload", "lots"],
            &["--ping_interval", "soon"],
            &["--user", "u"],
            &["--max_payload", "2MB", "--max_pending", "1MB"],
            &["stray"],
        ] {
            assert!(parse_args(bad.iter().copied()).is_err(), "{bad:?}");
        }
        assert!(matches!(parse_args(["-h"]).unwrap().0, Command::Help));
        assert!(matches!(
            parse_args(["--version"]).unwrap().0,
            Command::Version
        ));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size_str("1MB"), Some(1 << 20));
        assert_eq!(parse_size_str("1k"), Some(1000));
        assert_eq!(parse_size_str("64kb"), Some(65536));
        assert_eq!(parse_size_str("12"), Some(12));
        assert_eq!(parse_size_str("x"), None);
        assert_eq!(parse_duration_str("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration_str("3"), Some(Duration::from_secs(3)));
    }

    #[test]
    fn file_options_and_precedence() {
        let text = "listen: 127.0.0.1:5000\nmax_payload: 2KB\nping_interval: \"1s\"\nauthorization { user: a, password: b, timeout: 3 }\nwrite_deadline: 5\n";
        let map = syntax::parse_str(text, "test.conf", None).unwrap();
        let mut c = Config::default();
        let warnings = apply_map(&mut c, &map).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 5000);
        assert_eq!(c.max_payload, 2048);
        assert_eq!(c.ping_interval, Duration::from_secs(1));
        assert_eq!(c.auth.timeout, Duration::from_secs(3));
        assert_eq!(c.auth.users.len(), 1);
        assert_eq!(c.write_deadline, Duration::from_secs(5));
        assert_eq!(
            warnings,
            ["test.conf:5:17: write_deadline should be converted to a duration"]
        );
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        for (text, want) in [
            (
                "max_paylod: 1",
                "test.conf:1:1: unknown field \"max_paylod\"",
            ),
            (
                "port: 1\nauthorization {\n  usres: [ {user: a, password: b} ]\n}",
                "test.conf:3:3: unknown field \"usres\"",
            ),
            (
                "authorization { users: [ {user: a, password: b, shoe_size: 9} ] }",
                "test.conf:1:49: unknown field \"shoe_size\"",
            ),
            (
                "tls { cert_fil: x }",
                "test.conf:1:7: unknown field \"cert_fil\"",
            ),
        ] {
            assert_eq!(load_err(text), want, "{text}");
        }
    }

    #[test]
    fn unimplemented_nats_server_keys_are_errors_naming_the_feature() {
        for key in [
            "accounts { APP: { users: [ {user: a, password: b} ] } }",
            "operator: \"op.jwt\"",
            "resolver: MEMORY",
            "resolver_preload { A: x }",
            "system_account: SYS",
            "cluster { port: 6222 }",
            "gateway { name: x }",
            "websocket { port: 8080 }",
            "mqtt { port: 1883 }",
        ] {
            let name = key.split([' ', ':']).next().unwrap();
            let e = load_err(key);
            assert_eq!(
                e,
                format!("test.conf:1:1: '{name}' is not supported by natrium"),
                "{key}"
            );
        }
        let e = load_err("tls { pinned_certs: [] }");
        assert!(
            e.ends_with("tls option 'pinned_certs' is not supported by natrium"),
            "{e}"
        );
        let e = load_err("authorization { users: [ {user: a, password: b, account: X} ] }");
        assert!(
            e.ends_with("user option 'account' is not supported by natrium"),
            "{e}"
        );
        let e = load_err("authorization { auth_callout { issuer: x } }");
        assert!(e.contains("'auth_callout' is not supported"), "{e}");
    }

    #[test]
    fn variables_are_not_unknown_keys() {
        let (c, w) =
            load("TOKEN: abc\nPORT: 4333\nport: $PORT\nauthorization { token: $TOKEN }\n").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.port, 4333);
        assert_eq!(c.auth.token.as_deref(), Some("abc"));
        assert!(load_err("TOKEN: abc\n").contains("unknown field \"TOKEN\""));
    }

    #[test]
    fn unquoted_durations_warn_as_nats_server_does() {
        let (c, w) = load("ping_interval: 2m\n").unwrap();
        // The format reads 2m as 2000000: nats-server takes it as seconds and warns.
        assert_eq!(c.ping_interval, Duration::from_secs(2_000_000));
        assert_eq!(
            w,
            ["test.conf:1:16: ping_interval should be converted to a duration"]
        );
        let (c, w) = load("ping_interval: \"2m\"\n").unwrap();
        assert_eq!(c.ping_interval, Duration::from_secs(120));
        assert!(w.is_empty());
    }

    fn load(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let map =
            syntax::parse_str(text, "test.conf", None).map_err(|e| ConfigError(e.to_string()))?;
        let mut c = Config::default();
        let w = apply_map(&mut c, &map)?;
        Ok((c, w))
    }

    fn load_err(text: &str) -> String {
        match load(text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.0,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn users_with_permissions_and_defaults() {
        let (c, w) = load(
            r#"
authorization {
  default_permissions = {
    publish = "public.>"
    subscribe = ["public.>", "_INBOX.>"]
  }
  users = [
    { user: sensor, password: "$2a$11$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWX",
      permissions: {
        publish: { allow: ["telemetry.>"], deny: ["telemetry.admin.*"] }
        subscribe: { allow: ["cmd.sensor.*", "jobs.* workers"], deny: "cmd.sensor.admin" }
        allow_responses: true
      } }
    { user: guest, pass: g }
    { user: svc, password: s, permissions: { allow_responses: { max: 3, expires: "1m" } } }
  ]
}
no_auth_user: guest
"#,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let a = &c.auth;
        assert_eq!(a.users.len(), 3);
        assert_eq!(a.no_auth_user.as_deref(), Some("guest"));
        let sensor = a.users[0].permissions.as_deref().unwrap();
        let publish = sensor.publish.as_ref().unwrap();
        assert_eq!(publish.allow, Some(strings(&["telemetry.>"])));
        assert_eq!(publish.deny, strings(&["telemetry.admin.*"]));
        let subscribe = sensor.subscribe.as_ref().unwrap();
        assert_eq!(
            subscribe.allow,
            Some(strings(&["cmd.sensor.*", "jobs.* workers"]))
        );
        assert_eq!(subscribe.deny, strings(&["cmd.sensor.admin"]));
        assert_eq!(sensor.response, Some(ResponsePermission::default()));
        // The guest has no permissions of its own: the defaults.
        let guest = a.users[1].permissions.as_deref().unwrap();
        assert_eq!(
            guest.publish.as_ref().unwrap().allow,
            Some(strings(&["public.>"]))
        );
        assert_eq!(
            guest.subscribe.as_ref().unwrap().allow,
            Some(strings(&["public.>", "_INBOX.>"]))
        );
        // allow_responses alone: publish becomes "replies only".
        let svc = a.users[2].permissions.as_deref().unwrap();
        assert_eq!(
            svc.response,
            Some(ResponsePermission {
                max: Some(3),
                expires: Some(Duration::from_secs(60))
            })
        );
        assert_eq!(svc.publish.as_ref().unwrap().allow, Some(Vec::new()));
        assert!(svc.restricts_publish());
    }

    #[test]
    fn allow_responses_forms() {
        let resp = |v: &str| {
            let (c, _) = load(&format!(
                "authorization {{ users: [ {{user: u, password: p, permissions: {{ allow_responses: {v} }} }} ] }}"
            ))
            .unwrap();
            c.auth.users[0].permissions.as_ref().unwrap().response
        };
        assert_eq!(resp("true"), Some(ResponsePermission::default()));
        assert_eq!(resp("false"), None);
        assert_eq!(
            resp("{max: -1, expires: \"-1s\"}"),
            Some(ResponsePermission {
                max: None,
                expires: None
            })
        );
        assert_eq!(
            resp("{max: 0, ttl: \"0s\"}"),
            Some(ResponsePermission::default())
        );
        assert_eq!(
            resp("{max_responses: 5}"),
            Some(ResponsePermission {
                max: Some(5),
                ..Default::default()
            })
        );
    }

    #[test]
    fn nkey_users() {
        let public = nkeys::KeyPair::new_user().public_key();
        let (c, _) = load(&format!(
            "authorization {{ default_permissions: {{ publish: \"x\" }}, users: [ {{ nkey: {public} }}, {{ user: a, password: b }} ] }}"
        ))
        .unwrap();
        assert_eq!(c.auth.nkeys.len(), 1);
        assert_eq!(c.auth.nkeys[0].nkey, public);
        assert!(c.auth.nkeys[0].permissions.is_some());
        assert!(c.auth.needs_nonce());
        assert_eq!(c.auth.users.len(), 1);
        let account = nkeys::KeyPair::new_account().public_key();
        assert!(
            load_err(&format!(
                "authorization {{ users: [ {{ nkey: {account} }} ] }}"
            ))
            .contains("Not a valid public nkey for a user")
        );
        assert!(
            load_err(&format!(
                "authorization {{ users: [ {{ nkey: {public}, password: x }} ] }}"
            ))
            .contains("Nkey users do not take usernames or passwords")
        );
        assert!(
            load_err(&format!(
                "authorization {{ users: [ {{ nkey: {public} }}, {{ nkey: {public} }} ] }}"
            ))
            .contains("Duplicate nkey")
        );
    }

    #[test]
    fn authorization_errors_have_positions() {
        let cases = [
            (
                "authorization { user: a, token: t }",
                "Cannot have a user/pass and token",
            ),
            (
                "authorization { user: a, password: b, users: [{user: c}] }",
                "Can not have a single user/pass and a users array",
            ),
            (
                "authorization { token: t, users: [{user: c}] }",
                "Can not have a token and a users array",
            ),
            (
                "authorization { users: [{user: c}, {user: c}] }",
                "Duplicate user \"c\" detected",
            ),
            (
                "authorization { users: [{password: c}] }",
                "User entry requires a user",
            ),
            (
                "authorization { users: [{user: c, permissions: {publsh: x}}] }",
                "Unknown field \"publsh\" parsing permissions",
            ),
            (
                "authorization { users: [{user: c, permissions: {publish: {allow: x, block: y}}}] }",
                "only 'allow' or 'deny' are permitted",
            ),
            (
                "authorization { users: [{user: c, permissions: {subscribe: \"a..b\"}}] }",
                "subject \"a..b\" is not a valid subject",
            ),
            (
                "authorization { users: [{user: c, permissions: {allow_responses: 3}}] }",
                "expected a boolean or a map",
            ),
            (
                "authorization { users: [{user: c, permissions: \"x\"}] }",
                "Expected permissions to be a map/struct",
            ),
            (
                "authorization { users: [{user: c}] }\nno_auth_user: nobody",
                "no_auth_user: \"nobody\" not present",
            ),
        ];
        for (text, want) in cases {
            let e = load_err(text);
            assert!(e.contains(want), "{text}: {e}");
            if !want.starts_with("no_auth_user") {
                assert!(e.starts_with("test.conf:1:"), "{text}: {e}");
            }
        }
    }

    #[test]
    fn short_forms_and_empty_sections() {
        let (c, _) = load(
            "authorization { users: [ {user: a, password: b, permissions: { pub: [\"a\", \"b.*\"], sub: {} } } ] }",
        )
        .unwrap();
        let p = c.auth.users[0].permissions.as_deref().unwrap();
        assert_eq!(
            p.publish.as_ref().unwrap().allow,
            Some(strings(&["a", "b.*"]))
        );
        assert_eq!(p.subscribe, None);
    }

    #[test]
    fn tls_block_keys() {
        let (c, w) = load(
            "tls {\n cert_file: \"c.pem\"\n key_file: k.pem\n ca_file: ca.pem\n verify: true\n timeout: 0.5\n handshake_first: \"300ms\"\n connection_rate_limit: 500\n}\n",
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert_file, Some(PathBuf::from("c.pem")));
        assert_eq!(tls.key_file, Some(PathBuf::from("k.pem")));
        assert_eq!(tls.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(tls.verify && !tls.verify_and_map);
        assert_eq!(tls.connection_rate_limit, 500);
        assert_eq!(tls.timeout(), Duration::from_millis(500));
        assert_eq!(
            tls.handshake_first,
            HandshakeFirst::Fallback(Duration::from_millis(300))
        );
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = load("tls { handshake_first: true, timeout: \"3s\" }").unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.handshake_first, HandshakeFirst::On);
        assert_eq!(tls.timeout(), Duration::from_secs(3));
        let (c, _) = load("tls { handshake_first: auto }").unwrap();
        assert_eq!(
            c.tls.unwrap().handshake_first,
            HandshakeFirst::Fallback(DEFAULT_HANDSHAKE_FIRST_FALLBACK)
        );
        assert!(load("tls { timeout: -1 }").is_err());
        assert!(load("tls { handshake_first: sometimes }").is_err());
        assert!(load("tls: true").is_err());
    }

    #[test]
    fn tls_raises_the_default_auth_timeout_as_nats_server_does() {
        let parse = |args: &[&str]| match parse_args(args.iter().copied()).unwrap().0 {
            Command::Run(c) => c,
            other => panic!("{other:?}"),
        };
        let c = parse(&["--tls", "--tlscert", "c.pem", "--tlskey", "k.pem"]);
        assert_eq!(c.auth.timeout, Duration::from_secs(3));
        assert!(!c.tls.as_ref().unwrap().verify);
        let c = parse(&[
            "--tlsverify",
            "--auth_timeout",
            "1s",
            "--tlscacert",
            "ca.pem",
        ]);
        assert_eq!(c.auth.timeout, Duration::from_secs(1));
        let tls = c.tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca_file, Some(PathBuf::from("ca.pem")));
        let c = parse(&[]);
        assert!(c.tls.is_none());
        assert_eq!(c.auth.timeout, Duration::from_secs(2));
    }

    #[test]
    fn logfile() {
        let (c, w) = load("logfile: \"/tmp/natrium.log\"\n").unwrap();
        assert_eq!(c.logfile, Some(PathBuf::from("/tmp/natrium.log")));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn operations_flags_and_keys() {
        let c = run(&[
            "-P",
            "/tmp/n.pid",
            "--ports_file_dir",
            "/tmp",
            "-l",
            "/tmp/n.log",
            "--logtime=false",
            "--log_size_limit",
            "10MB",
            "--max_traced_msg_len",
            "64",
            "-VV",
        ]);
        assert_eq!(c.pid_file, Some(PathBuf::from("/tmp/n.pid")));
        assert_eq!(c.ports_file_dir, Some(PathBuf::from("/tmp")));
        assert_eq!(c.logfile, Some(PathBuf::from("/tmp/n.log")));
        assert!(!c.logtime && c.trace && c.trace_verbose && !c.debug);
        assert_eq!(c.log_size_limit, 10 << 20);
        assert_eq!(c.max_traced_msg_len, 64);
        assert!(run(&[]).logtime);
        assert!(parse_args(["--logtime=maybe"]).is_err());
        let (c, w) = load(
            "pid_file: \"/run/n.pid\"\nports_file_dir: /tmp\nlogtime: false\nlog_size_limit: 1MB\nlame_duck_duration: \"45s\"\nlame_duck_grace_period: \"1s\"\nmax_traced_msg_len: 10\nclient_advertise: \"a.example:4333\"\ntrace_verbose: true\n",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.pid_file, Some(PathBuf::from("/run/n.pid")));
        assert_eq!(c.lame_duck_duration, Duration::from_secs(45));
        assert_eq!(c.lame_duck_grace_period, Duration::from_secs(1));
        assert_eq!(c.client_advertise.as_deref(), Some("a.example:4333"));
        assert!(c.trace && c.trace_verbose && !c.logtime);
        assert_eq!(c.log_size_limit, 1 << 20);
        let d = Config::default();
        assert_eq!(d.lame_duck_duration, Duration::from_secs(120));
        assert_eq!(d.lame_duck_grace_period, Duration::from_secs(10));
        assert!(load_err("lame_duck_duration: \"29s\"").contains("minimum is 30 seconds"));
        assert!(load_err("lame_duck_duration: 60").contains("error parsing lame_duck_duration"));
        assert!(load_err("lame_duck_grace_period: \"-1s\"").contains("needs to be positive"));
        assert!(load_err("client_advertise: \"h:x\"").contains("invalid port"));
    }

    #[test]
    fn signal_requests() {
        let req = |args: &[&str]| match parse_args(args.iter().copied()).unwrap().0 {
            Command::Signal(r) => r,
            other => panic!("{other:?}"),
        };
        let r = req(&["--signal", "ldm=42"]);
        assert_eq!(
            (r.signal, r.target),
            (SignalKind::Usr2, SignalTarget::Pid(42))
        );
        let r = req(&["-sl", "reload", "-P", "/run/n.pid"]);
        assert_eq!(r.signal, SignalKind::Hup);
        assert_eq!(r.target, SignalTarget::PidFile(PathBuf::from("/run/n.pid")));
        let r = req(&["--signal", "stop=/run/x.pid"]);
        assert_eq!(r.signal, SignalKind::Kill);
        assert_eq!(r.target, SignalTarget::PidFile(PathBuf::from("/run/x.pid")));
        for (cmd, kind) in [
            ("quit=1", SignalKind::Int),
            ("term=1", SignalKind::Term),
            ("reopen=1", SignalKind::Usr1),
        ] {
            assert_eq!(req(&["--signal", cmd]).signal, kind);
        }
        assert!(parse_args(["--signal", "ldm"]).is_err());
        assert!(parse_args(["--signal", "nap=1"]).is_err());
        assert!(parse_args(["--signal", "ldm=0"]).is_err());
    }

    #[test]
    fn monitoring_options() {
        assert_eq!(run(&[]).monitor, MonitorConfig::default());
        assert_eq!(run(&["-m", "8222"]).monitor.http_port, Some(8222));
        assert_eq!(run(&["--http_port", "-1"]).monitor.http_port, Some(0));
        assert_eq!(run(&["-m", "0"]).monitor.http_port, None);
        let https = run(&["--tls", "--tlscert", "c", "--tlskey", "k", "-ms", "8443"]).monitor;
        assert_eq!((https.http_port, https.https), (Some(8443), true));
        assert!(parse_args(["-ms", "8443"]).is_err(), "HTTPS needs TLS");
        assert!(
            parse_args(["-m", "8222", "-ms", "8443"]).is_err(),
            "one port"
        );
        assert!(parse_args(["-m", "x"]).is_err());
        let (c, w) = load("http_port: 8222\nmax_closed_clients: 5\n").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.monitor.http_port, Some(8222));
        assert_eq!(c.monitor.http_host, None);
        assert_eq!(c.monitor.max_closed_clients, 5);
        let (c, _) = load("http: \"127.0.0.1:9000\"\nmax_closed_clients: 0").unwrap();
        assert_eq!(c.monitor.http_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.monitor.http_port, Some(9000));
        assert_eq!(c.monitor.max_closed_clients, 10_000);
        let (c, _) = load("http: 8333").unwrap();
        assert_eq!(
            (c.monitor.http_host, c.monitor.http_port),
            (None, Some(8333))
        );
        assert!(load_err("http_port: 70000").contains("invalid http port"));
    }

    #[test]
    fn flags_override_the_file_and_are_kept_for_reloads() {
        let path =
            std::env::temp_dir().join(format!("natrium-config-unit-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            "port: 5000\nmax_payload: 2KB\nauthorization { users: [ {user: a, password: b} ] }\n",
        )
        .unwrap();
        let args = [
            "-c",
            path.to_str().unwrap(),
            "-p",
            "6000",
            "--user",
            "x",
            "--pass",
            "y",
        ];
        let c = run(&args);
        let _ = std::fs::remove_file(&path);
        assert_eq!(c.port, 6000);
        assert_eq!(c.max_payload, 2048);
        assert_eq!(c.auth.users.len(), 1);
        assert_eq!(c.auth.users[0].name, "x");
        assert_eq!(c.args, strings(&args));
    }

    #[test]
    fn leafnodes_block() {
        let (c, w) = load(
            r#"
leafnodes {
  listen: "127.0.0.1:7500"
  authorization { users: [ { user: a, password: b }, { user: c, password: d, account: "$G" } ] }
  reconnect: "250ms"
  remotes: [
    { url: "nats-leaf://u:p@hub:7422", deny_imports: ["private.>"], deny_exports: "secret.>" }
    { urls: ["nats://h1:1", "nats://h2:2"], compression: off, hub: false }
  ]
}
"#,
        )
        .unwrap();
        let l = &c.leafnodes;
        assert_eq!((l.host.as_deref(), l.port), (Some("127.0.0.1"), Some(7500)));
        assert_eq!(l.authorization.as_ref().unwrap().users.len(), 2);
        assert_eq!(l.reconnect, Some(std::time::Duration::from_millis(250)));
        assert_eq!(l.remotes.len(), 2);
        assert_eq!(l.remotes[0].urls[0].user.as_deref(), Some("u"));
        assert_eq!(l.remotes[0].deny_imports, vec!["private.>".to_string()]);
        assert_eq!(l.remotes[0].deny_exports, vec!["secret.>".to_string()]);
        assert_eq!(l.remotes[1].urls.len(), 2);
        assert_eq!(w.len(), 2, "compression and hub are noted: {w:?}");
        assert!(
            load_err("leafnodes { remotes: [ { url: \"h:1\", account: B } ] }")
                .contains("accounts are not supported")
        );
        assert!(load_err("leafnodes { bogus: 1 }").contains("unknown leafnodes option"));
        assert!(load_err(
            "leafnodes { authorization { user: a, password: \"$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG\" } }"
        )
        .contains("bcrypt"));
        assert!(load_err("leafnodes { remotes: [ { deny_imports: x } ] }").contains("needs a url"));
        assert!(load_err("leafnodes { remotes: [ { url: \"ws://h\" } ] }").contains("scheme"));
    }
}
