//! TLS, black-box: certificates generated per test (tests/common/certs.rs),
//! the real `async-nats` client connecting as it would to nats-server
//! (with and without a client certificate, handshake first), a raw rustls
//! client checking the exact bytes, and the refusals: a wrong CA, a
//! missing client certificate, a plain-text client, a handshake that never
//! starts, one that stalls halfway, and unreadable certificate files.

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/nats.rs"]
mod nats;

use std::io::{Read, Write};
use std::time::Duration;

use async_nats::ConnectOptions;
use certs::{Ca, CertDir, Pair, raw_tls, tls_read_until};
use common::{Conn, TempConf, TestServer, run_natrium};
use nats::{assert_works, next, opts, publish, subscribe, sync, within};

/// A CA, a server certificate it signed, and a server using them.
struct Setup {
    _dir: CertDir,
    ca: Ca,
    dir_path: std::path::PathBuf,
    server: TestServer,
    _conf: TempConf,
}

/// Starts natrium with `tls { cert_file, key_file, <extra> }` and `rest`
/// (more top-level configuration).
fn start(tag: &str, extra: &str, rest: &str) -> Setup {
    let dir = CertDir::new(tag);
    let ca = Ca::new(&dir.path, "good");
    let server_pair = ca.server();
    let conf = TempConf::new(
        tag,
        &format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  {extra}\n}}\n{rest}\n",
            server_pair.cert_arg(),
            server_pair.key_arg(),
            ca.cert_arg()
        ),
    );
    let server = TestServer::start(&["-c", conf.arg()]);
    Setup {
        dir_path: dir.path.clone(),
        _dir: dir,
        ca,
        server,
        _conf: conf,
    }
}

/// async-nats options that trust `ca` and require TLS.
fn tls_opts(ca: &Ca) -> ConnectOptions {
    opts()
        .require_tls(true)
        .add_root_certificates(ca.cert.clone())
}

/// [`tls_opts`] that also present `client`'s certificate.
fn tls_opts_with_cert(ca: &Ca, client: &Pair) -> ConnectOptions {
    tls_opts(ca).add_client_certificate(client.cert.clone(), client.key.clone())
}

async fn connect(server: &TestServer, options: ConnectOptions) -> async_nats::Client {
    within("tls connect", options.connect(server.addr.to_string()))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "TLS connect to {} failed: {e}; log: {:#?}",
                server.addr,
                server.log_lines()
            )
        })
}

async fn refused(server: &TestServer, options: ConnectOptions, what: &str) -> String {
    match within(what, options.connect(server.addr.to_string())).await {
        Ok(_) => panic!("{what}: connect unexpectedly succeeded"),
        Err(e) => e.to_string(),
    }
}

// ----- tests -----

#[tokio::test]
async fn async_nats_connects_over_tls_and_messages_flow() {
    let s = start("tls-basic", "", "");
    let a = connect(&s.server, tls_opts(&s.ca)).await;
    assert!(a.server_info().tls_required);
    let b = connect(&s.server, tls_opts(&s.ca)).await;
    let mut sub = subscribe(&b, "tls.greeting").await;
    sync(&b).await;
    publish(&a, "tls.greeting", "hello over TLS").await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"hello over TLS");
    // Request/reply works across two TLS clients too.
    let mut service = subscribe(&b, "tls.svc").await;
    sync(&b).await;
    let responder = b.clone();
    let serve = tokio::spawn(async move {
        let req = next(&mut service).await;
        responder
            .publish(req.reply.unwrap(), "pong".into())
            .await
            .unwrap();
        responder.flush().await.unwrap();
    });
    let reply = within("request", a.request("tls.svc", "ping".into()))
        .await
        .unwrap();
    assert_eq!(reply.payload.as_ref(), b"pong");
    within("responder", serve).await.unwrap();
}

#[tokio::test]
async fn large_messages_cross_tls_intact_and_in_order() {
    // Bigger than rustls's buffers and a TLS record: exercises partial
    // writes, buffered plaintext and records split across reads.
    let s = start("tls-large", "", "max_payload: 1MB");
    let a = connect(&s.server, tls_opts(&s.ca)).await;
    let b = connect(&s.server, tls_opts(&s.ca)).await;
    let mut sub = subscribe(&b, "tls.big").await;
    sync(&b).await;
    let payload = |i: u32| -> Vec<u8> {
        (0..200_000u32)
            .map(|j| (j.wrapping_mul(31).wrapping_add(i) % 251) as u8)
            .collect()
    };
    for i in 0..40 {
        publish(&a, "tls.big", payload(i)).await;
    }
    for i in 0..40 {
        let m = next(&mut sub).await;
        assert!(
            m.payload.as_ref() == payload(i).as_slice(),
            "message {i} differs"
        );
    }
}

