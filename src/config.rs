//! Server configuration: defaults equal to nats-server's, the command line,
//! and the options read from a configuration file (see [`crate::conf`] for
//! the file format itself).
//!
//! Precedence: defaults, then the file given with `-c`, then flags. This
//! module never logs; problems that should not stop the server (an unknown
//! key, say) are returned as warnings for `main` to log.

use crate::auth::{AuthConfig, NkeyUser, User};
use crate::conf::{self, Item, Map, Value};
use crate::permissions::{Permissions, ResponsePermission, SubjectPermission};
use crate::tls::{DEFAULT_HANDSHAKE_FIRST_FALLBACK, HandshakeFirst, TlsOptions};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default client port.
pub const DEFAULT_PORT: u16 = 4222;

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
    /// Log to this file instead of stderr (`logfile`).
    pub logfile: Option<PathBuf>,
    /// The command line this configuration came from: a reload parses it
    /// again, so that the file is re-read and flags still override it.
    pub args: Vec<String>,
    /// HTTP monitoring (`-m`, `http_port`, `http`): see [`MonitorConfig`].
    pub monitor: MonitorConfig,
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
            logfile: None,
            args: Vec::new(),
            monitor: MonitorConfig::default(),
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
    /// Print usage.
    Help,
    /// Print the version.
    Version,
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

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The usage text for `-h`.
pub const USAGE: &str = "\
Usage: natrium [options]

Server options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 picks a free port)
    -n, --name, --server_name <name> Server name (default: the server id)
    -c, --config <file>              Configuration file (nats-server format)
    -m, --http_port <port>           HTTP monitoring port (default: off; -1 picks a free port)
    -ms, --https_port <port>         HTTPS monitoring port (needs the TLS options)
    -t                               Test configuration and exit

Logging options:
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV, -VV, -DVV                   Debug and trace

Authorization options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

Limits (natrium flags; nats-server has these only as config keys):
        --max_payload <size>         Maximum message payload (default: 1MB)
        --max_control_line <size>    Maximum control line (default: 4KB)
        --max_pending <size>         Maximum pending outbound bytes per client (default: 64MB)
        --max_connections <n>        Maximum client connections (default: 65536)
        --max_subscriptions <n>      Maximum subscriptions per connection (default: 0, unlimited)
        --ping_interval <duration>   Interval between server PINGs (default: 2m)
        --ping_max <n>               Unanswered PINGs before closing (default: 2)
        --auth_timeout <duration>    Time to authenticate (default: 2s)
        --write_deadline <duration>  Time a stalled write may take (default: 10s)

TLS options:
        --tls                        Enable TLS, do not verify clients
        --tlscert <file>             Server certificate file (PEM)
        --tlskey <file>              Private key for the server certificate (PEM)
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Common options:
    -h, --help                       Show this message
    -v, --version                    Show version

Sizes accept suffixes (1MB, 64KB, 1k); durations accept 500ms, 10s, 2m, 1h (a bare number is seconds).
";

/// Flags that take a value, by every spelling.
const VALUE_FLAGS: &[&str] = &[
    "-a",
    "--addr",
    "--net",
    "-p",
    "--port",
    "-n",
    "--name",
    "--server_name",
    "-c",
    "--config",
    "-m",
    "--http_port",
    "-ms",
    "--https_port",
    "--user",
    "--pass",
    "--auth",
    "--max_payload",
    "--max_control_line",
    "--max_pending",
    "--max_connections",
    "--max_subscriptions",
    "--ping_interval",
    "--ping_max",
    "--auth_timeout",
    "--write_deadline",
    "--tlscert",
    "--tlskey",
    "--tlscacert",
];

