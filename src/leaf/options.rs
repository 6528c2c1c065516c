//! Leaf-node options: the `leafnodes { ... }` block as data. The
//! configuration layer fills these in; the server acts on them.

use crate::tls::TlsOptions;
use std::time::Duration;

/// nats-server's default leafnode port.
pub const DEFAULT_PORT: u16 = 7422;
/// Default pause between connection attempts of a remote.
pub const DEFAULT_RECONNECT: Duration = Duration::from_secs(1);
/// How long a remote waits after its hub reported a loop or a permission error.
pub const LOOP_DELAY: Duration = Duration::from_secs(30);
/// How long a soliciting side waits for the hub's first INFO.
pub const FIRST_INFO_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole `leafnodes` block.
#[derive(Debug, Clone, Default)]
pub struct LeafOptions {
    /// Host to listen on for leaves (the accepting side).
    pub host: Option<String>,
    /// Port to listen on; `None`: no accepting side.
    pub port: Option<u16>,
    /// Credentials leaves must present; `None`: the server's own users, if any.
    pub authorization: Option<LeafAuth>,
    /// TLS for accepted leaves.
    pub tls: Option<TlsOptions>,
    /// Pause between attempts of every remote (`reconnect`).
    pub reconnect: Option<Duration>,
    /// Hubs to solicit.
    pub remotes: Vec<Remote>,
}

impl LeafOptions {
    /// Whether leaf links may exist at all.
    pub fn enabled(&self) -> bool {
        self.port.is_some() || !self.remotes.is_empty()
    }
}

/// `authorization { user, password | users: [...] , timeout }` of the block.
#[derive(Debug, Clone, Default)]
pub struct LeafAuth {
    /// Accepted user/password pairs (a password may be a bcrypt hash).
    pub users: Vec<(String, String)>,
    /// Time a leaf has to send CONNECT.
    pub timeout: Option<Duration>,
}

/// One `remotes` entry.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// URLs tried in turn.
    pub urls: Vec<RemoteUrl>,
    /// Subjects not imported from the hub.
    pub deny_imports: Vec<String>,
    /// Subjects never sent to the hub.
    pub deny_exports: Vec<String>,
    /// TLS to the hub.
    pub tls: Option<TlsOptions>,
    /// An nkey seed (`nkey` / `seed`, or read from `credentials`).
    pub seed: Option<String>,
    /// Pause between attempts (`reconnect` of the remote or the block).
    pub reconnect: Option<Duration>,
    /// Skipped when true.
    pub disabled: bool,
}

/// A parsed `nats-leaf://user:pass@host:port` (schemes `nats`, `leaf`,
/// `nats-leaf`, `tls` are accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// Host name or address.
    pub host: String,
    /// Port (7422 when absent).
    pub port: u16,
    /// User from the URL.
    pub user: Option<String>,
    /// Password from the URL.
    pub pass: Option<String>,
    /// `tls://`: TLS even without a `tls` block.
    pub tls: bool,
}

impl RemoteUrl {
    /// Parses one URL; the error says what is wrong.
    pub fn parse(s: &str) -> Result<RemoteUrl, String> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("nats-leaf".to_string(), s),
        };
        let tls = match scheme.as_str() {
            "nats-leaf" | "nats" | "leaf" => false,
            "tls" | "leafs" | "nats-leafs" => true,
            other => {
                return Err(format!(
                    "unsupported leafnode URL scheme {other:?} in {s:?}"
                ));
            }
        };
        let rest = rest.split(['/', '?']).next().unwrap_or("");
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (user, pass) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(u)), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("bad IPv6 address in {s:?}"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in leafnode URL {s:?}"));
        }
        let port = match port {
            None | Some("") => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("bad port in leafnode URL {s:?}"))?,
        };
        Ok(RemoteUrl {
            host,
            port,
            user: user.filter(|u| !u.is_empty()),
            pass,
            tls,
        })
    }

    /// `host:port` (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Decodes `%XX` escapes of a URL's user info (invalid ones stay as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The nkey seed in a `.creds` file (the block after `-----BEGIN USER NKEY SEED-----`),
/// or a bare seed file.
pub fn seed_from_creds(text: &str) -> Option<String> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.contains("NKEY SEED") && line.starts_with("---") {
            return lines
                .find(|l| !l.is_empty())
                .filter(|l| l.starts_with('S'))
                .map(str::to_string);
        }
    }
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = RemoteUrl::parse("nats-leaf://u:p%40ss@hub.example:7000").unwrap();
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.user.as_deref(),
                u.pass.as_deref(),
                u.tls
            ),
            ("hub.example", 7000, Some("u"), Some("p@ss"), false)
        );
        let u = RemoteUrl::parse("tls://[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 7422, true));
        assert_eq!(u.host_port(), "[::1]:7422");
        let u = RemoteUrl::parse("127.0.0.1:1234").unwrap();
        assert_eq!((u.port, u.user), (1234, None));
        assert!(RemoteUrl::parse("ws://x:1").is_err());
        assert!(RemoteUrl::parse("nats://:1").is_err());
        assert!(RemoteUrl::parse("nats://h:99999").is_err());
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn creds_seed() {
        let creds = "-----BEGIN NATS USER JWT-----\neyJ\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUAIBDPBAUTW\n------END USER NKEY SEED------\n";
        assert_eq!(seed_from_creds(creds).as_deref(), Some("SUAIBDPBAUTW"));
        assert_eq!(seed_from_creds("SUABC\n").as_deref(), Some("SUABC"));
        assert_eq!(seed_from_creds("nothing"), None);
    }
}
