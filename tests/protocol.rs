//! Black-box tests of the NATS client protocol as natrium speaks it, checked
//! byte for byte against nats-server's behaviour (see
//! `/work/shared/reference/nats-protocol.md`).
//!
//! Absence of a message is always proved with a PING/PONG barrier
//! (`sync`, `msgs_until_pong`, `expect_nothing`), never with a sleep: the
//! server handles one connection's operations in order, so once the PONG
//! is back everything that operation caused has been written.
//!
//! Queue groups live in `tests/queue_groups.rs`; authentication, config
//! files and the command line in `tests/auth_config.rs`.

mod common;
use common::{Conn, Msg, TestServer, quiet, quiet_subscriber};
use std::collections::BTreeSet;

/// The sids of the messages, as a set.
fn sids(msgs: &[Msg]) -> BTreeSet<String> {
    msgs.iter().map(|m| m.sid.clone()).collect()
}

/// `PUB <subject> <payload>` from `publisher`, then everything `subscriber` got.
fn publish_and_collect(
    publisher: &mut Conn,
    subscriber: &mut Conn,
    subject: &str,
    payload: &[u8],
) -> Vec<Msg> {
    let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    publisher.send(&frame);
    assert_eq!(
        publisher.sync(),
        Vec::<String>::new(),
        "publisher got output"
    );
    subscriber.msgs_until_pong()
}

// ----- INFO -----

#[test]
fn info_on_connect_has_the_fields_clients_rely_on() {
    let server = TestServer::start(&[]);
    let (_c, info) = server.raw_with_info();
    let id = info["server_id"].as_str().expect("server_id is a string");
    assert!(!id.is_empty());
    assert!(info["server_name"].is_string(), "server_name: {info}");
    assert!(
        !info["version"].as_str().expect("version").is_empty(),
        "version: {info}"
    );
    assert_eq!(info["proto"], 1);
    assert_eq!(info["host"], "127.0.0.1");
    assert_eq!(info["port"], u64::from(server.addr.port()));
    assert_eq!(info["headers"], true);
    assert_eq!(info["max_payload"], 1048576);
    assert!(info["client_id"].is_u64(), "client_id: {info}");
    assert_eq!(info["client_ip"], "127.0.0.1");
    assert!(
        info.get("auth_required").is_none(),
        "auth_required must be absent without auth: {info}"
    );

    // Each connection has its own client_id; the server fields stay the same.
    let (_c2, info2) = server.raw_with_info();
    assert_ne!(info2["client_id"], info["client_id"]);
    assert_eq!(info2["server_id"], info["server_id"]);
}

#[test]
fn info_line_is_info_space_json_crlf() {
    let server = TestServer::start(&[]);
    let mut c = Conn::connect(server.addr);
    let line = c.read_until(b"\r\n");
    assert!(
        line.starts_with(b"INFO {"),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    assert!(
        line.ends_with(b"}\r\n") || line.ends_with(b"} \r\n"),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    // Nothing else is sent before the client speaks.
    c.expect_nothing();
}

// ----- syntax: verbs, separators, line endings -----

#[test]
fn verbs_are_case_insensitive() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"cOnNeCt {\"verbose\":false,\"headers\":true}\r\n");
    c.send(b"SuB foo 1\r\n");
    c.send(b"pub foo 2\r\nhi\r\n");
    c.send(b"Hpub foo 12 14\r\nNATS/1.0\r\n\r\nho\r\n");
    c.send(b"pOnG\r\n");
    c.send(b"PiNg\r\n");
    assert_eq!(
        c.read_until(b"PONG\r\n"),
        b"MSG foo 1 2\r\nhi\r\nHMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nho\r\nPONG\r\n"
    );
    c.send(b"uNsUb 1\r\npub foo 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn spaces_and_tabs_mixed_as_separators() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB\t foo \t1\r\n");
    c.send(b"SUB  \tbar\tq \t 2\r\n");
    c.send(b"PUB \t foo\t\treply \t 2\r\nhi\r\n");
    c.send(b"PUB\tbar 3\r\nbye\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"MSG foo 1 reply 2\r\nhi\r\nMSG bar 2 3\r\nbye\r\n"
    );
    c.send(b"UNSUB\t \t1\r\nPUB foo 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn control_lines_may_end_in_bare_lf() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n");
    assert_eq!(c.read_until(b"PONG\r\n"), b"MSG foo 1 2\r\nhi\r\nPONG\r\n");
    c.send(b"UNSUB 1\nPUB foo 2\nhi\r\n");
    c.expect_nothing();
}

#[test]
fn connect_without_space_before_json() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    // If the JSON were not read, the defaults would give +OK after SUB.
    c.send(b"CONNECT{\"verbose\":false}\r\nSUB foo 1\r\n");
    c.expect_nothing();
}

#[test]
fn ping_ignores_the_rest_of_its_line() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"PING foo\r\nPINGX\r\n");
    c.expect("PONG");
    c.expect("PONG");
    c.expect_nothing();
}

// ----- defaults before and without CONNECT -----

#[test]
fn defaults_before_connect_are_verbose_pedantic_echo() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"SUB foo 1\r\n");
    c.expect("+OK");
    // Echo on, and the +OK comes before the self-delivered message.
    c.send(b"PUB foo 2\r\nhi\r\n");
    assert_eq!(c.read_until(b"hi\r\n"), b"+OK\r\nMSG foo 1 2\r\nhi\r\n");
    // Pedantic: a wildcard publish subject is reported (and still +OK'd).
    c.send(b"PUB foo.* 0\r\n\r\n");
    c.expect_err("Invalid Publish Subject");
    c.expect("+OK");
    c.send(b"UNSUB 1\r\n");
    c.expect("+OK");
    c.send(b"PUB foo 0\r\n\r\n");
    c.expect("+OK");
    c.expect_nothing();
}

