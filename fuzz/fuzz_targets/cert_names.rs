//! Feeds arbitrary bytes to `natrium::tls::certificate_names`, which reads
//! the names a client certificate offers (`verify_and_map`) with
//! `x509-parser`. The bytes come from a peer's TLS handshake, after rustls
//! has verified the chain, but the function itself must not trust them.
//!
//! Checked for every input:
//! - nothing panics;
//! - once the bytes hold a certificate with names, bytes after its DER value
//!   do not change them (`parse_x509_certificate` ignores the rest). Only
//!   that direction: appended bytes may complete a truncated certificate.
//!
//! Not checked: that names are non-empty or distinct (a SAN may be an empty
//! or repeated string, and the function passes SANs through as they are).
//!
//! `seeds/cert_names` holds real DER certificates (made with `openssl req
//! -x509 ... -outform DER`): SANs of each kind, a multi-valued RDN,
//! attributes outside Go's list, characters that need escaping.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::tls::certificate_names;

fuzz_target!(|der: &[u8]| {
    let names = certificate_names(der);
    if names.is_empty() {
        return;
    }
    let mut extended = der.to_vec();
    extended.extend_from_slice(b"\x30\x00trailing");
    assert_eq!(certificate_names(&extended), names, "trailing bytes changed the names");
});
