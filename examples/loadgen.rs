//! loadgen — a std-only load generator for servers speaking the NATS client
//! text protocol (the benchmarking instrument for natrium).
//!
//! It talks the raw protocol over `std::net::TcpStream` so that the client is
//! never the bottleneck: messages are pre-built and written in ~64 KiB
//! batches, incoming data is read in 256 KiB chunks and scanned by a
//! hand-written parser that skips payloads without copying or allocating.
//!
//! Usage:
//!   loadgen --url 127.0.0.1:4222 --scenario NAME [options]
//!
//! Scenarios: pub, pubsub, fanout, queue, latency, manysubs, conns, idle
//! (run `loadgen --help` for the flags).
//!
//! Output: exactly one JSON line per result on stdout; progress and
//! diagnostics go to stderr. Every wait has a timeout (`--timeout`, default
//! 30 s) and a global watchdog (`--deadline`, default 600 s) ends the process
//! with a non-zero exit code, so a broken server never hangs the tool.
//!
//! File descriptors: the `conns` scenario needs one descriptor per
//! connection. std cannot raise RLIMIT_NOFILE without libc, so run
//! `ulimit -n 65536` (or the hard limit) in the shell before starting both
//! the server and the load generator (benches/compare.sh does this).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Size of each connection's read buffer for the hot paths.
const RBUF: usize = 256 * 1024;
/// Target size of one write batch.
const WBATCH: usize = 64 * 1024;
/// The CONNECT options we always send (verbose/pedantic default to true).
const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"headers\":true}\r\nPING\r\n";

type Res<T> = Result<T, String>;

const USAGE: &str = "\
loadgen — NATS text-protocol load generator (std only)

USAGE:
  loadgen --url HOST:PORT --scenario NAME [options]

SCENARIOS:
  pub       P publishers (--pubs, default 1), no subscriber; each publisher sends
            its share then PING and waits for PONG. Reports msgs/s and MB/s.
  pubsub    1 publisher, 1 subscriber on subject bench.x. Reports received msgs/s.
  fanout    1 publisher, S subscriber connections (--subs, default 10) on bench.x.
            Reports delivered msgs/s (sum over subscribers) and publish rate.
  queue     S (--subs, default 10) subscribers in queue group 'workers' on bench.q.
            Reports delivered msgs/s, evenness (min/max per member) and lost.
  latency   request/reply with one request in flight via a responder connection.
            Reports p50/p90/p99/p99.9 round trip in microseconds.
  manysubs  one connection subscribes to --subjects (default 100000) subjects
            (90% s.<i>.x, 5% s.<i>.*, 5% s.<i>.>); a publisher publishes to random
            s.<i>.x (each matches exactly one subscription). Reports delivered
            msgs/s and, with --server-pid, the server RSS after subscribing.
  conns     opens --conns N (default 10000) idle connections (full handshake each)
            and reports server RSS before/after and per connection (--server-pid).
  idle      reports the server RSS with no clients (--server-pid).