#[test]
fn connect_with_empty_object_keeps_the_defaults() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {}\r\n");
    c.expect("+OK");
    c.send(b"SUB foo.* 1\r\n");
    c.expect("+OK");
    c.send(b"PUB foo.* 2\r\nhi\r\n");
    assert_eq!(
        c.read_until(b"hi\r\n"),
        b"-ERR 'Invalid Publish Subject'\r\n+OK\r\nMSG foo.* 1 2\r\nhi\r\n"
    );
    c.expect_nothing();
}

#[test]
fn verbose_false_silences_ok() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\r\n");
    c.send(b"SUB foo 1\r\nPUB bar 0\r\n\r\nUNSUB 1\r\nUNSUB 77\r\nCONNECT {}\r\n");
    c.expect_nothing();
}

#[test]
fn connect_fields_merge_onto_current_options() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\r\n");
    // pedantic still true: absent is not false.
    c.send(b"PUB foo.> 0\r\n\r\n");
    assert_eq!(c.bytes_until_pong(), b"-ERR 'Invalid Publish Subject'\r\n");
    // Unknown fields and nulls are accepted.
    c.send(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"jwt\":null,\"user\":null,\"x\":[1]}\r\n",
    );
    c.send(b"PUB foo.> 0\r\n\r\n");
    c.expect_nothing();
}

// ----- wildcards -----

#[test]
fn wildcard_matching() {
    let server = TestServer::start(&[]);
    let mut sub = quiet(&server, "");
    for (subject, sid) in [
        ("foo.*", "star"),
        ("foo.>", "fwc"),
        (">", "all"),
        ("foo.bar", "lit"),
        ("*.bar", "starbar"),
        ("foo", "foo"),
        ("foo.*.baz", "mid"),
        ("*", "one"),
    ] {
        sub.send(format!("SUB {subject} {sid}\r\n").as_bytes());
    }
    sub.sync();
    let mut publisher = quiet(&server, "");
    let cases: &[(&str, &[&str])] = &[
        ("foo", &["all", "foo", "one"]),
        ("foo.bar", &["star", "fwc", "all", "lit", "starbar"]),
        ("foo.bar.baz", &["fwc", "all", "mid"]),
        ("foo.x.y.z", &["fwc", "all"]),
        ("bar", &["all", "one"]),
        ("baz.bar", &["all", "starbar"]),
        ("foox.bar", &["all", "starbar"]),
        // A literal `*` token is matched by wildcards only.
        ("foo.*", &["star", "fwc", "all"]),
        ("foo.>", &["star", "fwc", "all"]),
    ];
    for (subject, want) in cases {
        let msgs = publish_and_collect(&mut publisher, &mut sub, subject, b"x");
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(sids(&msgs), want, "publish to {subject}");
        assert_eq!(msgs.len(), want.len(), "one MSG per sid for {subject}");
        for m in &msgs {
            assert_eq!(m.subject, *subject, "MSG carries the published subject");
            assert_eq!(m.payload, b"x");
        }
    }
}

#[test]
fn non_matching_subjects_get_nothing() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(
        &server,
        "",
        b"SUB foo.> 1\r\nSUB foo.bar 2\r\nSUB a.*.c 3\r\n",
    );
    let mut publisher = quiet(&server, "");
    for subject in ["foo", "fo.bar", "FOO.bar", "a.b", "a.c", "a.b.c.d", "b.b.c"] {
        let msgs = publish_and_collect(&mut publisher, &mut sub, subject, b"nope");
        assert!(msgs.is_empty(), "{subject} delivered {msgs:?}");
    }
    // Empty tokens never match, not even `>` (and there is no error without pedantic).
    sub.send(b"SUB > 4\r\n");
    sub.sync();
    for subject in ["foo..bar", ".foo", "foo."] {
        let msgs = publish_and_collect(&mut publisher, &mut sub, subject, b"nope");
        assert!(msgs.is_empty(), "{subject} delivered {msgs:?}");
    }
}

#[test]
fn overlapping_subscriptions_get_one_msg_per_sid() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(
        &server,
        "",
        b"SUB foo.bar a\r\nSUB foo.* b\r\nSUB foo.> c\r\nSUB > d\r\nSUB foo.bar e\r\n",
    );
    let mut publisher = quiet(&server, "");
    let msgs = publish_and_collect(&mut publisher, &mut sub, "foo.bar", b"once");
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    assert_eq!(
        sids(&msgs),
        ["a", "b", "c", "d", "e"].map(String::from).into()
    );
    assert!(msgs.iter().all(|m| m.payload == b"once"));
}

// ----- UNSUB -----

#[test]
fn unsub_max_already_reached_removes_at_once() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB foo 1\r\n");
    let mut publisher = quiet(&server, "");
    for i in 0..2 {
        let msgs = publish_and_collect(&mut publisher, &mut sub, "foo", format!("{i}").as_bytes());
        assert_eq!(msgs.len(), 1);
    }
    sub.send(b"UNSUB 1 2\r\n");
    sub.sync();
    for _ in 0..3 {
        assert!(publish_and_collect(&mut publisher, &mut sub, "foo", b"late").is_empty());
    }
    // Removed, not just muted: the sid is free for a new subscription.
    sub.send(b"SUB foo 1\r\n");
    sub.sync();
    let msgs = publish_and_collect(&mut publisher, &mut sub, "foo", b"again");
    assert_eq!(msgs.len(), 1);
}

