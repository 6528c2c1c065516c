//! bcrypt passwords are checked on a worker thread: a CONNECT that needs
//! one waits for its verdict (with whatever the client sent after it),
//! while the event loop keeps serving every other client.

mod common;
use common::{TempConf, TestServer};
use std::sync::OnceLock;

/// A config with a bcrypt user `slow` (cost 12: long enough to notice if it
/// ran on the loop) and a plain-password user `fast`. The hash is made once.
fn conf() -> TempConf {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| bcrypt::hash("s3cret", 12).expect("bcrypt hash"));
    TempConf::new(
        "bcrypt",
        &format!(
            "authorization {{ users: [ {{user: slow, password: \"{hash}\"}}, {{user: fast, password: plain}} ] }}\n"
        ),
    )
}

#[test]
fn operations_after_a_bcrypt_connect_wait_for_it_and_run_in_order() {
    let conf = conf();
    let server = TestServer::start(&["-c", conf.arg(), "--auth_timeout", "60s"]);
    let mut c = server.raw();
    // Everything in one write: the SUB, PUB and PING must not run before
    // the CONNECT is accepted, and must all run after it, in order.
    c.send(
        b"CONNECT {\"user\":\"slow\",\"pass\":\"s3cret\",\"verbose\":false}\r\n\
          SUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n",
    );
    c.expect("MSG a 1 2");
    c.expect("hi");
    c.expect("PONG");
}

#[test]
fn a_wrong_bcrypt_password_is_refused_and_nothing_after_it_runs() {
    let conf = conf();
    let server = TestServer::start(&["-c", conf.arg(), "--auth_timeout", "60s"]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"user\":\"slow\",\"pass\":\"nope\",\"verbose\":false}\r\nPING\r\n");
    c.expect_err("Authorization Violation");
    c.expect_eof();
}

#[test]
fn other_clients_are_served_while_a_bcrypt_check_runs() {
    let conf = conf();
    let server = TestServer::start(&["-c", conf.arg(), "--auth_timeout", "60s"]);
    let mut other = server.client_with(r#""user":"fast","pass":"plain","verbose":false"#);
    let mut slow = server.raw();
    slow.send(b"CONNECT {\"user\":\"slow\",\"pass\":\"s3cret\",\"verbose\":false}\r\nPING\r\n");
    // Twenty round trips for the other client. Had the check run on the
    // event loop, the first of them could only be answered after it, and
    // the slow client's PONG would be waiting by the end.
    for _ in 0..20 {
        assert!(other.sync().is_empty());
    }
    slow.stream.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let early = std::io::Read::read(&mut slow.stream, &mut probe);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the bcrypt client was answered before the other client's round trips: {early:?}"
    );
    slow.stream.set_nonblocking(false).unwrap();
    slow.expect("PONG");
}
