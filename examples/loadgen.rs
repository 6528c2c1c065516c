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
//! Scenarios: pub, pubsub, fanout, queue, latency, manysubs, conns, idle,
//! and for JetStream js-pub-sync, js-pub-async, js-fetch, js-fill, js-ready
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

JETSTREAM SCENARIOS (each creates stream --stream on subject jsb.<stream> first; the
server must have JetStream enabled and the stream must not exist yet):
  js-pub-sync   publishes one message at a time with a reply subject and waits
                for its PubAck. Reports msgs/s and p50/p90/p99 latency.
  js-pub-async  publishes with up to --inflight PubAcks outstanding. Reports
                acked msgs/s.
  js-fetch      pre-fills --msgs messages (default 20000), creates a durable
                pull consumer (ack explicit), pulls batches of --batch with
                CONSUMER.MSG.NEXT and acks every message. Reports msgs/s.
  js-fill       fills --msgs messages (default 1000000) and checks STREAM.INFO;
                with --server-pid also reports the server RSS (for recovery).
  js-ready      after a restart: connects as soon as the server accepts and
                polls STREAM.INFO until state.messages = --msgs; reports the
                times since --since-ns (unix ns) and the RSS (--server-pid).

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
  --storage file|memory  JetStream stream storage (default file)
  --inflight N         js-*: PubAcks outstanding at most (default 256)
  --batch N            js-fetch: messages per pull request (default 100)
  --stream NAME        js-*: stream name (default JSBENCH)
  --since-ns NS        js-ready: unix time in ns the server was started at
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
    storage: String,
    inflight: u64,
    batch: u64,
    stream: String,
    since_ns: Option<u64>,
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
        storage: String::from("file"),
        inflight: 256,
        batch: 100,
        stream: String::from("JSBENCH"),
        since_ns: None,
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
            "--storage" => cfg.storage = val()?,
            "--inflight" => cfg.inflight = parse_num(&flag, &val()?)?,
            "--batch" => cfg.batch = parse_num(&flag, &val()?)?,
            "--stream" => cfg.stream = val()?,
            "--since-ns" => cfg.since_ns = Some(parse_num(&flag, &val()?)?),
            _ => return Err(format!("unknown argument {a:?} (see --help)")),
        }
    }
    if cfg.scenario.is_empty() {
        return Err("--scenario is required (see --help)".into());
    }
    if cfg.pubs == 0 || cfg.subs == 0 || cfg.conns == 0 || cfg.subjects == 0 {
        return Err("--pubs/--subs/--conns/--subjects must be >= 1".into());
    }
    if cfg.inflight == 0 || cfg.batch == 0 {
        return Err("--inflight/--batch must be >= 1".into());
    }
    if cfg.storage != "file" && cfg.storage != "memory" {
        return Err("--storage must be file or memory".into());
    }
    if cfg.stream.is_empty() || cfg.stream.contains(['.', ' ', '*', '>']) {
        return Err("--stream must be a plain token".into());
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

// ---------------------------------------------------------------------------
// JetStream scenarios (JSON API over request/reply on the raw protocol)
// ---------------------------------------------------------------------------

/// One received message, copied out of the read buffer.
struct RMsg {
    subject: String,
    reply: Option<String>,
    /// The header block of an HMSG (empty for MSG), e.g. `NATS/1.0 404 ...`.
    headers: Vec<u8>,
    payload: Vec<u8>,
}

impl RMsg {
    /// The status code of a status message (`NATS/1.0 408 ...`), if any.
    fn status(&self) -> Option<u16> {
        let h = self.headers.strip_prefix(b"NATS/1.0 ")?;
        let code = h.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find_sub(hay, needle).is_some()
}

fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The unsigned number after `"key":` (after `from`), in a JSON text.
fn json_u64(body: &[u8], key: &str, from: usize) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let at = from + find_sub(body.get(from..)?, pat.as_bytes())? + pat.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// `state.messages` of a STREAM.INFO answer.
fn state_messages(body: &[u8]) -> Option<u64> {
    let st = find_sub(body, b"\"state\"")?;
    json_u64(body, "messages", st)
}

/// A unique-enough inbox prefix per process and connection.
fn inbox_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "_INBOX.lg{}{:x}.{tag}",
        std::process::id(),
        nanos & 0xff_ffff
    )
}