#[test]
fn unsub_max_counts_earlier_deliveries() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB foo 1\r\n");
    let mut publisher = quiet(&server, "");
    publisher.send(b"PUB foo 1\r\n0\r\nPUB foo 1\r\n1\r\n");
    publisher.sync();
    assert_eq!(sub.msgs_until_pong().len(), 2);
    sub.send(b"UNSUB 1 5\r\n");
    sub.sync();
    for i in 2..8 {
        publisher.send(format!("PUB foo 1\r\n{i}\r\n").as_bytes());
    }
    publisher.sync();
    let got: Vec<Vec<u8>> = sub
        .msgs_until_pong()
        .into_iter()
        .map(|m| m.payload)
        .collect();
    assert_eq!(got, vec![b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
    // The sid is gone: reusing it makes a fresh subscription.
    sub.send(b"SUB foo 1\r\n");
    sub.sync();
    assert_eq!(
        publish_and_collect(&mut publisher, &mut sub, "foo", b"new").len(),
        1
    );
}

#[test]
fn unsub_max_before_any_delivery() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nUNSUB 1 3\r\n");
    for i in 0..6 {
        c.send(format!("PUB foo 1\r\n{i}\r\n").as_bytes());
    }
    let got: Vec<Vec<u8>> = c.msgs_until_pong().into_iter().map(|m| m.payload).collect();
    assert_eq!(got, vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
}

#[test]
fn unsub_non_numeric_or_zero_max_removes_at_once() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nSUB foo 2\r\nSUB foo 3\r\nUNSUB 1 x\r\nUNSUB 2 0\r\nUNSUB 3 -4\r\n");
    c.send(b"PUB foo 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn unsub_max_longer_than_nine_digits_removes_at_once() {
    // nats-server parses the max like a size: over 9 digits it is invalid,
    // which means "no max", i.e. unsubscribe now.
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nSUB foo 2\r\nUNSUB 1 1234567890\r\nUNSUB 2 999999999\r\n");
    c.send(b"PUB foo 0\r\n\r\n");
    let msgs = c.msgs_until_pong();
    assert_eq!(sids(&msgs), ["2".to_string()].into(), "{msgs:?}");
}

#[test]
fn unsub_unknown_sid_is_ok_in_verbose() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"UNSUB 99\r\n");
    c.expect("+OK");
    c.send(b"UNSUB 99 3\r\n");
    c.expect("+OK");
    c.send(b"SUB foo 1\r\n");
    c.expect("+OK");
    c.send(b"UNSUB 1 2\r\n");
    c.expect("+OK");
    c.expect_nothing();
}

// ----- reply subjects -----

#[test]
fn reply_subject_is_passed_in_msg() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB svc 9\r\n");
    let mut publisher = quiet(&server, "");
    publisher.send(b"PUB svc my.reply 4\r\nping\r\n");
    publisher.sync();
    assert_eq!(sub.bytes_until_pong(), b"MSG svc 9 my.reply 4\r\nping\r\n");
    // The reply subject is not validated, even with pedantic on.
    let mut pedantic = server.client_with(r#""verbose":false,"pedantic":true"#);
    pedantic.send(b"PUB svc a.*.> 0\r\n\r\n");
    pedantic.expect_nothing();
    assert_eq!(sub.bytes_until_pong(), b"MSG svc 9 a.*.> 0\r\n\r\n");
}

#[test]
fn request_reply_between_two_connections() {
    let server = TestServer::start(&[]);
    let mut responder = quiet_subscriber(&server, "", b"SUB svc.echo 1\r\n");
    let mut requester = quiet(&server, "");
    requester.send(b"SUB _INBOX.req.* 7\r\nPUB svc.echo _INBOX.req.1 5\r\nhello\r\n");
    requester.sync();
    let req = responder.msg();
    assert_eq!(req.subject, "svc.echo");
    assert_eq!(req.reply.as_deref(), Some("_INBOX.req.1"));
    assert_eq!(req.payload, b"hello");
    responder.send(format!("PUB {} 11\r\nhello back\n\r\n", req.reply.unwrap()).as_bytes());
    responder.sync();
    assert_eq!(
        requester.bytes_until_pong(),
        b"MSG _INBOX.req.1 7 11\r\nhello back\n\r\n"
    );
}

// ----- headers -----

const HDR: &[u8] = b"NATS/1.0\r\nBar: Baz\r\n\r\n";

#[test]
fn hpub_to_header_subscriber_is_hmsg_with_exact_sizes() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, r#""headers":true"#, b"SUB foo 1\r\n");
    let mut publisher = quiet(&server, r#""headers":true"#);
    assert_eq!(HDR.len(), 22);
    let mut frame = b"HPUB foo 22 27\r\n".to_vec();
    frame.extend_from_slice(HDR);
    frame.extend_from_slice(b"hello\r\nHPUB foo rep 22 22\r\n");
    frame.extend_from_slice(HDR);
    frame.extend_from_slice(b"\r\n");
    publisher.send(&frame);
    publisher.expect_nothing();
    assert_eq!(
        sub.bytes_until_pong(),
        b"HMSG foo 1 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n\
          HMSG foo 1 rep 22 22\r\nNATS/1.0\r\nBar: Baz\r\n\r\n\r\n"
    );
}

