//! Configuration-file keys: what each key of a nats-server configuration
//! file means for natrium (the syntax itself is [`super::syntax`]).
//!
//! natrium fails closed: a key it does not know is an error
//! (`unknown field "x"`, as nats-server says), and so is a key nats-server
//! knows but natrium does not implement (`'accounts' is not supported by
//! natrium`). A configuration that asked for something natrium cannot do
//! never starts a server that does less (an open one, say). Entries that
//! only define a variable used elsewhere (`$NAME`) are not options.

use super::syntax;
use super::syntax::{Entry, Item, Map, Value};
use super::{
    Config, ConfigError, JetStreamOptions, MonitorConfig, SyncPolicy, check_lame_duck_duration,
    parse_duration_str, parse_http_port, parse_port, set_monitor_port, validate,
};
use crate::auth::permissions::{Permissions, ResponsePermission, SubjectPermission};
use crate::auth::{AuthConfig, NkeyUser, User};
use crate::leaf::options::{LeafAuth, LeafOptions, Remote, RemoteUrl, seed_from_creds};
use crate::tls::{DEFAULT_HANDSHAKE_FIRST_FALLBACK, HandshakeFirst, TlsOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The `tls { ... }` block.
fn tls_block(block: &Map) -> Result<TlsOptions, ConfigError> {
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
            _ if is_variable(entry) => {}
            _ => return Err(reject(entry, "tls option ", UNSUPPORTED_TLS)),
        }
    }
    Ok(tls)
}

/// The `leafnodes { ... }` block (nats-server's syntax: `port`/`listen`,
/// `authorization`, `tls`, `reconnect`, `remotes: [...]`).
fn leafnodes_block(item: &Item, warnings: &mut Vec<String>) -> Result<LeafOptions, ConfigError> {
    let Some(block) = item.value.as_map() else {
        return Err(at(item, "leafnodes must be a block { ... }"));
    };
    let mut leaf = LeafOptions::default();
    for entry in block.iter() {
        let value = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "port" => {
                let p = int_value(&entry.key, value)?;
                // -1 asks for a random port as nats-server does; 0 too.
                leaf.port = Some(if p < 0 {
                    0
                } else {
                    parse_port(&p.to_string()).map_err(|e| at(value, &e.0))?
                });
            }
            "host" | "net" => leaf.host = Some(str_value(&entry.key, value)?),
            "listen" => {
                let listen = match &value.value {
                    Value::Int(p) => format!(":{p}"),
                    _ => str_value(&entry.key, value)?,
                };
                let (host, port) = listen.rsplit_once(':').unwrap_or((listen.as_str(), ""));
                if !host.is_empty() {
                    leaf.host = Some(host.trim_matches(|c| c == '[' || c == ']').to_string());
                }
                if !port.is_empty() {
                    leaf.port = Some(parse_port(port).map_err(|e| at(value, &e.0))?);
                }
            }
            "authorization" => leaf.authorization = Some(leaf_authorization(value)?),
            "tls" => {
                let Some(b) = value.value.as_map() else {
                    return Err(at(value, "tls must be a block { ... }"));
                };
                leaf.tls = Some(tls_block(b)?);
            }
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                leaf.reconnect = Some(duration_value(&entry.key, value)?);
            }
            "remotes" => {
                let Some(list) = value.value.as_array() else {
                    return Err(at(value, "leafnodes remotes must be an array"));
                };
                for r in list {
                    leaf.remotes.push(leaf_remote(r, warnings)?);
                }
            }
            "compression" => match &value.value {
                Value::Bool(false) => {}
                Value::Str(s) if s.eq_ignore_ascii_case("off") => {}
                _ => warnings.push(format!(
                    "{}:{}: leafnode compression is not supported by natrium; links are uncompressed",
                    entry.key_pos.line, entry.key_pos.col
                )),
            },
            "advertise" | "no_advertise" | "min_version" | "isolate_leafnode_interest" => warnings
                .push(format!(
                    "{}:{}: leafnodes option '{}' is not supported by natrium and is ignored",
                    entry.key_pos.line, entry.key_pos.col, entry.key
                )),
            _ => return Err(at(value, &format!("unknown leafnodes option '{}'", entry.key))),
        }
    }
    Ok(leaf)
}

