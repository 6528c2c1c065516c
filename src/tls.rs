//! TLS for client connections: the `tls { ... }` options, the rustls server
//! configuration built from them, one connection's TLS state, and the
//! names a client certificate maps to (`verify_and_map`).
//!
//! The event loop drives each session with rustls's non-blocking calls
//! (`read_tls`/`process_new_packets`/`write_tls`, see `server::tls_io` and
//! `Client::write_pending`); nothing here blocks or spawns a thread.
//!
//! The NATS way: INFO goes out in plain text with `tls_required`, then the
//! client starts the handshake on the same socket. With `handshake_first`
//! the handshake comes before INFO, and INFO is the first encrypted line.

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use x509_parser::asn1_rs::ToDer;

/// nats-server's default TLS handshake timeout (`tls { timeout }`).
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// nats-server's fallback delay for `handshake_first: auto`.
pub const DEFAULT_HANDSHAKE_FIRST_FALLBACK: Duration = Duration::from_millis(50);

/// The first byte of a TLS handshake record (a ClientHello starts with it).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// When the TLS handshake happens relative to INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeFirst {
    /// INFO in plain text first, then the client starts TLS (the NATS way).
    #[default]
    Off,
    /// The handshake first; INFO is sent over TLS.
    On,
    /// Wait this long for a ClientHello; if none comes, send INFO in plain
    /// text and continue the NATS way (`handshake_first: "300ms"` or `auto`).
    Fallback(Duration),
}

/// The `tls { ... }` block and the `--tls*` flags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// PEM certificate chain of the server (`cert_file`, `--tlscert`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the server (`key_file`, `--tlskey`).
    pub key_file: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to
    /// (`ca_file`, `--tlscacert`).
    pub ca_file: Option<PathBuf>,
    /// Require and verify a client certificate (`verify`, `--tlsverify`).
    pub verify: bool,
    /// Like `verify`, and log the client in as the user its certificate
    /// names (`verify_and_map`).
    pub verify_and_map: bool,
    /// Handshake timeout (`timeout`, seconds; default 2 s).
    pub timeout: Option<Duration>,
    /// Handshake before INFO (`handshake_first`).
    pub handshake_first: HandshakeFirst,
    /// Most new TLS connections accepted per second; 0 is unlimited
    /// (`connection_rate_limit`).
    pub connection_rate_limit: u64,
}

impl TlsOptions {
    /// The handshake timeout in force.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TLS_TIMEOUT)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.verify || self.verify_and_map
    }

    /// Builds the rustls configuration: reads the certificate, key and CA
    /// files. The error says which file failed and why.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let cert_file = self
            .cert_file
            .as_deref()
            .ok_or("TLS Server certificate must be present and valid")?;
        let key_file = self
            .key_file
            .as_deref()
            .ok_or("TLS Server private key must be present and valid")?;
        let certs = read_certs(cert_file)?;
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
            format!(
                "error parsing X509 certificate/key pair: {}: {e}",
                key_file.display()
            )
        })?;
        let provider = Arc::new(server_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = if self.requires_client_cert() {
            let ca_file = self.ca_file.as_deref().ok_or(
                "TLS: verify needs ca_file (the CA that client certificates must chain to)",
            )?;
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file)? {
                roots.add(cert).map_err(|e| {
                    format!("TLS: bad CA certificate in {}: {e}", ca_file.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS: client verifier: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))?;
        // The server's preference decides, as with Go's crypto/tls.
        config.ignore_client_order = true;
        Ok(Arc::new(config))
    }
}

impl TlsOptions {
    /// The rustls client configuration for dialling a TLS server with
    /// these options (a leaf link's `tls { ca_file, cert_file, key_file }`):
    /// the server must chain to `ca_file`; `cert_file`/`key_file`, when
    /// given, are presented as the client certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let ca_file = self
            .ca_file
            .as_deref()
            .ok_or("TLS to a leafnode hub needs ca_file (natrium has no system root store)")?;
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca_file)? {
            roots
                .add(cert)
                .map_err(|e| format!("TLS: bad CA certificate in {}: {e}", ca_file.display()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(server_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!("error parsing X509 private key: {}: {e}", key.display())
                })?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("TLS client certificate: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// rustls's ring provider with AES-128-GCM preferred over AES-256-GCM
/// and ChaCha20 (rustls lists AES-256 first): what Go's crypto/tls picks
/// on CPUs with AES instructions, and the cheapest of the three there.
fn server_provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        let name = suite.suite().as_str().unwrap_or_default();
        if name.contains("AES_128_GCM") {
            0
        } else if name.contains("AES_256_GCM") {
            1
        } else {
            2
        }
    });
    provider
}

/// Every certificate in a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "error parsing X509 certificate/key pair: {}: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", path.display()));
    }
    Ok(certs)
}