#[test]
fn hpub_to_plain_subscriber_strips_the_header_block() {
    let server = TestServer::start(&[]);
    let mut plain = quiet_subscriber(&server, "", b"SUB foo 1\r\n");
    let mut explicit = quiet_subscriber(&server, r#""headers":false"#, b"SUB foo 2\r\n");
    let mut publisher = quiet(&server, r#""headers":true"#);
    let mut frame = b"HPUB foo r 22 27\r\n".to_vec();
    frame.extend_from_slice(HDR);
    frame.extend_from_slice(b"hello\r\n");
    publisher.send(&frame);
    publisher.expect_nothing();
    assert_eq!(plain.bytes_until_pong(), b"MSG foo 1 r 5\r\nhello\r\n");
    assert_eq!(explicit.bytes_until_pong(), b"MSG foo 2 r 5\r\nhello\r\n");
}

#[test]
fn hpub_header_block_is_not_validated() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, r#""headers":true"#);
    c.send(b"SUB foo 1\r\nHPUB foo 4 6\r\nabcdxy\r\n");
    assert_eq!(c.bytes_until_pong(), b"HMSG foo 1 4 6\r\nabcdxy\r\n");
}

#[test]
fn hpub_with_zero_header_size_is_a_plain_msg() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, r#""headers":true"#);
    c.send(b"SUB foo 1\r\nHPUB foo 0 5\r\nhello\r\nHPUB foo 0 0\r\n\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"MSG foo 1 5\r\nhello\r\nMSG foo 1 0\r\n\r\n"
    );
}

#[test]
fn hpub_without_headers_in_connect_closes_silently() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    let mut frame = b"HPUB foo 22 27\r\n".to_vec();
    frame.extend_from_slice(HDR);
    frame.extend_from_slice(b"hello\r\n");
    c.send(&frame);
    c.expect_eof();
    // Same before any CONNECT (headers default to false).
    let mut raw = server.raw();
    raw.send(&frame);
    raw.expect_eof();
}

#[test]
fn hpub_without_headers_closes_at_the_control_line() {
    // nats-server rejects HPUB as soon as its control line is read, without
    // waiting for the payload.
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"HPUB foo 22 27\r\n");
    c.expect_eof();
    // Also when the control line arrives in pieces.
    let mut c = quiet(&server, "");
    c.send_split(b"HPUB foo 22 27\r\nNATS", &[2, 9, 15]);
    c.expect_eof();
}

// ----- echo -----

#[test]
fn echo_false_suppresses_own_messages() {
    let server = TestServer::start(&[]);
    let mut me = quiet(&server, r#""echo":false"#);
    me.send(b"SUB foo 1\r\nPUB foo 4\r\nself\r\n");
    me.expect_nothing();
    // The subscription works for other publishers.
    let mut other = quiet(&server, "");
    other.send(b"PUB foo 5\r\nother\r\n");
    other.sync();
    assert_eq!(me.bytes_until_pong(), b"MSG foo 1 5\r\nother\r\n");
}

#[test]
fn echo_is_on_by_default() {
    let server = TestServer::start(&[]);
    let mut me = quiet(&server, "");
    me.send(b"SUB foo 1\r\nPUB foo 4\r\nself\r\n");
    assert_eq!(me.bytes_until_pong(), b"MSG foo 1 4\r\nself\r\n");
}

#[test]
fn verbose_ok_comes_before_self_delivered_msg() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":true,\"pedantic\":false}\r\n");
    c.expect("+OK");
    c.send(b"SUB foo 1\r\nPUB foo 4\r\nself\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"+OK\r\n+OK\r\nMSG foo 1 4\r\nself\r\n"
    );
}

// ----- no responders -----

const NO_RESPONDERS: &str = r#""headers":true,"no_responders":true"#;

#[test]
fn no_responders_status_is_exact() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, NO_RESPONDERS);
    c.send(b"SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"HMSG _INBOX.x 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n"
    );
}

#[test]
fn no_responders_uses_the_matching_wildcard_sub_and_any_subject_length() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, NO_RESPONDERS);
    c.send(b"SUB other 3\r\nSUB _INBOX.> 7\r\nPUB service.a _INBOX.abc 2\r\nhi\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"HMSG _INBOX.abc 7 41 41\r\nNATS/1.0 503\r\nNats-Subject: service.a\r\n\r\n\r\n"
    );
    // HPUB requests get it too.
    c.send(b"HPUB svc _INBOX.h 12 12\r\nNATS/1.0\r\n\r\n\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"HMSG _INBOX.h 7 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\n"
    );
}

#[test]
fn no_responders_not_sent_unless_asked_for() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, r#""headers":true"#);
    c.send(b"SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn no_responders_not_sent_when_someone_listens() {
    let server = TestServer::start(&[]);
    let mut responder = quiet_subscriber(&server, "", b"SUB svc 1\r\n");
    let mut c = quiet(&server, NO_RESPONDERS);
    c.send(b"SUB _INBOX.x 1\r\nPUB svc _INBOX.x 0\r\n\r\n");
    c.expect_nothing();
    assert_eq!(
        responder.bytes_until_pong(),
        b"MSG svc 1 _INBOX.x 0\r\n\r\n"
    );
}

