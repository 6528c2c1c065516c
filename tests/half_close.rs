//! Clients that send their commands and then close their sending side, as
//! `printf '...' | nc host 4222` does: they still get every reply, and an
//! error that arrives together with their FIN still reaches them.

mod common;
use common::TestServer;
use std::net::Shutdown;

/// The session of README.md's "Try it with telnet or netcat", sent the way
/// `nc -C` sends it (CRLF line ends), then half-closed.
#[test]
fn readme_session_gets_every_reply_after_a_half_close() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"SUB greetings.* 1\r\nPUB greetings.world 5\r\nhello\r\nPING\r\nUNSUB 1\r\n");
    c.stream.shutdown(Shutdown::Write).unwrap();
    for want in [
        "+OK",
        "+OK",
        "MSG greetings.world 1 5",
        "hello",
        "PONG",
        "+OK",
    ] {
        c.expect(want);
    }
    c.expect_eof();
    assert!(server.wait_until_empty());
}

/// Plain `nc` ends the payload with a bare LF, which nats-server refuses
/// after a payload: the client gets the replies before it and the error.
#[test]
fn error_arriving_with_the_fin_is_still_sent() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"SUB greetings.* 1\nPUB greetings.world 5\nhello\nPING\n");
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect("+OK");
    c.expect_err("Unknown Protocol Operation");
    c.expect_eof();
    assert!(server.wait_until_empty());
}

/// A half-closed client that sent nothing wrong and asked nothing gets
/// nothing but its INFO, and is dropped.
#[test]
fn silent_half_close_is_dropped_cleanly() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\n");
    c.stream.shutdown(Shutdown::Write).unwrap();
    c.expect_eof();
    assert!(server.wait_until_empty());
}