/// Parses the command line (without the program name).
///
/// Returns the command and the warnings to log.
pub fn parse_args<I, S>(args: I) -> Result<(Command, Vec<String>), ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let raw = &args[i];
        i += 1;
        // `--flag=value`, and dashes and underscores alike in long names.
        let (name, inline) = match raw.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n.to_string(), Some(v.to_string())),
            _ => (raw.clone(), None),
        };
        let name = match name.strip_prefix("--") {
            Some(long) => format!("--{}", long.replace('-', "_")),
            None => name,
        };
        if !name.starts_with('-') {
            return err(format!("unexpected argument '{raw}' (see --help)"));
        }
        if VALUE_FLAGS.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let Some(v) = args.get(i) else {
                        return err(format!("flag {name} needs a value (see --help)"));
                    };
                    i += 1;
                    v.clone()
                }
            };
            flags.push((name, Some(value)));
        } else {
            if inline.is_some() {
                return err(format!("flag {name} takes no value"));
            }
            flags.push((name, None));
        }
    }

    let mut warnings = Vec::new();
    let mut config = Config {
        args: args.clone(),
        ..Config::default()
    };
    let mut check_only = false;
    // The file first, so that flags override it.
    if let Some((_, Some(path))) = flags
        .iter()
        .rev()
        .find(|(n, _)| n == "-c" || n == "--config")
    {
        let path = PathBuf::from(path);
        warnings.extend(load_file(&mut config, &path)?);
        config.config_file = Some(path);
    }
    for (name, value) in &flags {
        let v = value.as_deref().unwrap_or_default();
        match name.as_str() {
            "-h" | "--help" => return Ok((Command::Help, warnings)),
            "-v" | "--version" => return Ok((Command::Version, warnings)),
            "-t" => check_only = true,
            "-c" | "--config" => {}
            "-a" | "--addr" | "--net" => config.host = v.to_string(),
            "-p" | "--port" => config.port = parse_port(v)?,
            "-n" | "--name" | "--server_name" => config.server_name = Some(v.to_string()),
            "-m" | "--http_port" => {
                set_monitor_port(&mut config.monitor, false, parse_http_port(v)?)?;
            }
            "-ms" | "--https_port" => {
                set_monitor_port(&mut config.monitor, true, parse_http_port(v)?)?;
            }
            "-D" | "--debug" => config.debug = true,
            "-V" | "--trace" => config.trace = true,
            "-DV" | "-VD" => {
                config.debug = true;
                config.trace = true;
            }
            "-VV" | "-DVV" => {
                config.debug = true;
                config.trace = true;
            }
            "--user" => config.auth.cli_user = Some(v.to_string()),
            "--pass" => config.auth.cli_pass = Some(v.to_string()),
            "--auth" => config.auth.token = Some(v.to_string()),
            "--max_payload" => config.max_payload = parse_size_flag(name, v)?,
            "--max_control_line" => config.max_control_line = parse_size_flag(name, v)?,
            "--max_pending" => config.max_pending = parse_size_flag(name, v)?,
            "--max_connections" => config.max_connections = parse_count(name, v)?,
            "--max_subscriptions" => config.max_subscriptions = parse_count(name, v)?,
            "--ping_interval" => config.ping_interval = parse_duration_flag(name, v)?,
            "--ping_max" => config.ping_max = parse_count(name, v)? as u32,
            "--auth_timeout" => {
                config.auth.timeout = parse_duration_flag(name, v)?;
                config.auth.timeout_set = true;
            }
            "--tls" => {
                config.tls.get_or_insert_with(TlsOptions::default);
            }
            "--tlsverify" => config.tls.get_or_insert_with(TlsOptions::default).verify = true,
            "--tlscert" => {
                config.tls.get_or_insert_with(TlsOptions::default).cert_file = Some(v.into());
            }
            "--tlskey" => {
                config.tls.get_or_insert_with(TlsOptions::default).key_file = Some(v.into());
            }
            "--tlscacert" => {
                config.tls.get_or_insert_with(TlsOptions::default).ca_file = Some(v.into());
            }
            "--write_deadline" => config.write_deadline = parse_duration_flag(name, v)?,
            _ => return err(format!("unknown flag {name} (see --help)")),
        }
    }
    config.auth.finish_cli()?;
    finish_tls(&mut config);
    validate(&config)?;
    Ok((
        if check_only {
            Command::Check(config)
        } else {
            Command::Run(config)
        },
        warnings,
    ))
}

/// What TLS changes elsewhere, as in nats-server: the default auth timeout
/// becomes the TLS timeout plus one second, and `verify_and_map` makes the
/// certificate, not CONNECT, say who the client is.
fn finish_tls(config: &mut Config) {
    let Some(tls) = &config.tls else {
        config.auth.cert_map = false;
        return;
    };
    if !config.auth.timeout_set {
        config.auth.timeout = tls.timeout() + Duration::from_secs(1);
    }
    config.auth.cert_map = tls.verify_and_map;
}