#[test]
fn the_nats_way_byte_for_byte() {
    let s = start("tls-raw", "", "");
    let (mut tls, info) = raw_tls(&s.server, &s.ca.cert);
    assert_eq!(info["tls_required"], true);
    assert!(info.get("tls_verify").is_none());
    tls.write_all(b"CONNECT {\"verbose\":true,\"tls_required\":true}\r\n")
        .unwrap();
    assert_eq!(tls_read_until(&mut tls, b"\r\n"), b"+OK\r\n");
    tls.write_all(b"SUB t.x 7\r\nPUB t.x 5\r\nhello\r\nPING\r\n")
        .unwrap();
    assert_eq!(
        tls_read_until(&mut tls, b"PONG\r\n"),
        b"+OK\r\n+OK\r\nMSG t.x 7 5\r\nhello\r\nPONG\r\n"
    );
    // An error arrives inside TLS, and the server closes with close_notify.
    tls.write_all(b"FOO\r\n").unwrap();
    assert_eq!(
        tls_read_until(&mut tls, b"\r\n"),
        b"-ERR 'Unknown Protocol Operation'\r\n"
    );
    let mut rest = Vec::new();
    match tls.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{rest:?}"),
        Err(e) => panic!("expected a clean TLS close, got {e}"),
    }
}

#[test]
fn a_plain_text_client_gets_nats_servers_error() {
    let s = start("tls-plain", "", "");
    let (mut c, info) = s.server.raw_with_info();
    assert_eq!(info["tls_required"], true);
    c.send(b"CONNECT {}\r\nPING\r\n");
    c.expect_err("Secure Connection - TLS Required");
    c.expect_eof();
    // The server is still there for TLS clients.
    let (mut tls, _) = raw_tls(&s.server, &s.ca.cert);
    tls.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut tls, b"PONG\r\n"), b"PONG\r\n");
}

#[test]
fn a_handshake_that_never_starts_times_out_with_the_error() {
    let s = start("tls-silent", "timeout: 0.5", "");
    let mut c = s.server.raw();
    c.expect_err("Secure Connection - TLS Required");
    c.expect_eof();
    assert!(
        s.server.wait_for_log("TLS handshake timeout").is_some(),
        "{:?}",
        s.server.log_lines()
    );
}

#[test]
fn a_handshake_stalled_halfway_does_not_hold_the_slot() {
    let s = start("tls-stalled", "timeout: 0.5", "");
    let mut c = s.server.raw();
    // The first bytes of a TLS record header, then nothing.
    c.send(&[0x16, 0x03, 0x01, 0x00]);
    // Closed without a word: plain text now would corrupt the handshake.
    c.expect_eof();
    assert!(s.server.wait_for_log("TLS handshake timeout").is_some());
    assert!(s.server.wait_until_empty(), "{:?}", s.server.log_lines());
}

#[test]
fn garbage_after_a_tls_record_header_closes_only_that_connection() {
    let s = start("tls-garbage", "", "");
    let mut c = s.server.raw();
    let mut junk = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    junk.extend_from_slice(&[0xAB; 32]);
    c.send(&junk);
    // rustls answers with an alert record (binary), then the socket closes.
    let mut rest = Vec::new();
    let _ = c.stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || rest[0] == 0x15,
        "expected nothing or a TLS alert, got {rest:?}"
    );
    let (mut tls, _) = raw_tls(&s.server, &s.ca.cert);
    tls.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut tls, b"PONG\r\n"), b"PONG\r\n");
}

