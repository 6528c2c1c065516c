//! Certificates generated for the TLS tests: a CA, a server certificate
//! for `localhost`/127.0.0.1 signed by it, client certificates, and a
//! second CA whose certificates the server must refuse. Written as PEM
//! files into a fresh directory that is removed on drop.
//!
//! Include with `#[path = "common/certs.rs"] mod certs;`.

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

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
