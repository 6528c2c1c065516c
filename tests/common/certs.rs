//! Certificates generated for the TLS tests: a CA, a server certificate
//! for `localhost`/127.0.0.1 signed by it, client certificates, and a
//! second CA whose certificates the server must refuse. Written as PEM
//! files into a fresh directory that is removed on drop.
//!
//! Also a blocking rustls client that connects the NATS way (plain INFO,
//! then the handshake on the same socket), to check exact bytes.
//!
//! Include with `#[path = "common/certs.rs"] mod certs;` next to `mod common;`.

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::TestServer;

/// A certificate and its key, as PEM files.
pub struct Pair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl Pair {
    /// The certificate path as a string.
    pub fn cert_arg(&self) -> &str {
        self.cert.to_str().expect("utf-8 path")
    }

    /// The key path as a string.
    pub fn key_arg(&self) -> &str {
        self.key.to_str().expect("utf-8 path")
    }
}

/// A CA that signs certificates into a directory.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM).
    pub cert: PathBuf,
    dir: PathBuf,
    name: String,
}

impl Ca {
    /// A new self-signed CA named `name`, its files under `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cert = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert, issuer.pem()).unwrap();
        Ca {
            issuer,
            cert,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// The CA path as a string.
    pub fn cert_arg(&self) -> &str {
        self.cert.to_str().expect("utf-8 path")
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Pair {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, "natrium test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, "server")
    }

    /// A client certificate with subject `CN=<cn>,O=natrium-tests` and,
    /// if given, an e-mail address in its alternative names.
    pub fn client(&self, cn: &str, email: Option<&str>) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "natrium-tests");
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(email) = email {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.try_into().unwrap()));
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, &format!("client-{cn}"))
    }

    fn sign(&self, params: CertificateParams, tag: &str) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair {
            cert: self.dir.join(format!("{}-{tag}.pem", self.name)),
            key: self.dir.join(format!("{}-{tag}-key.pem", self.name)),
        };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }
}

/// A fresh directory for one test's certificates, removed on drop.
pub struct CertDir {
    /// Where it is.
    pub path: PathBuf,
}

impl CertDir {
    /// Creates a directory named after `tag`, the process and a counter.
    pub fn new(tag: &str) -> CertDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("natrium-certs-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        CertDir { path }
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A rustls client configuration trusting `ca`, presenting `client` if given.
pub fn client_config(ca: &Path, client: Option<&Pair>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some(pair) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&pair.cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&pair.key).unwrap(),
            )
            .unwrap(),
    })
}

/// A blocking TLS connection to natrium.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Reads from a TLS stream up to and including `end` (bounded by the
/// socket's read timeout).
pub fn tls_read_until(stream: &mut TlsStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 16384];
    while !got.windows(end.len()).any(|w| w == end) {
        let n = stream.read(&mut chunk).expect("TLS read (timeout?)");
        assert!(
            n > 0,
            "TLS stream ended; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

/// The NATS way by hand: plain INFO, then the handshake on the same socket
/// (it happens on the first write or read). Returns the stream and the INFO.
pub fn raw_tls(server: &TestServer, ca: &Path) -> (TlsStream, serde_json::Value) {
    let (conn, info) = server.raw_with_info();
    let config = client_config(ca, None);
    let session =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    (rustls::StreamOwned::new(session, conn.stream), info)
}