OPTIONS:
  --url HOST:PORT      server address (default 127.0.0.1:4222; nats:// prefix ok)
  --scenario NAME      one of the scenarios above (required)
  --size N             payload bytes (default 16)
  --msgs N             messages to publish (latency: samples) (default: per scenario)
  --secs F             publish for F seconds instead of a fixed count
  --pubs N             publishers for 'pub' (default 1)
  --subs N             subscribers for 'fanout'/'queue' (default 10)
  --conns N            connections for 'conns' (default 10000)
  --subjects N         subscriptions for 'manysubs' (default 100000)
  --warmup N           latency warm-up round trips (default 1000)
  --scale F            multiply the default message counts (default 1.0)
  --server-pid PID     server pid, to read VmRSS from /proc/PID/status
  --label STR          label copied into the JSON output (e.g. the server name)
  --timeout SECS       timeout of every single wait (default 30)
  --deadline SECS      hard limit for the whole run (default 600)
";

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

struct Cfg {
    addr: SocketAddr,
    scenario: String,
    size: usize,
    msgs: Option<u64>,
    secs: Option<f64>,
    pubs: usize,
    subs: usize,
    conns: usize,
    subjects: usize,
    warmup: u64,
    scale: f64,
    server_pid: Option<u32>,
    label: Option<String>,
    timeout: Duration,
    deadline: f64,
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Res<T> {
    v.parse::<T>()
        .map_err(|_| format!("invalid value for {flag}: {v:?}"))
}

fn parse_args() -> Res<Cfg> {
    let mut url = String::from("127.0.0.1:4222");
    let mut cfg = Cfg {
        addr: SocketAddr::from(([127, 0, 0, 1], 4222)),
        scenario: String::new(),
        size: 16,
        msgs: None,
        secs: None,
        pubs: 1,
        subs: 10,
        conns: 10_000,
        subjects: 100_000,
        warmup: 1000,
        scale: 1.0,
        server_pid: None,
        label: None,
        timeout: Duration::from_secs(30),
        deadline: 600.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || -> Res<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--url" => url = val()?,
            "--scenario" => cfg.scenario = val()?,
            "--size" => cfg.size = parse_num(&flag, &val()?)?,
            "--msgs" => cfg.msgs = Some(parse_num(&flag, &val()?)?),
            "--secs" => cfg.secs = Some(parse_num(&flag, &val()?)?),
            "--pubs" => cfg.pubs = parse_num(&flag, &val()?)?,
            "--subs" => cfg.subs = parse_num(&flag, &val()?)?,
            "--conns" => cfg.conns = parse_num(&flag, &val()?)?,
            "--subjects" => cfg.subjects = parse_num(&flag, &val()?)?,
            "--warmup" => cfg.warmup = parse_num(&flag, &val()?)?,
            "--scale" => cfg.scale = parse_num(&flag, &val()?)?,
            "--server-pid" => cfg.server_pid = Some(parse_num(&flag, &val()?)?),
            "--label" => cfg.label = Some(val()?),
            "--timeout" => {
                let t: f64 = parse_num(&flag, &val()?)?;
                if !(t > 0.0 && t.is_finite()) {
                    return Err("--timeout must be > 0".into());
                }
                cfg.timeout = Duration::from_secs_f64(t);
            }
            "--deadline" => cfg.deadline = parse_num(&flag, &val()?)?,
            _ => return Err(format!("unknown argument {a:?} (see --help)")),
        }
    }
    if cfg.scenario.is_empty() {
        return Err("--scenario is required (see --help)".into());
    }
    if cfg.pubs == 0 || cfg.subs == 0 || cfg.conns == 0 || cfg.subjects == 0 {
        return Err("--pubs/--subs/--conns/--subjects must be >= 1".into());
    }
    if let Some(s) = cfg.secs
        && !(s > 0.0 && s.is_finite())
    {
        return Err("--secs must be > 0".into());
    }
    if !(cfg.scale > 0.0 && cfg.scale.is_finite()) {
        return Err("--scale must be > 0".into());
    }
    let hostport = url
        .strip_prefix("nats://")
        .or_else(|| url.strip_prefix("tcp://"))
        .unwrap_or(&url)
        .trim_end_matches('/');
    cfg.addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("bad --url {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad --url {url:?}: no address"))?;
    Ok(cfg)
}