#[tokio::test]
async fn verify_requires_a_client_certificate_from_the_ca() {
    let s = start("tls-verify", "verify: true", "");
    let alice = s.ca.client("alice", None);
    let client = connect(&s.server, tls_opts_with_cert(&s.ca, &alice)).await;
    assert!(client.server_info().tls_required);
    assert_works(&client, "v.alice").await;

    let err = refused(&s.server, tls_opts(&s.ca), "no client certificate").await;
    assert!(!err.is_empty());

    let other = Ca::new(&s.dir_path, "other");
    let mallory = other.client("mallory", None);
    refused(
        &s.server,
        tls_opts_with_cert(&s.ca, &mallory),
        "a certificate from another CA",
    )
    .await;
    // The refusals did not disturb the accepted client.
    assert_works(&client, "v.alice.after").await;
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_refuses_the_server() {
    let s = start("tls-wrong-root", "", "");
    let dir = CertDir::new("tls-wrong-root-client");
    let other = Ca::new(&dir.path, "elsewhere");
    refused(
        &s.server,
        tls_opts(&other),
        "server cert from an unknown CA",
    )
    .await;
    // And natrium is fine afterwards.
    let ok = connect(&s.server, tls_opts(&s.ca)).await;
    assert_works(&ok, "after.bad.client").await;
}

#[tokio::test]
async fn verify_and_map_logs_in_as_the_certificate_user() {
    let s = start(
        "tls-map",
        "verify_and_map: true",
        "authorization { users: [\n  {user: \"alice@example.com\", permissions: {publish: [\"alice.>\", \"sync.>\"], subscribe: [\"alice.>\", \"_INBOX.>\"]}}\n  {user: \"CN=bob,O=natrium-tests\"}\n] }",
    );
    // Mapped by the e-mail address in the certificate.
    let alice_pair = s.ca.client("alice", Some("alice@example.com"));
    let alice = connect(&s.server, tls_opts_with_cert(&s.ca, &alice_pair)).await;
    assert_works(&alice, "alice.x").await;
    // Her permissions apply: a publish elsewhere is a violation.
    publish(&alice, "bob.x", "no").await;
    sync(&alice).await;
    assert!(
        s.server
            .wait_for_log("Publish Violation - User \"alice@example.com\"")
            .is_some(),
        "{:?}",
        s.server.log_lines()
    );

    // Mapped by the subject, as RFC 2253 (what CONNECT says is ignored).
    let bob_pair = s.ca.client("bob", None);
    let bob = connect(
        &s.server,
        tls_opts_with_cert(&s.ca, &bob_pair).user_and_password("nobody".into(), "x".into()),
    )
    .await;
    assert_works(&bob, "anything.at.all").await;

    // A valid certificate that names no configured user is refused.
    let carol_pair = s.ca.client("carol", None);
    let err = refused(
        &s.server,
        tls_opts_with_cert(&s.ca, &carol_pair),
        "an unmapped certificate",
    )
    .await;
    assert!(err.to_lowercase().contains("authorization"), "{err}");
}

#[tokio::test]
async fn handshake_first_sends_info_inside_tls() {
    let s = start("tls-first", "handshake_first: true", "");
    let client = connect(&s.server, tls_opts(&s.ca).tls_first()).await;
    assert!(client.server_info().tls_required);
    assert_works(&client, "first.x").await;

    // Nothing arrives in plain text before the handshake.
    let mut c = Conn::connect(s.server.addr);
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    match c.stream.read(&mut byte) {
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Ok(n) => panic!("expected silence before the handshake, read {n} byte(s): {byte:?}"),
    }
}

#[tokio::test]
async fn handshake_first_with_a_fallback_serves_both_kinds_of_client() {
    // A whole second: a loaded machine must not delay the first client's
    // ClientHello past the fallback (it would then see a plain INFO).
    let s = start("tls-fallback", "handshake_first: \"1s\"", "");
    let first = connect(&s.server, tls_opts(&s.ca).tls_first()).await;
    assert_works(&first, "fb.first").await;
    // A client that waits for INFO gets it in plain text after the delay.
    let classic = connect(&s.server, tls_opts(&s.ca)).await;
    assert_works(&classic, "fb.classic").await;
}

#[test]
fn flags_enable_tls() {
    let dir = CertDir::new("tls-flags");
    let ca = Ca::new(&dir.path, "flags");
    let pair = ca.server();
    let server = TestServer::start(&[
        "--tls",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        pair.key_arg(),
    ]);
    let (mut tls, info) = raw_tls(&server, &ca.cert);
    assert_eq!(info["tls_required"], true);
    tls.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut tls, b"PONG\r\n"), b"PONG\r\n");

    let verifying = TestServer::start(&[
        "--tlsverify",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        pair.key_arg(),
        "--tlscacert",
        ca.cert_arg(),
    ]);
    let (_c, info) = verifying.raw_with_info();
    assert_eq!(info["tls_verify"], true);
}