/// The `tls { ... }` block.
fn tls_block(block: &Map, warnings: &mut Vec<String>) -> Result<TlsOptions, ConfigError> {
    let mut tls = TlsOptions::default();
    for entry in block.iter() {
        let value = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "cert_file" => tls.cert_file = Some(str_value(&entry.key, value)?.into()),
            "key_file" => tls.key_file = Some(str_value(&entry.key, value)?.into()),
            "ca_file" => tls.ca_file = Some(str_value(&entry.key, value)?.into()),
            "verify" => tls.verify = bool_value(&entry.key, value)?,
            "verify_and_map" => tls.verify_and_map = bool_value(&entry.key, value)?,
            "timeout" => {
                // Seconds, possibly fractional (`timeout: 0.5`), or a duration string.
                let d = match &value.value {
                    Value::Int(n) if *n > 0 => Duration::from_secs(*n as u64),
                    Value::Float(f) if *f > 0.0 && f.is_finite() => Duration::from_secs_f64(*f),
                    Value::Str(s) => parse_duration_str(s)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| at(value, "tls timeout must be a positive duration"))?,
                    _ => {
                        return Err(at(
                            value,
                            "tls timeout must be a positive number of seconds",
                        ));
                    }
                };
                tls.timeout = Some(d);
            }
            "connection_rate_limit" => {
                let n = int_value(&entry.key, value)?;
                tls.connection_rate_limit = n.max(0) as u64;
            }
            "handshake_first" | "first" | "immediate" => {
                tls.handshake_first = match &value.value {
                    Value::Bool(true) => HandshakeFirst::On,
                    Value::Bool(false) => HandshakeFirst::Off,
                    Value::Str(s) if s.eq_ignore_ascii_case("auto") => {
                        HandshakeFirst::Fallback(DEFAULT_HANDSHAKE_FIRST_FALLBACK)
                    }
                    Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                        "true" | "on" | "yes" => HandshakeFirst::On,
                        "false" | "off" | "no" => HandshakeFirst::Off,
                        _ => HandshakeFirst::Fallback(parse_duration_str(s).ok_or_else(|| {
                            at(
                                value,
                                "handshake_first must be true, false, \"auto\" or a duration",
                            )
                        })?),
                    },
                    _ => {
                        return Err(at(
                            value,
                            "handshake_first must be true, false, \"auto\" or a duration",
                        ));
                    }
                };
            }
            _ => warnings.push(format!(
                "{}:{}: tls option '{}' is not supported by natrium and is ignored",
                entry.key_pos.line, entry.key_pos.col, entry.key
            )),
        }
    }
    Ok(tls)
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
fn set_monitor_port(
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
fn parse_port(v: &str) -> Result<u16, ConfigError> {
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

fn parse_size_flag(name: &str, v: &str) -> Result<usize, ConfigError> {
    match parse_size_str(v) {
        Some(n) => Ok(n),
        None => err(format!(
            "invalid size '{v}' for {name} (e.g. 1048576, 1MB, 64KB)"
        )),
    }
}

fn parse_count(name: &str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) => Ok(n),
        Err(_) => err(format!("invalid number '{v}' for {name}")),
    }
}