impl Conn {
    /// Parses one complete message out of the buffer without reading;
    /// answers PING, skips PONG/+OK/INFO; fails on -ERR.
    fn parse_buffered(&mut self) -> Res<Option<RMsg>> {
        loop {
            let data = &self.buf[self.pos..self.end];
            let Some(nl) = find_nl(data) else {
                return Ok(None);
            };
            let line = trim_cr(&data[..nl]);
            let is_msg = line.starts_with(b"MSG ");
            if !is_msg && !line.starts_with(b"HMSG ") {
                let ping = line == b"PING";
                if line.starts_with(b"-ERR") {
                    return Err(format!("{}: server said {:?}", self.what, lossy(line)));
                }
                self.pos += nl + 1;
                if ping {
                    self.send(b"PONG\r\n")?;
                }
                continue;
            }
            let toks: Vec<&[u8]> = line
                .split(|&b| b == b' ')
                .filter(|t| !t.is_empty())
                .collect();
            let bad = || format!("{}: bad message line {:?}", self.what, lossy(line));
            let num = |t: &[u8]| -> Option<usize> { std::str::from_utf8(t).ok()?.parse().ok() };
            // MSG subj sid [reply] size | HMSG subj sid [reply] hlen tlen
            let (reply, hlen, total) = match (is_msg, toks.len()) {
                (true, 4) => (None, 0, num(toks[3]).ok_or_else(bad)?),
                (true, 5) => (Some(toks[3]), 0, num(toks[4]).ok_or_else(bad)?),
                (false, 5) => (
                    None,
                    num(toks[3]).ok_or_else(bad)?,
                    num(toks[4]).ok_or_else(bad)?,
                ),
                (false, 6) => (
                    Some(toks[3]),
                    num(toks[4]).ok_or_else(bad)?,
                    num(toks[5]).ok_or_else(bad)?,
                ),
                _ => return Err(bad()),
            };
            if hlen > total {
                return Err(bad());
            }
            let need = nl + 1 + total + 2;
            if data.len() < need {
                // Make sure the buffer can hold the whole message.
                let want = need + 1024;
                if self.buf.len() < want {
                    self.buf.copy_within(self.pos..self.end, 0);
                    self.end -= self.pos;
                    self.pos = 0;
                    self.buf.resize(want, 0);
                }
                return Ok(None);
            }
            let body = &data[nl + 1..nl + 1 + total];
            let m = RMsg {
                subject: String::from_utf8_lossy(toks[1]).into_owned(),
                reply: reply.map(|r| String::from_utf8_lossy(r).into_owned()),
                headers: body[..hlen].to_vec(),
                payload: body[hlen..].to_vec(),
            };
            self.pos += need;
            return Ok(Some(m));
        }
    }

    /// Waits (bounded by the socket timeout per read) for the next message.
    fn next_msg(&mut self) -> Res<RMsg> {
        loop {
            if let Some(m) = self.parse_buffered()? {
                return Ok(m);
            }
            self.fill()?;
        }
    }

    /// Sends one request and returns the reply that arrives on `inbox`
    /// (other messages are dropped). The connection must be subscribed to
    /// `inbox`. Bounded by `limit` overall.
    fn request(&mut self, subject: &str, inbox: &str, body: &[u8], limit: Duration) -> Res<RMsg> {
        let mut m = Vec::with_capacity(body.len() + 64);
        m.extend_from_slice(b"PUB ");
        m.extend_from_slice(subject.as_bytes());
        m.push(b' ');
        m.extend_from_slice(inbox.as_bytes());
        m.push(b' ');
        push_num(&mut m, body.len() as u64);
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(body);
        m.extend_from_slice(b"\r\n");
        self.send(&m)?;
        let t0 = Instant::now();
        loop {
            let r = self.next_msg()?;
            if r.subject == inbox {
                if r.status() == Some(503) {
                    return Err(format!("{subject}: no responders (503)"));
                }
                return Ok(r);
            }
            if t0.elapsed() > limit {
                return Err(format!("{subject}: no reply within {limit:?}"));
            }
        }
    }
}

