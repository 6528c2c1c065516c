//! Configuration-file keys: what each key of a nats-server configuration
//! file means for natrium (the syntax itself is [`super::syntax`]).

use super::syntax;
use super::syntax::{Item, Map, Value};
use super::{
    Config, ConfigError, JetStreamOptions, MonitorConfig, SyncPolicy, parse_duration_str,
    parse_http_port, parse_port, set_monitor_port, validate,
};
use crate::auth::permissions::{Permissions, ResponsePermission, SubjectPermission};
use crate::auth::{AuthConfig, NkeyUser, User};
use crate::tls::{DEFAULT_HANDSHAKE_FIRST_FALLBACK, HandshakeFirst, TlsOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
            "jetstream" => config.jetstream = jetstream_value(item)?,
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
