//! Limits and connection life cycle: max_payload, max_control_line,
//! keepalive, auth timeout, max_connections, max_subscriptions, shutdown on
//! signals, and clients that vanish half-way (fact sheet §3.2-3.4, §6).
//!
//! Every wait is bounded by the harness timeouts; nothing sleeps to let
//! something happen (the only sleeps pace a deliberately slow writer).
//! The heavy tests (floods, churn, fd exhaustion) are in tests/churn.rs.

mod common;
use common::{Conn, TestServer, info_u64};
use std::io::Read;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The debug line natrium logs when it starts or finishes closing client `cid`.
fn closed_line(cid: u64) -> impl Fn(&str) -> bool {
    let tag = format!("cid:{cid} ");
    move |l: &str| l.contains(&tag) && l.contains("Client connection closed (")
}

/// Asserts `-ERR '<text>'` and then the close (server PINGs answered:
/// natrium pings a client 2 s after CONNECT, which a loaded machine may outlast).
fn expect_err_then_eof(c: &mut Conn, text: &str) {
    assert_eq!(c.line_answering_pings(), format!("-ERR '{text}'"));
    c.expect_eof_answering_pings();
}

/// `count` publishes to `subject`, each of 1000 bytes of `fill`, as one buffer.
fn kilobyte_pubs(subject: &str, fill: u8, count: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    for _ in 0..count {
        batch.extend_from_slice(format!("PUB {subject} 1000\r\n").as_bytes());
        batch.extend_from_slice(&[fill; 1000]);
        batch.extend_from_slice(b"\r\n");
    }
    batch
}

/// A client after CONNECT and PING/PONG, with its `client_id`.
fn client_with_cid(server: &TestServer) -> (Conn, u64) {
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n");
    c.expect("PONG");
    (c, cid)
}

// ----- max_payload -----

#[test]
fn default_max_payload_is_announced() {
    let server = TestServer::start(&[]);
    let mut c = Conn::connect(server.addr);
    assert_eq!(info_u64(&c.line(), "max_payload"), 1024 * 1024);
}

#[test]
fn max_payload_is_inclusive_and_one_more_closes() {
    let server = TestServer::start(&["--max_payload", "1KB"]);
    let mut c = Conn::connect(server.addr);
    assert_eq!(info_u64(&c.line(), "max_payload"), 1024);
    c.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
    c.send(b"SUB big 1\r\n");
    c.sync_answering_pings();
    let mut publisher = server.client();
    let exact = vec![b'x'; 1024];
    publisher.send(b"PUB big 1024\r\n");
    publisher.send(&exact);
    publisher.send(b"\r\n");
    assert!(
        publisher.sync_answering_pings().is_empty(),
        "1024 bytes must be accepted"
    );
    let m = c.msg_answering_pings();
    assert_eq!(m.payload, exact);

    // One byte more is refused on the control line, before any payload.
    publisher.send(b"PUB big 1025\r\n");
    expect_err_then_eof(&mut publisher, "Maximum Payload Violation");
    // The subscriber saw nothing of it and is still served.
    assert!(c.sync_answering_pings().is_empty());
}

// ----- max_control_line -----

#[test]
fn max_control_line_counts_argument_bytes() {
    let server = TestServer::start(&["--max_control_line", "64"]);
    // `SUB <62 bytes> 1`: 64 bytes of arguments.
    let subject = "s".repeat(62);
    let mut ok = server.client();
    ok.send(format!("SUB {subject} 1\r\n").as_bytes());
    assert!(
        ok.sync_answering_pings().is_empty(),
        "64 argument bytes must be accepted"
    );
    // `PUB <60 bytes> 2`: 64 as well, and it is delivered.
    let pub_subject = "s".repeat(60);
    ok.send(format!("SUB {pub_subject} 2\r\nPUB {pub_subject} 2\r\nhi\r\n").as_bytes());
    let msgs = ok.msgs_until_pong_answering_pings();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload, b"hi");

    // 65 bytes of arguments.
    let mut over = server.client();
    over.send(format!("SUB {subject}x 1\r\n").as_bytes());
    expect_err_then_eof(&mut over, "maximum control line exceeded");
    // The CONNECT JSON counts too.
    let mut c = server.raw();
    c.send(format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(60)).as_bytes());
    c.expect_err_and_eof("maximum control line exceeded");
    assert!(ok.sync_answering_pings().is_empty());
}