/// Where a connection's TLS is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPhase {
    /// Nothing read yet; what the server writes goes out in plain text
    /// (the INFO, or nothing yet with `handshake_first`).
    AwaitingHello,
    /// The ClientHello arrived; the handshake is in progress.
    Handshaking,
    /// Handshake done: everything goes through the session.
    Established,
}

/// One connection's TLS state.
#[derive(Debug)]
pub struct TlsState {
    /// The rustls session: a server's for clients and accepted leaf
    /// links, a client's for leaf links natrium dials (`TlsState::client`).
    pub session: rustls::Connection,
    /// Where the connection is.
    pub phase: TlsPhase,
    /// The handshake must be complete by then.
    pub deadline: Instant,
    /// With `handshake_first` and a fallback: when to give up waiting for
    /// a ClientHello and send INFO in plain text.
    pub fallback_at: Option<Instant>,
    /// INFO is still owed (handshake first: sent once the handshake is done).
    pub info_owed: bool,
    /// Whether a close_notify has been queued.
    pub close_notified: bool,
    /// The names the client certificate offers (only with `verify_and_map`).
    pub peer_names: Vec<String>,
}

impl TlsState {
    /// A session for a new connection.
    pub fn new(
        config: &Arc<ServerConfig>,
        opts: &TlsOptions,
        now: Instant,
    ) -> Result<Self, String> {
        let session = rustls::Connection::Server(
            rustls::ServerConnection::new(config.clone()).map_err(|e| e.to_string())?,
        );
        let (info_owed, fallback_at, wait) = match opts.handshake_first {
            HandshakeFirst::Off => (false, None, Duration::ZERO),
            HandshakeFirst::On => (true, None, Duration::ZERO),
            HandshakeFirst::Fallback(d) => (true, Some(now + d), d),
        };
        Ok(TlsState {
            session,
            phase: TlsPhase::AwaitingHello,
            deadline: now + wait + opts.timeout(),
            fallback_at,
            info_owed,
            close_notified: false,
            peer_names: Vec::new(),
        })
    }

    /// A client session to `server_name` (a leaf link natrium dials): the
    /// handshake starts at once, everything written goes through it.
    pub fn client(
        config: &Arc<rustls::ClientConfig>,
        server_name: &str,
        timeout: Duration,
        now: Instant,
    ) -> Result<Self, String> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("TLS: invalid server name {server_name:?}: {e}"))?;
        let session = rustls::Connection::Client(
            rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?,
        );
        Ok(TlsState {
            session,
            phase: TlsPhase::Handshaking,
            deadline: now + timeout,
            fallback_at: None,
            info_owed: false,
            close_notified: false,
            peer_names: Vec::new(),
        })
    }

    /// The negotiated TLS version and cipher suite as nats-server's
    /// `/connz` names them (`"1.3"`, `"TLS_AES_128_GCM_SHA256"`), once the
    /// handshake is done.
    pub fn describe(&self) -> Option<(&'static str, &'static str)> {
        if self.phase != TlsPhase::Established {
            return None;
        }
        let version = match self.session.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "1.3",
            rustls::ProtocolVersion::TLSv1_2 => "1.2",
            _ => "unknown",
        };
        let suite = self.session.negotiated_cipher_suite()?.suite();
        // rustls writes TLS 1.3 suites as `TLS13_*`; Go as `TLS_*`.
        let name = match suite.as_str()? {
            "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
            "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
            "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
            other => other,
        };
        Some((version, name))
    }

    /// Whether bytes written now go out in plain text.
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.phase == TlsPhase::AwaitingHello
    }
}

