//! What natrium writes on a leaf link: `LS+`/`LS-`, `LMSG`/`HMSG`, and the
//! CONNECT and INFO JSON of the handshake. Pure functions over buffers.

use crate::protocol::wire::{push_json_str, push_usize};

/// Appends `LS+ <subject>[ <queue> <weight>]`.
pub fn push_sub(out: &mut Vec<u8>, subject: &[u8], queue: Option<&[u8]>, weight: u32) {
    out.extend_from_slice(b"LS+ ");
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        out.push(b' ');
        push_usize(out, weight as usize);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `LS- <subject>[ <queue>]`.
pub fn push_unsub(out: &mut Vec<u8>, subject: &[u8], queue: Option<&[u8]>) {
    out.extend_from_slice(b"LS- ");
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one message: `LMSG`, or `HMSG` when `header_len` is given, with
/// the queue groups picked on the far side (`queues`, possibly empty).
pub fn push_msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: &[&[u8]],
    header_len: Option<usize>,
    data: &[u8],
) {
    out.reserve(subject.len() + data.len() + 32);
    out.extend_from_slice(if header_len.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    out.extend_from_slice(subject);
    if queues.is_empty() {
        if let Some(r) = reply {
            out.push(b' ');
            out.extend_from_slice(r);
        }
    } else {
        match reply {
            Some(r) => {
                out.extend_from_slice(b" + ");
                out.extend_from_slice(r);
            }
            None => out.extend_from_slice(b" |"),
        }
        for q in queues {
            out.push(b' ');
            out.extend_from_slice(q);
        }
    }
    out.push(b' ');
    if let Some(h) = header_len {
        push_usize(out, h);
        out.push(b' ');
    }
    push_usize(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The fields of the CONNECT a soliciting leaf sends.
#[derive(Debug, Clone)]
pub struct LeafConnect<'a> {
    /// This server's id.
    pub server_id: &'a str,
    /// This server's name.
    pub name: &'a str,
    /// User from the remote's URL or options.
    pub user: Option<&'a str>,
    /// Password from the remote's URL or options.
    pub pass: Option<&'a str>,
    /// Public nkey and the nonce's signature, when the remote has a seed.
    pub nkey_sig: Option<(&'a str, &'a str)>,
    /// The remote's `deny_imports`: the hub should not send these.
    pub deny_pub: &'a [String],
}

/// Appends `CONNECT {...}` as nats-server's leaf sends it, without `lang`
/// (which would mark a client) and without compression.
pub fn push_connect(out: &mut Vec<u8>, c: &LeafConnect<'_>) {
    out.extend_from_slice(b"CONNECT {\"version\":");
    push_json_str(out, crate::protocol::wire::COMPAT_VERSION);
    out.extend_from_slice(b",\"server_id\":");
    push_json_str(out, c.server_id);
    out.extend_from_slice(b",\"name\":");
    push_json_str(out, c.name);
    if let Some(u) = c.user {
        out.extend_from_slice(b",\"user\":");
        push_json_str(out, u);
        match c.pass {
            Some(p) => {
                out.extend_from_slice(b",\"pass\":");
                push_json_str(out, p);
            }
            None => {
                // A lone user name doubles as a token, as nats-server sends it.
                out.extend_from_slice(b",\"auth_token\":");
                push_json_str(out, u);
            }
        }
    }
    if let Some((nkey, sig)) = c.nkey_sig {
        out.extend_from_slice(b",\"nkey\":");
        push_json_str(out, nkey);
        out.extend_from_slice(b",\"sig\":");
        push_json_str(out, sig);
    }
    if !c.deny_pub.is_empty() {
        out.extend_from_slice(b",\"deny_pub\":[");
        for (i, s) in c.deny_pub.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, s);
        }
        out.push(b']');
    }
    out.extend_from_slice(
        b",\"headers\":true,\"compress_mode\":\"not supported\",\"remote_account\":\"$G\",\"protocol\":1}\r\n",
    );
}

/// What the accepting side's INFO says.
#[derive(Debug, Clone)]
pub struct HubInfo<'a> {
    /// This server's id.
    pub server_id: &'a str,
    /// This server's name.
    pub server_name: &'a str,
    /// Host of the leafnode listener.
    pub host: &'a str,
    /// Port of the leafnode listener.
    pub port: u16,
    /// Largest payload the link accepts.
    pub max_payload: usize,
    /// The link's connection id (must be non-zero: leaves check it).
    pub client_id: u64,
    /// Whether TLS follows.
    pub tls_required: bool,
    /// Nonce, when nkey credentials are possible.
    pub nonce: Option<&'a str>,
    /// The second INFO, after CONNECT.
    pub connect_info: bool,
}