impl Cfg {
    /// Default message count, scaled and overridable by --msgs.
    fn count(&self, default: f64) -> u64 {
        match self.msgs {
            Some(n) => n,
            None => ((default * self.scale).round() as u64).max(1),
        }
    }
    /// When --secs is given, publish until this instant (with a huge count).
    fn publish_plan(&self, default: f64) -> (u64, Option<Duration>) {
        match self.secs {
            Some(s) if self.msgs.is_none() => (u64::MAX / 2, Some(Duration::from_secs_f64(s))),
            Some(s) => (self.count(default), Some(Duration::from_secs_f64(s))),
            None => (self.count(default), None),
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

#[inline]
fn find_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[inline]
fn trim_cr(b: &[u8]) -> &[u8] {
    match b.last() {
        Some(b'\r') => &b[..b.len() - 1],
        _ => b,
    }
}

/// Parses the last space-separated token of a protocol line as a number
/// (the payload size of MSG, the total size of HMSG).
#[inline]
fn parse_last_num(line: &[u8]) -> Option<usize> {
    let mut j = line.len();
    while j > 0 && line[j - 1].is_ascii_digit() {
        j -= 1;
    }
    if j == line.len() || line.len() - j > 18 {
        return None;
    }
    let mut n = 0usize;
    for &b in &line[j..] {
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

fn push_num(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 200 {
        format!("{}...", &s[..200])
    } else {
        s.into_owned()
    }
}

/// xorshift64* — tiny, fast, good enough to pick random subjects.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Builds `PUB subject [reply] size\r\n<payload>\r\n`.
fn pub_msg(subject: &str, reply: Option<&str>, size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + subject.len() + 32);
    m.extend_from_slice(b"PUB ");
    m.extend_from_slice(subject.as_bytes());
    if let Some(r) = reply {
        m.push(b' ');
        m.extend_from_slice(r.as_bytes());
    }
    m.push(b' ');
    push_num(&mut m, size as u64);
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(&payload(size));
    m.extend_from_slice(b"\r\n");
    m
}

fn read_rss_kib(pid: u32) -> Res<u64> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let num = rest.trim().trim_end_matches("kB").trim();
            return num
                .parse::<u64>()
                .map_err(|_| format!("cannot parse VmRSS line {line:?}"));
        }
    }
    Err(format!("no VmRSS in {path}"))
}

fn need_pid(cfg: &Cfg) -> Res<u32> {
    cfg.server_pid
        .ok_or_else(|| format!("scenario {} needs --server-pid PID", cfg.scenario))
}

fn secs_since(t0: Instant, t1: Instant) -> f64 {
    t1.saturating_duration_since(t0).as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------
// JSON output (one line per result)
// ---------------------------------------------------------------------------

struct Json(String);
impl Json {
    fn new(scenario: &str) -> Json {
        let mut j = Json(String::from("{"));
        j.s("scenario", scenario);
        j
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }
    fn s(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push('"');
        for c in v.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => self.0.push_str(&format!("\\u{:04x}", c as u32)),
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }
    fn u(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        self.0.push_str(&v.to_string());
        self
    }
    fn f(&mut self, k: &str, v: f64, decimals: usize) -> &mut Self {
        self.key(k);
        if v.is_finite() {
            self.0.push_str(&format!("{v:.decimals$}"));
        } else {
            self.0.push_str("null");
        }
        self
    }
    fn emit(&mut self, cfg: &Cfg) {
        if let Some(l) = &cfg.label {
            let l = l.clone();
            self.s("label", &l);
        }
        self.0.push('}');
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let _ = writeln!(out, "{}", self.0);
        let _ = out.flush();
    }
}

// ---------------------------------------------------------------------------
// Connection and protocol scanner
// ---------------------------------------------------------------------------

/// What the scanner should stop at.
#[derive(Clone, Copy)]
enum Stop {
    /// Return after the next PONG has been consumed.
    Pong,
    /// Return once this many messages (cumulative) have been fully received.
    Msgs(u64),
}

/// Counters kept by [`Conn::pump`].
#[derive(Default)]
struct Counts {
    msgs: u64,
    /// Payload bytes of a message still to be skipped (incl. trailing CRLF).
    skip: usize,
    /// Time at which the read that completed the last message returned.
    last: Option<Instant>,
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    timeout: Duration,
    what: String,
}

impl Conn {
    /// TCP connect with TCP_NODELAY and read/write timeouts; no handshake.
    fn connect(cfg: &Cfg, bufsize: usize, what: &str) -> Res<Conn> {
        let s = TcpStream::connect_timeout(&cfg.addr, cfg.timeout).map_err(|e| {
            let hint = if e.raw_os_error() == Some(24) {
                " (too many open files: run `ulimit -n 65536` first)"
            } else {
                ""
            };
            format!("{what}: connect to {} failed: {e}{hint}", cfg.addr)
        })?;
        let err = |e: io::Error| format!("{what}: socket option: {e}");
        s.set_nodelay(true).map_err(err)?;
        s.set_read_timeout(Some(cfg.timeout)).map_err(err)?;
        s.set_write_timeout(Some(cfg.timeout)).map_err(err)?;
        Ok(Conn {
            s,
            buf: vec![0u8; bufsize],
            pos: 0,
            end: 0,
            timeout: cfg.timeout,
            what: what.to_string(),
        })
    }

    /// Connect and complete the handshake: INFO, CONNECT+PING, PONG.
    fn open(cfg: &Cfg, bufsize: usize, what: &str) -> Res<Conn> {
        let mut c = Conn::connect(cfg, bufsize, what)?;
        c.hello()?;
        c.wait_pong()?;
        Ok(c)
    }

    /// Reads the INFO line and sends CONNECT + PING.
    fn hello(&mut self) -> Res<()> {
        let (a, b) = self.read_line()?;
        if !self.buf[a..b].starts_with(b"INFO") {
            return Err(format!(
                "{}: expected INFO from server, got {:?}",
                self.what,
                lossy(&self.buf[a..b])
            ));
        }
        self.send(CONNECT)
    }

    fn send(&mut self, data: &[u8]) -> Res<()> {
        self.s.write_all(data).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                format!(
                    "{}: write timed out after {:?} (server not reading?)",
                    self.what, self.timeout
                )
            } else {
                format!("{}: write failed: {e}", self.what)
            }
        })
    }

    /// Sends PING and waits for the PONG (skipping any messages).
    fn sync(&mut self) -> Res<()> {
        self.send(b"PING\r\n")?;
        self.wait_pong()
    }

    /// Waits for the next PONG (skipping any messages).
    fn wait_pong(&mut self) -> Res<()> {
        let mut c = Counts::default();
        self.pump(&mut c, Stop::Pong)
    }

    /// Reads more data into the buffer (compacting/growing it as needed).
    fn fill(&mut self) -> Res<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < self.buf.len() / 4 {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.end == self.buf.len() {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        loop {
            match self.s.read(&mut self.buf[self.end..]) {
                Ok(0) => return Err(format!("{}: server closed the connection", self.what)),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!(
                        "{}: timed out after {:?} waiting for the server",
                        self.what, self.timeout
                    ));
                }
                Err(e) => return Err(format!("{}: read failed: {e}", self.what)),
            }
        }
    }

    /// Returns the byte range of the next line (without CRLF).
    fn read_line(&mut self) -> Res<(usize, usize)> {
        loop {
            if let Some(off) = find_nl(&self.buf[self.pos..self.end]) {
                let a = self.pos;
                let mut b = a + off;
                self.pos = b + 1;
                if b > a && self.buf[b - 1] == b'\r' {
                    b -= 1;
                }
                return Ok((a, b));
            }
            self.fill()?;
        }
    }

    /// The hot path: scans incoming data, counting MSG/HMSG and skipping
    /// their payloads without copying, answering server PINGs, until `stop`.
    fn pump(&mut self, c: &mut Counts, stop: Stop) -> Res<()> {
        loop {
            let mut got = 0u64;
            let mut pong = false;
            let mut ping = false;
            let mut finished_payload = false;
            let consumed;
            {
                let data = &self.buf[self.pos..self.end];
                let mut i = 0usize;
                if c.skip > 0 {
                    let k = c.skip.min(data.len());
                    i = k;
                    c.skip -= k;
                    finished_payload = c.skip == 0;
                }
                while c.skip == 0 && i < data.len() {
                    if let Stop::Msgs(k) = stop
                        && c.msgs + got >= k
                    {
                        break;
                    }
                    let rest = &data[i..];
                    let Some(nl) = find_nl(rest) else { break };
                    let line = trim_cr(&rest[..nl]);
                    i += nl + 1;
                    match line.first() {
                        Some(b'M') | Some(b'H') => {
                            let n = parse_last_num(line).ok_or_else(|| {
                                format!("{}: bad message line {:?}", self.what, lossy(line))
                            })?;
                            got += 1;
                            let need = n + 2;
                            let avail = data.len() - i;
                            if avail >= need {
                                i += need;
                            } else {
                                i = data.len();
                                c.skip = need - avail;
                            }
                        }
                        Some(b'P') if line == b"PONG" => {
                            pong = true;
                            break;
                        }
                        Some(b'P') if line == b"PING" => ping = true,
                        Some(b'-') => {
                            return Err(format!("{}: server said {:?}", self.what, lossy(line)));
                        }
                        _ => {} // +OK, INFO (async updates), blank lines
                    }
                }
                consumed = i;
            }
            self.pos += consumed;
            if got > 0 || finished_payload {
                c.msgs += got;
                c.last = Some(Instant::now());
            }
            if ping {
                self.send(b"PONG\r\n")?;
            }
            match stop {
                Stop::Pong if pong => return Ok(()),
                Stop::Msgs(k) if c.msgs >= k && c.skip == 0 => return Ok(()),
                _ => {}
            }
            // A PONG while waiting for messages: keep scanning what is
            // buffered; otherwise only an incomplete line/payload is left.
            if !pong {
                self.fill()?;
            }
        }
    }

    /// A second handle on the socket, used to send PING from another thread.
    fn writer(&self) -> Res<TcpStream> {
        self.s
            .try_clone()
            .map_err(|e| format!("{}: clone socket: {e}", self.what))
    }
}

