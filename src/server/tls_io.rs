//! Reading from TLS clients: the first byte decides between a TLS client
//! and a plain-text one (refused with nats-server's error), ciphertext is
//! fed to the rustls session straight from the socket, and the plaintext
//! it yields goes to the same parser and dispatch as a plain connection's.
//! Also the end of the handshake (INFO owed with `handshake_first`, the
//! certificate's names for `verify_and_map`) and the handshake timers.

use super::{READ_BUDGET, READ_SIZE, Server};
use crate::protocol::error::ProtoError;
use crate::server::client::CloseReason;
use crate::tls::{TlsPhase, certificate_names, looks_like_tls};
use log::debug;
use std::io::{self, Read};
use std::time::Instant;

/// What the first bytes of a connection said.
enum Hello {
    /// A TLS record: go on with the handshake.
    Tls,
    /// Something else: a plain-text client.
    Plain,
    /// Nothing to read yet.
    Nothing,
    /// End of stream or an error: let the read below report it.
    Eof,
}

impl Server {
    /// Reads a TLS client until `WouldBlock`, its budget, or its end.
    pub(super) fn read_tls_client(&mut self, key: usize) {
        if self.plain_buf.is_empty() {
            self.plain_buf = vec![0; READ_SIZE];
        }
        // Plaintext a stall or a parked CONNECT left in the session first.
        if !self.drain_plaintext(key) {
            return;
        }
        for _ in 0..READ_BUDGET {
            let Some(client) = self.clients.get_mut(key) else {
                return;
            };
            if client.read_stalled || client.pending_connect.is_some() {
                return;
            }
            let closing = client.is_closing();
            let cid = client.cid;
            let Some(tls) = client.tls.as_deref_mut() else {
                return;
            };
            if tls.phase == TlsPhase::AwaitingHello && !closing {
                match peek_hello(&client.stream) {
                    Hello::Tls => {
                        tls.phase = TlsPhase::Handshaking;
                        tls.fallback_at = None;
                    }
                    Hello::Plain => {
                        debug!(
                            "{} not a TLS handshake: refusing a plain-text client",
                            client.describe()
                        );
                        // The error goes out in plain text: the session never started.
                        client.tls = None;
                        self.on_error(key, ProtoError::SecureConnectionRequired);
                        return;
                    }
                    Hello::Nothing => return,
                    Hello::Eof => {}
                }
            }
            match tls.session.read_tls(&mut client.stream) {
                Ok(0) => {
                    self.read_eof(key);
                    return;
                }
                Ok(_) => {
                    let processed = tls.session.process_new_packets();
                    if closing {
                        // Discard what a closing client still sends.
                        let mut sink = [0u8; 4096];
                        while matches!(tls.session.reader().read(&mut sink), Ok(n) if n > 0) {}
                        if processed.is_err() {
                            self.remove_client(key);
                            return;
                        }
                        continue;
                    }
                    client.active = true;
                    client.busy = true;
                    if let Err(e) = processed {
                        let established = tls.phase == TlsPhase::Established;
                        debug!(
                            "cid:{cid} TLS {} error: {e}",
                            if established { "stream" } else { "handshake" }
                        );
                        // Best effort: the alert rustls queued tells the
                        // client why.
                        let _ = tls.session.write_tls(&mut client.stream);
                        self.begin_close(
                            key,
                            if established {
                                CloseReason::ProtocolViolation
                            } else {
                                CloseReason::TlsHandshake
                            },
                        );
                        return;
                    }
                    if tls.phase == TlsPhase::Handshaking && !tls.session.is_handshaking() {
                        self.tls_established(key);
                    }
                    if self
                        .clients
                        .get(key)
                        .and_then(|c| c.tls.as_ref())
                        .is_some_and(|t| t.session.wants_write())
                    {
                        self.mark_dirty(key);
                    }
                    if !self.drain_plaintext(key) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.read_failed(key, &e);
                    return;
                }
            }
        }
        self.readable_backlog.push(key);
    }