/// A JSON API request that must not answer with an `"error"`.
fn js_api(c: &mut Conn, subject: &str, inbox: &str, body: &str, cfg: &Cfg) -> Res<Vec<u8>> {
    let r = c.request(subject, inbox, body.as_bytes(), cfg.timeout)?;
    if contains(&r.payload, b"\"error\"") {
        return Err(format!("{subject}: {}", lossy(&r.payload)));
    }
    Ok(r.payload)
}

impl Cfg {
    /// The subject the benchmark stream captures: `jsb.<stream>`.
    fn js_subject(&self) -> String {
        format!("jsb.{}", self.stream)
    }
}

/// Opens a JetStream connection subscribed to `<prefix>.*` and creates the
/// stream `cfg.stream` on `jsb.x` with `--storage`. Returns (conn, prefix).
fn js_setup(cfg: &Cfg, what: &str) -> Res<(Conn, String)> {
    let mut c = Conn::open(cfg, RBUF, what)?;
    let prefix = inbox_prefix(what);
    c.send(format!("SUB {prefix}.* 1\r\n").as_bytes())?;
    c.sync()?;
    let body = format!(
        "{{\"name\":\"{}\",\"subjects\":[\"{}\"],\"storage\":\"{}\"}}",
        cfg.stream,
        cfg.js_subject(),
        cfg.storage
    );
    let subj = format!("$JS.API.STREAM.CREATE.{}", cfg.stream);
    js_api(&mut c, &subj, &format!("{prefix}.api"), &body, cfg)?;
    Ok((c, prefix))
}

/// Checks one PubAck; returns its sequence.
fn check_puback(m: &RMsg) -> Res<u64> {
    if m.status() == Some(503) {
        return Err("publish: no responders (503): no stream captured the subject".into());
    }
    if contains(&m.payload, b"\"error\"") {
        return Err(format!("publish: error PubAck {}", lossy(&m.payload)));
    }
    json_u64(&m.payload, "seq", 0)
        .ok_or_else(|| format!("publish: unexpected PubAck {:?}", lossy(&m.payload)))
}

fn pct_us(sorted_ns: &[u64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted_ns.len() as f64).ceil() as usize;
    sorted_ns[rank.clamp(1, sorted_ns.len()) - 1] as f64 / 1000.0
}

fn scenario_js_pub_sync(cfg: &Cfg) -> Res<()> {
    let (total, dur) = cfg.publish_plan(5_000.0);
    let (mut c, prefix) = js_setup(cfg, "jspub")?;
    let inbox = format!("{prefix}.ack");
    let msg = pub_msg(&cfg.js_subject(), Some(&inbox), cfg.size);
    eprintln!(
        "js-pub-sync: stream {} ({}), {} B, one PubAck at a time",
        cfg.stream, cfg.storage, cfg.size
    );
    let mut lat: Vec<u64> = Vec::with_capacity(total.min(10_000_000) as usize);
    let t0 = Instant::now();
    let until = dur.map(|d| t0 + d);
    let mut n = 0u64;
    while n < total {
        if let Some(u) = until
            && Instant::now() >= u
        {
            break;
        }
        let t = Instant::now();
        c.send(&msg)?;
        let ack = loop {
            let m = c.next_msg()?;
            if m.subject == inbox {
                break m;
            }
        };
        lat.push(t.elapsed().as_nanos() as u64);
        let seq = check_puback(&ack)?;
        n += 1;
        if seq != n {
            return Err(format!("js-pub-sync: PubAck seq {seq}, expected {n}"));
        }
    }
    let secs = secs_since(t0, Instant::now());
    if lat.is_empty() {
        return Err("js-pub-sync: no PubAck".into());
    }
    lat.sort_unstable();
    let mean = lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0;
    Json::new("js-pub-sync")
        .s("storage", &cfg.storage)
        .u("size", cfg.size as u64)
        .u("msgs", n)
        .f("secs", secs, 4)
        .f("msgs_per_sec", n as f64 / secs, 1)
        .f("p50_us", pct_us(&lat, 50.0), 2)
        .f("p90_us", pct_us(&lat, 90.0), 2)
        .f("p99_us", pct_us(&lat, 99.0), 2)
        .f("max_us", lat[lat.len() - 1] as f64 / 1000.0, 2)
        .f("mean_us", mean, 2)
        .emit(cfg);
    Ok(())
}