#[test]
fn no_responders_needs_a_reply_subject_and_a_reply_subscription() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, NO_RESPONDERS);
    c.send(b"SUB _INBOX.x 1\r\nPUB svc 0\r\n\r\n");
    c.expect_nothing();
    // No subscription of its own matches the reply subject: nothing to send it on.
    c.send(b"PUB svc _INBOX.y 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn no_responders_is_not_sent_on_a_queue_subscription() {
    // nats-server only uses a plain subscription of the requester.
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, NO_RESPONDERS);
    c.send(b"SUB _INBOX.x q 1\r\nPUB svc _INBOX.x 0\r\n\r\n");
    c.expect_nothing();
}

#[test]
fn no_responders_without_headers_is_fatal() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false,\"no_responders\":true}\r\n");
    c.expect_err_and_eof("no responders requires headers support");
}

// ----- pedantic -----

#[test]
fn pedantic_reports_wildcard_publish_and_still_delivers() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB foo.* 1\r\n");
    let mut publisher = server.client_with(r#""verbose":false,"pedantic":true"#);
    publisher.send(b"PUB foo.* 2\r\nhi\r\n");
    assert_eq!(publisher.sync(), vec!["-ERR 'Invalid Publish Subject'"]);
    assert_eq!(sub.bytes_until_pong(), b"MSG foo.* 1 2\r\nhi\r\n");
    // Still open and usable; other invalid literals are reported too.
    publisher.send(b"PUB foo..bar 0\r\n\r\nPUB foo.> 0\r\n\r\nPUB foo*.bar 0\r\n\r\n");
    assert_eq!(
        publisher.sync(),
        vec![
            "-ERR 'Invalid Publish Subject'",
            "-ERR 'Invalid Publish Subject'"
        ]
    );
    assert_eq!(sub.bytes_until_pong(), b"MSG foo.> 1 0\r\n\r\n");
}

#[test]
fn no_error_for_wildcard_publish_without_pedantic() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB foo.* 1\r\n");
    let mut publisher = quiet(&server, "");
    publisher.send(b"PUB foo.* 2\r\nhi\r\n");
    publisher.expect_nothing();
    assert_eq!(sub.bytes_until_pong(), b"MSG foo.* 1 2\r\nhi\r\n");
}

// ----- SUB subject validation, duplicate sid, second CONNECT -----

#[test]
fn invalid_sub_subjects_are_refused_and_the_connection_stays() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    for subject in ["foo..bar", "foo.", ".foo", "foo.>.bar", ">.foo", "."] {
        c.send(format!("SUB {subject} 1\r\n").as_bytes());
        c.expect_err("Invalid Subject");
        c.send(format!("SUB {subject} q 2\r\n").as_bytes());
        c.expect_err("Invalid Subject");
    }
    // No +OK for the refused ones, and the connection still works.
    c.expect_nothing();
    c.send(b"SUB foo 1\r\n");
    c.expect("+OK");
    c.send(b"PUB foo 0\r\n\r\n");
    assert_eq!(
        c.read_until(b"MSG foo 1 0\r\n\r\n"),
        b"+OK\r\nMSG foo 1 0\r\n\r\n"
    );
}

#[test]
fn wildcard_characters_inside_tokens_are_literal() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo*.bar 1\r\nSUB f>o 2\r\n");
    c.expect_nothing();
    c.send(b"PUB fooX.bar 0\r\n\r\nPUB fo.bar 0\r\n\r\nPUB fxo 0\r\n\r\n");
    c.expect_nothing();
    c.send(b"PUB foo*.bar 0\r\n\r\nPUB f>o 0\r\n\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"MSG foo*.bar 1 0\r\n\r\nMSG f>o 2 0\r\n\r\n"
    );
}

#[test]
fn utf8_and_nul_bytes_are_ordinary_subject_bytes() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send("SUB caf\u{e9}.* 1\r\nSUB a\0b 2\r\n".as_bytes());
    c.send("PUB caf\u{e9}.\u{1f600} 0\r\n\r\nPUB cafe.x 0\r\n\r\nPUB a\0b 0\r\n\r\n".as_bytes());
    let mut want = "MSG caf\u{e9}.\u{1f600} 1 0\r\n\r\n".as_bytes().to_vec();
    want.extend_from_slice(b"MSG a\0b 2 0\r\n\r\n");
    assert_eq!(c.bytes_until_pong(), want);
}

#[test]
fn duplicate_sid_keeps_the_first_subscription() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"SUB foo 1\r\n");
    c.expect("+OK");
    c.send(b"SUB bar 1\r\n");
    c.expect("+OK");
    c.send(b"PUB bar 0\r\n\r\n");
    c.expect("+OK");
    c.expect_nothing();
    c.send(b"PUB foo 0\r\n\r\n");
    assert_eq!(
        c.read_until(b"MSG foo 1 0\r\n\r\n"),
        b"+OK\r\nMSG foo 1 0\r\n\r\n"
    );
    c.expect_nothing();
}

#[test]
fn second_connect_drops_all_subscriptions() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nSUB bar q 2\r\nPUB foo 0\r\n\r\n");
    assert_eq!(c.msgs_until_pong().len(), 1);
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    c.sync();
    let mut other = quiet(&server, "");
    other.send(b"PUB foo 0\r\n\r\nPUB bar 0\r\n\r\n");
    other.sync();
    c.send(b"PUB foo 0\r\n\r\nPUB bar 0\r\n\r\n");
    c.expect_nothing();
    // The sid is free again.
    c.send(b"SUB foo 1\r\nPUB foo 0\r\n\r\n");
    assert_eq!(c.bytes_until_pong(), b"MSG foo 1 0\r\n\r\n");
}

// ----- errors: -ERR then close (class A) -----