    /// Hands the session's decrypted bytes to the parser. Returns false
    /// when reading must stop: the client is closing, its reads are paused
    /// (what is left stays in the session), or it sent close_notify.
    fn drain_plaintext(&mut self, key: usize) -> bool {
        loop {
            let Some(client) = self.clients.get_mut(key) else {
                return false;
            };
            if client.is_closing() {
                return false;
            }
            if client.read_stalled || client.pending_connect.is_some() {
                return false;
            }
            let Some(tls) = client.tls.as_deref_mut() else {
                return true;
            };
            let mut buf = std::mem::take(&mut self.plain_buf);
            let read = tls.session.reader().read(&mut buf);
            match read {
                Ok(0) => {
                    self.plain_buf = buf;
                    // close_notify: the client is done sending.
                    self.begin_close(key, CloseReason::ClientClosed);
                    return false;
                }
                Ok(n) => {
                    self.ingest(key, &buf[..n]);
                    self.plain_buf = buf;
                    if let Some(subscriber) = self.stall_reader.take() {
                        self.stall(key, subscriber);
                        return false;
                    }
                }
                Err(e) => {
                    self.plain_buf = buf;
                    if e.kind() == io::ErrorKind::WouldBlock {
                        return true;
                    }
                    // The socket ended without close_notify.
                    debug!("cid:{} TLS read: {e}", client.cid);
                    self.begin_close(key, CloseReason::ClientClosed);
                    return false;
                }
            }
        }
    }

    /// The handshake just completed: note the certificate's names for
    /// `verify_and_map`, and send INFO if it was held back for it.
    fn tls_established(&mut self, key: usize) {
        let map = self.config.auth.cert_map;
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let cid = client.cid;
        let Some(tls) = client.tls.as_deref_mut() else {
            return;
        };
        tls.phase = TlsPhase::Established;
        debug!(
            "cid:{cid} TLS handshake complete ({:?}, {:?})",
            tls.session.protocol_version(),
            tls.session.negotiated_cipher_suite().map(|s| s.suite())
        );
        if map && let Some(cert) = tls.session.peer_certificates().and_then(|c| c.first()) {
            tls.peer_names = certificate_names(cert);
            debug!("cid:{cid} client certificate names: {:?}", tls.peer_names);
        }
        if std::mem::take(&mut tls.info_owed) {
            let ip = client.addr.ip().to_string();
            self.info
                .push(&mut client.out, client.cid, &ip, client.nonce.as_deref());
            self.mark_dirty(key);
        }
    }

    /// TLS timers for one client (from housekeeping): with a fallback,
    /// INFO in plain text when no ClientHello came in time; and the
    /// handshake timeout. Returns the error to close with, if any.
    pub(super) fn tls_timers(&mut self, key: usize, now: Instant) -> Option<Timeout> {
        let client = self.clients.get_mut(key)?;
        let cid = client.cid;
        let tls = client.tls.as_deref_mut()?;
        if tls.phase == TlsPhase::Established {
            return None;
        }
        if tls.phase == TlsPhase::AwaitingHello && tls.fallback_at.is_some_and(|t| now >= t) {
            // No ClientHello within the delay: go on the NATS way.
            tls.fallback_at = None;
            tls.info_owed = false;
            let ip = client.addr.ip().to_string();
            self.info
                .push(&mut client.out, client.cid, &ip, client.nonce.as_deref());
            self.mark_dirty(key);
            return None;
        }
        if now < tls.deadline {
            return None;
        }
        debug!("cid:{cid} TLS handshake timeout");
        Some(if tls.phase == TlsPhase::AwaitingHello {
            // Nothing TLS came at all: say so in plain text.
            Timeout::NoHandshake
        } else {
            Timeout::Handshake
        })
    }
}

/// Why a TLS handshake timer fired.
pub(super) enum Timeout {
    /// The client never started TLS: `-ERR 'Secure Connection - TLS Required'`.
    NoHandshake,
    /// The handshake started but did not finish: closed without a word
    /// (anything written now would corrupt it).
    Handshake,
}

/// Looks at the first byte without consuming it.
fn peek_hello(stream: &mio::net::TcpStream) -> Hello {
    let mut first = [0u8; 1];
    loop {
        return match stream.peek(&mut first) {
            Ok(0) => Hello::Eof,
            Ok(_) if looks_like_tls(first[0]) => Hello::Tls,
            Ok(_) => Hello::Plain,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Hello::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Hello::Eof,
        };
    }
}
