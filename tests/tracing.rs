//! Seeing what happens (issue 11, section 3): `-V` traces both directions
//! as nats-server does (control lines, payloads cut at
//! `max_traced_msg_len`, passwords redacted), `-D`/`-V` show natrium's own
//! lines and not rustls's, and input that does not parse is logged at the
//! default level with the client's id and the offending bytes.

#[path = "common/certs.rs"]
mod certs;
mod common;

use certs::{Ca, CertDir, raw_tls, tls_read_until};
use common::TestServer;
use std::io::Write;

/// Waits for a trace line of client `cid` that contains `tail`.
fn traced(server: &TestServer, cid: u64, tail: &str) -> String {
    let who = format!("cid:{cid} ");
    server
        .wait_for_log_where(|l| l.contains("[TRC]") && l.contains(&who) && l.contains(tail))
        .unwrap_or_else(|| panic!("no trace {tail:?}; log: {:#?}", server.log_lines()))
}

#[test]
fn trace_shows_both_directions_with_payloads() {
    let server = TestServer::start(&[
        "-V",
        "--max_traced_msg_len",
        "4",
        "--user",
        "u",
        "--pass",
        "s3cr3t",
    ]);
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"s3cr3t\"}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPUB a 6\r\nhello!\r\nPING\r\n");
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 2);
    traced(&server, cid, "- ->> [INFO {");
    let connect = traced(&server, cid, "}]");
    assert!(
        connect.contains("<<- [CONNECT {") && connect.contains("\"pass\":\"[REDACTED]\""),
        "{connect}"
    );
    traced(&server, cid, "<<- [SUB a 1]");
    traced(&server, cid, "<<- [PUB a 2]");
    traced(&server, cid, "<<- MSG_PAYLOAD: [\"hi\"]");
    traced(&server, cid, "<<- MSG_PAYLOAD: [\"hell...\"]");
    traced(&server, cid, "<<- [PING]");
    traced(&server, cid, "->> [MSG a 1 2]");
    traced(&server, cid, "->> MSG_PAYLOAD: [\"hi\"]");
    traced(&server, cid, "->> [MSG a 1 6]");
    traced(&server, cid, "->> MSG_PAYLOAD: [\"hell...\"]");
    traced(&server, cid, "->> [PONG]");
    assert!(
        server.log_lines().iter().all(|l| !l.contains("s3cr3t")),
        "the password is never logged"
    );
}

#[test]
fn headers_and_errors_are_traced_too() {
    let server = TestServer::start(&["-VV"]);
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB h 1\r\nHPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n");
    c.msgs_until_pong();
    traced(&server, cid, "<<- [HPUB h 12 14]");
    traced(
        &server,
        cid,
        "<<- MSG_PAYLOAD: [\"NATS/1.0\\r\\n\\r\\nhi\"]",
    );
    traced(&server, cid, "->> [HMSG h 1 12 14]");
    // The last words before a close are traced as well.
    c.send(b"SUB\r\n");
    traced(&server, cid, "->> [-ERR 'Unknown Protocol Operation']");
}

#[test]
fn protocol_errors_are_logged_with_the_client_and_the_bytes() {
    // Not even -D: the default level shows it.
    let server = TestServer::start_at_default_level();
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"SUB foo\r\n");
    c.drain_to_eof(4096);
    let line = server
        .wait_for_log("Client parser ERROR")
        .expect("the parse error is logged");
    assert!(line.contains("[ERR]"), "{line}");
    assert!(line.contains(&format!("cid:{cid} ")), "{line}");
    assert!(line.ends_with("proto='\"SUB foo\\r\\n\"'"), "{line}");
    // Long input is cut, control bytes escaped.
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"\x01\x02XYZ aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    c.drain_to_eof(4096);
    let line = server
        .wait_for_log_where(|l| {
            l.contains("Client parser ERROR") && l.contains(&format!("cid:{cid} "))
        })
        .unwrap();
    assert!(
        line.ends_with("proto='\"\\x01\\x02XYZ aaaaaaaaaaaaaaaaaaaaaaaaaa\"...'"),
        "{line}"
    );
}

#[test]
fn debug_and_trace_show_natriums_lines_not_rustls_internals() {
    let dir = CertDir::new("trace-tls");
    let ca = Ca::new(&dir.path, "ca");
    let pair = ca.server();
    let server = TestServer::start(&[
        "-DV",
        "--tls",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        pair.key_arg(),
    ]);
    let (mut tls, _info) = raw_tls(&server, &ca.cert);
    tls.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
        .unwrap();
    tls_read_until(&mut tls, b"PONG\r\n");
    server.wait_for_log("->> [PONG]").unwrap();
    let lines = server.log_lines();
    let foreign: Vec<&String> = lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "decided upon suite",
                "client_hello",
                "resolving server certificate",
                "sending certificate",
                "not issuing ticket",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    assert!(foreign.is_empty(), "rustls lines in the log: {foreign:#?}");
}