/// Sends `input` on a quiet client and expects `-ERR '<text>'` then EOF.
fn expect_fatal(server: &TestServer, input: &[u8], text: &str) {
    quiet(server, "").expect_fatal_reply(input, text);
}

#[test]
fn unknown_protocol_operation_closes() {
    let server = TestServer::start(&[]);
    let cases: &[&[u8]] = &[
        b"FOO bar\r\n",
        b"PUBX foo 1\r\n",
        b"MSG foo 1 2\r\nhi\r\n",
        b"HMSG foo 1 2 2\r\nhi\r\n",
        b"SUB\r\n",
        b"UNSUB\r\n",
        b"PUB\r\n",
        b" PING\r\n",
        b"\tSUB foo 1\r\n",
        // payload longer than announced
        b"PUB foo 3\r\nhello\r\n",
        // payload shorter than announced: the next command is swallowed
        b"PUB foo 10\r\nhello\r\nPING\r\n",
        // payload must end in CRLF, not a bare LF
        b"PUB foo 5\r\nhello\nPING\r\n",
    ];
    for input in cases {
        expect_fatal(&server, input, "Unknown Protocol Operation");
    }
}

#[test]
fn unknown_operation_before_connect_also_closes() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"HELLO\r\n");
    c.expect_err_and_eof("Unknown Protocol Operation");
}

#[test]
fn control_line_limit_is_4096_argument_bytes() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    // "<subject> 0" and "<subject> 1" are exactly 4096 bytes of arguments.
    let subject = "s".repeat(4094);
    c.send(format!("SUB {subject} 1\r\nPUB {subject} 0\r\n\r\n").as_bytes());
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].subject, subject);
    // Leading separators are not arguments.
    c.send(format!("PUB \t  {subject} 0\r\n\r\n").as_bytes());
    assert_eq!(c.msgs_until_pong().len(), 1);

    let over = "s".repeat(4095);
    expect_fatal(
        &server,
        format!("PUB {over} 0\r\n\r\n").as_bytes(),
        "maximum control line exceeded",
    );
    expect_fatal(
        &server,
        format!("SUB {over} 1\r\n").as_bytes(),
        "maximum control line exceeded",
    );
    // A line that never ends is cut off too.
    expect_fatal(
        &server,
        format!("PUB {}", "s".repeat(10_000)).as_bytes(),
        "maximum control line exceeded",
    );
}

#[test]
fn control_line_limit_applies_to_connect_json() {
    let server = TestServer::start(&[]);
    let ok = format!(r#"{{"verbose":false,"name":"{}"}}"#, "n".repeat(4096 - 27));
    assert_eq!(ok.len(), 4096);
    let mut c = server.raw();
    c.send(format!("CONNECT {ok}\r\n").as_bytes());
    c.expect_nothing();
    let over = format!(r#"{{"verbose":false,"name":"{}"}}"#, "n".repeat(4097 - 27));
    let mut c = server.raw();
    c.send(format!("CONNECT {over}\r\n").as_bytes());
    c.expect_err_and_eof("maximum control line exceeded");
}

#[test]
fn max_payload_exceeded_closes_and_the_limit_itself_is_delivered() {
    let server = TestServer::start(&[]);
    expect_fatal(&server, b"PUB foo 1048577\r\n", "Maximum Payload Violation");
    let mut sub = quiet_subscriber(&server, "", b"SUB foo 1\r\n");
    let mut publisher = quiet(&server, "");
    let payload: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let msgs = publish_and_collect(&mut publisher, &mut sub, "foo", &payload);
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].payload == payload, "1 MiB payload corrupted");
}

