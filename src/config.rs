//! Server configuration: defaults equal to nats-server's, the command line,
//! and the options read from a configuration file (see [`crate::conf`] for
//! the file format itself).
//!
//! Precedence: defaults, then the file given with `-c`, then flags. This
//! module never logs; problems that should not stop the server (an unknown
//! key, say) are returned as warnings for `main` to log.

use crate::auth::{AuthConfig, User};
use crate::conf::{self, Item, Map, Value};
use std::fmt;
use std::path::PathBuf;
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
    /// Debug logging (`-D`, `debug`).
    pub debug: bool,
    /// Protocol tracing (`-V`, `trace`).
    pub trace: bool,
    /// The file the configuration was read from, for reloads.
    pub config_file: Option<PathBuf>,
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
            debug: false,
            trace: false,
            config_file: None,
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
    let mut config = Config::default();
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
            "--auth_timeout" => config.auth.timeout = parse_duration_flag(name, v)?,
            "--write_deadline" => config.write_deadline = parse_duration_flag(name, v)?,
            _ => return err(format!("unknown flag {name} (see --help)")),
        }
    }
    config.auth.finish_cli()?;
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
    if config.auth.timeout.is_zero() {
        return err("authorization timeout must be greater than 0");
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
                warnings.extend(config.auth.apply_block(block)?);
            }
            "http_port"
            | "http"
            | "https_port"
            | "logfile"
            | "log_file"
            | "logtime"
            | "pid_file"
            | "lame_duck_duration"
            | "lame_duck_grace_period"
            | "max_closed_clients" => warnings.push(format!(
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
    /// Applies `authorization { ... }`.
    fn apply_block(&mut self, block: &Map) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for entry in block.iter() {
            let item = &entry.value;
            match entry.key.to_ascii_lowercase().as_str() {
                "user" | "username" => self.file_user = Some(str_value(&entry.key, item)?),
                "password" | "pass" => self.file_pass = Some(str_value(&entry.key, item)?),
                "token" => self.token = Some(str_value(&entry.key, item)?),
                "timeout" => self.timeout = duration_value(&entry.key, item)?,
                "users" => {
                    let Some(list) = item.value.as_array() else {
                        return Err(at(item, "'users' must be a list [ ... ]"));
                    };
                    for u in list {
                        let Some(m) = u.value.as_map() else {
                            return Err(at(
                                u,
                                "each user must be a block { user: ..., password: ... }",
                            ));
                        };
                        let mut user = User::default();
                        for e in m.iter() {
                            match e.key.to_ascii_lowercase().as_str() {
                                "user" | "username" => user.name = str_value(&e.key, &e.value)?,
                                "password" | "pass" => {
                                    user.password = Some(str_value(&e.key, &e.value)?)
                                }
                                _ => warnings.push(format!(
                                    "{}:{}: user option '{}' is not supported yet and is ignored",
                                    e.key_pos.line, e.key_pos.col, e.key
                                )),
                            }
                        }
                        if user.name.is_empty() {
                            return Err(at(u, "a user needs a 'user' name"));
                        }
                        self.users.push(user);
                    }
                }
                _ => warnings.push(format!(
                    "{}:{}: unknown authorization option '{}' ignored",
                    entry.key_pos.line, entry.key_pos.col, entry.key
                )),
            }
        }
        if let (Some(u), p) = (self.file_user.take(), self.file_pass.take()) {
            self.users.push(User {
                name: u,
                password: p,
            });
        }
        Ok(warnings)
    }
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
}