/// Appends the INFO of the accepting side.
pub fn push_hub_info(out: &mut Vec<u8>, i: &HubInfo<'_>) {
    out.extend_from_slice(b"INFO {\"server_id\":");
    push_json_str(out, i.server_id);
    out.extend_from_slice(b",\"server_name\":");
    push_json_str(out, i.server_name);
    out.extend_from_slice(b",\"version\":");
    push_json_str(out, crate::protocol::wire::COMPAT_VERSION);
    out.extend_from_slice(b",\"proto\":1,\"go\":\"natrium\",\"host\":");
    push_json_str(out, i.host);
    out.extend_from_slice(b",\"port\":");
    push_usize(out, usize::from(i.port));
    out.extend_from_slice(b",\"headers\":true,\"auth_required\":true");
    if i.tls_required {
        out.extend_from_slice(b",\"tls_required\":true");
    }
    out.extend_from_slice(b",\"max_payload\":");
    push_usize(out, i.max_payload);
    out.extend_from_slice(b",\"client_id\":");
    push_usize(out, i.client_id as usize);
    if let Some(n) = i.nonce {
        out.extend_from_slice(b",\"nonce\":");
        push_json_str(out, n);
    }
    out.extend_from_slice(b",\"info_on_connect\":true,\"leafnode_urls\":[");
    let url = format!("{}:{}", i.host, i.port);
    push_json_str(out, &url);
    out.push(b']');
    if i.connect_info {
        out.extend_from_slice(b",\"connect_info\":true,\"remote_account\":\"$G\"");
    }
    out.extend_from_slice(b"}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf::parser::{LeafOp, Parsed, parse};
    use crate::protocol::parser::Limits;

    #[test]
    fn written_frames_parse_back() {
        let mut out = Vec::new();
        push_sub(&mut out, b"foo", Some(b"q"), 2);
        push_unsub(&mut out, b"foo", None);
        push_msg(&mut out, b"a", Some(b"r"), &[b"q1", b"q2"], None, b"xy");
        push_msg(&mut out, b"a", None, &[b"q1"], Some(2), b"h\r\n");
        push_msg(&mut out, b"a", Some(b"r"), &[], None, b"");
        assert_eq!(
            out,
            b"LS+ foo q 2\r\nLS- foo\r\nLMSG a + r q1 q2 2\r\nxy\r\nHMSG a | q1 2 3\r\nh\r\n\r\nLMSG a r 0\r\n\r\n"
        );
        let mut pos = 0;
        let mut n = 0;
        while pos < out.len() {
            match parse(&out[pos..], &Limits::default()).unwrap() {
                Parsed::Complete { op: Some(_), len } => {
                    pos += len;
                    n += 1
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn connect_and_info_are_json() {
        let mut out = Vec::new();
        push_connect(
            &mut out,
            &LeafConnect {
                server_id: "N1",
                name: "n\"1",
                user: Some("u"),
                pass: Some("p"),
                nkey_sig: None,
                deny_pub: &["a.>".to_string()],
            },
        );
        let json = match parse(&out, &Limits::default()).unwrap() {
            Parsed::Complete {
                op: Some(LeafOp::Connect(j)),
                ..
            } => j,
            other => panic!("{other:?}"),
        };
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(v["user"], "u");
        assert_eq!(v["deny_pub"][0], "a.>");
        assert!(v.get("lang").is_none());
        out.clear();
        push_hub_info(
            &mut out,
            &HubInfo {
                server_id: "N1",
                server_name: "x",
                host: "127.0.0.1",
                port: 7422,
                max_payload: 10,
                client_id: 3,
                tls_required: false,
                nonce: None,
                connect_info: true,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&out[5..out.len() - 2]).unwrap();
        assert_eq!(v["client_id"], 3);
        assert_eq!(v["leafnode_urls"][0], "127.0.0.1:7422");
        assert_eq!(v["connect_info"], true);
    }
}