/// `leafnodes { authorization { user, password | users: [...], timeout } }`.
fn leaf_authorization(item: &Item) -> Result<LeafAuth, ConfigError> {
    let Some(block) = item.value.as_map() else {
        return Err(at(item, "authorization must be a block { ... }"));
    };
    let mut auth = LeafAuth::default();
    let (mut user, mut pass) = (None, None);
    for entry in block.iter() {
        let value = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "user" | "username" => user = Some(str_value(&entry.key, value)?),
            "password" | "pass" => pass = Some(str_value(&entry.key, value)?),
            "timeout" => auth.timeout = Some(duration_value(&entry.key, value)?),
            "users" => {
                let Some(list) = value.value.as_array() else {
                    return Err(at(value, "Expected users field to be an array"));
                };
                for u in list {
                    let Some(m) = u.value.as_map() else {
                        return Err(at(
                            u,
                            "each user must be a block { user: ..., password: ... }",
                        ));
                    };
                    let (mut name, mut password) = (None, None);
                    for e in m.iter() {
                        match e.key.to_ascii_lowercase().as_str() {
                            "user" | "username" => name = Some(str_value(&e.key, &e.value)?),
                            "password" | "pass" => password = Some(str_value(&e.key, &e.value)?),
                            "account" => {
                                let a = str_value(&e.key, &e.value)?;
                                if a != "$G" {
                                    return Err(at(
                                        &e.value,
                                        "accounts are not supported by natrium: only the global account exists",
                                    ));
                                }
                            }
                            _ => {
                                return Err(at(
                                    &e.value,
                                    &format!("unknown leafnode user option '{}'", e.key),
                                ));
                            }
                        }
                    }
                    let name = name.ok_or_else(|| at(u, "User entry requires a user"))?;
                    auth.users.push((name, password.unwrap_or_default()));
                }
            }
            "account" => {
                let a = str_value(&entry.key, value)?;
                if a != "$G" {
                    return Err(at(
                        value,
                        "accounts are not supported by natrium: only the global account exists",
                    ));
                }
            }
            _ => {
                return Err(at(
                    value,
                    &format!("unknown leafnodes authorization option '{}'", entry.key),
                ));
            }
        }
    }
    if let Some(u) = user {
        auth.users.push((u, pass.unwrap_or_default()));
    } else if pass.is_some() {
        return Err(at(item, "leafnodes authorization: a password needs a user"));
    }
    if auth.users.iter().any(|(_, p)| crate::auth::is_bcrypt(p)) {
        // Checking one would block the event loop (clients' go to a worker).
        return Err(at(
            item,
            "leafnodes authorization: bcrypt-hashed passwords are not supported by natrium for leaf links",
        ));
    }
    Ok(auth)
}