fn parse_duration_flag(name: &str, v: &str) -> Result<Duration, ConfigError> {
    match parse_duration_str(v) {
        Some(d) => Ok(d),
        None => err(format!(
            "invalid duration '{v}' for {name} (e.g. 500ms, 10s, 2m)"
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
    conf::parse_duration(v)
}

/// Reads options from a configuration file into `config`.
/// Returns warnings (unknown keys, ignored options).
pub fn load_file(config: &mut Config, path: &std::path::Path) -> Result<Vec<String>, ConfigError> {
    let map = conf::parse_file(path).map_err(|e| ConfigError(e.to_string()))?;
    apply_map(config, &map)
}

/// Applies the top-level keys of a parsed configuration file.
pub fn apply_map(config: &mut Config, map: &Map) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for entry in map.iter() {
        let item = &entry.value;
        let key = entry.key.to_ascii_lowercase();
        match key.as_str() {
            "port" => {
                let p = int_value(&entry.key, item)?;
                config.port = parse_port(&p.to_string())?;
            }
            "host" | "net" => config.host = str_value(&entry.key, item)?,
            "listen" => {
                let listen = match &item.value {
                    Value::Int(p) => format!(":{p}"),
                    _ => str_value(&entry.key, item)?,
                };
                let (host, port) = match listen.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (listen.as_str(), None),
                };
                if !host.is_empty() {
                    config.host = host.trim_matches(|c| c == '[' || c == ']').to_string();
                }
                if let Some(p) = port {
                    config.port = parse_port(p).map_err(|e| at(item, &e.0))?;
                }
            }
            "server_name" => config.server_name = Some(str_value(&entry.key, item)?),
            "max_payload" => config.max_payload = size_value(&entry.key, item)?,
            "max_control_line" => config.max_control_line = size_value(&entry.key, item)?,
            "max_pending" => config.max_pending = size_value(&entry.key, item)?,
            "max_connections" | "max_conn" => {
                // nats-server: 0 written in a file rejects every client.
                let n = int_value(&entry.key, item)?;
                config.max_connections = if n <= 0 { 0 } else { n as usize };
            }
            "max_subscriptions" | "max_subs" => {
                let n = int_value(&entry.key, item)?;
                config.max_subscriptions = n.max(0) as usize;
            }
            "ping_interval" => config.ping_interval = duration_value(&entry.key, item)?,
            "ping_max" => {
                let n = int_value(&entry.key, item)?;
                config.ping_max = n.clamp(0, i64::from(u32::MAX)) as u32;
            }
            "write_deadline" => config.write_deadline = duration_value(&entry.key, item)?,
            "debug" => config.debug = bool_value(&entry.key, item)?,
            "trace" => config.trace = bool_value(&entry.key, item)?,
            "authorization" => {
                let Some(block) = item.value.as_map() else {
                    return Err(at(item, "authorization must be a block { ... }"));
                };
                warnings.extend(config.auth.apply_block(item, block)?);
            }
            "tls" => {
                let Some(block) = item.value.as_map() else {
                    return Err(at(item, "tls must be a block { ... }"));
                };
                config.tls = Some(tls_block(block, &mut warnings)?);
            }
            "no_auth_user" => config.auth.no_auth_user = Some(str_value(&entry.key, item)?),
            "logfile" | "log_file" => {
                config.logfile = Some(PathBuf::from(str_value(&entry.key, item)?));
            }
            "http_port" | "monitor_port" | "https_port" => {
                let p = int_value(&entry.key, item)?;
                let port = parse_http_port(&p.to_string()).map_err(|e| at(item, &e.0))?;
                set_monitor_port(&mut config.monitor, key == "https_port", port)
                    .map_err(|e| at(item, &e.0))?;
            }
            "http" => {
                let (host, port) = match &item.value {
                    Value::Int(p) => (None, p.to_string()),
                    _ => {
                        let v = str_value(&entry.key, item)?;
                        match v.rsplit_once(':') {
                            Some((h, p)) => (Some(h.to_string()), p.to_string()),
                            None => (None, v),
                        }
                    }
                };
                if let Some(h) = host.filter(|h| !h.is_empty()) {
                    config.monitor.http_host =
                        Some(h.trim_matches(|c| c == '[' || c == ']').to_string());
                }
                config.monitor.http_port = parse_http_port(&port).map_err(|e| at(item, &e.0))?;
            }
            "max_closed_clients" => {
                // nats-server: 0 (or less) means the default.
                let n = int_value(&entry.key, item)?;
                config.monitor.max_closed_clients = if n <= 0 {
                    MonitorConfig::default().max_closed_clients
                } else {
                    n as usize
                };
            }
            "logtime" | "pid_file" | "lame_duck_duration" | "lame_duck_grace_period" => warnings
                .push(format!(
                    "{}:{}: option '{}' is not supported by natrium and is ignored",
                    entry.key_pos.line, entry.key_pos.col, entry.key
                )),
            _ => warnings.push(format!(
                "{}:{}: unknown option '{}' ignored",
                entry.key_pos.line, entry.key_pos.col, entry.key
            )),
        }
    }
    validate(config)?;
    Ok(warnings)
}

/// An error message pointing at an item's position.
pub fn at(item: &Item, msg: &str) -> ConfigError {
    ConfigError(format!(
        "{}:{}:{}: {}",
        item.pos.file, item.pos.line, item.pos.col, msg
    ))
}

/// A string option.
pub fn str_value(key: &str, item: &Item) -> Result<String, ConfigError> {
    match &item.value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(at(
            item,
            &format!("'{key}' must be a string, not {}", other.type_name()),
        )),
    }
}