/// Counts new connections per one-second window, as nats-server's
/// `connection_rate_limit` does: the handshakes run on the event loop, so
/// a flood of them would slow every client down.
#[derive(Debug, Default)]
pub struct RateCounter {
    /// Start of the current window.
    window: Option<Instant>,
    /// Connections counted in it.
    count: u64,
}

impl RateCounter {
    /// Counts one new connection at `now`; false when it is over `limit`
    /// in this second (a limit of 0 allows everything).
    pub fn allow(&mut self, limit: u64, now: Instant) -> bool {
        if limit == 0 {
            return true;
        }
        match self.window {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count <= limit
    }
}

/// Whether the first byte a client sent can start a TLS handshake.
#[inline]
pub fn looks_like_tls(first: u8) -> bool {
    first == TLS_HANDSHAKE_RECORD
}

/// The names a client certificate offers for `verify_and_map`, in the
/// order nats-server tries them: e-mail addresses, DNS names and URIs
/// from the subject alternative names, then the subject as an RFC 2253
/// string the way Go's `pkix.Name.ToRDNSequence().String()` writes it
/// (`CN=alice,OU=dev,O=Example,C=US`: standard attributes in Go's fixed
/// order, last first), then, when the certificate lists its attributes in
/// another order, the subject in the certificate's own order, last first
/// (nats-server also matches a DN in the order the certificate has it).
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut emails = Vec::new();
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::RFC822Name(s) => emails.push(s.to_string()),
                GeneralName::DNSName(s) => dns.push(s.to_string()),
                GeneralName::URI(s) => uris.push(s.to_string()),
                _ => {}
            }
        }
    }
    let mut names = emails;
    names.extend(dns);
    names.extend(uris);
    for subject in [
        go_subject(cert.subject()),
        cert_order_subject(cert.subject()),
    ] {
        if !subject.is_empty() && !names.contains(&subject) {
            names.push(subject);
        }
    }
    names
}

/// Short names of the attributes Go's `pkix.Name` knows, in the order
/// `ToRDNSequence` emits them, with whether only the last value counts.
const GO_NAME_ORDER: [(&str, &str, bool); 9] = [
    ("2.5.4.6", "C", false),
    ("2.5.4.8", "ST", false),
    ("2.5.4.7", "L", false),
    ("2.5.4.9", "STREET", false),
    ("2.5.4.17", "POSTALCODE", false),
    ("2.5.4.10", "O", false),
    ("2.5.4.11", "OU", false),
    ("2.5.4.3", "CN", true),
    ("2.5.4.5", "SERIALNUMBER", true),
];

/// The subject as Go's `pkix.Name.ToRDNSequence().String()` writes it.
fn go_subject(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut rdns: Vec<Vec<(&str, &str)>> = Vec::new();
    for (oid, short, single) in GO_NAME_ORDER {
        let mut values: Vec<(&str, &str)> = name
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok())
            .map(|v| (short, v))
            .collect();
        if single && values.len() > 1 {
            values.drain(..values.len() - 1);
        }
        if !values.is_empty() {
            rdns.push(values);
        }
    }
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (short, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            out.push_str(short);
            out.push('=');
            escape_dn_value(&mut out, value);
        }
    }
    out
}