/// One `remotes` entry.
fn leaf_remote(item: &Item, warnings: &mut Vec<String>) -> Result<Remote, ConfigError> {
    let Some(block) = item.value.as_map() else {
        return Err(at(
            item,
            "each leafnodes remote must be a block { url: ... }",
        ));
    };
    let mut remote = Remote::default();
    let strings = |value: &Item| -> Result<Vec<String>, ConfigError> {
        match &value.value {
            Value::Array(list) => list.iter().map(|i| str_value("subject", i)).collect(),
            _ => Ok(vec![str_value("subject", value)?]),
        }
    };
    for entry in block.iter() {
        let value = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "url" | "urls" => {
                for u in strings(value)? {
                    remote
                        .urls
                        .push(RemoteUrl::parse(&u).map_err(|e| at(value, &e))?);
                }
            }
            "deny_imports" | "deny_import" => remote.deny_imports.extend(strings(value)?),
            "deny_exports" | "deny_export" => remote.deny_exports.extend(strings(value)?),
            "tls" => {
                let Some(b) = value.value.as_map() else {
                    return Err(at(value, "tls must be a block { ... }"));
                };
                remote.tls = Some(tls_block(b)?);
            }
            "account" | "local" => {
                let a = str_value(&entry.key, value)?;
                if a != "$G" {
                    return Err(at(
                        value,
                        &format!(
                            "leafnode remote account {a:?}: accounts are not supported by natrium, only the global account \"$G\" exists"
                        ),
                    ));
                }
            }
            "credentials" | "creds" => {
                let path = str_value(&entry.key, value)?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| at(value, &format!("cannot read credentials {path:?}: {e}")))?;
                remote.seed =
                    Some(seed_from_creds(&text).ok_or_else(|| {
                        at(value, &format!("no nkey seed in credentials {path:?}"))
                    })?);
                if text.contains("BEGIN NATS USER JWT") {
                    warnings.push(format!(
                        "{}:{}: the user JWT in {path:?} is not sent (natrium has no operator mode); the nkey seed signs the nonce",
                        entry.key_pos.line, entry.key_pos.col
                    ));
                }
            }
            "nkey" | "seed" => remote.seed = Some(str_value(&entry.key, value)?),
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                remote.reconnect = Some(duration_value(&entry.key, value)?);
            }
            "disabled" => remote.disabled = bool_value(&entry.key, value)?,
            "compression"
            | "hub"
            | "first_info_timeout"
            | "name"
            | "ws_compression"
            | "ws_no_masking"
            | "jetstream_cluster_migrate"
            | "local_is_hub" => warnings.push(format!(
                "{}:{}: leafnode remote option '{}' is not supported by natrium and is ignored",
                entry.key_pos.line, entry.key_pos.col, entry.key
            )),
            _ => {
                return Err(at(
                    value,
                    &format!("unknown leafnode remote option '{}'", entry.key),
                ));
            }
        }
    }
    if remote.urls.is_empty() {
        return Err(at(item, "a leafnodes remote needs a url or urls"));
    }
    Ok(remote)
}

/// `jetstream: enabled|disabled|true|false` or `jetstream { ... }`.
fn jetstream_value(item: &Item) -> Result<Option<JetStreamOptions>, ConfigError> {
    let mut js = JetStreamOptions::default();
    match &item.value {
        Value::Bool(b) => Ok(b.then_some(js)),
        Value::Str(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" | "true" | "on" => Ok(Some(js)),
            "disabled" | "disable" | "false" | "off" => Ok(None),
            _ => Err(at(item, &format!("invalid jetstream value {s:?}"))),
        },
        Value::Map(block) => {
            for e in block.iter() {
                let v = &e.value;
                match e.key.to_ascii_lowercase().as_str() {
                    "enabled" | "enable" => {
                        if !bool_value(&e.key, v)? {
                            return Ok(None);
                        }
                    }
                    "store_dir" | "storedir" | "store" => {
                        js.store_dir = PathBuf::from(str_value(&e.key, v)?);
                    }
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        js.max_memory = size_or_unlimited(&e.key, v)?;
                    }
                    "max_file_store" | "max_file" => {
                        js.max_file = size_or_unlimited(&e.key, v)?;
                    }
                    "sync_interval" | "sync" => {
                        js.sync = match &v.value {
                            Value::Str(s) if s.eq_ignore_ascii_case("always") => SyncPolicy::Always,
                            _ => {
                                let d = duration_value(&e.key, v)?;
                                if d.is_zero() {
                                    SyncPolicy::Always
                                } else {
                                    SyncPolicy::Interval(d)
                                }
                            }
                        };
                    }
                    // Accepted and without effect in a single server.
                    "max_buffered_msgs"
                    | "max_buffered_size"
                    | "unique_tag"
                    | "max_outstanding_catchup"
                    | "request_queue_limit"
                    | "strict"
                    | "max_ack_pending"
                    | "max_ha_assets"
                    | "sync_always" => {}
                    other => {
                        return Err(at(
                            v,
                            &format!("jetstream option {other:?} is not supported by natrium"),
                        ));
                    }
                }
            }
            Ok(Some(js))
        }
        _ => Err(at(
            item,
            "jetstream must be a boolean, enabled/disabled or a block",
        )),
    }
}

/// A size, where a negative number means "no limit" (-1).
fn size_or_unlimited(key: &str, item: &Item) -> Result<i64, ConfigError> {
    if let Value::Int(n) = item.value
        && n < 0
    {
        return Ok(-1);
    }
    Ok(size_value(key, item)? as i64)
}