// ---------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------

/// Writes `total` copies of `msg` in ~64 KiB batches (stopping early at
/// `until`), then PING, and waits for the PONG. Returns (sent, pong time).
fn publish_fixed(
    c: &mut Conn,
    msg: &[u8],
    total: u64,
    until: Option<Instant>,
) -> Res<(u64, Instant)> {
    let per = (WBATCH / msg.len()).max(1) as u64;
    let mut batch = Vec::with_capacity(per as usize * msg.len());
    for _ in 0..per {
        batch.extend_from_slice(msg);
    }
    let mut sent = 0u64;
    while sent < total {
        if let Some(u) = until
            && Instant::now() >= u
        {
            break;
        }
        let n = per.min(total - sent);
        c.send(&batch[..n as usize * msg.len()])?;
        sent += n;
    }
    c.sync()?;
    Ok((sent, Instant::now()))
}

/// Like [`publish_fixed`] but builds each message with `gen`.
fn publish_gen(
    c: &mut Conn,
    total: u64,
    until: Option<Instant>,
    mut generate: impl FnMut(&mut Vec<u8>),
) -> Res<(u64, Instant)> {
    let mut batch = Vec::with_capacity(WBATCH * 2);
    let mut sent = 0u64;
    while sent < total {
        if let Some(u) = until
            && Instant::now() >= u
        {
            break;
        }
        batch.clear();
        while batch.len() < WBATCH && sent < total {
            generate(&mut batch);
            sent += 1;
        }
        c.send(&batch)?;
    }
    c.sync()?;
    Ok((sent, Instant::now()))
}

// ---------------------------------------------------------------------------
// Subscribers
// ---------------------------------------------------------------------------

struct SubSet {
    writers: Vec<TcpStream>,
    threads: Vec<thread::JoinHandle<Res<Counts>>>,
}