/// Sends `prefix` and then `piece` over and over, slowly, until the server
/// answers (or stops taking bytes); returns what the server said before it
/// closed the connection and how many pieces went out.
fn endless_line(server: &TestServer, prefix: &[u8], piece: &[u8]) -> (Vec<String>, usize) {
    let mut reader = server.raw();
    let mut writer = reader.stream.try_clone().unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&answered);
    let read = std::thread::spawn(move || {
        let mut lines = Vec::new();
        while let Some(l) = reader.try_line() {
            flag.store(true, Ordering::SeqCst);
            lines.push(l);
        }
        flag.store(true, Ordering::SeqCst);
        lines
    });
    use std::io::Write;
    writer.write_all(prefix).unwrap();
    let mut sent = 0;
    // Bounded: 5000 pieces is far beyond any limit the tests set.
    while sent < 5000 && !answered.load(Ordering::SeqCst) {
        if writer.write_all(piece).is_err() {
            break;
        }
        sent += 1;
        // Pacing only, so that pieces tend to arrive in separate reads;
        // nothing depends on it.
        std::thread::sleep(Duration::from_millis(1));
    }
    (read.join().unwrap(), sent)
}

#[test]
fn endless_control_line_sent_slowly_is_cut_off() {
    let server = TestServer::start(&["--max_control_line", "64"]);
    let rss_before = server.rss_kib();
    for _ in 0..5 {
        let (lines, sent) = endless_line(&server, b"PUB ", b"abcdefg");
        assert_eq!(lines, vec!["-ERR 'maximum control line exceeded'"]);
        assert!(sent < 5000, "the server never answered");
        // An unknown verb that never ends.
        let (lines, _) = endless_line(&server, b"", b"zzzzzzz");
        assert_eq!(lines, vec!["-ERR 'Unknown Protocol Operation'"]);
        // Whitespace that never ends (a blank line would be ignored).
        let (lines, _) = endless_line(&server, b"SUB", b" \t \t \t ");
        assert_eq!(lines, vec!["-ERR 'maximum control line exceeded'"]);
    }
    assert!(server.wait_until_empty());
    let rss_after = server.rss_kib();
    assert!(
        rss_after < rss_before + 4 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let mut c = server.client();
    assert!(c.sync_answering_pings().is_empty());
}

// ----- keepalive -----

#[test]
fn silent_client_gets_pings_then_stale_connection() {
    let server = TestServer::start(&["--ping_interval", "300ms", "--ping_max", "2"]);
    let mut c = server.client();
    // ping_max PINGs go unanswered, then the connection is stale.
    c.expect("PING");
    c.expect("PING");
    c.expect_err_and_eof("Stale Connection");
    assert!(server.wait_until_empty());
}

#[test]
fn silent_client_without_connect_is_also_stale() {
    let server = TestServer::start(&["--ping_interval", "300ms", "--ping_max", "1"]);
    let mut c = server.raw();
    c.expect("PING");
    c.expect_err_and_eof("Stale Connection");
}

#[test]
fn client_answering_pings_stays_connected() {
    let server = TestServer::start(&["--ping_interval", "300ms", "--ping_max", "2"]);
    let mut c = server.client();
    c.send(b"SUB alive 1\r\n");
    // Several intervals (bounded by count and by the read timeout): answer
    // each PING, publish to itself in between, and see its own messages.
    let mut pings = 0;
    let mut got = Vec::new();
    while pings < 5 {
        let line = c.line();
        if line == "PING" {
            c.send(b"PONG\r\n");
            pings += 1;
            c.send(format!("PUB alive 1\r\n{pings}\r\n").as_bytes());
        } else {
            assert_eq!(line, "MSG alive 1 1");
            got.push(c.bytes(3)[0] - b'0');
        }
    }
    // Still connected and served; the last message may precede the PONG.
    let rest: Vec<u8> = c
        .msgs_until_pong_answering_pings()
        .into_iter()
        .map(|m| m.payload[0] - b'0')
        .collect();
    got.extend(rest);
    assert_eq!(got, [1, 2, 3, 4, 5]);
    assert!(
        server.log_lines().iter().all(|l| !l.contains("Stale")),
        "no connection went stale"
    );
}

// ----- auth timeout -----

#[test]
fn silent_client_gets_authentication_timeout() {
    let server = TestServer::start(&["--user", "u", "--pass", "p", "--auth_timeout", "300ms"]);
    let mut good = server.client_with(r#""verbose":false,"user":"u","pass":"p""#);
    let mut silent = Conn::connect(server.addr);
    let info = silent.line();
    assert!(info.contains("\"auth_required\":true"), "{info}");
    silent.expect_err_and_eof("Authentication Timeout");
    // Authenticated in time: not affected by the timeout.
    assert!(good.sync_answering_pings().is_empty());
    // A client that starts CONNECT but never finishes it is timed out too.
    let mut slow = server.raw();
    slow.send(b"CONNECT {\"user\":\"u\",");
    slow.expect_err_and_eof("Authentication Timeout");
}

// ----- max_connections -----

#[test]
fn connections_over_the_limit_get_info_then_error() {
    let server = TestServer::start(&["--max_connections", "3"]);
    let (mut c1, cid1) = client_with_cid(&server);
    let mut c2 = server.client();
    let mut c3 = server.client();
    let mut c4 = Conn::connect(server.addr);
    assert!(c4.line().starts_with("INFO {"));
    c4.expect_err_and_eof("maximum connections exceeded");
    for c in [&mut c1, &mut c2, &mut c3] {
        assert!(c.sync_answering_pings().is_empty());
    }
    // Still full.
    let mut c5 = Conn::connect(server.addr);
    assert!(c5.line().starts_with("INFO {"));
    c5.expect_err_and_eof("maximum connections exceeded");
    // Free a slot; once the server has seen it go, a new client is accepted.
    drop(c1);
    assert!(server.wait_for_log_where(closed_line(cid1)).is_some());
    let mut c6 = server.client();
    c6.send(b"SUB x 1\r\n");
    c6.sync_answering_pings();
    c2.send(b"PUB x 2\r\nok\r\n");
    c2.sync_answering_pings();
    assert_eq!(c6.msg_answering_pings().payload, b"ok");
}

// ----- max_subscriptions -----

#[test]
fn subscriptions_over_the_limit_are_refused_but_connection_stays() {
    let server = TestServer::start(&["--max_subscriptions", "2"]);
    let mut c = server.client();
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    assert_eq!(
        c.sync_answering_pings(),
        vec!["-ERR 'maximum subscriptions exceeded'"]
    );
    // Usable, and the refused subscription does not exist.
    c.send(b"PUB a 1\r\nA\r\nPUB c 1\r\nC\r\nPUB b 1\r\nB\r\n");
    let got: Vec<(String, Vec<u8>)> = c
        .msgs_until_pong_answering_pings()
        .into_iter()
        .map(|m| (m.sid, m.payload))
        .collect();
    assert_eq!(
        got,
        vec![("1".into(), b"A".to_vec()), ("2".into(), b"B".to_vec())]
    );
    // The limit is on current subscriptions: after an UNSUB there is room.
    c.send(b"UNSUB 1\r\nSUB c 3\r\nPUB c 1\r\nC\r\n");
    let got = c.msgs_until_pong_answering_pings();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sid, "3");
    // Verbose clients get the -ERR in place of the +OK.
    let mut v = server.raw();
    v.send(b"CONNECT {\"verbose\":true}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    assert_eq!(
        v.sync_answering_pings(),
        vec!["+OK", "+OK", "+OK", "-ERR 'maximum subscriptions exceeded'"]
    );
}

// ----- shutdown -----

/// Publishes a burst that the subscriber has not read yet, confirms with
/// PING/PONG that the server took all of it, signals, and checks the
/// subscriber gets every message before EOF and the server exits with 0.
fn shutdown_delivers_pending(sig: &str) {
    const N: usize = 8000;
    let mut server = TestServer::start(&[]);
    let mut sub = server.client();
    sub.send(b"SUB burst 1\r\n");
    sub.sync_answering_pings();
    let mut publisher = server.client();
    let payload = vec![b'p'; 500];
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend_from_slice(format!("PUB burst {}\r\n", payload.len() + 8).as_bytes());
        batch.extend_from_slice(format!("{i:08}").as_bytes());
        batch.extend_from_slice(&payload);
        batch.extend_from_slice(b"\r\n");
    }
    publisher.send(&batch);
    // 4 MB: more than the loopback socket buffers take, so some of it is
    // still in the server's buffer when the signal arrives.
    assert!(publisher.sync_answering_pings().is_empty());
    server.signal(sig);
    let (payloads, others) = sub.msgs_until_eof();
    assert!(others.is_empty(), "unexpected lines {others:?}");
    assert_eq!(payloads.len(), N, "messages confirmed before the signal");
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(&p[..8], format!("{i:08}").as_bytes());
    }
    publisher.expect_eof_answering_pings();
    assert_eq!(server.wait_exit(), Some(0));
    assert!(
        server.wait_for_log("Server Exiting").is_some(),
        "graceful exit expected"
    );
}