#[test]
fn unreadable_certificates_stop_the_server_with_exit_code_2() {
    let out = run_natrium(&[
        "-p",
        "-1",
        "--tls",
        "--tlscert",
        "/nonexistent/natrium-cert.pem",
        "--tlskey",
        "/nonexistent/natrium-key.pem",
    ]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent/natrium-cert.pem"),
        "{out:?}"
    );

    let dir = CertDir::new("tls-bad-key");
    let ca = Ca::new(&dir.path, "k");
    let pair = ca.server();
    let check = run_natrium(&[
        "-t",
        "--tls",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        ca.cert_arg(),
    ]);
    assert_eq!(check.code, Some(2), "a certificate is not a key: {check:?}");

    let missing_key = run_natrium(&["-t", "--tlscert", pair.cert_arg()]);
    assert_eq!(missing_key.code, Some(2), "{missing_key:?}");
    assert!(
        missing_key.stderr.contains("private key"),
        "{missing_key:?}"
    );
}

#[test]
fn a_tls_subscriber_that_stops_reading_is_cut_off_as_a_slow_consumer() {
    // rustls holds at most its own buffer limit; past that, output waits
    // in the client's buffer and max_pending applies as without TLS.
    let s = start("tls-slow", "", "max_pending: 256KB\nmax_payload: 64KB");
    let (mut sleeper, _) = raw_tls(&s.server, &s.ca.cert);
    sleeper
        .write_all(b"CONNECT {\"verbose\":false}\r\nSUB slow.x 1\r\nPING\r\n")
        .unwrap();
    assert_eq!(tls_read_until(&mut sleeper, b"PONG\r\n"), b"PONG\r\n");
    let (mut publisher, _) = raw_tls(&s.server, &s.ca.cert);
    publisher
        .write_all(b"CONNECT {\"verbose\":false}\r\n")
        .unwrap();
    let mut batch = Vec::new();
    for _ in 0..16 {
        batch.extend_from_slice(b"PUB slow.x 8192\r\n");
        batch.extend_from_slice(&[b's'; 8192]);
        batch.extend_from_slice(b"\r\n");
    }
    // Bounded: at most 400 rounds of 128 KiB.
    let mut detected = false;
    for _ in 0..400 {
        publisher.write_all(&batch).unwrap();
        publisher.write_all(b"PING\r\n").unwrap();
        assert_eq!(tls_read_until(&mut publisher, b"PONG\r\n"), b"PONG\r\n");
        if s.server
            .log_lines()
            .iter()
            .any(|l| l.contains("Slow Consumer Detected"))
        {
            detected = true;
            break;
        }
    }
    assert!(detected, "{:?}", s.server.log_lines());
    // The publisher goes on; the sleeper's connection is gone.
    publisher.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut publisher, b"PONG\r\n"), b"PONG\r\n");
    let mut sink = vec![0u8; 1 << 16];
    let ended = (0..10_000).any(|_| !matches!(sleeper.read(&mut sink), Ok(n) if n > 0));
    assert!(ended, "the slow consumer's connection stayed open");
}

/// Rewrites the configuration file with `text`, sends SIGHUP, and waits
/// until the server has logged `n` reloads.
fn reload(s: &Setup, text: &str, n: usize) {
    std::fs::write(&s._conf.path, text).unwrap();
    s.server.signal("HUP");
    assert!(
        s.server
            .wait_for_log_count("Reloaded server configuration", n),
        "{:?}",
        s.server.log_lines()
    );
}

#[test]
fn a_reload_switches_certificates_for_new_connections() {
    let s = start("tls-reload", "", "");
    let (mut old, _) = raw_tls(&s.server, &s.ca.cert);
    old.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut old, b"PONG\r\n"), b"PONG\r\n");

    let next = Ca::new(&s.dir_path, "next");
    let next_server = next.server();
    reload(
        &s,
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
            next_server.cert_arg(),
            next_server.key_arg()
        ),
        1,
    );
    // New connections get the new certificate...
    let (mut fresh, _) = raw_tls(&s.server, &next.cert);
    fresh.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut fresh, b"PONG\r\n"), b"PONG\r\n");
    // ...so a client trusting only the old CA now fails its handshake.
    let (mut stale, _) = raw_tls(&s.server, &s.ca.cert);
    assert!(stale.write_all(b"PING\r\n").is_err() || stale.read(&mut [0u8; 16]).is_err());
    // The connection made before the reload goes on.
    old.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut old, b"PONG\r\n"), b"PONG\r\n");

    // A reload naming a missing certificate keeps the running TLS settings.
    reload(
        &s,
        "tls { cert_file: \"/nonexistent/c.pem\", key_file: \"/nonexistent/k.pem\" }\n",
        2,
    );
    assert!(
        s.server
            .wait_for_log("keeping the running TLS settings")
            .is_some()
    );
    let (mut still, _) = raw_tls(&s.server, &next.cert);
    still.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut still, b"PONG\r\n"), b"PONG\r\n");
}