/// Opens one connection per entry of `subs` (each entry: the SUB lines to
/// send), syncs each with PING/PONG so the subscriptions are registered, and
/// starts a counting reader thread per connection that runs until the
/// flush PONG (see [`SubSet::finish`]).
fn start_subscribers(cfg: &Cfg, subs: &[Vec<u8>], bufsize: usize) -> Res<SubSet> {
    let mut set = SubSet {
        writers: Vec::new(),
        threads: Vec::new(),
    };
    for (i, lines) in subs.iter().enumerate() {
        let mut c = Conn::open(cfg, bufsize, &format!("subscriber {i}"))?;
        for chunk in lines.chunks(WBATCH) {
            c.send(chunk)?;
        }
        c.sync()?;
        set.writers.push(c.writer()?);
        let t = thread::Builder::new()
            .name(format!("sub{i}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut counts = Counts::default();
                c.pump(&mut counts, Stop::Pong)?;
                Ok(counts)
            })
            .map_err(|e| format!("spawn subscriber thread: {e}"))?;
        set.threads.push(t);
    }
    Ok(set)
}

impl SubSet {
    /// Call after the publisher's PONG: every published message has then been
    /// routed, so a PING on each subscriber connection is answered after all
    /// of that connection's messages. Returns the per-subscriber counts.
    fn finish(self) -> Res<Vec<Counts>> {
        for mut w in self.writers.iter() {
            w.write_all(b"PING\r\n")
                .map_err(|e| format!("subscriber flush PING: {e}"))?;
        }
        let mut out = Vec::new();
        let mut first_err = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(c)) => out.push(c),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert("subscriber thread panicked".to_string());
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

struct Delivery {
    sent: u64,
    delivered: u64,
    t0: Instant,
    pub_done: Instant,
    last: Instant,
    per_sub: Vec<u64>,
}

/// Runs one publisher against already started subscribers.
fn run_delivery(
    set: SubSet,
    mut p: Conn,
    total: u64,
    dur: Option<Duration>,
    publish: impl FnOnce(&mut Conn, u64, Option<Instant>) -> Res<(u64, Instant)>,
) -> Res<Delivery> {
    let t0 = Instant::now();
    let until = dur.map(|d| t0 + d);
    let (sent, pub_done) = publish(&mut p, total, until)?;
    let counts = set.finish()?;
    let delivered = counts.iter().map(|c| c.msgs).sum();
    let last = counts
        .iter()
        .filter_map(|c| c.last)
        .max()
        .unwrap_or(pub_done);
    Ok(Delivery {
        sent,
        delivered,
        t0,
        pub_done,
        last,
        per_sub: counts.iter().map(|c| c.msgs).collect(),
    })
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

fn default_pub_msgs(size: usize) -> f64 {
    (5_000_000f64).min(2e9 / (size as f64 + 30.0))
}

fn scenario_pub(cfg: &Cfg) -> Res<()> {
    let (total, dur) = cfg.publish_plan(default_pub_msgs(cfg.size));
    let msg = Arc::new(pub_msg("bench.x", None, cfg.size));
    let p = cfg.pubs as u64;
    eprintln!(
        "pub: {} publisher(s), {} B payload, {}",
        cfg.pubs,
        cfg.size,
        match dur {
            Some(d) => format!("{:.1} s", d.as_secs_f64()),
            None => format!("{total} msgs"),
        }
    );
    let barrier = Arc::new(Barrier::new(cfg.pubs + 1));
    let mut conns = Vec::new();
    for i in 0..cfg.pubs {
        conns.push(Conn::open(cfg, 64 * 1024, &format!("publisher {i}"))?);
    }
    let start = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut threads = Vec::new();
    for (i, mut c) in conns.into_iter().enumerate() {
        let share = total / p + if (i as u64) < total % p { 1 } else { 0 };
        let (barrier, msg, start) = (barrier.clone(), msg.clone(), start.clone());
        threads.push(thread::spawn(move || {
            barrier.wait();
            let t0 = *start.get().expect("start time set");
            publish_fixed(&mut c, &msg, share, dur.map(|d| t0 + d))
        }));
    }
    let t0 = Instant::now();
    start.set(t0).expect("set once");
    barrier.wait();
    let mut sent = 0u64;
    let mut end = t0;
    for t in threads {
        let (n, done) = t.join().map_err(|_| "publisher thread panicked")??;
        sent += n;
        end = end.max(done);
    }
    let secs = secs_since(t0, end);
    Json::new("pub")
        .u("pubs", p)
        .u("size", cfg.size as u64)
        .u("msgs", sent)
        .f("secs", secs, 4)
        .f("msgs_per_sec", sent as f64 / secs, 1)
        .f("mb_per_sec", sent as f64 * cfg.size as f64 / secs / 1e6, 1)
        .emit(cfg);
    Ok(())
}

fn scenario_pubsub(cfg: &Cfg) -> Res<()> {
    let (total, dur) = cfg.publish_plan((2_000_000f64).min(1e9 / (cfg.size as f64 + 30.0)));
    eprintln!("pubsub: 1 publisher, 1 subscriber, {} B payload", cfg.size);
    let set = start_subscribers(cfg, &[b"SUB bench.x 1\r\n".to_vec()], RBUF)?;
    let p = Conn::open(cfg, 64 * 1024, "publisher")?;
    let msg = pub_msg("bench.x", None, cfg.size);
    let d = run_delivery(set, p, total, dur, |c, n, u| publish_fixed(c, &msg, n, u))?;
    let secs = secs_since(d.t0, d.last);
    Json::new("pubsub")
        .u("size", cfg.size as u64)
        .u("msgs", d.sent)
        .u("received", d.delivered)
        .u("lost", d.sent.saturating_sub(d.delivered))
        .f("secs", secs, 4)
        .f("msgs_per_sec", d.delivered as f64 / secs, 1)
        .f(
            "mb_per_sec",
            d.delivered as f64 * cfg.size as f64 / secs / 1e6,
            1,
        )
        .f(
            "pub_msgs_per_sec",
            d.sent as f64 / secs_since(d.t0, d.pub_done),
            1,
        )
        .emit(cfg);
    Ok(())
}

fn scenario_fanout(cfg: &Cfg) -> Res<()> {
    let s = cfg.subs as f64;
    let (total, dur) =
        cfg.publish_plan((4_000_000f64 / s).min(1e9 / ((cfg.size as f64 + 30.0) * s)));
    eprintln!(
        "fanout: 1 publisher, {} subscribers, {} B",
        cfg.subs, cfg.size
    );
    let lines: Vec<Vec<u8>> = (0..cfg.subs)
        .map(|_| b"SUB bench.x 1\r\n".to_vec())
        .collect();
    let bufsize = if cfg.subs > 50 { 64 * 1024 } else { RBUF };
    let set = start_subscribers(cfg, &lines, bufsize)?;
    let p = Conn::open(cfg, 64 * 1024, "publisher")?;
    let msg = pub_msg("bench.x", None, cfg.size);
    let d = run_delivery(set, p, total, dur, |c, n, u| publish_fixed(c, &msg, n, u))?;
    let secs = secs_since(d.t0, d.last);
    let expected = d.sent * cfg.subs as u64;
    Json::new("fanout")
        .u("subs", cfg.subs as u64)
        .u("size", cfg.size as u64)
        .u("msgs", d.sent)
        .u("delivered", d.delivered)
        .u("lost", expected.saturating_sub(d.delivered))
        .f("secs", secs, 4)
        .f("msgs_per_sec", d.delivered as f64 / secs, 1)
        .f(
            "pub_msgs_per_sec",
            d.sent as f64 / secs_since(d.t0, d.pub_done),
            1,
        )
        .emit(cfg);
    Ok(())
}

fn scenario_queue(cfg: &Cfg) -> Res<()> {
    let (total, dur) = cfg.publish_plan((2_000_000f64).min(1e9 / (cfg.size as f64 + 30.0)));
    eprintln!(
        "queue: 1 publisher, {} queue subscribers, {} B",
        cfg.subs, cfg.size
    );
    let lines: Vec<Vec<u8>> = (0..cfg.subs)
        .map(|_| b"SUB bench.q workers 1\r\n".to_vec())
        .collect();
    let set = start_subscribers(cfg, &lines, RBUF)?;
    let p = Conn::open(cfg, 64 * 1024, "publisher")?;
    let msg = pub_msg("bench.q", None, cfg.size);
    let d = run_delivery(set, p, total, dur, |c, n, u| publish_fixed(c, &msg, n, u))?;
    let secs = secs_since(d.t0, d.last);
    let min = d.per_sub.iter().copied().min().unwrap_or(0);
    let max = d.per_sub.iter().copied().max().unwrap_or(0);
    let evenness = if max == 0 {
        0.0
    } else {
        min as f64 / max as f64
    };
    Json::new("queue")
        .u("subs", cfg.subs as u64)
        .u("size", cfg.size as u64)
        .u("msgs", d.sent)
        .u("delivered", d.delivered)
        .u("lost", d.sent.saturating_sub(d.delivered))
        .u("dup", d.delivered.saturating_sub(d.sent))
        .f("evenness", evenness, 4)
        .u("min_member", min)
        .u("max_member", max)
        .f("secs", secs, 4)
        .f("msgs_per_sec", d.delivered as f64 / secs, 1)
        .emit(cfg);
    Ok(())
}

/// Responder: echoes each message's payload to its reply subject. Runs until
/// a PONG arrives (the main thread PINGs it when done).
fn respond_loop(mut c: Conn) -> Res<u64> {
    let mut out: Vec<u8> = Vec::with_capacity(WBATCH);
    let mut n = 0u64;
    loop {
        loop {
            let data = &c.buf[c.pos..c.end];
            let Some(nl) = find_nl(data) else { break };
            let line = trim_cr(&data[..nl]);
            if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
                let size = parse_last_num(line)
                    .ok_or_else(|| format!("responder: bad message line {:?}", lossy(line)))?;
                let need = nl + 1 + size + 2;
                if data.len() < need {
                    break; // wait for the whole payload
                }
                let mut toks = [&b""[..]; 6];
                let mut nt = 0;
                for t in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
                    if nt < toks.len() {
                        toks[nt] = t;
                    }
                    nt += 1;
                }
                // MSG <subject> <sid> <reply> <size>
                if line.starts_with(b"MSG ") && nt == 5 {
                    let p = &data[nl + 1..nl + 1 + size];
                    out.extend_from_slice(b"PUB ");
                    out.extend_from_slice(toks[3]);
                    out.push(b' ');
                    push_num(&mut out, size as u64);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(p);
                    out.extend_from_slice(b"\r\n");
                    n += 1;
                }
                c.pos += need;
            } else {
                c.pos += nl + 1;
                if line == b"PONG" {
                    if !out.is_empty() {
                        c.send(&out)?;
                    }
                    return Ok(n);
                } else if line == b"PING" {
                    out.extend_from_slice(b"PONG\r\n");
                } else if line.starts_with(b"-") {
                    return Err(format!("responder: server said {:?}", lossy(line)));
                }
            }
        }
        if !out.is_empty() {
            c.send(&out)?;
            out.clear();
        }
        c.fill()?;
    }
}