/// Reads options from a configuration file into `config`.
/// Returns warnings (unknown keys, ignored options).
pub fn load_file(config: &mut Config, path: &std::path::Path) -> Result<Vec<String>, ConfigError> {
    let map = syntax::parse_file(path).map_err(|e| ConfigError(e.to_string()))?;
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
            "ping_interval" => config.ping_interval = seconds_or_duration(entry, &mut warnings)?,
            "ping_max" => {
                let n = int_value(&entry.key, item)?;
                config.ping_max = n.clamp(0, i64::from(u32::MAX)) as u32;
            }
            "write_deadline" => {
                config.write_deadline = seconds_or_duration(entry, &mut warnings)?;
            }
            "debug" => config.debug = bool_value(&entry.key, item)?,
            "trace" => config.trace = bool_value(&entry.key, item)?,
            "trace_verbose" => {
                config.trace_verbose = bool_value(&entry.key, item)?;
                config.trace = config.trace_verbose;
            }
            "logtime" => config.logtime = bool_value(&entry.key, item)?,
            "logtime_utc" => config.logtime_utc = bool_value(&entry.key, item)?,
            "log_size_limit" | "logfile_size_limit" => {
                config.log_size_limit = size_value(&entry.key, item)? as u64;
            }
            "pid_file" | "pidfile" => {
                config.pid_file = Some(PathBuf::from(str_value(&entry.key, item)?));
            }
            "ports_file_dir" => {
                config.ports_file_dir = Some(PathBuf::from(str_value(&entry.key, item)?));
            }
            "lame_duck_duration" => {
                let d = go_duration(&entry.key, item)?;
                config.lame_duck_duration =
                    check_lame_duck_duration(d).map_err(|e| at(item, &e.0))?;
            }
            "lame_duck_grace_period" => {
                config.lame_duck_grace_period = go_duration(&entry.key, item)?;
            }
            "max_traced_msg_len" => {
                config.max_traced_msg_len = int_value(&entry.key, item)?.max(0) as usize;
            }
            "client_advertise" => config.client_advertise = Some(str_value(&entry.key, item)?),
            "authorization" => {
                let Some(block) = item.value.as_map() else {
                    return Err(at(item, "authorization must be a block { ... }"));
                };
                config.auth.apply_block(item, block)?;
            }
            "tls" => {
                let Some(block) = item.value.as_map() else {
                    return Err(at(item, "tls must be a block { ... }"));
                };
                config.tls = Some(tls_block(block)?);
            }
            "leafnodes" | "leaf" => {
                config.leafnodes = leafnodes_block(item, &mut warnings)?;
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
            "jetstream" => config.jetstream = jetstream_value(item)?,
            _ if is_variable(entry) => {}
            _ => return Err(reject(entry, "", UNSUPPORTED_TOP)),
        }
    }
    validate(config)?;
    Ok(warnings)
}

/// Top-level keys nats-server reads that natrium does not implement (each
/// spelling nats-server accepts). Any other unknown key is an unknown field.
const UNSUPPORTED_TOP: &[&str] = &[
    "accounts",
    "account_resolver",
    "accounts_resolver",
    "allow_non_tls",
    "cluster",
    "connect_error_reports",
    "default_js_domain",
    "disable_sublist_cache",
    "gateway",
    "http_base_path",
    "https",
    "mappings",
    "maps",
    "max_sub_tokens",
    "max_subscription_tokens",
    "mqtt",
    "no_fast_producer_stall",
    "no_header_support",
    "no_sublist_cache",
    "no_sys_acc",
    "no_system",
    "no_system_account",
    "ocsp",
    "ocsp_cache",
    "operator",
    "operators",
    "prof_port",
    "reconnect_error_reports",
    "remote_syslog",
    "resolver",
    "resolver_pinned_accounts",
    "resolver_preload",
    "resolver_tls",
    "root",
    "root_operator",
    "root_operators",
    "roots",
    "server_tags",
    "store_dir",
    "storedir",
    "syslog",
    "system",
    "system_account",
    "trusted",
    "trusted_keys",
    "websocket",
    "ws",
];