#[test]
fn sigterm_delivers_pending_messages_and_exits_zero() {
    shutdown_delivers_pending("TERM");
}

#[test]
fn sigint_delivers_pending_messages_and_exits_zero() {
    shutdown_delivers_pending("INT");
}

/// natrium gives clients SHUTDOWN_GRACE (2 s) to take their last bytes; a
/// subscriber that only starts reading a second after the signal (a
/// deliberate delay, the condition under test) still gets everything.
/// It used to be cut off after the 0.5 s grace of a single close,
/// in the middle of a message.
#[test]
fn shutdown_waits_for_a_late_reader_within_the_grace() {
    const N: usize = 8000;
    let mut server = TestServer::start(&[]);
    let mut sub = server.client();
    sub.send(b"SUB burst 1\r\n");
    sub.sync_answering_pings();
    let mut publisher = server.client();
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend_from_slice(format!("PUB burst 508\r\n{i:08}").as_bytes());
        batch.extend_from_slice(&[b'p'; 500]);
        batch.extend_from_slice(b"\r\n");
    }
    publisher.send(&batch);
    assert!(publisher.sync_answering_pings().is_empty());
    drop(publisher);
    server.signal("TERM");
    assert!(server.wait_for_log("shutting down").is_some());
    std::thread::sleep(Duration::from_secs(1));
    let (payloads, others) = sub.msgs_until_eof();
    assert!(others.is_empty(), "unexpected lines {others:?}");
    assert_eq!(payloads.len(), N);
    drop(sub);
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn second_signal_during_shutdown_exits_at_once() {
    let mut server = TestServer::start(&[]);
    // A client that never reads and never closes keeps a graceful shutdown
    // waiting for it.
    let mut stuck = server.client();
    stuck.send(b"SUB s 1\r\n");
    stuck.sync_answering_pings();
    let mut publisher = server.client();
    let batch = kilobyte_pubs("s", b'x', 4000);
    publisher.send(&batch);
    publisher.sync_answering_pings();
    server.signal("TERM");
    assert!(server.wait_for_log("shutting down").is_some());
    server.signal("TERM");
    assert_eq!(server.wait_exit(), Some(0));
    // The graceful path would wait SHUTDOWN_GRACE (2 s) for the stuck
    // client; the second signal cut that short.
    assert!(
        server.wait_for_log("Exiting now").is_some(),
        "log: {:?}",
        server.log_lines()
    );
    drop(stuck);
}