fn scenario_latency(cfg: &Cfg) -> Res<()> {
    let samples = cfg.count(20_000.0);
    let max_dur = cfg.secs.map(Duration::from_secs_f64);
    eprintln!(
        "latency: request/reply, {} B, {} warm-up + {} samples",
        cfg.size, cfg.warmup, samples
    );
    let mut resp = Conn::open(cfg, RBUF, "responder")?;
    resp.send(b"SUB bench.rr 1\r\n")?;
    resp.sync()?;
    let mut resp_w = resp.writer()?;
    let responder = thread::spawn(move || respond_loop(resp));

    let mut req = Conn::open(cfg, RBUF, "requester")?;
    req.send(b"SUB _INBOX.lat 1\r\n")?;
    req.sync()?;
    let msg = pub_msg("bench.rr", Some("_INBOX.lat"), cfg.size);
    let mut rtts: Vec<u64> = Vec::with_capacity(samples.min(50_000_000) as usize);
    let mut counts = Counts::default();
    let mut measured_start = None;
    let total = cfg.warmup.saturating_add(samples);
    for i in 0..total {
        if i == cfg.warmup {
            measured_start = Some(Instant::now());
        }
        if let (Some(d), Some(s)) = (max_dur, measured_start)
            && s.elapsed() >= d
        {
            break;
        }
        let t = Instant::now();
        req.send(&msg)?;
        let want = counts.msgs + 1;
        req.pump(&mut counts, Stop::Msgs(want))?;
        let dt = t.elapsed().as_nanos() as u64;
        if i >= cfg.warmup {
            rtts.push(dt);
        }
    }
    let secs = measured_start
        .map(|s| s.elapsed().as_secs_f64())
        .unwrap_or(0.0);
    resp_w
        .write_all(b"PING\r\n")
        .map_err(|e| format!("responder flush PING: {e}"))?;
    let replied = responder
        .join()
        .map_err(|_| "responder thread panicked")??;
    if rtts.is_empty() {
        return Err("latency: no samples collected".into());
    }
    rtts.sort_unstable();
    let pct = |p: f64| -> f64 {
        let rank = ((p / 100.0) * rtts.len() as f64).ceil() as usize;
        rtts[rank.clamp(1, rtts.len()) - 1] as f64 / 1000.0
    };
    let mean = rtts.iter().sum::<u64>() as f64 / rtts.len() as f64 / 1000.0;
    Json::new("latency")
        .u("size", cfg.size as u64)
        .u("msgs", rtts.len() as u64)
        .u("replied", replied)
        .f("secs", secs, 4)
        .f("p50_us", pct(50.0), 2)
        .f("p90_us", pct(90.0), 2)
        .f("p99_us", pct(99.0), 2)
        .f("p999_us", pct(99.9), 2)
        .f("min_us", rtts[0] as f64 / 1000.0, 2)
        .f("max_us", rtts[rtts.len() - 1] as f64 / 1000.0, 2)
        .f("mean_us", mean, 2)
        .f("msgs_per_sec", rtts.len() as f64 / secs.max(1e-9), 1)
        .emit(cfg);
    Ok(())
}