/// `tls { ... }` keys of nats-server's that natrium does not implement.
const UNSUPPORTED_TLS: &[&str] = &[
    "ca_certs_match",
    "cert_match",
    "cert_match_by",
    "cert_match_skip_invalid",
    "cert_store",
    "certs",
    "cipher_suites",
    "curve_preferences",
    "insecure",
    "min_version",
    "ocsp_peer",
    "pinned_certs",
    "verify_cert_and_check_known_urls",
];

/// `authorization { ... }` keys of nats-server's that natrium does not implement.
const UNSUPPORTED_AUTHORIZATION: &[&str] = &["auth_callout", "callout"];

/// User entry keys of nats-server's that natrium does not implement.
const UNSUPPORTED_USER: &[&str] = &[
    "account",
    "allowed_connection_types",
    "clients",
    "connection_types",
];

/// The error for a key natrium does not take: one nats-server knows but
/// natrium does not implement names the feature (`what` says where, e.g.
/// "tls option "); anything else is nats-server's `unknown field "x"`.
/// (Callers first accept entries that only define a variable: [`is_variable`].)
fn reject(entry: &Entry, what: &str, unsupported: &[&str]) -> ConfigError {
    let key = entry.key.to_ascii_lowercase();
    let pos = &entry.key_pos;
    if unsupported.contains(&key.as_str()) {
        ConfigError(format!(
            "{pos}: {what}'{}' is not supported by natrium",
            entry.key
        ))
    } else {
        ConfigError(format!("{pos}: unknown field {:?}", entry.key))
    }
}

/// Whether an entry only defines a variable that a `$NAME` used.
fn is_variable(entry: &Entry) -> bool {
    entry.used_as_variable
}

/// A duration key where nats-server also takes a bare number of seconds
/// (`ping_interval`, `write_deadline`): a number, or an unquoted `2m`
/// (which the format reads as the number 2000000), is taken as seconds
/// with nats-server's warning, as nats-server does.
fn seconds_or_duration(entry: &Entry, warnings: &mut Vec<String>) -> Result<Duration, ConfigError> {
    let item = &entry.value;
    match &item.value {
        Value::Int(n) if *n >= 0 => {
            warnings.push(format!(
                "{}: {} should be converted to a duration",
                item.pos,
                entry.key.to_ascii_lowercase()
            ));
            Ok(Duration::from_secs(*n as u64))
        }
        _ => duration_value(&entry.key, item),
    }
}

/// A duration nats-server reads only as a string in Go's syntax
/// (`lame_duck_duration`, `lame_duck_grace_period`): "error parsing X".
fn go_duration(key: &str, item: &Item) -> Result<Duration, ConfigError> {
    let key = key.to_ascii_lowercase();
    match &item.value {
        Value::Str(s) => match s.trim().strip_prefix('-') {
            Some(_) if key == "lame_duck_grace_period" => Err(at(
                item,
                "invalid lame_duck_grace_period, needs to be positive",
            )),
            _ => syntax::parse_duration(s).ok_or_else(|| {
                at(
                    item,
                    &format!("error parsing {key}: invalid duration {s:?}"),
                )
            }),
        },
        other => Err(at(
            item,
            &format!(
                "error parsing {key}: expected a duration string such as \"2m\", got {}",
                other.type_name()
            ),
        )),
    }
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
    fn apply_block(&mut self, item: &Item, block: &Map) -> Result<(), ConfigError> {
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
                    let (u, n) = parse_users(value)?;
                    users = Some(u);
                    nkeys = n;
                }
                "default_permission" | "default_permissions" | "permissions" => {
                    defaults = Some(Arc::new(parse_permissions(value)?));
                }
                _ if is_variable(entry) => {}
                _ => {
                    return Err(reject(
                        entry,
                        "authorization option ",
                        UNSUPPORTED_AUTHORIZATION,
                    ));
                }
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
        Ok(())
    }
}

/// `users: [ {user: .., password: .., permissions: {..}}, {nkey: U.., ..} ]`.
fn parse_users(item: &Item) -> Result<(Vec<User>, Vec<NkeyUser>), ConfigError> {
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
                _ if is_variable(e) => {}
                _ => return Err(reject(e, "user option ", UNSUPPORTED_USER)),
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