/// Publishes `total` messages (or until `until`) with at most `inflight`
/// PubAcks outstanding on `c`; returns (acked, last seq, end time).
fn js_publish_window(
    c: &mut Conn,
    subject: &str,
    inbox: &str,
    size: usize,
    inflight: u64,
    total: u64,
    until: Option<Instant>,
) -> Res<(u64, u64, Instant)> {
    let msg = pub_msg(subject, Some(inbox), size);
    let mut batch: Vec<u8> = Vec::with_capacity(WBATCH + msg.len());
    let (mut sent, mut acked, mut last_seq) = (0u64, 0u64, 0u64);
    let mut stop = false;
    loop {
        if !stop
            && let Some(u) = until
            && Instant::now() >= u
        {
            stop = true;
        }
        let limit = if stop { sent } else { total };
        batch.clear();
        while sent < limit && sent - acked < inflight && batch.len() < WBATCH {
            batch.extend_from_slice(&msg);
            sent += 1;
        }
        if !batch.is_empty() {
            c.send(&batch)?;
        }
        if acked == sent && (stop || sent >= total) {
            break;
        }
        // Wait for at least one PubAck, then take all that are buffered.
        let mut got = false;
        loop {
            let m = if got {
                match c.parse_buffered()? {
                    Some(m) => m,
                    None => break,
                }
            } else {
                c.next_msg()?
            };
            if m.subject != inbox {
                continue;
            }
            let seq = check_puback(&m)?;
            if seq <= last_seq {
                return Err(format!("PubAck seq {seq} after {last_seq}"));
            }
            last_seq = seq;
            acked += 1;
            got = true;
        }
    }
    Ok((acked, last_seq, Instant::now()))
}

fn scenario_js_pub_async(cfg: &Cfg) -> Res<()> {
    let (total, dur) = cfg.publish_plan(200_000.0);
    let (mut c, prefix) = js_setup(cfg, "jspub")?;
    let inbox = format!("{prefix}.ack");
    eprintln!(
        "js-pub-async: stream {} ({}), {} B, {} PubAcks in flight",
        cfg.stream, cfg.storage, cfg.size, cfg.inflight
    );
    let t0 = Instant::now();
    let (acked, last_seq, end) = js_publish_window(
        &mut c,
        &cfg.js_subject(),
        &inbox,
        cfg.size,
        cfg.inflight,
        total,
        dur.map(|d| t0 + d),
    )?;
    let secs = secs_since(t0, end);
    if last_seq != acked {
        return Err(format!("js-pub-async: {acked} acked, last seq {last_seq}"));
    }
    Json::new("js-pub-async")
        .s("storage", &cfg.storage)
        .u("size", cfg.size as u64)
        .u("inflight", cfg.inflight)
        .u("msgs", acked)
        .f("secs", secs, 4)
        .f("msgs_per_sec", acked as f64 / secs, 1)
        .f("mb_per_sec", acked as f64 * cfg.size as f64 / secs / 1e6, 2)
        .emit(cfg);
    Ok(())
}