fn int_value(key: &str, item: &Item) -> Result<i64, ConfigError> {
    item.value
        .as_int()
        .ok_or_else(|| at(item, &format!("'{key}' must be a number")))
}

fn size_value(key: &str, item: &Item) -> Result<usize, ConfigError> {
    match item.value.as_int() {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(at(
            item,
            &format!("'{key}' must be a size such as 1048576 or 1MB"),
        )),
    }
}

fn bool_value(key: &str, item: &Item) -> Result<bool, ConfigError> {
    item.value
        .as_bool()
        .ok_or_else(|| at(item, &format!("'{key}' must be true or false")))
}

/// A duration option: a string like `"2m"`, or a number of seconds.
pub fn duration_value(key: &str, item: &Item) -> Result<Duration, ConfigError> {
    match &item.value {
        Value::Int(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        Value::Float(f) if *f >= 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(*f)),
        Value::Str(s) => parse_duration_str(s)
            .ok_or_else(|| at(item, &format!("'{key}': invalid duration '{s}'"))),
        _ => Err(at(
            item,
            &format!("'{key}' must be a duration such as \"2m\""),
        )),
    }
}

impl AuthConfig {
    /// Applies `authorization { ... }` (`item` is the block, for error positions).
    fn apply_block(&mut self, item: &Item, block: &Map) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        let mut users: Option<Vec<User>> = None;
        let mut nkeys: Vec<NkeyUser> = Vec::new();
        let mut defaults: Option<Arc<Permissions>> = None;
        for entry in block.iter() {
            let value = &entry.value;
            match entry.key.to_ascii_lowercase().as_str() {
                "user" | "username" => self.file_user = Some(str_value(&entry.key, value)?),
                "password" | "pass" => self.file_pass = Some(str_value(&entry.key, value)?),
                "token" => self.token = Some(str_value(&entry.key, value)?),
                "timeout" => {
                    self.timeout = duration_value(&entry.key, value)?;
                    self.timeout_set = true;
                }
                "users" => {
                    let (u, n) = parse_users(value, &mut warnings)?;
                    users = Some(u);
                    nkeys = n;
                }
                "default_permission" | "default_permissions" | "permissions" => {
                    defaults = Some(Arc::new(parse_permissions(value)?));
                }
                _ => warnings.push(format!(
                    "{}:{}: unknown authorization option '{}' ignored",
                    entry.key_pos.line, entry.key_pos.col, entry.key
                )),
            }
        }
        let single = self.file_user.is_some() || self.file_pass.is_some();
        if single && self.token.is_some() {
            return Err(at(item, "Cannot have a user/pass and token"));
        }
        if users.is_some() && self.file_user.is_some() {
            return Err(at(
                item,
                "Can not have a single user/pass and a users array",
            ));
        }
        if users.is_some() && self.token.is_some() {
            return Err(at(item, "Can not have a token and a users array"));
        }
        let mut users = users.unwrap_or_default();
        // default_permissions apply to listed users (and nkeys) without their own.
        if let Some(d) = &defaults {
            for u in &mut users {
                u.permissions.get_or_insert_with(|| Arc::clone(d));
            }
            for n in &mut nkeys {
                n.permissions.get_or_insert_with(|| Arc::clone(d));
            }
        }
        if let Some(name) = self.file_user.take() {
            users.push(User {
                name,
                password: self.file_pass.take(),
                permissions: None,
            });
        }
        self.file_pass = None;
        self.users = users;
        self.nkeys = nkeys;
        Ok(warnings)
    }
}

