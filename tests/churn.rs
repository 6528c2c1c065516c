//! Hostile and heavy traffic: a slow consumer under a flood, thousands of
//! connections coming and going, garbage next to a healthy stream, and
//! running out of file descriptors.
//!
//! These tests load the machine, so they take a lock and run one at a time.
//! Every loop is bounded in count, every wait by the harness timeouts.

mod common;
use common::{Conn, TIMEOUT, TestServer, clock_ticks_per_sec};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static HEAVY: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `PUB` of a `size`-byte payload that starts with `seq` as 8 digits.
fn numbered_pub(out: &mut Vec<u8>, subject: &str, seq: usize, size: usize) {
    out.extend_from_slice(format!("PUB {subject} {size}\r\n{seq:08}").as_bytes());
    out.resize(out.len() + size - 8, b'.');
    out.extend_from_slice(b"\r\n");
}

/// How many messages a reader thread has taken so far.
#[derive(Default)]
struct Progress {
    count: Mutex<usize>,
    cv: Condvar,
}

impl Progress {
    fn advance(&self, n: usize) {
        *self.count.lock().unwrap() = n;
        self.cv.notify_all();
    }

    /// Waits (bounded) until at least `n` messages were taken.
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + TIMEOUT;
        let mut count = self.count.lock().unwrap();
        while *count < n {
            let now = Instant::now();
            assert!(now < deadline, "reader stuck at {} of {n}", *count);
            count = self.cv.wait_timeout(count, deadline - now).unwrap().0;
        }
    }
}

/// Reads `n` messages in a thread and checks that their sequence numbers
/// are 0..n in order; returns the count it saw.
fn ordered_reader(c: Conn, n: usize) -> std::thread::JoinHandle<usize> {
    ordered_reader_with_progress(c, n, Arc::default())
}

/// [`ordered_reader`] that reports its progress.
fn ordered_reader_with_progress(
    mut c: Conn,
    n: usize,
    progress: Arc<Progress>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        for i in 0..n {
            let line = c.line_answering_pings();
            let m = common_msg(&mut c, &line);
            assert_eq!(
                &m[..8],
                format!("{i:08}").as_bytes(),
                "message {i} out of order or missing"
            );
            if i % 16 == 15 || i + 1 == n {
                progress.advance(i + 1);
            }
        }
        n
    })
}

/// The payload of the MSG whose line was just read.
fn common_msg(c: &mut Conn, line: &str) -> Vec<u8> {
    assert!(line.starts_with("MSG "), "expected MSG, got {line:?}");
    let size: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut data = c.bytes(size + 2);
    assert_eq!(&data[size..], b"\r\n");
    data.truncate(size);
    data
}

// ----- slow consumer -----
//
// A subscriber that stops reading falls `max_pending` behind what its
// socket takes and is cut off; natrium does not wait for a subscriber that
// makes no progress (protocol.md, differences). A *healthy* subscriber here is one that keeps up
// within a window: the publisher never gets more than `WINDOW` messages
// ahead of what the healthy readers have taken. The window is a little
// larger than `max_pending`, so the server has to write to the socket
// rather than count a turn's worth of output as pending.

/// Publishes `n` numbered messages of `size` bytes to `subject`, never more
/// than `window` messages ahead of the slowest of `readers`.
fn publish_windowed(
    publisher: &mut Conn,
    subject: &str,
    n: usize,
    size: usize,
    window: usize,
    readers: &[Arc<Progress>],
) {
    let mut batch = Vec::new();
    let mut seq = 0;
    while seq < n {
        let upto = (seq + 64).min(n);
        if upto > window {
            for r in readers {
                r.wait_for(upto - window);
            }
        }
        for s in seq..upto {
            numbered_pub(&mut batch, subject, s, size);
        }
        publisher.send(&batch);
        batch.clear();
        seq = upto;
    }
}