#[test]
fn tls_clients_that_vanish_at_every_stage_leave_nothing_behind() {
    let s = start("tls-churn", "", "");
    for round in 0..10 {
        // Gone before saying anything.
        drop(s.server.raw());
        // Gone halfway through a ClientHello.
        let mut half = s.server.raw();
        half.send(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);
        drop(half);
        // Gone right after the handshake, without close_notify.
        let (mut done, _) = raw_tls(&s.server, &s.ca.cert);
        done.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
            .unwrap();
        assert_eq!(tls_read_until(&mut done, b"PONG\r\n"), b"PONG\r\n");
        drop(done);
        // Gone with a subscription and a message in flight, with close_notify.
        let (mut polite, _) = raw_tls(&s.server, &s.ca.cert);
        polite
            .write_all(
                format!("SUB churn.{round} 1\r\nPUB churn.{round} 2\r\nhi\r\nPING\r\n").as_bytes(),
            )
            .unwrap();
        let got = tls_read_until(&mut polite, b"PONG\r\n");
        assert!(got.ends_with(b"PONG\r\n"), "{got:?}");
        polite.conn.send_close_notify();
        polite.flush().unwrap();
        drop(polite);
    }
    assert!(s.server.wait_until_empty(), "{:?}", s.server.log_lines());
    // And the server still serves.
    let (mut last, _) = raw_tls(&s.server, &s.ca.cert);
    last.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut last, b"PONG\r\n"), b"PONG\r\n");
}

#[test]
fn a_certificate_renewed_in_place_is_picked_up_on_reload() {
    let s = start("tls-rotate", "", "");
    let text = std::fs::read_to_string(&s._conf.path).unwrap();
    // Renew: new files at the same paths, the configuration unchanged.
    let renewed_ca = Ca::new(&s.dir_path, "renewed");
    let renewed = renewed_ca.server();
    std::fs::copy(&renewed.cert, s.dir_path.join("good-server.pem")).unwrap();
    std::fs::copy(&renewed.key, s.dir_path.join("good-server-key.pem")).unwrap();
    assert!(text.contains("good-server.pem"), "{text}");
    reload(&s, &text, 1);
    assert!(
        s.server
            .wait_for_log("TLS certificates read again")
            .is_some()
    );
    let (mut fresh, _) = raw_tls(&s.server, &renewed_ca.cert);
    fresh.write_all(b"PING\r\n").unwrap();
    assert_eq!(tls_read_until(&mut fresh, b"PONG\r\n"), b"PONG\r\n");
}

#[test]
fn connections_over_the_tls_rate_limit_are_throttled() {
    let s = start("tls-rate", "connection_rate_limit: 2", "");
    // Connections in quick succession: within any one second only two get
    // a handshake; the others get nats-server's refusal in plain text,
    // after INFO. Bounded: at most 50 attempts.
    let mut throttled = None;
    for _ in 0..50 {
        let mut c = std::net::TcpStream::connect(s.server.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        // A throttled connection gets INFO and the refusal at once, then
        // EOF; an accepted one gets INFO and waits silently for the
        // ClientHello (the read times out).
        while let Ok(n) = c.read(&mut chunk) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let (info, rest) = text.split_once("\r\n").expect("an INFO line");
        assert!(info.starts_with("INFO {") && info.contains("\"tls_required\":true"));
        if !rest.is_empty() {
            throttled = Some(rest.to_string());
            break;
        }
    }
    let got = throttled.expect("some connection was throttled");
    assert_eq!(
        got,
        "-ERR 'Connection throttling is active. Please try again later.'\r\n"
    );
    // Once the one-second window has passed, a handshake works again:
    // poll (at most 10 s) until one does.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (mut tls, _) = raw_tls(&s.server, &s.ca.cert);
        if tls.write_all(b"PING\r\n").is_ok() && tls.read(&mut [0u8; 16]).is_ok_and(|n| n > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no handshake allowed again within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