/// The subject in the certificate's own attribute order, last first, with
/// Go's short names (other attributes as `oid=#<hex DER>`).
fn cert_order_subject(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attr.attr_type().to_id_string();
            let short = GO_NAME_ORDER
                .iter()
                .find(|(o, _, _)| *o == oid)
                .map(|(_, short, _)| *short);
            match (short, attr.as_str()) {
                (Some(short), Ok(value)) => {
                    out.push_str(short);
                    out.push('=');
                    escape_dn_value(&mut out, value);
                }
                _ => {
                    out.push_str(&oid);
                    out.push_str("=#");
                    for b in attr.attr_value().to_der_vec().unwrap_or_default() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
    }
    out
}

/// RFC 2253 escaping, as Go does it: `,+"\<>;` anywhere, `#` or a space
/// first, a space last.
fn escape_dn_value(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_der(params: rcgen::CertificateParams) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_in_nats_server_order() {
        let mut params = rcgen::CertificateParams::new(vec!["host.example".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "alice@example.com".try_into().unwrap(),
        ));
        params
            .subject_alt_names
            .push(rcgen::SanType::URI("nats://alice".try_into().unwrap()));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "dev");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let names = certificate_names(&cert_der(params));
        assert_eq!(
            names,
            vec![
                "alice@example.com".to_string(),
                "host.example".to_string(),
                "nats://alice".to_string(),
                "CN=alice,OU=dev,O=Example\\, Inc,C=US".to_string(),
            ]
        );
    }

    #[test]
    fn subject_in_go_order_and_in_certificate_order() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "bob");
        dn.push(rcgen::DnType::OrganizationName, "natrium-tests");
        params.distinguished_name = dn;
        let names = certificate_names(&cert_der(params));
        assert_eq!(
            names,
            vec![
                "CN=bob,O=natrium-tests".to_string(),
                "O=natrium-tests,CN=bob".to_string()
            ]
        );
    }

    #[test]
    fn garbage_has_no_names() {
        assert!(certificate_names(b"not a certificate").is_empty());
        assert!(certificate_names(&[]).is_empty());
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_dn_value(&mut s, "#a b ");
        assert_eq!(s, "\\#a b\\ ");
        s.clear();
        escape_dn_value(&mut s, " x<y>;z\"\\");
        assert_eq!(s, "\\ x\\<y\\>\\;z\\\"\\\\");
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let opts = TlsOptions {
            cert_file: Some(PathBuf::from("/nonexistent/cert.pem")),
            key_file: Some(PathBuf::from("/nonexistent/key.pem")),
            ..TlsOptions::default()
        };
        let err = opts.server_config().unwrap_err();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
        let none = TlsOptions::default().server_config().unwrap_err();
        assert!(none.contains("certificate"), "{none}");
    }

    #[test]
    fn aes_128_gcm_is_preferred() {
        let provider = server_provider();
        let names: Vec<&str> = provider
            .cipher_suites
            .iter()
            .filter_map(|s| s.suite().as_str())
            .collect();
        assert!(names[0].contains("AES_128_GCM"), "{names:?}");
        assert!(names.iter().any(|n| n.contains("CHACHA20")), "{names:?}");
        assert_eq!(
            names.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }

    #[test]
    fn rate_counter_windows() {
        let t0 = Instant::now();
        let mut r = RateCounter::default();
        assert!(r.allow(2, t0));
        assert!(r.allow(2, t0 + Duration::from_millis(10)));
        assert!(!r.allow(2, t0 + Duration::from_millis(20)));
        assert!(!r.allow(2, t0 + Duration::from_millis(999)));
        // A new second, a new window.
        assert!(r.allow(2, t0 + Duration::from_millis(1000)));
        assert!(r.allow(2, t0 + Duration::from_millis(1500)));
        assert!(!r.allow(2, t0 + Duration::from_millis(1600)));
        let mut unlimited = RateCounter::default();
        assert!((0..10_000).all(|_| unlimited.allow(0, t0)));
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(looks_like_tls(0x16));
        assert!(!looks_like_tls(b'C'));
        assert!(!looks_like_tls(b'P'));
    }
}