#[test]
fn slow_consumer_is_cut_off_without_hurting_others() {
    let _guard = one_at_a_time();
    const N: usize = 20_000;
    const SIZE: usize = 1024;
    const WINDOW: usize = 320; // about 330 KB, max_pending is 256 KiB
    let server = TestServer::start(&["--max_pending", "256KB", "--max_payload", "64KB"]);
    let rss_start = server.rss_kib();

    let (mut stalled, stalled_cid) = server.raw_with_cid();
    stalled.send(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB flood 1\r\n");
    assert!(stalled.sync_answering_pings().is_empty());
    let stalled_addr = stalled.stream.local_addr().unwrap();

    let mut healthy = server.client();
    healthy.send(b"SUB flood 1\r\n");
    assert!(healthy.sync_answering_pings().is_empty());
    let progress = Arc::new(Progress::default());
    let reader = ordered_reader_with_progress(healthy, N, Arc::clone(&progress));

    let mut publisher = server.client();
    publish_windowed(&mut publisher, "flood", N, SIZE, WINDOW, &[progress]);
    // The publisher is never held back: its PING is answered after the flood.
    assert!(publisher.sync_answering_pings().is_empty());
    assert_eq!(reader.join().expect("healthy subscriber"), N);

    // The stalled subscriber was cut off: what it can still read ends in
    // EOF (or a reset) well before the whole flood.
    let rest = stalled.drain_to_eof(N * (SIZE + 40));
    assert!(
        rest.len() < N * SIZE / 2,
        "stalled subscriber got {} bytes",
        rest.len()
    );
    let line = server
        .wait_for_log("Slow Consumer Detected")
        .expect("slow consumer logged");
    assert!(
        line.contains(&format!("cid:{stalled_cid} ")) && line.contains(&stalled_addr.to_string()),
        "log line names the client: {line}"
    );
    let cut: Vec<String> = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("Slow Consumer Detected"))
        .collect();
    assert_eq!(cut.len(), 1, "only the stalled subscriber: {cut:?}");
    // The server never buffered the flood for it.
    let rss = server.rss_kib();
    assert!(
        rss < 64 * 1024,
        "server RSS {rss} KiB (at start {rss_start} KiB)"
    );
    drop(publisher);
    assert!(server.wait_until_empty());
}

#[test]
fn slow_consumers_among_many_healthy_subscribers() {
    let _guard = one_at_a_time();
    const N: usize = 20_000;
    const SIZE: usize = 512;
    const WINDOW: usize = 160; // about 88 KB, max_pending is 64 KiB
    let server = TestServer::start(&["--max_pending", "64KB", "--max_payload", "16KB"]);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut s = server.client();
        s.send(b"SUB fan.> 1\r\n");
        s.sync_answering_pings();
        stalled.push(s);
    }
    let mut readers = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..4 {
        let mut h = server.client();
        h.send(b"SUB fan.x 7\r\n");
        h.sync_answering_pings();
        let p = Arc::new(Progress::default());
        readers.push(ordered_reader_with_progress(h, N, Arc::clone(&p)));
        progress.push(p);
    }
    let mut publisher = server.client();
    publish_windowed(&mut publisher, "fan.x", N, SIZE, WINDOW, &progress);
    assert!(publisher.sync_answering_pings().is_empty());
    for r in readers {
        assert_eq!(r.join().unwrap(), N);
    }
    for mut s in stalled {
        let rest = s.drain_to_eof(N * (SIZE + 40));
        assert!(rest.len() < N * SIZE / 2);
    }
    assert!(server.wait_for_log_count("Slow Consumer Detected", 4));
    assert_eq!(
        server
            .log_lines()
            .iter()
            .filter(|l| l.contains("Slow Consumer Detected"))
            .count(),
        4,
        "only the stalled subscribers are cut off"
    );
    drop(publisher);
    assert!(server.wait_until_empty());
}

// ----- churn -----

