//! Queue groups: each message goes to exactly one member of each group,
//! independently of plain subscribers and of other groups.
//!
//! Member choice is random in nats-server, so distribution is only checked
//! loosely (every member gets something over 100 messages), never exactly.

mod common;
use common::{Conn, Msg, TestServer, quiet, quiet_subscriber};
use std::collections::BTreeSet;

/// Connections each holding one `SUB <subject> <queue> 1`.
fn members(server: &TestServer, n: usize, subject: &str, queue: &str) -> Vec<Conn> {
    (0..n)
        .map(|_| {
            quiet_subscriber(
                server,
                "",
                format!("SUB {subject} {queue} 1\r\n").as_bytes(),
            )
        })
        .collect()
}

/// `n` publishes to `subject` with payloads `0..n`, as one buffer.
fn numbered_pubs(subject: &str, n: usize) -> Vec<u8> {
    let mut batch = Vec::new();
    for i in 0..n {
        let p = i.to_string();
        batch.extend_from_slice(format!("PUB {subject} {}\r\n{p}\r\n", p.len()).as_bytes());
    }
    batch
}

/// Publishes `n` messages with payloads `0..n` and waits until the server processed them.
fn publish_numbered(publisher: &mut Conn, subject: &str, n: usize) {
    publisher.send(&numbered_pubs(subject, n));
    assert!(publisher.sync().is_empty());
}

fn payloads(msgs: &[Msg]) -> Vec<usize> {
    msgs.iter()
        .map(|m| std::str::from_utf8(&m.payload).unwrap().parse().unwrap())
        .collect()
}

/// Checks that the members together got each of `0..n` exactly once, and
/// that each member got at least one. Returns the per-member counts.
fn assert_partition(per_member: &[Vec<usize>], n: usize) -> Vec<usize> {
    let mut all: Vec<usize> = per_member.iter().flatten().copied().collect();
    assert_eq!(all.len(), n, "total deliveries: {per_member:?}");
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "each message exactly once");
    let counts: Vec<usize> = per_member.iter().map(Vec::len).collect();
    assert!(
        counts.iter().all(|&c| c > 0),
        "every member gets some: {counts:?}"
    );
    // Each member's messages arrive in publish order.
    for got in per_member {
        assert!(got.windows(2).all(|w| w[0] < w[1]), "order: {got:?}");
    }
    counts
}

#[test]
fn each_message_goes_to_exactly_one_member() {
    let server = TestServer::start(&[]);
    let mut group = members(&server, 4, "work", "q");
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "work", 100);
    let per_member: Vec<Vec<usize>> = group
        .iter_mut()
        .map(|c| {
            let msgs = c.msgs_until_pong();
            assert!(msgs.iter().all(|m| m.subject == "work" && m.sid == "1"));
            payloads(&msgs)
        })
        .collect();
    assert_partition(&per_member, 100);
}

#[test]
fn several_groups_and_plain_subscribers_each_get_theirs() {
    let server = TestServer::start(&[]);
    let mut g1 = members(&server, 3, "jobs.*", "g1");
    let mut g2 = members(&server, 2, "jobs.>", "g2");
    let mut plain = members(&server, 1, "jobs.run", "");
    // `members` with an empty queue name makes "SUB jobs.run  1": a plain sub.
    let mut plain2 = quiet_subscriber(&server, "", b"SUB > 5\r\n");
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "jobs.run", 100);
    let collect = |conns: &mut Vec<Conn>| -> Vec<Vec<usize>> {
        conns
            .iter_mut()
            .map(|c| payloads(&c.msgs_until_pong()))
            .collect()
    };
    assert_partition(&collect(&mut g1), 100);
    assert_partition(&collect(&mut g2), 100);
    assert_eq!(collect(&mut plain), vec![(0..100).collect::<Vec<_>>()]);
    assert_eq!(
        payloads(&plain2.msgs_until_pong()),
        (0..100).collect::<Vec<_>>()
    );
}

#[test]
fn plain_and_queue_subscription_on_one_connection_are_independent() {
    let server = TestServer::start(&[]);
    let mut c = quiet(&server, "");
    c.send(b"SUB foo 1\r\nSUB foo q 2\r\nPUB foo 0\r\n\r\n");
    let msgs = c.msgs_until_pong();
    let sids: BTreeSet<String> = msgs.iter().map(|m| m.sid.clone()).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(sids, ["1", "2"].map(String::from).into());
}