#[test]
fn max_payload_counts_headers_for_hpub() {
    let server = TestServer::start(&["--max_payload", "100"]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 100);
    let mut c = quiet(&server, r#""headers":true"#);
    c.send(b"SUB foo 1\r\n");
    let mut frame = b"HPUB foo 12 100\r\nNATS/1.0\r\n\r\n".to_vec();
    frame.extend_from_slice(&[b'x'; 88]);
    frame.extend_from_slice(b"\r\n");
    c.send(&frame);
    assert_eq!(c.msgs_until_pong().len(), 1);
    c.send(b"HPUB foo 50 101\r\n");
    c.expect_err_and_eof("Maximum Payload Violation");
}

#[test]
fn invalid_client_protocol_closes() {
    let server = TestServer::start(&[]);
    for proto in ["2", "-1", "99"] {
        let mut c = server.raw();
        c.send(format!("CONNECT {{\"verbose\":false,\"protocol\":{proto}}}\r\n").as_bytes());
        c.expect_err_and_eof("invalid client protocol");
    }
    for proto in ["0", "1"] {
        let mut c = server.raw();
        c.send(format!("CONNECT {{\"protocol\":{proto}}}\r\n").as_bytes());
        c.expect("+OK");
    }
}

#[test]
fn max_subscriptions_refuses_but_keeps_the_connection() {
    let server = TestServer::start(&["--max_subscriptions", "2"]);
    let mut c = server.raw();
    c.send(b"SUB a 1\r\nSUB b 2\r\n");
    c.expect("+OK");
    c.expect("+OK");
    c.send(b"SUB c 3\r\n");
    c.expect_err("maximum subscriptions exceeded");
    // nats-server checks the limit before it looks for a duplicate sid.
    c.send(b"SUB a 1\r\n");
    c.expect_err("maximum subscriptions exceeded");
    c.send(b"UNSUB 1\r\nSUB c 3\r\n");
    c.expect("+OK");
    c.expect("+OK");
    c.send(b"PUB c 0\r\n\r\n");
    assert_eq!(
        c.read_until(b"MSG c 3 0\r\n\r\n"),
        b"+OK\r\nMSG c 3 0\r\n\r\n"
    );
}

#[test]
fn max_connections_sends_info_then_closes() {
    let server = TestServer::start(&["--max_connections", "1"]);
    let mut first = quiet(&server, "");
    let mut second = server.raw();
    second.expect_err_and_eof("maximum connections exceeded");
    first.expect_nothing();
    // Once the first is gone, its slot is free again.
    drop(first);
    drop(second);
    assert!(server.wait_until_empty());
    let mut third = quiet(&server, "");
    third.expect_nothing();
}

#[test]
fn stale_connection_after_unanswered_pings() {
    let server = TestServer::start(&["--ping_interval", "50ms", "--ping_max", "2"]);
    let mut c = quiet(&server, "");
    c.expect("PING");
    c.expect("PING");
    c.expect_err_and_eof("Stale Connection");
}

#[test]
fn answered_pings_keep_the_connection() {
    // Without answers ping_max 2 would close it after two PINGs; answered, it lives on.
    let server = TestServer::start(&["--ping_interval", "50ms", "--ping_max", "2"]);
    let mut c = quiet(&server, "");
    for _ in 0..4 {
        c.expect("PING");
        c.send(b"PONG\r\n");
    }
    c.send(b"SUB foo 1\r\nPUB foo 0\r\n\r\n");
    // A server PING may come in between; anything else may not.
    let lines: Vec<String> = c.sync().into_iter().filter(|l| l != "PING").collect();
    assert_eq!(lines, vec!["MSG foo 1 0", ""]);
}

// ----- errors: closed without a word (class C) -----

#[test]
fn malformed_arguments_close_silently() {
    let server = TestServer::start(&[]);
    let cases: &[&[u8]] = &[
        b"PUB foo\r\n",
        b"PUB foo bar baz 1\r\n",
        b"SUB foo\r\n",
        b"SUB a b c d\r\n",
        b"UNSUB 1 2 3\r\n",
        b"PUB foo x\r\n",
        b"PUB foo -1\r\n",
        b"PUB foo 1x\r\n",
        b"PUB foo 1234567890\r\n",
        b"CONNECT {\r\n",
        b"CONNECT []\r\n",
        b"CONNECT {\"verbose\":\"yes\"}\r\n",
        b"CONNECT {\"echo\":1}\r\n",
        b"INFO {\r\n",
        b"-ERR 'oops'\r\n",
    ];
    for input in cases {
        quiet(&server, "").expect_silent_close(input);
    }
}

#[test]
fn malformed_hpub_closes_silently() {
    let server = TestServer::start(&[]);
    for input in [
        &b"HPUB foo 1\r\n"[..],
        b"HPUB a b c d 1\r\n",
        b"HPUB foo 20 10\r\n",
        b"HPUB foo x 10\r\n",
        b"HPUB foo 1234567890 1234567890\r\n",
    ] {
        quiet(&server, r#""headers":true"#).expect_silent_close(input);
    }
}

#[test]
fn nine_digit_size_is_accepted() {
    // 9 digits parse (here: over max_payload, so the payload error, not a silent close).
    let server = TestServer::start(&[]);
    expect_fatal(
        &server,
        b"PUB foo 100000000\r\n",
        "Maximum Payload Violation",
    );
    // Leading zeros are fine.
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nPUB foo 000000005\r\nhello\r\n");
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload, b"hello");
}

// ----- input that is ignored (connection stays) -----

#[test]
fn client_ok_and_info_are_ignored() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"+OK\r\nINFO {}\r\nINFO {\"server_id\":\"x\",\"port\":1}\r\nINFO{}\r\n");
    c.expect_nothing();
    c.send(b"SUB foo 1\r\n");
    c.expect("+OK");
}

#[test]
fn blank_lines_are_ignored() {
    // natrium's documented difference: nats-server closes on a blank line.
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"\r\n\n\r\n");
    c.expect_nothing();
    c.send(b"SUB foo 1\r\n\r\n\nPUB foo 2\r\nhi\r\n\n\r\n");
    assert_eq!(
        c.read_until(b"hi\r\n"),
        b"+OK\r\n+OK\r\nMSG foo 1 2\r\nhi\r\n"
    );
    c.send(b"\n");
    c.expect_nothing();
}

// ----- payloads -----

#[test]
fn binary_payload_with_crlf_and_nul_is_delivered_intact() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB bin 1\r\n");
    let mut publisher = quiet(&server, "");
    let payload: &[u8] = b"\r\n\0\xff\xfePING\r\nPUB x 1\r\n\n\r\r\n\r\n";
    let mut frame = format!("PUB bin {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    publisher.send(&frame);
    // The "PING" inside the payload is not a command.
    publisher.expect_nothing();
    let mut want = format!("MSG bin 1 {}\r\n", payload.len()).into_bytes();
    want.extend_from_slice(payload);
    want.extend_from_slice(b"\r\n");
    assert_eq!(sub.bytes_until_pong(), want);
}

#[test]
fn empty_payload() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nPUB foo 0\r\n\r\nPUB foo r 0\r\n\r\n");
    assert_eq!(
        c.bytes_until_pong(),
        b"MSG foo 1 0\r\n\r\nMSG foo 1 r 0\r\n\r\n"
    );
}

// ----- split byte streams -----