/// One short-lived client doing something and vanishing in one of several ways.
fn churn_one(addr: SocketAddr, i: usize) {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let sub = format!(
        "SUB churn.{} {i}\r\nSUB churn.> q{} {}\r\n",
        i % 7,
        i % 3,
        i + 1
    );
    let publ = format!("PUB churn.{} 5\r\nhello\r\n", i % 11);
    let bytes: Vec<u8> = match i % 8 {
        // Normal: connect, subscribe, publish, close.
        0 => format!("CONNECT {{}}\r\n{sub}{publ}PING\r\n").into_bytes(),
        // No CONNECT at all.
        1 => format!("{sub}{publ}").into_bytes(),
        // Close in the middle of a payload.
        2 => format!("{sub}PUB churn.1 100\r\n0123456789").into_bytes(),
        // Close after a partial control line.
        3 => format!("{sub}PUB chur").into_bytes(),
        // Protocol error: the server closes.
        4 => format!("{sub}BOGUS\r\n").into_bytes(),
        // Nothing at all.
        5 => Vec::new(),
        // Half-close after subscribing.
        6 => sub.into_bytes(),
        // Unsubscribe again, then publish and close.
        _ => format!("{sub}UNSUB {i}\r\n{publ}").into_bytes(),
    };
    // Errors only mean the server closed first (cases 4 and the like).
    let _ = s.write_all(&bytes);
    match i % 4 {
        // Leave INFO (and maybe more) unread: the close becomes a reset.
        0 => {}
        // Read whatever is there until the server closes or a bit arrived.
        1 => {
            let _ = s.shutdown(Shutdown::Write);
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
        }
        _ => {
            let _ = s.shutdown(Shutdown::Write);
        }
    }
}