#[test]
fn two_members_on_one_connection_share_the_messages() {
    let server = TestServer::start(&[]);
    let mut c = quiet_subscriber(
        &server,
        "",
        b"SUB work q a\r\nSUB work.> q b\r\nSUB work q c\r\n",
    );
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "work", 60);
    let msgs = c.msgs_until_pong();
    // work.> does not match "work": only a and c are candidates.
    let per_sid: Vec<Vec<usize>> = ["a", "c"]
        .iter()
        .map(|sid| {
            payloads(
                &msgs
                    .iter()
                    .filter(|m| m.sid == *sid)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert!(msgs.iter().all(|m| m.sid != "b"));
    assert_partition(&per_sid, 60);
}

#[test]
fn queue_member_on_publisher_with_echo_false_is_skipped() {
    let server = TestServer::start(&[]);
    let mut publisher = quiet_subscriber(&server, r#""echo":false"#, b"SUB work q 1\r\n");
    let mut other = members(&server, 1, "work", "q");
    publish_numbered(&mut publisher, "work", 40);
    assert!(publisher.msgs_until_pong().is_empty());
    assert_eq!(
        payloads(&other[0].msgs_until_pong()),
        (0..40).collect::<Vec<_>>()
    );
    // With only itself in the group, the message goes nowhere.
    drop(other);
    let mut probe = quiet_subscriber(&server, "", b"SUB work 9\r\n");
    publish_numbered(&mut publisher, "work", 1);
    assert!(publisher.msgs_until_pong().is_empty());
    assert_eq!(probe.msgs_until_pong().len(), 1);
}

#[test]
fn queue_member_on_publisher_with_echo_true_takes_its_share() {
    let server = TestServer::start(&[]);
    let mut publisher = quiet_subscriber(&server, "", b"SUB work q 1\r\n");
    let mut other = members(&server, 1, "work", "q");
    publisher.send(&numbered_pubs("work", 100));
    let mine = payloads(&publisher.msgs_until_pong());
    let theirs = payloads(&other[0].msgs_until_pong());
    assert_partition(&[mine, theirs], 100);
}

#[test]
fn unsubscribed_member_gets_nothing_more() {
    let server = TestServer::start(&[]);
    let mut group = members(&server, 3, "work", "q");
    group[1].send(b"UNSUB 1\r\n");
    group[1].sync();
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "work", 50);
    assert!(group[1].msgs_until_pong().is_empty());
    let a = payloads(&group[0].msgs_until_pong());
    let c = payloads(&group[2].msgs_until_pong());
    assert_partition(&[a, c], 50);
}

#[test]
fn closed_member_leaves_the_group() {
    let server = TestServer::start(&[]);
    let mut group = members(&server, 2, "work", "q");
    let gone = group.pop().unwrap();
    drop(gone);
    assert!(server.wait_for_log("Client connection closed").is_some());
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "work", 20);
    assert_eq!(
        payloads(&group[0].msgs_until_pong()),
        (0..20).collect::<Vec<_>>()
    );
}

#[test]
fn auto_unsubscribed_member_is_skipped_after_its_max() {
    let server = TestServer::start(&[]);
    let mut limited = members(&server, 1, "work", "q");
    limited[0].send(b"UNSUB 1 2\r\n");
    limited[0].sync();
    let mut rest = members(&server, 2, "work", "q");
    let mut publisher = quiet(&server, "");
    publish_numbered(&mut publisher, "work", 100);
    let got = payloads(&limited[0].msgs_until_pong());
    assert_eq!(got.len(), 2, "limited member got {got:?}");
    let mut per_member: Vec<Vec<usize>> = rest
        .iter_mut()
        .map(|c| payloads(&c.msgs_until_pong()))
        .collect();
    per_member.push(got);
    let mut all: Vec<usize> = per_member.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>(), "nothing lost or doubled");
}

#[test]
fn queue_names_are_arbitrary_tokens() {
    let server = TestServer::start(&[]);
    let mut c = server.raw();
    c.send(b"SUB foo a.b 1\r\nSUB foo * 2\r\nSUB foo > 3\r\n");
    c.expect("+OK");
    c.expect("+OK");
    c.expect("+OK");
    c.send(b"PUB foo 0\r\n\r\n");
    c.expect("+OK");
    // Three distinct groups with one member each: three copies.
    let sids: BTreeSet<String> = c.msgs_until_pong().into_iter().map(|m| m.sid).collect();
    assert_eq!(sids, ["1", "2", "3"].map(String::from).into());
}
