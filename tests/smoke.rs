//! The harness itself works: a server starts, a client pubs and subs.

mod common;
use common::TestServer;

#[test]
fn pub_sub_round_trip() {
    let server = TestServer::start(&[]);
    let mut sub = server.client();
    sub.send(b"SUB greet.* 1\r\n");
    sub.sync();
    let mut publisher = server.client();
    publisher.send(b"PUB greet.joe 5\r\nhello\r\n");
    publisher.sync();
    let m = sub.msg();
    assert_eq!((m.subject.as_str(), m.sid.as_str()), ("greet.joe", "1"));
    assert_eq!(m.payload, b"hello");
}