#[test]
fn thousands_of_connections_come_and_go() {
    let _guard = one_at_a_time();
    const TOTAL: usize = 2000;
    const BATCH: usize = 100;
    let server = TestServer::start(&[]);
    let mut watcher = server.client();
    watcher.send(b"SUB churn.> 1\r\n");
    watcher.sync_answering_pings();
    let start = Instant::now();
    let mut i = 0;
    while i < TOTAL {
        // A batch in parallel threads.
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let addr = server.addr;
                std::thread::spawn(move || {
                    for j in (i + t..i + BATCH).step_by(4) {
                        churn_one(addr, j);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        i += BATCH;
        assert!(start.elapsed() < Duration::from_secs(120), "churn too slow");
    }
    // The watcher saw the complete publishes and nothing half-finished.
    let msgs = watcher.msgs_until_pong_answering_pings();
    assert!(msgs.iter().all(|m| m.payload == b"hello"));
    drop(watcher);
    assert!(
        server.wait_until_empty(),
        "connections or subscriptions left"
    );
    let mut c = server.client();
    c.send(b"SUB a 1\r\nPUB a 2\r\nok\r\n");
    assert_eq!(c.msgs_until_pong_answering_pings().len(), 1);
}

// ----- isolation -----

/// A tiny deterministic generator for garbage.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn garbage_clients_do_not_disturb_a_stream() {
    let _guard = one_at_a_time();
    const N: usize = 3000;
    let server = TestServer::start(&["--max_control_line", "256"]);
    let mut healthy = server.client();
    healthy.send(b"SUB stream 1\r\n");
    healthy.sync_answering_pings();
    let reader = ordered_reader(healthy, N);
    let mut publisher = server.client();

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0;
    let mut closed = 0;
    for round in 0..30 {
        // A slice of the stream, then one garbage client.
        let mut batch = Vec::new();
        for _ in 0..N / 30 {
            numbered_pub(&mut batch, "stream", seq, 200);
            seq += 1;
        }
        publisher.send(&batch);
        let mut bad = server.raw();
        let expected: Option<&str> = match round % 5 {
            // Random bytes (never starting like a verb or a blank line).
            0 => {
                let mut junk = vec![b'#'];
                junk.extend((0..8192).map(|_| rng.next() as u8));
                bad.try_send(&junk);
                None // Usually 'Unknown Protocol Operation'; any close will do.
            }
            // A line that never ends.
            1 => {
                bad.try_send(b"SUB ");
                let long = vec![b'a'; 4096];
                bad.try_send(&long);
                Some("maximum control line exceeded")
            }
            // A huge size.
            2 => {
                bad.try_send(b"PUB stream 999999999\r\n");
                Some("Maximum Payload Violation")
            }
            // A payload longer than announced, into the same subject.
            3 => {
                bad.try_send(b"PUB stream 2\r\nthree\r\n");
                Some("Unknown Protocol Operation")
            }
            // Binary junk after a valid CONNECT.
            _ => {
                bad.try_send(b"CONNECT {}\r\n\x00\x01\x02\xff\r\n");
                Some("Unknown Protocol Operation")
            }
        };
        let got = String::from_utf8_lossy(&bad.drain_to_eof(1 << 20)).to_string();
        if let Some(text) = expected {
            assert!(
                got.contains(&format!("-ERR '{text}'")),
                "round {round}: expected {text}, got {got:?}"
            );
        }
        closed += 1;
    }
    assert_eq!(seq, N);
    assert!(publisher.sync_answering_pings().is_empty());
    assert_eq!(reader.join().expect("stream undisturbed"), N);
    assert_eq!(closed, 30);
    drop(publisher);
    assert!(server.wait_until_empty());
}

// ----- file descriptors -----

#[test]
fn running_out_of_file_descriptors_does_not_spin() {
    let _guard = one_at_a_time();
    let server = TestServer::start_with_shell_prefix("ulimit -n 64", &[]);
    // Open connections until the server cannot accept any more: 64 fds
    // minus its own few. Connections the server does not accept still
    // complete the TCP handshake (the kernel backlog), so count INFOs.
    let mut accepted = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..80 {
        waiting.push(TcpStream::connect_timeout(&server.addr, TIMEOUT).unwrap());
    }
    let line = server
        .wait_for_log("Error accepting client connection")
        .expect("accept error logged");
    assert!(
        line.contains("Too many open files") || line.contains("os error 24"),
        "{line}"
    );
    // The first ones were served: INFO arrives on each. The rest wait.
    let mut next = waiting.into_iter();
    for s in next.by_ref().take(40) {
        let mut c = Conn::from_stream(s);
        assert!(c.line().starts_with("INFO {"));
        accepted.push(c);
    }
    let waiting: Vec<TcpStream> = next.collect();

    // At the limit for a second: the server must mostly sleep.
    let ticks = clock_ticks_per_sec();
    let before = server.cpu_ticks();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let window = t0.elapsed();
    let used = server.cpu_ticks() - before;
    let used_secs = used as f64 / ticks as f64;
    assert!(
        used_secs < 0.5 * window.as_secs_f64(),
        "server used {used_secs:.2}s of CPU in {window:?} while out of fds"
    );

    // Free the fds: the waiting connections are taken, and a new client is served.
    drop(accepted);
    let mut served = 0;
    for s in waiting {
        let mut c = Conn::from_stream(s);
        assert!(c.line().starts_with("INFO {"));
        served += 1;
    }
    assert!(served > 0);
    let mut c = server.client();
    c.send(b"SUB a 1\r\nPUB a 1\r\nx\r\n");
    assert_eq!(c.msgs_until_pong_answering_pings().len(), 1);
}

// ----- a subscriber that reads, just slower than its publisher -----

/// A subscriber that keeps reading, only slower than an unthrottled
/// publisher could write, is not cut off: while its buffer is nearly full
/// (over 3/4 of `max_pending`) the publisher's reads are deferred for 2 ms
/// at a time, so TCP slows the publisher down (nats-server's fast-producer
/// stall does the same). Without that, this subscriber would fall
/// `max_pending` behind and be cut off as a slow consumer.
#[test]
fn a_reading_subscriber_behind_a_fast_publisher_is_not_cut_off() {
    let _guard = one_at_a_time();
    const N: usize = 4000;
    const SIZE: usize = 4096; // 16 MB in all, 16 times max_pending
    let server = TestServer::start(&["--max_pending", "1MB", "--max_payload", "64KB"]);
    let mut sub = server.client();
    sub.send(b"SUB steady 1\r\n");
    assert!(sub.sync_answering_pings().is_empty());
    let reader = std::thread::spawn(move || {
        for i in 0..N {
            let line = sub.line_answering_pings();
            let m = common_msg(&mut sub, &line);
            assert_eq!(&m[..8], format!("{i:08}").as_bytes(), "message {i}");
            if i % 32 == 31 {
                // Steady but not fast: at most 128 KiB per millisecond.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        N
    });
    let mut publisher = server.client();
    let mut batch = Vec::new();
    for seq in 0..N {
        numbered_pub(&mut batch, "steady", seq, SIZE);
        if batch.len() >= 256 * 1024 {
            publisher.send(&batch);
            batch.clear();
        }
    }
    publisher.send(&batch);
    assert!(publisher.sync_answering_pings().is_empty());
    assert_eq!(reader.join().expect("reader"), N);
    let cut: Vec<String> = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("Slow Consumer"))
        .collect();
    assert!(cut.is_empty(), "a reading subscriber was cut off: {cut:?}");
}