fn scenario_manysubs(cfg: &Cfg) -> Res<()> {
    let n = cfg.subjects as u64;
    let (total, dur) = cfg.publish_plan(500_000.0);
    eprintln!(
        "manysubs: {n} subscriptions (90% s.<i>.x, 5% s.<i>.*, 5% s.<i>.>), {} B",
        cfg.size
    );
    let mut lines = Vec::with_capacity(n as usize * 24);
    for i in 0..n {
        lines.extend_from_slice(b"SUB s.");
        push_num(&mut lines, i);
        lines.extend_from_slice(match i % 20 {
            0 => b".* ",
            1 => b".> ",
            _ => b".x ",
        });
        push_num(&mut lines, i + 1);
        lines.extend_from_slice(b"\r\n");
    }
    let t_sub = Instant::now();
    let set = start_subscribers(cfg, &[lines], RBUF)?;
    let sub_secs = t_sub.elapsed().as_secs_f64();
    let rss = match cfg.server_pid {
        Some(pid) => Some(read_rss_kib(pid)?),
        None => None,
    };
    eprintln!("manysubs: subscribed in {sub_secs:.3} s");
    let p = Conn::open(cfg, 64 * 1024, "publisher")?;
    let body = payload(cfg.size);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let d = run_delivery(set, p, total, dur, |c, tot, u| {
        publish_gen(c, tot, u, |b| {
            b.extend_from_slice(b"PUB s.");
            push_num(b, rng.below(n));
            b.extend_from_slice(b".x ");
            push_num(b, body.len() as u64);
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(&body);
            b.extend_from_slice(b"\r\n");
        })
    })?;
    let secs = secs_since(d.t0, d.last);
    let mut j = Json::new("manysubs");
    j.u("subjects", n)
        .u("size", cfg.size as u64)
        .u("msgs", d.sent)
        .u("delivered", d.delivered)
        .u("lost", d.sent.saturating_sub(d.delivered))
        .f("secs", secs, 4)
        .f("msgs_per_sec", d.delivered as f64 / secs, 1)
        .f("sub_secs", sub_secs, 4);
    if let Some(r) = rss {
        j.u("rss_kib", r);
    }
    j.emit(cfg);
    Ok(())
}

