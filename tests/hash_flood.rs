//! Hash flooding (issue 15): subscriptions whose subjects and sids were
//! built to collide under the unseeded hash natrium used before must not
//! stall the loop, for the flooding client or anyone else.
//!
//! Against the old server one such flood of 60,000 SUBs took 47 s of one
//! loop turn after another, answering no one else for seconds at a time.
//! Here a second client is answered while the flood is processed: its
//! message reaches the flooder before the flood's own PONG (an order the
//! loop's per-turn read budget guarantees), its PING/PONG comes back
//! within the harness's read timeout, and the flood's PONG within a
//! generous deadline. Nothing is timed beyond those bounds.

mod common;
#[path = "common/fx_collide.rs"]
mod fx_collide;

use common::{Conn, TestServer};
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// Subscriptions in the flood (the figure of the issue).
const FLOOD: usize = 60_000;

/// Longest the flood may take to be answered, even on a loaded machine
/// with a debug build (it takes well under a second there; the old server
/// took 47 s in a release build).
const FLOOD_DEADLINE: Duration = Duration::from_secs(60);

/// The next line, answering (and skipping) the server's keepalive PINGs:
/// the first one comes 2 s after CONNECT, which a debug build under load
/// may reach while the flood is processed.
fn line(c: &mut Conn) -> String {
    loop {
        let line = c.line();
        if line != "PING" {
            return line;
        }
        c.send(b"PONG\r\n");
    }
}

/// The next MSG as (subject, sid, payload).
fn msg(c: &mut Conn) -> (String, String, Vec<u8>) {
    let line = line(c);
    let parts: Vec<&str> = line.split(' ').collect();
    let [verb, subject, sid, len] = parts[..] else {
        panic!("expected MSG, got {line:?}");
    };
    assert_eq!(verb, "MSG");
    let len: usize = len.parse().expect("payload length");
    let mut payload = c.bytes(len + 2);
    payload.truncate(len);
    (subject.to_string(), sid.to_string(), payload)
}

/// Sends PING and returns the lines before its PONG.
fn sync(c: &mut Conn) -> Vec<String> {
    c.send(b"PING\r\n");
    let mut before = Vec::new();
    loop {
        match line(c) {
            pong if pong == "PONG" => return before,
            other => before.push(other),
        }
    }
}

/// SUBs of the flood sent before the observer speaks; the rest must be
/// more than two loop turns of reading (see below).
const FIRST_PART: usize = 4_000;

#[test]
fn colliding_subscriptions_do_not_stall_the_server() {
    let server = TestServer::start(&[]);
    let mut flooder = server.client();
    let mut observer = server.client();
    // The observer's messages reach the flooder on the same socket as the
    // flood's PONG, so their order is the server's order.
    flooder.send(b"SUB observer.hello hello\r\n");
    assert!(sync(&mut flooder).is_empty());

    // Subjects collide as trie edges below the root, sids as keys of the
    // connection's sid map: both tables of the old server degenerate.
    let subjects = fx_collide::colliding_keys(fx_collide::edge_prefix(0), FLOOD);
    let sids = fx_collide::colliding_keys(fx_collide::map_key_prefix(16), FLOOD);
    for (keys, pre) in [
        (&subjects, fx_collide::edge_prefix(0)),
        (&sids, fx_collide::map_key_prefix(16)),
    ] {
        assert_eq!(keys.len(), FLOOD);
        let state = fx_collide::old_state(pre, &keys[0]);
        assert!(keys.iter().all(|k| fx_collide::old_state(pre, k) == state));
    }
    let text = |k: &[u8; 16]| String::from_utf8(k.to_vec()).expect("printable ASCII");
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for (i, (subject, sid)) in subjects.iter().zip(&sids).enumerate() {
        let part = if i < FIRST_PART {
            &mut first
        } else {
            &mut rest
        };
        part.extend_from_slice(format!("SUB {} {}\r\n", text(subject), text(sid)).as_bytes());
    }
    rest.extend_from_slice(b"PING\r\n");
    // The loop reads at most this much of one connection per turn. The
    // observer's PUB is in its socket before any of `rest` is written, so
    // it is read in the turn under way then or the next one; those two
    // turns cannot read all of `rest`, so the flood's PING comes later:
    // the observer's message must reach the flooder before the PONG.
    let per_turn = natrium::server::READ_BUDGET * natrium::server::READ_SIZE;
    assert!(
        rest.len() > 2 * per_turn,
        "flood too small to span the turns"
    );

    let mut writer = flooder.stream.try_clone().expect("clone socket");
    let (first_sent, first_written) = mpsc::channel();
    let (go_on, may_go_on) = mpsc::channel::<()>();
    let write = std::thread::spawn(move || {
        writer.write_all(&first).expect("write flood");
        first_sent.send(()).expect("test alive");
        may_go_on.recv().expect("test alive");
        writer.write_all(&rest).expect("write flood");
    });

    first_written
        .recv_timeout(FLOOD_DEADLINE)
        .expect("first part of the flood written");
    observer.send(b"PUB observer.hello 2\r\nhi\r\nPING\r\n");
    go_on.send(()).expect("writer alive");
    // Answered while the flood is processed, within the harness's read
    // timeout (10 s): the old server spent longer than that on one turn.
    assert_eq!(line(&mut observer), "PONG");
    flooder
        .stream
        .set_read_timeout(Some(FLOOD_DEADLINE))
        .expect("set timeout");
    let (subject, sid, _) = msg(&mut flooder);
    assert_eq!((&subject[..], &sid[..]), ("observer.hello", "hello"));
    assert_eq!(line(&mut flooder), "PONG");
    write.join().expect("writer");
    flooder
        .stream
        .set_read_timeout(Some(common::TIMEOUT))
        .expect("set timeout");

    // Every colliding subscription is in place and tells its sid.
    for i in [0, 1, FLOOD / 2, FLOOD - 1] {
        observer.send(format!("PUB {} 2\r\nhi\r\n", text(&subjects[i])).as_bytes());
        assert_eq!(
            msg(&mut flooder),
            (text(&subjects[i]), text(&sids[i]), b"hi".to_vec())
        );
    }
    // UNSUB by colliding sids removes exactly those.
    for i in [0, FLOOD - 1] {
        flooder.send(format!("UNSUB {}\r\n", text(&sids[i])).as_bytes());
    }
    assert!(sync(&mut flooder).is_empty());
    for i in [0, 1, FLOOD - 1] {
        observer.send(format!("PUB {} 2\r\nhi\r\n", text(&subjects[i])).as_bytes());
    }
    assert!(sync(&mut observer).is_empty());
    assert_eq!(
        msg(&mut flooder),
        (text(&subjects[1]), text(&sids[1]), b"hi".to_vec())
    );
    assert!(sync(&mut flooder).is_empty(), "more than one delivery");

    // Closing removes the remaining subscriptions from the colliding tables.
    drop(flooder);
    drop(observer);
    assert!(
        server.wait_until_empty(),
        "subscriptions left behind: {:?}",
        server.log_lines().last()
    );
}
