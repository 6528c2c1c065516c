//! The protocol vocabulary natrium writes and the CONNECT it reads.
//!
//! Pure functions over byte buffers: the INFO line, MSG/HMSG headers, the
//! no-responders status message, `+OK`/`PING`/`PONG`/`-ERR`, and the
//! decoding of a CONNECT JSON into [`ConnectInfo`]. No sockets, no state.

use serde::Deserialize;

/// `+OK\r\n`
pub const OK: &[u8] = b"+OK\r\n";
/// `PING\r\n`
pub const PING: &[u8] = b"PING\r\n";
/// `PONG\r\n`
pub const PONG: &[u8] = b"PONG\r\n";

/// The nats-server release whose client protocol natrium speaks. Clients
/// gate features on INFO's `version`, so natrium announces this rather
/// than its own version (which it sends as `natrium_version`).
pub const COMPAT_VERSION: &str = "2.10.0";

/// The CONNECT fields natrium reads. Absent fields and JSON `null` are
/// `None`; a field of the wrong JSON type makes the whole CONNECT invalid,
/// as in nats-server.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ConnectInfo {
    /// Reply `+OK` to each command.
    pub verbose: Option<bool>,
    /// Strict subject checks on PUB.
    pub pedantic: Option<bool>,
    /// Deliver this connection's messages to its own subscriptions.
    pub echo: Option<bool>,
    /// The client understands HPUB/HMSG.
    pub headers: Option<bool>,
    /// The client wants a 503 status when a request has no responders.
    pub no_responders: Option<bool>,
    /// The client asked for TLS (informational).
    pub tls_required: Option<bool>,
    /// Connection name, for logs.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level: 0 or 1.
    pub protocol: Option<i64>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// Token.
    pub auth_token: Option<String>,
    /// Public nkey (starts with `U`).
    pub nkey: Option<String>,
    /// Signature of the INFO nonce.
    pub sig: Option<String>,
    /// User JWT (operator mode, not supported).
    pub jwt: Option<String>,
    /// Legacy field: any value is an authorization violation.
    pub account: Option<serde_json::Value>,
    /// Legacy field: any value is an authorization violation.
    pub new_account: Option<serde_json::Value>,
}

impl ConnectInfo {
    /// Decodes CONNECT's JSON; `None` if it is not a valid CONNECT object.
    pub fn decode(json: &[u8]) -> Option<ConnectInfo> {
        // serde would also fill a struct from a JSON array; CONNECT takes an object.
        let start = json.iter().position(|b| !b.is_ascii_whitespace())?;
        if json[start] != b'{' {
            return None;
        }
        serde_json::from_slice(json).ok()
    }
}