/// `users: [ {user: .., password: .., permissions: {..}}, {nkey: U.., ..} ]`.
fn parse_users(
    item: &Item,
    warnings: &mut Vec<String>,
) -> Result<(Vec<User>, Vec<NkeyUser>), ConfigError> {
    let Some(list) = item.value.as_array() else {
        return Err(at(item, "Expected users field to be an array"));
    };
    let mut users: Vec<User> = Vec::new();
    let mut nkeys: Vec<NkeyUser> = Vec::new();
    for u in list {
        let Some(m) = u.value.as_map() else {
            return Err(at(
                u,
                "each user must be a block { user: ..., password: ... } or { nkey: ... }",
            ));
        };
        let mut user = User::default();
        let mut nkey: Option<String> = None;
        let mut permissions = None;
        for e in m.iter() {
            match e.key.to_ascii_lowercase().as_str() {
                "user" | "username" => user.name = str_value(&e.key, &e.value)?,
                "password" | "pass" => user.password = Some(str_value(&e.key, &e.value)?),
                "nkey" => nkey = Some(str_value(&e.key, &e.value)?),
                "permission" | "permissions" | "authorization" => {
                    permissions = Some(Arc::new(parse_permissions(&e.value)?));
                }
                "allowed_connection_types" | "connection_types" | "clients" | "account" => warnings
                    .push(format!(
                        "{}:{}: user option '{}' is not supported by natrium and is ignored",
                        e.key_pos.line, e.key_pos.col, e.key
                    )),
                _ => warnings.push(format!(
                    "{}:{}: unknown user option '{}' ignored",
                    e.key_pos.line, e.key_pos.col, e.key
                )),
            }
        }
        match nkey {
            Some(key) => {
                if !user.name.is_empty() || user.password.is_some() {
                    return Err(at(u, "Nkey users do not take usernames or passwords"));
                }
                if !crate::auth::is_valid_user_nkey(&key) {
                    return Err(at(u, "Not a valid public nkey for a user"));
                }
                if nkeys.iter().any(|n| n.nkey == key) {
                    return Err(at(u, &format!("Duplicate nkey {key:?} detected")));
                }
                nkeys.push(NkeyUser {
                    nkey: key,
                    permissions,
                });
            }
            None => {
                if user.name.is_empty() {
                    return Err(at(u, "User entry requires a user"));
                }
                if users.iter().any(|x| x.name == user.name) {
                    return Err(at(u, &format!("Duplicate user {:?} detected", user.name)));
                }
                user.permissions = permissions;
                users.push(user);
            }
        }
    }
    Ok((users, nkeys))
}

/// `permissions { publish: .., subscribe: .., allow_responses: .. }`.
pub fn parse_permissions(item: &Item) -> Result<Permissions, ConfigError> {
    let Some(map) = item.value.as_map() else {
        return Err(at(
            item,
            &format!(
                "Expected permissions to be a map/struct, got {}",
                item.value.type_name()
            ),
        ));
    };
    let mut publish = None;
    let mut subscribe = None;
    let mut response = None;
    for e in map.iter() {
        match e.key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => publish = parse_subject_permission(&e.value)?,
            "sub" | "subscribe" | "export" => subscribe = parse_subject_permission(&e.value)?,
            "publish_allow_responses" | "allow_responses" => {
                response = parse_allow_responses(&e.value)?;
            }
            _ => {
                return Err(at(
                    &e.value,
                    &format!("Unknown field {:?} parsing permissions", e.key),
                ));
            }
        }
    }
    let permissions = Permissions::new(publish, subscribe, response);
    permissions.validate().map_err(|m| at(item, &m))?;
    Ok(permissions)
}

/// `publish`/`subscribe`: a subject, a list, or `{ allow: .., deny: .. }`.
fn parse_subject_permission(item: &Item) -> Result<Option<SubjectPermission>, ConfigError> {
    let Some(map) = item.value.as_map() else {
        return Ok(Some(SubjectPermission {
            allow: Some(parse_subjects(item)?),
            deny: Vec::new(),
        }));
    };
    if map.is_empty() {
        return Ok(None);
    }
    let mut p = SubjectPermission::default();
    for e in map.iter() {
        match e.key.to_ascii_lowercase().as_str() {
            "allow" => p.allow = Some(parse_subjects(&e.value)?),
            "deny" => p.deny = parse_subjects(&e.value)?,
            _ => {
                return Err(at(
                    &e.value,
                    &format!(
                        "Unknown field name {:?} parsing subject permissions, only 'allow' or 'deny' are permitted",
                        e.key
                    ),
                ));
            }
        }
    }
    Ok(Some(p))
}

