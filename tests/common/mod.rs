//! Test harness: start the `natrium` binary on an ephemeral port and talk
//! to it over real TCP with a small line-oriented client.
//!
//! Every wait is bounded (no test can hang): reads time out after
//! [`TIMEOUT`], and waiting for a log line or a condition polls with a
//! deadline rather than sleeping a fixed time and hoping.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest any single expectation waits.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A natrium process listening on 127.0.0.1 and an ephemeral port.
pub struct TestServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every line it logged so far (started with `-D`, so debug included).
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl TestServer {
    /// Starts `natrium -a 127.0.0.1 -p -1 -D <args>` and waits until it listens.
    pub fn start(args: &[&str]) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_natrium"));
        command
            .args(["-a", "127.0.0.1", "-p", "-1", "-D"])
            .args(args);
        TestServer::spawn(command)
    }

    /// Starts `natrium -a 127.0.0.1 -p -1 <args>` without `-D`: only what
    /// the default level logs.
    pub fn start_at_default_level() -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_natrium"));
        command.args(["-a", "127.0.0.1", "-p", "-1"]);
        TestServer::spawn(command)
    }

    /// Runs `command` (which must start natrium with `-D`, or exec it),
    /// collects its log, and waits until it says where it listens.
    fn spawn(mut command: Command) -> TestServer {
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn natrium");
        let stderr = child.stderr.take().expect("stderr piped");
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lines, cv) = &*sink;
                lines.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let mut server = TestServer {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            log,
        };
        let line = server
            .wait_for_log("Listening for client connections on ")
            .unwrap_or_else(|| panic!("server did not start; log: {:?}", server.log_lines()));
        server.addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("listen address in log line");
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A snapshot of the log.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> Option<String> {
        self.wait_for_log_where(|l| l.contains(needle))
    }

    /// Waits (bounded) for a log line satisfying `pred`; returns it.
    pub fn wait_for_log_where(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + TIMEOUT;
        let (lines, cv) = &*self.log;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(l) = guard.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits until the server reports it holds no connections and no
    /// subscriptions (the debug line logged whenever a connection is dropped).
    pub fn wait_until_empty(&self) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let last = self
                .log_lines()
                .into_iter()
                .rev()
                .find(|l| l.contains("Client connection closed ("));
            if last.is_some_and(|l| l.contains("(connections: 0, subscriptions: 0)")) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server process in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// Sends a signal to the server (via `kill`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw connection that has read INFO (nothing sent yet).
    pub fn raw(&self) -> Conn {
        let mut c = Conn::connect(self.addr);
        let info = c.line();
        assert!(info.starts_with("INFO {"), "expected INFO, got {info:?}");
        c
    }

    /// A connection after `CONNECT {"verbose":false,"pedantic":false,...}` and PING/PONG.
    pub fn client(&self) -> Conn {
        self.client_with(r#""verbose":false,"pedantic":false"#)
    }

    /// A connection after `CONNECT {<fields>}` and PING/PONG.
    pub fn client_with(&self, fields: &str) -> Conn {
        let mut c = self.raw();
        c.send(format!("CONNECT {{{fields}}}\r\nPING\r\n").as_bytes());
        c.expect("PONG");
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message received by a [`Conn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// MSG or HMSG.
    pub verb: String,
    /// Subject it was published to.
    pub subject: String,
    /// Subscription id.
    pub sid: String,
    /// Reply subject.
    pub reply: Option<String>,
    /// Header block (HMSG only).
    pub headers: Option<Vec<u8>>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A blocking TCP connection with a read buffer and timeouts.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects (no protocol exchanged yet).
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more into the buffer; false on EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!(
                "read failed (timeout?): {e}; buffered: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// The next line without its CRLF; panics on timeout or EOF.
    pub fn line(&mut self) -> String {
        self.try_line()
            .expect("connection closed while waiting for a line")
    }

    /// The next line, or None on EOF.
    pub fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                return Some(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "connection closed while waiting for {n} bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Asserts the next line equals `want`.
    pub fn expect(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(got, want);
    }

    /// Asserts the next line is `-ERR '<text>'`.
    pub fn expect_err(&mut self, text: &str) {
        self.expect(&format!("-ERR '{text}'"));
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub fn expect_eof(&mut self) {
        if let Some(line) = self.try_line() {
            panic!("expected the connection to close, got {line:?}");
        }
    }

    /// Reads one MSG or HMSG (with its payload).
    pub fn msg(&mut self) -> Msg {
        let line = self.line();
        parse_msg_line(&line, self)
    }

    /// Sends PING and reads up to its PONG; returns the lines before it.
    /// Everything the server sent before the PONG has arrived by then.
    pub fn sync(&mut self) -> Vec<String> {
        self.until_pong(Conn::line, |line, _| line)
    }

    /// Sends PING and collects every MSG before the PONG.
    pub fn msgs_until_pong(&mut self) -> Vec<Msg> {
        self.until_pong(Conn::line, |line, c| parse_msg_line(&line, c))
    }

    /// Sends PING, reads lines with `next_line` up to the PONG, and returns
    /// `item` of each line before it (`item` may read on, e.g. a payload).
    fn until_pong<T>(
        &mut self,
        next_line: fn(&mut Conn) -> String,
        mut item: impl FnMut(String, &mut Conn) -> T,
    ) -> Vec<T> {
        self.send(b"PING\r\n");
        let mut before = Vec::new();
        loop {
            let l = next_line(self);
            if l == "PONG" {
                return before;
            }
            before.push(item(l, self));
        }
    }
}

fn parse_msg_line(line: &str, conn: &mut Conn) -> Msg {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts[0] {
        "MSG" => {
            let (reply, size) = match parts.len() {
                4 => (None, parts[3]),
                5 => (Some(parts[3].to_string()), parts[4]),
                _ => panic!("bad MSG line {line:?}"),
            };
            let n: usize = size.parse().unwrap();
            let payload = conn.bytes(n);
            assert_eq!(conn.bytes(2), b"\r\n");
            Msg {
                verb: "MSG".into(),
                subject: parts[1].into(),
                sid: parts[2].into(),
                reply,
                headers: None,
                payload,
            }
        }
        "HMSG" => {
            let (reply, h, t) = match parts.len() {
                5 => (None, parts[3], parts[4]),
                6 => (Some(parts[3].to_string()), parts[4], parts[5]),
                _ => panic!("bad HMSG line {line:?}"),
            };
            let h: usize = h.parse().unwrap();
            let t: usize = t.parse().unwrap();
            let mut data = conn.bytes(t);
            assert_eq!(conn.bytes(2), b"\r\n");
            let payload = data.split_off(h);
            Msg {
                verb: "HMSG".into(),
                subject: parts[1].into(),
                sid: parts[2].into(),
                reply,
                headers: Some(data),
                payload,
            }
        }
        _ => panic!("expected MSG or HMSG, got {line:?}"),
    }
}

// ----- helpers for the protocol suites (tests/protocol.rs and friends) -----

impl TestServer {
    /// Starts `natrium -D <args>` with no address or port flags of its own
    /// (for configuration files that choose the listen address), and waits
    /// until it listens.
    pub fn start_exact(args: &[&str]) -> TestServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_natrium"));
        command.arg("-D").args(args);
        TestServer::spawn(command)
    }

    /// A fresh connection and the INFO it was greeted with, parsed as JSON
    /// (after checking the line is `INFO {...}` ended by CRLF).
    pub fn raw_with_info(&self) -> (Conn, serde_json::Value) {
        let mut c = Conn::connect(self.addr);
        let line = c.read_until(b"\r\n");
        let text = String::from_utf8(line).expect("INFO is UTF-8");
        let json = text
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("expected INFO, got {text:?}"))
            .trim_end_matches("\r\n");
        let value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("INFO is not valid JSON ({e}): {text:?}"));
        (c, value)
    }
}

impl Conn {
    /// Reads up to and including the first occurrence of `end`; returns
    /// every byte read up to there (bounded by the read timeout).
    pub fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(end.len()).position(|w| w == end) {
                return self.buf.drain(..i + end.len()).collect();
            }
            assert!(
                self.fill(),
                "connection closed while waiting for {:?}; buffered: {:?}",
                String::from_utf8_lossy(end),
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Sends PING and returns every byte before the PONG, exactly as sent.
    pub fn bytes_until_pong(&mut self) -> Vec<u8> {
        self.send(b"PING\r\n");
        let mut got = self.read_until(b"PONG\r\n");
        got.truncate(got.len() - b"PONG\r\n".len());
        got
    }

    /// Asserts that nothing at all arrives before the PONG of a PING.
    pub fn expect_nothing(&mut self) {
        let got = self.bytes_until_pong();
        assert!(
            got.is_empty(),
            "expected nothing before PONG, got {:?}",
            String::from_utf8_lossy(&got)
        );
    }

    /// Writes `bytes` in pieces ending at the given cut offsets (one write
    /// per piece; the socket has TCP_NODELAY, so each is its own segment).
    pub fn send_split(&mut self, bytes: &[u8], cuts: &[usize]) {
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(last, bytes.len());
            if cut > last {
                self.send(&bytes[last..cut]);
                self.stream.flush().expect("flush");
                last = cut;
            }
        }
    }
}

/// The outcome of running the natrium binary to completion.
#[derive(Debug)]
pub struct Exit {
    /// Exit code (None if killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// Runs `natrium <args>` and waits (bounded by [`TIMEOUT`]) for it to exit.
/// For invocations that must exit by themselves (`--help`, bad config, ...);
/// a server that keeps running is killed and reported with `code: None`.
pub fn run_natrium(args: &[&str]) -> Exit {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natrium"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natrium");
    let mut stdout = child.stdout.take().expect("stdout piped");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait natrium") {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Exit {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A configuration file under the temp dir with a unique name, removed on drop.
pub struct TempConf {
    /// Where it is.
    pub path: std::path::PathBuf,
}

impl TempConf {
    /// Writes `text` to a fresh file named after `tag`, the process and a counter.
    pub fn new(tag: &str, text: &str) -> TempConf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "natrium-test-{tag}-{}-{n}.conf",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write temp config");
        TempConf { path }
    }

    /// The path as a string, for command lines.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

// ----- helpers for the limits and churn suites (tests/limits.rs, tests/churn.rs) -----

impl TestServer {
    /// Like [`TestServer::start`], but runs the binary through
    /// `sh -c '<prefix>; exec natrium -a 127.0.0.1 -p -1 -D <args>'`, e.g.
    /// with `ulimit -n 64` as the prefix. `exec` keeps the pid the server's.
    pub fn start_with_shell_prefix(prefix: &str, args: &[&str]) -> TestServer {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("{prefix}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_natrium"))
            .args(["-a", "127.0.0.1", "-p", "-1", "-D"])
            .args(args);
        TestServer::spawn(command)
    }

    /// CPU time (user + system) the server has used so far, in clock ticks
    /// (see [`clock_ticks_per_sec`]), from `/proc/<pid>/stat`.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name start at field 3 (state);
        // utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')').expect("comm in stat") + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields[11].parse().unwrap();
        let stime: u64 = fields[12].parse().unwrap();
        utime + stime
    }

    /// Waits (bounded) until the log has at least `n` lines containing `needle`.
    pub fn wait_for_log_count(&self, needle: &str, n: usize) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        let (lines, cv) = &*self.log;
        let mut guard = lines.lock().unwrap();
        loop {
            if guard.iter().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// A raw connection (nothing sent) and the `client_id` its INFO announced.
    pub fn raw_with_cid(&self) -> (Conn, u64) {
        let mut c = Conn::connect(self.addr);
        let info = c.line();
        (c, info_u64(&info, "client_id"))
    }
}

/// `sysconf(_SC_CLK_TCK)`, via `getconf` (100 on Linux in practice).
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A numeric field of an `INFO {json}` line.
pub fn info_u64(info_line: &str, field: &str) -> u64 {
    let json = info_line
        .strip_prefix("INFO ")
        .unwrap_or_else(|| panic!("expected INFO, got {info_line:?}"));
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("INFO JSON");
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field} in {info_line:?}"))
}

impl Conn {
    /// Writes all bytes; false if the connection is gone (reset, broken pipe).
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Everything until the server closes the connection (EOF or reset):
    /// what was buffered plus what arrives. Panics if the read times out
    /// or more than `cap` bytes arrive.
    pub fn drain_to_eof(&mut self, cap: usize) -> Vec<u8> {
        while self.fill() {
            assert!(
                self.buf.len() <= cap,
                "more than {cap} bytes before the close"
            );
        }
        std::mem::take(&mut self.buf)
    }

    /// Reads until the server closes the connection and returns the MSG
    /// payloads and the other lines (server PINGs answered and left out),
    /// in order of arrival. Panics on timeout.
    pub fn msgs_until_eof(&mut self) -> (Vec<Vec<u8>>, Vec<String>) {
        let mut payloads = Vec::new();
        let mut others = Vec::new();
        while let Some(line) = self.try_line_answering_pings() {
            if line.starts_with("MSG ") {
                let size: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
                while self.buf.len() < size + 2 {
                    assert!(self.fill(), "connection closed inside a MSG payload");
                }
                let payload: Vec<u8> = self.buf.drain(..size).collect();
                assert_eq!(self.buf.drain(..2).collect::<Vec<u8>>(), b"\r\n");
                payloads.push(payload);
            } else {
                others.push(line);
            }
        }
        (payloads, others)
    }
}

impl Conn {
    /// Wraps a stream connected elsewhere (same timeouts as [`Conn::connect`]).
    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }
}

impl Conn {
    /// The next line that is not a server `PING`; each `PING` on the way is
    /// answered with `PONG` (natrium pings every client 2 s after CONNECT,
    /// which a test on a loaded machine may outlast). None on EOF.
    pub fn try_line_answering_pings(&mut self) -> Option<String> {
        loop {
            let line = self.try_line()?;
            if line != "PING" {
                return Some(line);
            }
            // The server may have closed already; then there is no one to answer.
            let _ = self.try_send(b"PONG\r\n");
        }
    }

    /// [`Conn::line`] that answers server PINGs on the way.
    pub fn line_answering_pings(&mut self) -> String {
        self.try_line_answering_pings()
            .expect("connection closed while waiting for a line")
    }

    /// [`Conn::sync`] that answers server PINGs on the way (and leaves them
    /// out of the lines it returns).
    pub fn sync_answering_pings(&mut self) -> Vec<String> {
        self.until_pong(Conn::line_answering_pings, |line, _| line)
    }

    /// [`Conn::msgs_until_pong`] that answers server PINGs on the way.
    pub fn msgs_until_pong_answering_pings(&mut self) -> Vec<Msg> {
        self.until_pong(Conn::line_answering_pings, |line, c| {
            parse_msg_line(&line, c)
        })
    }

    /// [`Conn::msg`] that answers server PINGs on the way.
    pub fn msg_answering_pings(&mut self) -> Msg {
        let line = self.line_answering_pings();
        parse_msg_line(&line, self)
    }

    /// [`Conn::expect_eof`] that answers server PINGs on the way.
    pub fn expect_eof_answering_pings(&mut self) {
        if let Some(line) = self.try_line_answering_pings() {
            panic!("expected the connection to close, got {line:?}");
        }
    }
}

// ----- shared sequences of the raw-socket suites -----

/// A client after `CONNECT {"verbose":false,"pedantic":false[,<extra>]}` and
/// PING/PONG; `extra` is more CONNECT fields (or empty).
pub fn quiet(server: &TestServer, extra: &str) -> Conn {
    let fields = if extra.is_empty() {
        r#""verbose":false,"pedantic":false"#.to_string()
    } else {
        format!(r#""verbose":false,"pedantic":false,{extra}"#)
    };
    server.client_with(&fields)
}

/// A [`quiet`] client that has sent `subs` (its SUB lines) and synced with
/// PING/PONG, so the subscriptions are in place.
pub fn quiet_subscriber(server: &TestServer, extra: &str, subs: &[u8]) -> Conn {
    let mut c = quiet(server, extra);
    c.send(subs);
    c.sync();
    c
}

impl Conn {
    /// Asserts the next line is `-ERR '<text>'` and then the server closes.
    pub fn expect_err_and_eof(&mut self, text: &str) {
        self.expect_err(text);
        self.expect_eof();
    }

    /// Sends `input` and asserts the reply is `-ERR '<text>'` and then the close.
    pub fn expect_fatal_reply(&mut self, input: &[u8], text: &str) {
        self.send(input);
        let line = self.line();
        assert_eq!(
            line,
            format!("-ERR '{text}'"),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        self.expect_eof();
    }

    /// Sends `input` and asserts the server closes without a word.
    pub fn expect_silent_close(&mut self, input: &[u8]) {
        self.send(input);
        if let Some(line) = self.try_line() {
            panic!(
                "{:?}: expected a silent close, got {line:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