#[test]
fn two_quick_signals_exit_zero() {
    for sigs in [["TERM", "TERM"], ["INT", "TERM"], ["INT", "INT"]] {
        let mut server = TestServer::start(&[]);
        let mut c = server.client();
        c.sync_answering_pings();
        server.signal(sigs[0]);
        server.signal(sigs[1]);
        assert_eq!(server.wait_exit(), Some(0), "signals {sigs:?}");
    }
}

// ----- clients that vanish -----

#[test]
fn half_open_reset_and_partial_clients_leave_nothing_behind() {
    let server = TestServer::start(&[]);
    let mut sub = server.client();
    // Everything the half-finished publishes below go to.
    sub.send(b"SUB v.a 1\r\nSUB v.b 2\r\n");
    sub.sync_answering_pings();

    // Connect and drop without reading INFO: the unread INFO makes the
    // kernel answer with a reset rather than a FIN.
    for _ in 0..5 {
        drop(std::net::TcpStream::connect(server.addr).unwrap());
    }
    // Connect, read INFO, send nothing, close.
    for _ in 0..5 {
        drop(server.raw());
    }
    // A partial command and a reset (INFO left unread).
    for partial in [
        &b"SUB v.a"[..],
        b"PUB v.a 10\r\n0123",
        b"CONNECT {\"ver",
        b"P",
    ] {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        use std::io::Write;
        s.write_all(partial).unwrap();
        drop(s);
    }
    // Close in the middle of a payload, politely (FIN).
    for cut in [0, 1, 5, 11] {
        let mut c = server.client();
        c.send(b"SUB v.b 1\r\n");
        c.send(&b"PUB v.b 10\r\n0123456789\r\n"[..12 + cut]);
        c.stream.shutdown(Shutdown::Write).unwrap();
        // The server closes its side without a word.
        c.expect_eof_answering_pings();
    }
    // Half-close right after connecting: the server sees EOF and closes,
    // after the INFO it already sent.
    let mut half = Conn::connect(server.addr);
    half.stream.shutdown(Shutdown::Write).unwrap();
    assert!(half.line().starts_with("INFO {"));
    half.expect_eof();
    // A subscriber that disappears with messages on the way to it.
    let mut gone = server.client();
    gone.send(b"SUB v.c 1\r\n");
    gone.sync_answering_pings();
    let mut publisher = server.client();
    for _ in 0..100 {
        publisher.send(b"PUB v.c 3\r\nabc\r\n");
    }
    drop(gone);
    publisher.sync_answering_pings();

    // None of the half-finished publishes was delivered.
    let got = sub.msgs_until_pong_answering_pings();
    assert!(got.is_empty(), "{} partial publishes leaked", got.len());
    drop(publisher);
    drop(sub);
    assert!(server.wait_until_empty(), "log: {:?}", server.log_lines());
    let mut c = server.client();
    c.send(b"SUB z 1\r\nPUB z 1\r\nz\r\n");
    assert_eq!(c.msgs_until_pong_answering_pings().len(), 1);
}