/// A subject or a list of subjects.
fn parse_subjects(item: &Item) -> Result<Vec<String>, ConfigError> {
    match &item.value {
        Value::Str(s) => Ok(vec![s.clone()]),
        Value::Array(list) => list
            .iter()
            .map(|i| match &i.value {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(at(
                    i,
                    "Subject in permissions array cannot be cast to string",
                )),
            })
            .collect(),
        other => Err(at(
            item,
            &format!(
                "Expected subject permissions to be a subject, or array of subjects, got {}",
                other.type_name()
            ),
        )),
    }
}

/// `allow_responses: true` or `{ max: N, expires: "1m" }` (0 keeps the
/// default, a negative value means no limit).
fn parse_allow_responses(item: &Item) -> Result<Option<ResponsePermission>, ConfigError> {
    if let Some(b) = item.value.as_bool() {
        return Ok(b.then(ResponsePermission::default));
    }
    let Some(map) = item.value.as_map() else {
        return Err(at(
            item,
            "error parsing response permissions, expected a boolean or a map",
        ));
    };
    let mut rp = ResponsePermission::default();
    for e in map.iter() {
        match e.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                let n = int_value(&e.key, &e.value)?;
                if n < 0 {
                    rp.max = None;
                } else if n > 0 {
                    rp.max = Some(n as u64);
                }
            }
            "expires" | "expiration" | "ttl" => {
                let Some(text) = e.value.as_str() else {
                    return Err(at(&e.value, "error parsing expires, not a duration string"));
                };
                let text = text.trim();
                if let Some(neg) = text.strip_prefix('-') {
                    if parse_duration_str(neg).is_none() {
                        return Err(at(&e.value, &format!("error parsing expires: {text:?}")));
                    }
                    rp.expires = None;
                } else {
                    let d = parse_duration_str(text)
                        .ok_or_else(|| at(&e.value, &format!("error parsing expires: {text:?}")))?;
                    if !d.is_zero() {
                        rp.expires = Some(d);
                    }
                }
            }
            _ => {
                return Err(at(
                    &e.value,
                    &format!("Unknown field {:?} parsing permissions", e.key),
                ));
            }
        }
    }
    Ok(Some(rp))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = "listen: 127.0.0.1:5000\nmax_payload: 2KB\nping_interval: \"1s\"\nauthorization { user: a, password: b, timeout: 3 }\nbogus_key: 1\n";
        let map = conf::parse_str(text, "test.conf", None).unwrap();
        let mut c = Config::default();
        let warnings = apply_map(&mut c, &map).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 5000);
        assert_eq!(c.max_payload, 2048);
        assert_eq!(c.ping_interval, Duration::from_secs(1));
        assert_eq!(c.auth.timeout, Duration::from_secs(3));
        assert_eq!(c.auth.users.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("bogus_key") && warnings[0].starts_with("5:1"));
    }

    fn load(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let map =
            conf::parse_str(text, "test.conf", None).map_err(|e| ConfigError(e.to_string()))?;
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
            "tls {\n cert_file: \"c.pem\"\n key_file: k.pem\n ca_file: ca.pem\n verify: true\n timeout: 0.5\n handshake_first: \"300ms\"\n connection_rate_limit: 500\n pinned_certs: []\n}\n",
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
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("pinned_certs"));
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
    fn logfile_monitoring_and_unknown_user_options() {
        let (c, w) = load(
            "logfile: \"/tmp/natrium.log\"\npid_file: \"/tmp/x.pid\"\nauthorization { users: [ {user: a, password: b, account: X, colour: red} ] }\n",
        )
        .unwrap();
        assert_eq!(c.logfile, Some(PathBuf::from("/tmp/natrium.log")));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("2:1") && w[0].contains("pid_file"));
        assert!(w[1].contains("'account'") && w[2].contains("'colour'"));
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
}