/// js-fill: fills the stream with --msgs messages (for js-recover), then
/// reports the server RSS (--server-pid) and the stream's state.
fn scenario_js_fill(cfg: &Cfg) -> Res<()> {
    let total = cfg.count(1_000_000.0);
    let (mut c, prefix) = js_setup(cfg, "jsfill")?;
    let inbox = format!("{prefix}.ack");
    eprintln!(
        "js-fill: {total} x {} B into {} ({}), {} in flight",
        cfg.size, cfg.stream, cfg.storage, cfg.inflight
    );
    let t0 = Instant::now();
    let (acked, _, end) = js_publish_window(
        &mut c,
        &cfg.js_subject(),
        &inbox,
        cfg.size,
        cfg.inflight,
        total,
        None,
    )?;
    let secs = secs_since(t0, end);
    let info = js_api(
        &mut c,
        &format!("$JS.API.STREAM.INFO.{}", cfg.stream),
        &format!("{prefix}.info"),
        "",
        cfg,
    )?;
    let msgs = state_messages(&info)
        .ok_or_else(|| format!("js-fill: no state.messages in {}", lossy(&info)))?;
    if msgs != acked {
        return Err(format!(
            "js-fill: {acked} acked but state.messages = {msgs}"
        ));
    }
    let mut j = Json::new("js-fill");
    j.s("storage", &cfg.storage)
        .u("size", cfg.size as u64)
        .u("msgs", acked)
        .f("secs", secs, 4)
        .f("msgs_per_sec", acked as f64 / secs, 1);
    if let Some(pid) = cfg.server_pid {
        thread::sleep(Duration::from_millis(300));
        j.u("rss_kib", read_rss_kib(pid)?);
    }
    j.emit(cfg);
    Ok(())
}