#[test]
fn peer_reset_while_server_writes_is_handled() {
    let server = TestServer::start(&[]);
    // A subscriber that is sent a lot and resets (unread data pending).
    let mut victim = server.client();
    victim.send(b"SUB r 1\r\n");
    victim.sync_answering_pings();
    let mut publisher = server.client();
    let batch = kilobyte_pubs("r", b'r', 500);
    publisher.send(&batch);
    publisher.sync_answering_pings();
    // Read a little so the server is mid-stream, then vanish.
    let mut some = [0u8; 1000];
    let _ = victim.stream.read(&mut some).unwrap();
    drop(victim);
    publisher.send(&batch);
    assert!(publisher.sync_answering_pings().is_empty());
    drop(publisher);
    assert!(server.wait_until_empty(), "log: {:?}", server.log_lines());
    assert!(server.client().sync_answering_pings().is_empty());
}

/// A subscriber whose socket takes nothing for `write_deadline` is cut off
/// as a slow consumer even while its pending output is under `max_pending`,
/// and the publisher goes on.
#[test]
fn stalled_write_past_the_write_deadline_is_a_slow_consumer() {
    let server = TestServer::start(&["--write_deadline", "300ms", "--max_pending", "512MB"]);
    let (mut stalled, cid) = client_with_cid(&server);
    stalled.send(b"SUB deadline 1\r\n");
    assert!(stalled.sync_answering_pings().is_empty());
    let mut publisher = server.client();
    // Publish in rounds until the server gives up on the subscriber that
    // never reads: more than the kernel's socket buffers can hold, far less
    // than max_pending. Bounded: at most 200 rounds of 1 MB.
    let batch = kilobyte_pubs("deadline", b'w', 1000);
    let mut cut = None;
    for _ in 0..200 {
        publisher.send(&batch);
        assert!(publisher.sync_answering_pings().is_empty());
        cut = server
            .log_lines()
            .into_iter()
            .find(|l| l.contains("Slow Consumer Detected") && l.contains(&format!("cid:{cid} ")));
        if cut.is_some() {
            break;
        }
    }
    let line = cut.expect("the stalled subscriber was cut off by the write deadline");
    // Cut off well under max_pending: the deadline, not the size, decided.
    let pending: usize = line
        .split("Detected: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("pending bytes in the log line");
    assert!(pending < 512 * 1024 * 1024, "{line}");
    // The publisher is unaffected.
    publisher.send(b"PUB other 2\r\nok\r\n");
    assert!(publisher.sync_answering_pings().is_empty());
}

/// Started with a soft open-files limit of 64 (the hard limit untouched),
/// natrium raises it to the hard limit and serves 200 connections at once,
/// as nats-server does.
#[test]
fn a_low_soft_fd_limit_is_raised_at_start() {
    let server = TestServer::start_with_shell_prefix("ulimit -Sn 64", &[]);
    assert!(
        server
            .wait_for_log("Raised the open files limit from 64")
            .is_some(),
        "log: {:?}",
        server.log_lines()
    );
    let mut conns: Vec<Conn> = (0..200).map(|_| server.client()).collect();
    for c in &mut conns {
        assert!(c.sync_answering_pings().is_empty());
    }
}