/// A whole session: CONNECT, SUB, PUB with a binary payload holding CRLF
/// and NUL, HPUB, UNSUB with max, PING. Ends with PING so its PONG ends the reply.
const SESSION: &[u8] = b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true}\r\n\
SUB foo.* 1\r\n\
sub foo.> q 2\n\
PUB foo.a reply 9\r\n\r\nx\0\r\n\xff\r\n\r\n\
\r\n\
HPUB foo.b 22 27\r\nNATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n\
UNSUB 1 3\r\n\
PUB foo.c 0\r\n\r\n\
PUB foo.d 2\r\nhi\r\n\
PING\r\n";

/// What the session gets back after INFO.
fn session_reply() -> Vec<u8> {
    let mut want = Vec::new();
    want.extend_from_slice(b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n");
    for sid in ["1", "2"] {
        want.extend_from_slice(format!("MSG foo.a {sid} reply 9\r\n").as_bytes());
        want.extend_from_slice(b"\r\nx\0\r\n\xff\r\n\r\n");
    }
    want.extend_from_slice(b"+OK\r\n");
    for sid in ["1", "2"] {
        want.extend_from_slice(format!("HMSG foo.b {sid} 22 27\r\n").as_bytes());
        want.extend_from_slice(b"NATS/1.0\r\nBar: Baz\r\n\r\nhello\r\n");
    }
    want.extend_from_slice(b"+OK\r\n+OK\r\n");
    want.extend_from_slice(b"MSG foo.c 1 0\r\n\r\nMSG foo.c 2 0\r\n\r\n");
    // sid 1 reached its max of 3 with foo.c
    want.extend_from_slice(b"+OK\r\nMSG foo.d 2 2\r\nhi\r\n");
    want.extend_from_slice(b"PONG\r\n");
    want
}

/// Sorts the two copies of each message so that the per-sid order within
/// one message does not matter (it is unspecified in nats-server).
fn normalise(reply: &[u8]) -> Vec<String> {
    // Frames: split after each "\r\n" that ends a frame; simplest is to
    // compare multisets of frames grouped by message.
    let text = reply.to_vec();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let nl = pos + text[pos..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let line = &text[pos..nl];
        let mut end = nl;
        let words: Vec<&[u8]> = line[..line.len() - 2].split(|&b| b == b' ').collect();
        if words[0] == b"MSG" || words[0] == b"HMSG" {
            let size: usize = std::str::from_utf8(words[words.len() - 1])
                .unwrap()
                .parse()
                .unwrap();
            end = nl + size + 2;
        }
        frames.push(text[pos..end].to_vec());
        pos = end;
    }
    // Sort runs of consecutive MSG/HMSG frames of the same message.
    let mut out = Vec::new();
    let mut run: Vec<Vec<u8>> = Vec::new();
    for f in frames {
        if f.starts_with(b"MSG ") || f.starts_with(b"HMSG ") {
            run.push(f);
        } else {
            run.sort();
            out.append(&mut run);
            out.push(f);
        }
    }
    run.sort();
    out.append(&mut run);
    out.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

#[test]
fn session_sent_at_once() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(SESSION);
    assert_eq!(
        normalise(&c.read_until(b"PONG\r\n")),
        normalise(&session_reply())
    );
    c.expect_nothing();
}

#[test]
fn session_sent_one_byte_at_a_time() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    let cuts: Vec<usize> = (1..SESSION.len()).collect();
    c.send_split(SESSION, &cuts);
    assert_eq!(
        normalise(&c.read_until(b"PONG\r\n")),
        normalise(&session_reply())
    );
    c.expect_nothing();
}

/// Waits (bounded) until the server has logged `n` dropped connections, the
/// last of which left it with no connections and no subscriptions.
fn wait_for_closes(server: &TestServer, n: usize) -> bool {
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let lines = server.log_lines();
        let closed: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("Client connection closed ("))
            .collect();
        if closed.len() >= n
            && closed
                .last()
                .is_some_and(|l| l.contains("(connections: 0, subscriptions: 0)"))
        {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A fixed-seed xorshift64 generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[test]
fn session_sent_at_random_split_points() {
    let server = TestServer::start(&[]);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let want = normalise(&session_reply());
    for round in 0..40 {
        let mut cuts: Vec<usize> = (0..(rng.next() % 12))
            .map(|_| (rng.next() % SESSION.len() as u64) as usize)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut c = server.raw();
        c.send_split(SESSION, &cuts);
        assert_eq!(
            normalise(&c.read_until(b"PONG\r\n")),
            want,
            "round {round}, cuts {cuts:?}"
        );
        // The next round's queue subscription must be the only member of
        // its group: wait until the server has dropped this connection.
        drop(c);
        assert!(
            wait_for_closes(&server, round + 1),
            "round {round}: not cleaned up"
        );
    }
}

#[test]
fn large_payload_split_across_many_writes() {
    let server = TestServer::start(&[]);
    let mut sub = quiet_subscriber(&server, "", b"SUB big 1\r\n");
    let mut publisher = quiet(&server, "");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut frame = format!("PUB big {}\r\n", payload.len()).into_bytes();
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(b"\r\nPUB big 2\r\nok\r\n");
    let mut rng = XorShift(42);
    let mut cuts: Vec<usize> = (0..50)
        .map(|_| (rng.next() % frame.len() as u64) as usize)
        .collect();
    cuts.sort_unstable();
    publisher.send_split(&frame, &cuts);
    publisher.expect_nothing();
    let msgs = sub.msgs_until_pong();
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].payload == payload, "large payload corrupted");
    assert_eq!(msgs[1].payload, b"ok");
}