/// Appends the decimal digits of `n` to `out`, without going through `fmt`.
#[inline]
pub fn push_usize(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `MSG`/`HMSG` for one delivery: control line, data and CRLF.
///
/// `header_len` is `Some` only when the subscriber gets headers (it sent
/// `headers:true` and the message has a non-empty header block); otherwise
/// `data` must be the payload alone.
#[inline]
pub fn push_msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: Option<usize>,
    data: &[u8],
) {
    out.reserve(subject.len() + sid.len() + reply.map_or(0, <[u8]>::len) + data.len() + 40);
    out.extend_from_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"MSG "
    });
    out.extend_from_slice(subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(reply) = reply {
        out.extend_from_slice(reply);
        out.push(b' ');
    }
    if let Some(h) = header_len {
        push_usize(out, h);
        out.push(b' ');
    }
    push_usize(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the no-responders status message nats-server sends to a
/// requester: an HMSG on the requester's reply subscription whose header
/// block is `NATS/1.0 503` plus `Nats-Subject`, with an empty payload.
pub fn push_no_responders(out: &mut Vec<u8>, reply: &[u8], sid: &[u8], subject: &[u8]) {
    let mut header = Vec::with_capacity(32 + subject.len());
    header.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    header.extend_from_slice(subject);
    header.extend_from_slice(b"\r\n\r\n");
    push_msg(out, reply, sid, None, Some(header.len()), &header);
}

/// Appends `-ERR '<text>'\r\n`.
pub fn push_err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The server-wide part of INFO, rendered once.
#[derive(Debug, Clone)]
pub struct InfoTemplate {
    /// `INFO {` and every field that is the same for all clients, ending in a comma.
    prefix: Vec<u8>,
}

/// What goes into INFO besides per-connection fields.
#[derive(Debug, Clone)]
pub struct ServerInfo<'a> {
    /// Random id of this server process.
    pub server_id: &'a str,
    /// Configured name (defaults to the id).
    pub server_name: &'a str,
    /// Bind address.
    pub host: &'a str,
    /// Client port.
    pub port: u16,
    /// Maximum payload a client may publish.
    pub max_payload: usize,
    /// Whether CONNECT must carry credentials.
    pub auth_required: bool,
    /// Whether the client must start TLS (`tls_required`).
    pub tls_required: bool,
    /// Whether the client must present a certificate (`tls_verify`).
    pub tls_verify: bool,
    /// The server is in lame duck mode (`ldm`): clients should reconnect
    /// to another server.
    pub lame_duck_mode: bool,
    /// Whether JetStream is enabled (`"jetstream":true`).
    pub jetstream: bool,
}

impl InfoTemplate {
    /// Renders the fields shared by all connections.
    pub fn new(info: &ServerInfo<'_>) -> InfoTemplate {
        let mut p = Vec::with_capacity(320);
        p.extend_from_slice(b"INFO {\"server_id\":");
        push_json_str(&mut p, info.server_id);
        p.extend_from_slice(b",\"server_name\":");
        push_json_str(&mut p, info.server_name);
        p.extend_from_slice(b",\"version\":");
        push_json_str(&mut p, COMPAT_VERSION);
        p.extend_from_slice(b",\"natrium_version\":");
        push_json_str(&mut p, env!("CARGO_PKG_VERSION"));
        p.extend_from_slice(b",\"proto\":1,\"go\":\"natrium\",\"host\":");
        push_json_str(&mut p, info.host);
        p.extend_from_slice(b",\"port\":");
        push_usize(&mut p, usize::from(info.port));
        p.extend_from_slice(b",\"headers\":true");
        if info.tls_required {
            p.extend_from_slice(b",\"tls_required\":true");
        }
        if info.tls_verify {
            p.extend_from_slice(b",\"tls_verify\":true");
        }
        p.extend_from_slice(b",\"max_payload\":");
        push_usize(&mut p, info.max_payload);
        if info.auth_required {
            p.extend_from_slice(b",\"auth_required\":true");
        }
        if info.lame_duck_mode {
            p.extend_from_slice(b",\"ldm\":true");
        }
        if info.jetstream {
            p.extend_from_slice(b",\"jetstream\":true");
        }
        p.push(b',');
        InfoTemplate { prefix: p }
    }

    /// Appends the INFO line for one connection.
    pub fn push(&self, out: &mut Vec<u8>, client_id: u64, client_ip: &str, nonce: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"\"client_id\":");
        push_usize(out, client_id as usize);
        out.extend_from_slice(b",\"client_ip\":");
        push_json_str(out, client_ip);
        if let Some(nonce) = nonce {
            out.extend_from_slice(b",\"nonce\":");
            push_json_str(out, nonce);
        }
        out.extend_from_slice(b"} \r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_and_hmsg() {
        let mut out = Vec::new();
        push_msg(&mut out, b"foo", b"1", None, None, b"hello");
        push_msg(&mut out, b"foo", b"22", Some(b"r"), Some(3), b"h\r\nx");
        assert_eq!(
            out,
            b"MSG foo 1 5\r\nhello\r\nHMSG foo 22 r 3 4\r\nh\r\nx\r\n"
        );
    }

    #[test]
    fn no_responders_frame_matches_nats_server() {
        let mut out = Vec::new();
        push_no_responders(&mut out, b"_INBOX.x", b"1", b"svc");
        assert_eq!(
            out,
            b"HMSG _INBOX.x 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n"
        );
    }

    #[test]
    fn digits() {
        for n in [0usize, 7, 10, 123456789, usize::MAX] {
            let mut out = Vec::new();
            push_usize(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn connect_accepts_nulls_and_rejects_wrong_types() {
        let c = ConnectInfo::decode(br#"{"verbose":false,"user":null,"jwt":null,"unknown":[1,2]}"#)
            .unwrap();
        assert_eq!(c.verbose, Some(false));
        assert_eq!(c.user, None);
        assert!(ConnectInfo::decode(br#"{"verbose":"yes"}"#).is_none());
        assert!(ConnectInfo::decode(b"{").is_none());
        assert!(ConnectInfo::decode(b"[]").is_none());
    }

    #[test]
    fn info_is_valid_json() {
        let t = InfoTemplate::new(&ServerInfo {
            jetstream: false,
            server_id: "NABC",
            server_name: "a \"name\"",
            host: "0.0.0.0",
            port: 4222,
            max_payload: 1048576,
            auth_required: true,
            tls_required: false,
            tls_verify: false,
            lame_duck_mode: false,
        });
        let mut out = Vec::new();
        t.push(&mut out, 7, "127.0.0.1", Some("nonce"));
        assert!(out.starts_with(b"INFO {") && out.ends_with(b"} \r\n"));
        let json: serde_json::Value = serde_json::from_slice(&out[5..out.len() - 3]).unwrap();
        assert_eq!(json["max_payload"], 1048576);
        assert_eq!(json["auth_required"], true);
        assert_eq!(json["client_id"], 7);
        assert_eq!(json["server_name"], "a \"name\"");
        assert_eq!(json["nonce"], "nonce");
        assert_eq!(json["headers"], true);
        assert_eq!(json["proto"], 1);
    }
}
