//! The command line: nats-server's flags (and natrium's own limits flags)
//! read into a [`Config`], after the configuration file given with `-c`.

use super::JetStreamOptions;
use super::keys::load_file;
use super::{
    Command, Config, ConfigError, SignalRequest, err, parse_duration_str, parse_http_port,
    parse_port, parse_size_str, set_monitor_port, validate,
};
use crate::tls::TlsOptions;
use std::path::PathBuf;
use std::time::Duration;

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
    -P, --pid <file>                 File to store the process id
        --ports_file_dir <dir>       Write <exe>_<pid>.ports with the listen URLs into dir
        --client_advertise <host:port> Client URL to advertise in INFO
        --no_advertise               Do not advertise known cluster URLs (no effect: natrium has no cluster)
    -t                               Test configuration and exit

Logging options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime[=bool]             Timestamp log entries (default: true)
        --logtime_utc                Timestamps in UTC (natrium always writes UTC)
        --log_size_limit <size>      Rotate the log file past this size (default: 0, never)
        --max_traced_msg_len <n>     Cut traced payloads to n bytes (default: 0, no limit)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (nats-server's traces the system account too; natrium has none)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace

Signals:
    -sl, --signal <cmd>[=<pid>]      Send signal to a natrium process (stop, quit, reload, reopen, ldm, term);
                                     pid is a number or a pid file; without it, the -P file

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
    "-P",
    "--pid",
    "--ports_file_dir",
    "-l",
    "--log",
    "--log_file",
    "--log_size_limit",
    "--max_traced_msg_len",
    "-sl",
    "--signal",
    "--client_advertise",
    "-sd",
    "--store_dir",
];

/// Flags that take no value (a boolean may be written `--flag=false`).
const BOOL_FLAGS: &[&str] = &[
    "-h",
    "--help",
    "-v",
    "--version",
    "-t",
    "-D",
    "--debug",
    "-V",
    "--trace",
    "-DV",
    "-VD",
    "-VV",
    "-DVV",
    "--tls",
    "--tlsverify",
    "-T",
    "--logtime",
    "--logtime_utc",
    "--no_advertise",
    "-js",
    "--jetstream",
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
        } else if BOOL_FLAGS.contains(&name.as_str()) {
            match inline.as_deref() {
                None | Some("true") => flags.push((name, None)),
                Some("false") => flags.push((name, Some("false".to_string()))),
                Some(_) => return err(format!("flag {name} takes no value (or =true, =false)")),
            }
        } else {
            return err(format!("unknown flag {name} (see --help)"));
        }
    }

    let mut warnings = Vec::new();
    let mut config = Config {
        args: args.clone(),
        ..Config::default()
    };
    let mut check_only = false;
    let mut signal: Option<String> = None;
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
    let mut store_dir = None;
    for (name, value) in &flags {
        let v = value.as_deref().unwrap_or_default();
        // A boolean flag written `--flag=false`.
        let on = v != "false";
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
            "-js" | "--jetstream" => {
                if on {
                    config
                        .jetstream
                        .get_or_insert_with(JetStreamOptions::default);
                } else {
                    config.jetstream = None;
                }
            }
            "-D" | "--debug" => config.debug = on,
            "-V" | "--trace" => config.trace = on,
            "-DV" | "-VD" => {
                config.debug = on;
                config.trace = on;
            }
            "-VV" => {
                config.trace = on;
                config.trace_verbose = on;
            }
            "-DVV" => {
                config.debug = on;
                config.trace = on;
                config.trace_verbose = on;
            }
            "-T" | "--logtime" => config.logtime = on,
            "--logtime_utc" => config.logtime_utc = on,
            "--no_advertise" => {}
            "-P" | "--pid" => config.pid_file = Some(PathBuf::from(v)),
            "--ports_file_dir" => config.ports_file_dir = Some(PathBuf::from(v)),
            "-l" | "--log" | "--log_file" => config.logfile = Some(PathBuf::from(v)),
            "--log_size_limit" => config.log_size_limit = parse_size_flag(name, v)? as u64,
            "--max_traced_msg_len" => config.max_traced_msg_len = parse_count(name, v)?,
            "--client_advertise" => config.client_advertise = Some(v.to_string()),
            "-sl" | "--signal" => signal = Some(v.to_string()),
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
            "--tls" if on => {
                config.tls.get_or_insert_with(TlsOptions::default);
            }
            "--tls" => config.tls = None,
            "--tlsverify" => config.tls.get_or_insert_with(TlsOptions::default).verify = on,
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
            "-sd" | "--store_dir" => store_dir = Some(PathBuf::from(v)),
            _ => return err(format!("unknown flag {name} (see --help)")),
        }
    }
    // `-sd` names the directory of JetStream (enabled by `-js` or the file).
    if let (Some(dir), Some(js)) = (store_dir, config.jetstream.as_mut()) {
        js.store_dir = dir;
    }
    if let Some(v) = signal {
        let request = SignalRequest::parse(&v, config.pid_file.as_deref())?;
        return Ok((Command::Signal(request), warnings));
    }
    config.auth.finish_cli().map_err(ConfigError)?;
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