fn scenario_conns(cfg: &Cfg) -> Res<()> {
    let pid = need_pid(cfg)?;
    let n = cfg.conns;
    let before = read_rss_kib(pid)?;
    eprintln!("conns: opening {n} idle connections (server RSS before: {before} KiB)");
    let t0 = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    // Pipelined in chunks: connect a chunk, then handshake each of them.
    const CHUNK: usize = 200;
    while conns.len() < n {
        let first = conns.len();
        let k = CHUNK.min(n - first);
        for i in 0..k {
            conns.push(Conn::connect(cfg, 2048, &format!("conn {}", first + i))?);
        }
        for c in &mut conns[first..] {
            c.hello()?;
        }
        for c in &mut conns[first..] {
            c.wait_pong()?;
        }
        if conns.len().is_multiple_of(2000) {
            eprintln!("conns: {} connected", conns.len());
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    // Let the server settle (buffers, GC), then make sure all are alive.
    thread::sleep(Duration::from_millis(500));
    for c in conns.iter_mut().step_by(97) {
        c.sync()?;
    }
    let after = read_rss_kib(pid)?;
    let per = (after as f64 - before as f64) * 1024.0 / n as f64;
    Json::new("conns")
        .u("conns", n as u64)
        .u("rss_before_kib", before)
        .u("rss_kib", after)
        .f("rss_per_conn_bytes", per, 1)
        .f("connect_secs", connect_secs, 4)
        .emit(cfg);
    drop(conns);
    Ok(())
}

fn scenario_idle(cfg: &Cfg) -> Res<()> {
    let pid = need_pid(cfg)?;
    // Let a freshly started server finish its start-up work first.
    thread::sleep(Duration::from_millis(300));
    let rss = read_rss_kib(pid)?;
    Json::new("idle").u("rss_kib", rss).emit(cfg);
    Ok(())
}

fn run(cfg: &Cfg) -> Res<()> {
    match cfg.scenario.as_str() {
        "pub" => scenario_pub(cfg),
        "pubsub" => scenario_pubsub(cfg),
        "fanout" => scenario_fanout(cfg),
        "queue" => scenario_queue(cfg),
        "latency" => scenario_latency(cfg),
        "manysubs" => scenario_manysubs(cfg),
        "conns" => scenario_conns(cfg),
        "idle" => scenario_idle(cfg),
        s => Err(format!("unknown scenario {s:?} (see --help)")),
    }
}

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    if cfg.deadline > 0.0 && cfg.deadline.is_finite() {
        let d = Duration::from_secs_f64(cfg.deadline);
        let scenario = cfg.scenario.clone();
        thread::spawn(move || {
            thread::sleep(d);
            eprintln!("loadgen: {scenario}: deadline of {d:?} exceeded, giving up");
            std::process::exit(3);
        });
    }
    if let Err(e) = run(&cfg) {
        eprintln!("loadgen: {}: {e}", cfg.scenario);
        std::process::exit(1);
    }
}