/// js-ready: (for js-recover) connects as soon as the server accepts, and
/// asks STREAM.INFO until `state.messages` is --msgs; times are reported
/// from --since-ns (unix ns taken just before the server was started).
fn scenario_js_ready(cfg: &Cfg) -> Res<()> {
    let expect = cfg
        .msgs
        .ok_or("js-ready needs --msgs (the expected state.messages)")?;
    let now_ns = || -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    };
    let since = cfg.since_ns.map(u128::from).unwrap_or_else(now_ns);
    let elapsed = |t: u128| t.saturating_sub(since) as f64 / 1e9;
    let limit = Instant::now() + cfg.timeout;
    let mut c = loop {
        match TcpStream::connect_timeout(&cfg.addr, Duration::from_millis(200)) {
            Ok(s) => {
                drop(s);
                match Conn::open(cfg, RBUF, "js-ready") {
                    Ok(c) => break c,
                    Err(e) if Instant::now() < limit => {
                        eprintln!("js-ready: {e}; retrying");
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) if Instant::now() >= limit => {
                return Err(format!(
                    "js-ready: no connection within {:?}: {e}",
                    cfg.timeout
                ));
            }
            Err(_) => {}
        }
        thread::sleep(Duration::from_millis(2));
    };
    let connect_secs = elapsed(now_ns());
    let prefix = inbox_prefix("ready");
    c.send(format!("SUB {prefix}.* 1\r\n").as_bytes())?;
    c.sync()?;
    let subj = format!("$JS.API.STREAM.INFO.{}", cfg.stream);
    let mut tries = 0u64;
    let (msgs, ready_secs) = loop {
        tries += 1;
        let r = c.request(&subj, &format!("{prefix}.i"), b"", cfg.timeout)?;
        let msgs = state_messages(&r.payload);
        if msgs == Some(expect) {
            break (expect, elapsed(now_ns()));
        }
        if Instant::now() >= limit {
            return Err(format!(
                "js-ready: STREAM.INFO still says {} after {:?}",
                lossy(&r.payload),
                cfg.timeout
            ));
        }
        thread::sleep(Duration::from_millis(5));
    };
    let mut j = Json::new("js-ready");
    j.u("msgs", msgs)
        .f("connect_secs", connect_secs, 4)
        .f("ready_secs", ready_secs, 4)
        .u("info_requests", tries);
    if let Some(pid) = cfg.server_pid {
        thread::sleep(Duration::from_millis(300));
        j.u("rss_kib", read_rss_kib(pid)?);
    }
    j.emit(cfg);
    Ok(())
}

fn scenario_js_fetch(cfg: &Cfg) -> Res<()> {
    let total = cfg.count(20_000.0);
    let batch = cfg.batch;
    let (mut c, prefix) = js_setup(cfg, "jsfetch")?;
    eprintln!(
        "js-fetch: pre-filling {total} x {} B into {} ({})",
        cfg.size, cfg.stream, cfg.storage
    );
    let t_fill = Instant::now();
    let (acked, _, _) = js_publish_window(
        &mut c,
        &cfg.js_subject(),
        &format!("{prefix}.ack"),
        cfg.size,
        cfg.inflight,
        total,
        None,
    )?;
    let fill_secs = t_fill.elapsed().as_secs_f64();
    if acked != total {
        return Err(format!("js-fetch: only {acked} of {total} acked"));
    }
    let durable = "JSBC";
    let body = format!(
        "{{\"stream_name\":\"{}\",\"config\":{{\"durable_name\":\"{durable}\",\"ack_policy\":\"explicit\"}}}}",
        cfg.stream
    );
    js_api(
        &mut c,
        &format!("$JS.API.CONSUMER.CREATE.{}.{durable}", cfg.stream),
        &format!("{prefix}.api"),
        &body,
        cfg,
    )?;
    eprintln!("js-fetch: pulling batches of {batch}, acking each message");
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{durable}", cfg.stream);
    let pull_body = format!("{{\"batch\":{batch},\"expires\":2000000000}}");
    let mut pull = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(WBATCH);
    let (mut got, mut statuses, mut requests) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    while got < total {
        let inbox = format!("{prefix}.f{requests}");
        requests += 1;
        pull.clear();
        pull.extend_from_slice(b"PUB ");
        pull.extend_from_slice(next.as_bytes());
        pull.push(b' ');
        pull.extend_from_slice(inbox.as_bytes());
        pull.push(b' ');
        push_num(&mut pull, pull_body.len() as u64);
        pull.extend_from_slice(b"\r\n");
        pull.extend_from_slice(pull_body.as_bytes());
        pull.extend_from_slice(b"\r\n");
        out.extend_from_slice(&pull);
        c.send(&out)?;
        out.clear();
        let want = batch.min(total - got);
        let mut in_batch = 0u64;
        while in_batch < want {
            let m = c.next_msg()?;
            // Deliveries keep the stored subject and carry a $JS.ACK reply;
            // status messages (404/408/409) come on the request's inbox.
            let is_ack = m
                .reply
                .as_deref()
                .is_some_and(|r| r.starts_with("$JS.ACK."));
            if !is_ack && m.subject != inbox {
                continue;
            }
            if let Some(code) = m.status() {
                // 404/408: the request ended early; ask again.
                statuses += 1;
                if code != 404 && code != 408 {
                    return Err(format!("js-fetch: status {}", lossy(&m.headers)));
                }
                break;
            }
            let Some(ack) = m.reply.as_deref().filter(|r| r.starts_with("$JS.ACK.")) else {
                return Err(format!(
                    "js-fetch: message without $JS.ACK reply: {:?}",
                    m.reply
                ));
            };
            out.extend_from_slice(b"PUB ");
            out.extend_from_slice(ack.as_bytes());
            out.extend_from_slice(b" 0\r\n\r\n");
            in_batch += 1;
            if out.len() >= WBATCH {
                c.send(&out)?;
                out.clear();
            }
        }
        got += in_batch;
        if t0.elapsed() > cfg.timeout * 4 && got < total {
            return Err(format!(
                "js-fetch: only {got} of {total} after {:?}",
                t0.elapsed()
            ));
        }
    }
    if !out.is_empty() {
        c.send(&out)?;
    }
    c.sync()?; // every ack has been read by the server
    let secs = secs_since(t0, Instant::now());
    let info = js_api(
        &mut c,
        &format!("$JS.API.CONSUMER.INFO.{}.{durable}", cfg.stream),
        &format!("{prefix}.ci"),
        "",
        cfg,
    )?;
    let pending = json_u64(&info, "num_ack_pending", 0);
    Json::new("js-fetch")
        .s("storage", &cfg.storage)
        .u("size", cfg.size as u64)
        .u("batch", batch)
        .u("msgs", got)
        .u("requests", requests)
        .u("early_ends", statuses)
        .u("num_ack_pending", pending.unwrap_or(u64::MAX))
        .f("fill_secs", fill_secs, 4)
        .f("secs", secs, 4)
        .f("msgs_per_sec", got as f64 / secs, 1)
        .emit(cfg);
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
        "js-pub-sync" => scenario_js_pub_sync(cfg),
        "js-pub-async" => scenario_js_pub_async(cfg),
        "js-fetch" => scenario_js_fetch(cfg),
        "js-fill" => scenario_js_fill(cfg),
        "js-ready" => scenario_js_ready(cfg),
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
