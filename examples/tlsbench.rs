//! tlsbench — pub/sub throughput, the memory of many idle connections, or
//! the connection set-up rate, over plain TCP or TLS, for comparing a
//! server's TLS cost with its plain-text cost (benches/tls_compare.sh runs
//! it against natrium and nats-server).
//!
//! Scenario `pubsub` (the default): one publisher connection and one
//! subscriber connection on subject
//! `bench.tls`. Each connection reads the plain-text INFO line first and,
//! with `--tls`, then starts the TLS handshake on the same socket (the NATS
//! way; rustls with the ring provider, server name "localhost"). The
//! publisher writes pre-built ~64 KiB batches of `PUB bench.tls N`; the
//! subscriber reads big chunks and counts MSG frames by scanning, skipping
//! payloads by their size, until all messages arrived.
//!
//! Scenario `conns`: reads the server's VmRSS from /proc/PID/status
//! (`--server-pid`), opens `--conns` connections one after the other (each:
//! INFO, the TLS handshake with `--tls`, `CONNECT {"verbose":false}` and
//! PING, waiting for the PONG) and keeps them all open, reads VmRSS, does
//! one more PING/PONG round trip on a few of them (so the server has
//! finished with every connection), and reads VmRSS again; the later value
//! counts. No sleeping: the result depends only on what the server holds.
//! Needs `--conns` + a few file descriptors (`ulimit -n`); the same
//! machine as the server (Linux /proc). It also times the opening (first
//! connect to last PONG) and reports it as `open_secs` and `conns_per_sec`;
//! those connections are opened one at a time and, with `--tls`, may resume
//! a TLS session of an earlier one (rustls's default client session cache):
//! for the rate of full handshakes use `connect`.
//!
//! Scenario `connect`: the connection set-up rate. `--parallel` threads
//! (default 4) each open connections in a loop (connect, INFO, the TLS
//! handshake with `--tls`, `CONNECT {"verbose":false}` and PING, waiting for
//! the PONG) and close each at once, for `--secs` seconds (default 3) or
//! until `--conns` connections in all (default at most 15000: the client
//! closes first, so every connection leaves a socket in TIME_WAIT on this
//! side, and a run must stay well clear of the ~28k ephemeral ports).
//! Reports connections/s and the set-up latency percentiles (connect to
//! PONG). With `--tls` every connection is a FULL handshake: all threads
//! share one fresh rustls ClientConfig with session resumption disabled
//! (`Resumption::disabled()`), so nothing is resumed. One untimed
//! connection first checks the server and names the cipher. With
//! `--server-pid` the server's CPU time over the timed window is reported
//! too (`server_cpu_pct`, % of one core, and `server_cpu_us_per_conn`;
//! /proc/PID/stat, all threads), and this process's (`client_cpu_pct`):
//! a full TLS handshake costs the client about as much as the server (it
//! verifies two ECDSA signatures, the server makes one), so on equal CPUs
//! the client can be the bottleneck; the server's CPU per connection is its
//! handshake cost either way.
//!
//! Usage:
//!   cargo run --release --example tlsbench -- --url 127.0.0.1:4222 --size 128
//!   cargo run --release --example tlsbench -- --url 127.0.0.1:4443 --tls --ca ca.pem
//!   cargo run --release --example tlsbench -- --scenario conns --conns 2000 \
//!       --server-pid 12345 --url 127.0.0.1:4443 --tls --ca ca.pem
//!   cargo run --release --example tlsbench -- --scenario connect --parallel 4 \
//!       --secs 3 --url 127.0.0.1:4443 --tls --ca ca.pem
//!
//! Output: exactly one JSON line on stdout (pubsub: received msgs/s and
//! MB/s, MB = 10^6 bytes; conns: the server's RSS before and after in KiB
//! and KiB per connection; connect: connections/s, p50/p99 set-up latency
//! in ms); progress goes to stderr. Every wait is bounded by
//! `--timeout` and a watchdog ends the process after `--deadline` seconds.
//! Errors exit non-zero with a message.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Size of the subscriber's read buffer (plaintext) and of the socket
/// buffer under a TLS session.
const RBUF: usize = 256 * 1024;
/// The same two buffers for each of the many idle connections of `conns`.
const CONNS_RBUF: usize = 4 * 1024;
/// Connections of `conns` that do the last PING/PONG round trip (spread
/// evenly, the last one included).
const PROBES: usize = 8;
/// File descriptors `conns` needs besides its connections.
const SPARE_FDS: u64 = 16;
/// `connect`: connections in all when `--conns` is not given (TIME_WAIT:
/// each one holds an ephemeral port of this host for a while).
const CONNECT_MAX: usize = 15_000;
/// Target size of one publish batch.
const WBATCH: usize = 64 * 1024;
const SUBJECT: &str = "bench.tls";
const SUB_HELLO: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nSUB bench.tls 1\r\nPING\r\n";
const PUB_HELLO: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nPING\r\n";
const IDLE_HELLO: &[u8] = b"CONNECT {\"verbose\":false}\r\nPING\r\n";

const USAGE: &str = "\
tlsbench — NATS pub/sub throughput, the server memory of many idle
connections, or the connection set-up rate, over plain TCP or TLS

USAGE:
  tlsbench --url HOST:PORT [--tls --ca FILE] [options]
  tlsbench --scenario conns --server-pid PID --url HOST:PORT [--tls --ca FILE] [--conns N]
  tlsbench --scenario connect --url HOST:PORT [--tls --ca FILE] [--parallel C] [--secs F]

OPTIONS:
  --scenario NAME   pubsub (default): throughput of 1 publisher -> 1 subscriber;
                    conns: server VmRSS per idle connection;
                    connect: connections/s (open, PING/PONG, close), full TLS handshakes
  --url HOST:PORT   server address (default 127.0.0.1:4222; nats:// or tls:// prefix ok)
  --size N          pubsub: payload bytes (default 128)
  --msgs N          pubsub: messages to publish (default: min(500000, 1 GiB / size))
  --conns N         conns: connections to open and keep (default 2000; needs
                    N + 16 open files, see `ulimit -n`);
                    connect: stop after N connections in all (default 15000
                    with the default --secs; each leaves a client TIME_WAIT)
  --parallel C      connect: concurrent connector threads (default 4)
  --secs F          connect: how long to open connections (default 3; with
                    --conns alone: until N)
  --server-pid PID  conns: the server process whose VmRSS (/proc/PID/status) is read;
                    connect (optional): whose CPU time is reported
  --tls             start TLS after INFO (server name \"localhost\")
  --ca FILE         PEM CA certificate(s) to trust (required with --tls)
  --label STR       label copied into the JSON output
  --timeout SECS    bound of every single wait (default 30)
  --deadline SECS   watchdog: exit non-zero after this long (default 300)
";

type Res<T> = Result<T, String>;

enum Scenario {
    PubSub {
        size: usize,
        msgs: u64,
    },
    Conns {
        conns: usize,
        server_pid: u32,
    },
    Connect {
        parallel: usize,
        secs: Option<Duration>,
        conns: usize,
        server_pid: Option<u32>,
    },
}

struct Cfg {
    addr: SocketAddr,
    scenario: Scenario,
    tls: Option<Arc<ClientConfig>>,
    label: Option<String>,
    timeout: Duration,
    deadline: Duration,
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Res<T> {
    v.parse()
        .map_err(|_| format!("invalid value for {flag}: {v:?}"))
}

fn secs(flag: &str, v: &str) -> Res<Duration> {
    let s: f64 = num(flag, v)?;
    if !(s > 0.0 && s.is_finite()) {
        return Err(format!("{flag} must be > 0"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse_args() -> Res<Cfg> {
    let (mut url, mut size, mut msgs) = ("127.0.0.1:4222".to_string(), None, None);
    let (mut scenario, mut conns, mut server_pid) = ("pubsub".to_string(), None, None);
    let (mut parallel, mut run_secs) = (None, None);
    let (mut tls, mut ca, mut label) = (false, None, None);
    let (mut timeout, mut deadline) = (Duration::from_secs(30), Duration::from_secs(300));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--url" => url = val()?,
            "--scenario" => scenario = val()?,
            "--size" => size = Some(num::<usize>(&a, &val()?)?),
            "--msgs" => msgs = Some(num::<u64>(&a, &val()?)?),
            "--conns" => conns = Some(num::<usize>(&a, &val()?)?),
            "--server-pid" => server_pid = Some(num::<u32>(&a, &val()?)?),
            "--parallel" => parallel = Some(num::<usize>(&a, &val()?)?),
            "--secs" => run_secs = Some(secs(&a, &val()?)?),
            "--tls" => tls = true,
            "--ca" => ca = Some(val()?),
            "--label" => label = Some(val()?),
            "--timeout" => timeout = secs(&a, &val()?)?,
            "--deadline" => deadline = secs(&a, &val()?)?,
            _ => return Err(format!("unknown argument {a:?} (see --help)")),
        }
    }
    if scenario != "connect" && (parallel.is_some() || run_secs.is_some()) {
        return Err("--parallel and --secs belong to --scenario connect".into());
    }
    let scenario = match scenario.as_str() {
        "pubsub" => {
            if conns.is_some() || server_pid.is_some() {
                return Err("--conns and --server-pid belong to --scenario conns".into());
            }
            let size = size.unwrap_or(128);
            let msgs = msgs.unwrap_or_else(|| (500_000u64).min((1u64 << 30) / size.max(1) as u64));
            if msgs == 0 {
                return Err("--msgs must be >= 1".into());
            }
            Scenario::PubSub { size, msgs }
        }
        "conns" => {
            if size.is_some() || msgs.is_some() {
                return Err("--size and --msgs belong to --scenario pubsub".into());
            }
            let conns = conns.unwrap_or(2000);
            if conns == 0 {
                return Err("--conns must be >= 1".into());
            }
            let server_pid = server_pid.ok_or("--scenario conns needs --server-pid PID")?;
            Scenario::Conns { conns, server_pid }
        }
        "connect" => {
            if size.is_some() || msgs.is_some() {
                return Err("--size and --msgs belong to --scenario pubsub".into());
            }
            let parallel = parallel.unwrap_or(4);
            if parallel == 0 {
                return Err("--parallel must be >= 1".into());
            }
            if conns == Some(0) {
                return Err("--conns must be >= 1".into());
            }
            // --conns alone: until N; otherwise --secs (default 3), capped.
            let secs = match (run_secs, conns) {
                (None, Some(_)) => None,
                (s, _) => Some(s.unwrap_or(Duration::from_secs(3))),
            };
            let conns = conns.unwrap_or(CONNECT_MAX);
            Scenario::Connect {
                parallel,
                secs,
                conns,
                server_pid,
            }
        }
        _ => {
            return Err(format!(
                "unknown --scenario {scenario:?} (pubsub, conns or connect)"
            ));
        }
    };
    let hostport = ["nats://", "tls://", "tcp://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .unwrap_or(&url)
        .trim_end_matches('/');
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("bad --url {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad --url {url:?}: no address"))?;
    let tls = match (tls, ca) {
        (false, None) => None,
        (false, Some(_)) => return Err("--ca needs --tls".into()),
        (true, None) => return Err("--tls needs --ca FILE".into()),
        (true, Some(ca)) => {
            let mut config = client_config(&ca)?;
            if matches!(scenario, Scenario::Connect { .. }) {
                // Every connection a full handshake: no session to resume.
                config.resumption = rustls::client::Resumption::disabled();
            }
            Some(Arc::new(config))
        }
    };
    Ok(Cfg {
        addr,
        scenario,
        tls,
        label,
        timeout,
        deadline,
    })
}

/// rustls client configuration trusting the CA certificates in `ca`.
fn client_config(ca: &str) -> Res<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--ca {ca}: {e}"))? {
        let cert = cert.map_err(|e| format!("--ca {ca}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("--ca {ca}: bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("--ca {ca}: no certificate found"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

/// The TCP socket under a TLS session, with a read buffer: rustls asks for
/// at most a few KiB per read, this turns that into one large `read(2)`.
/// Writes (and rustls's vectored record writes) go straight to the socket.
struct Sock {
    tcp: TcpStream,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
}

impl Read for Sock {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            self.end = self.tcp.read(&mut self.buf)?;
            self.pos = 0;
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Sock {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tcp.write(data)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Link {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, Sock>>),
}

/// One client connection: plaintext reads go through `buf[pos..end]`.
struct Conn {
    link: Link,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    what: &'static str,
}

/// Describes an I/O error, naming timeouts as such.
fn io_err(what: &str, op: &str, e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("{what}: {op} timed out"),
        _ => format!("{what}: {op} failed: {e}"),
    }
}

/// Reads the INFO line without consuming anything after it (the server's
/// side of a handshake-first TLS session): peeks at what arrived and reads
/// only up to the newline, two system calls per chunk rather than one per
/// byte (which made the client the bottleneck of `connect`).
fn read_info(tcp: &mut TcpStream, what: &str) -> Res<String> {
    let mut line = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    while line.last() != Some(&b'\n') {
        let n = match tcp.peek(&mut chunk) {
            Ok(0) => return Err(format!("{what}: server closed the connection before INFO")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(what, "reading INFO", e)),
        };
        // Everything before the newline belongs to the line: take it all.
        let take = memchr(b'\n', &chunk[..n]).map_or(n, |i| i + 1);
        tcp.read_exact(&mut chunk[..take])
            .map_err(|e| io_err(what, "reading INFO", e))?;
        line.extend_from_slice(&chunk[..take]);
        if line.len() > 64 * 1024 {
            return Err(format!("{what}: INFO line too long"));
        }
    }
    let line = String::from_utf8_lossy(&line).trim_end().to_string();
    if !line.starts_with("INFO ") {
        return Err(format!("{what}: expected INFO, got {line:?}"));
    }
    Ok(line)
}

impl Conn {
    /// Connects, reads INFO, starts TLS if configured, sends `hello` (which
    /// ends with PING) and waits for the PONG. `rbuf` is the size of the
    /// read buffer (and of the socket buffer under TLS).
    fn open(cfg: &Cfg, what: &'static str, hello: &[u8], rbuf: usize) -> Res<Conn> {
        let mut tcp = TcpStream::connect_timeout(&cfg.addr, cfg.timeout)
            .map_err(|e| io_err(what, &format!("connect to {}", cfg.addr), e))?;
        let opt = |e| io_err(what, "setting socket options", e);
        tcp.set_nodelay(true).map_err(opt)?;
        tcp.set_read_timeout(Some(cfg.timeout)).map_err(opt)?;
        tcp.set_write_timeout(Some(cfg.timeout)).map_err(opt)?;
        let info = read_info(&mut tcp, what)?;
        let tls_required = info.contains("\"tls_required\":true");
        let link = match &cfg.tls {
            None if tls_required => {
                return Err(format!("{what}: the server requires TLS (use --tls --ca)"));
            }
            None => Link::Plain(tcp),
            Some(_) if !tls_required => {
                return Err(format!("{what}: the server does not offer TLS: {info}"));
            }
            Some(config) => Link::Tls(Box::new(handshake(config, tcp, what, rbuf)?)),
        };
        let mut c = Conn {
            link,
            buf: vec![0; rbuf],
            pos: 0,
            end: 0,
            what,
        };
        c.send(hello)?;
        c.scan(None)?;
        Ok(c)
    }

    fn send(&mut self, data: &[u8]) -> Res<()> {
        let r = match &mut self.link {
            Link::Plain(s) => s.write_all(data),
            Link::Tls(s) => s.write_all(data).and_then(|()| s.flush()),
        };
        r.map_err(|e| io_err(self.what, "write", e))
    }

    /// Reads more plaintext into the buffer (moving the unscanned tail to
    /// the front first).
    fn fill(&mut self) -> Res<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            return Err(format!("{}: protocol line too long", self.what));
        }
        let space = &mut self.buf[self.end..];
        let r = match &mut self.link {
            Link::Plain(s) => s.read(space),
            Link::Tls(s) => s.read(space),
        };
        match r {
            Ok(0) => Err(format!("{}: server closed the connection", self.what)),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(io_err(self.what, "read", e)),
        }
    }

    /// Scans incoming frames: with `Some(n)` until `n` messages arrived,
    /// with `None` until the next PONG. MSG payloads are skipped by their
    /// size, server PINGs answered, `-ERR` returned as an error.
    fn scan(&mut self, want: Option<u64>) -> Res<u64> {
        let mut msgs = 0u64;
        let mut skip = 0usize; // payload bytes (with CRLF) still to skip
        loop {
            if skip > 0 {
                let k = skip.min(self.end - self.pos);
                self.pos += k;
                skip -= k;
            }
            if skip == 0 && want.is_some_and(|n| msgs >= n) {
                return Ok(msgs);
            }
            let mut ping = false;
            while skip == 0 {
                let data = &self.buf[self.pos..self.end];
                let Some(nl) = memchr(b'\n', data) else { break };
                let line = data[..nl].strip_suffix(b"\r").unwrap_or(&data[..nl]);
                self.pos += nl + 1;
                match line {
                    [b'M', b'S', b'G', b' ', ..] => {
                        let size = last_num(line).ok_or_else(|| {
                            format!("{}: bad MSG line {:?}", self.what, lossy(line))
                        })?;
                        msgs += 1;
                        skip = size + 2;
                        let k = skip.min(self.end - self.pos);
                        self.pos += k;
                        skip -= k;
                        if skip == 0 && want.is_some_and(|n| msgs >= n) {
                            return Ok(msgs);
                        }
                    }
                    b"PONG" if want.is_none() => return Ok(msgs),
                    b"PING" => ping = true,
                    [b'-', ..] => {
                        return Err(format!("{}: server said {:?}", self.what, lossy(line)));
                    }
                    _ => {} // +OK, PONG, INFO updates
                }
            }
            if ping {
                self.send(b"PONG\r\n")?;
            }
            self.fill()?;
        }
    }

    /// "TLSv1_3 TLS13_AES_128_GCM_SHA256" for a TLS connection.
    fn cipher(&self) -> Option<String> {
        let Link::Tls(s) = &self.link else {
            return None;
        };
        let version = s.conn.protocol_version()?;
        let suite = s.conn.negotiated_cipher_suite()?.suite();
        Some(format!("{version:?} {suite:?}"))
    }
}

/// Wraps the socket in a rustls client session and completes the handshake.
fn handshake(
    config: &Arc<ClientConfig>,
    tcp: TcpStream,
    what: &str,
    rbuf: usize,
) -> Res<StreamOwned<ClientConnection, Sock>> {
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(config.clone(), name)
        .map_err(|e| format!("{what}: TLS session: {e}"))?;
    let sock = Sock {
        tcp,
        buf: vec![0; rbuf].into_boxed_slice(),
        pos: 0,
        end: 0,
    };
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| io_err(what, "TLS handshake", e))?;
    }
    Ok(s)
}

fn memchr(c: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

/// The last space-separated token of a line as a number (MSG's size).
fn last_num(line: &[u8]) -> Option<usize> {
    let digits = line.rsplit(|&c| c == b' ').next()?;
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + (d - b'0') as usize))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// `PUB bench.tls N\r\n<payload>\r\n`, repeated to fill ~64 KiB.
fn pub_batch(size: usize) -> (Vec<u8>, usize) {
    let mut msg = format!("PUB {SUBJECT} {size}\r\n").into_bytes();
    msg.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    msg.extend_from_slice(b"\r\n");
    let per = (WBATCH / msg.len()).max(1);
    (msg.repeat(per), per)
}

/// This process's CPU time (user + system) from /proc, if readable.
fn cpu_time() -> Option<Duration> {
    proc_cpu_time("/proc/self/stat")
}

/// CPU time (user + system, all threads) from a /proc/PID/stat file.
fn proc_cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, in clock ticks (USER_HZ = 100).
    let mut f = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn run_pubsub(cfg: &Cfg, size: usize, msgs: u64) -> Res<()> {
    let (batch, per) = pub_batch(size);
    let msg_len = batch.len() / per;
    let mut sub = Conn::open(cfg, "subscriber", SUB_HELLO, RBUF)?;
    let mut publisher = Conn::open(cfg, "publisher", PUB_HELLO, RBUF)?;
    let cipher = sub.cipher();
    eprintln!(
        "tlsbench: {} {} B x {} msgs to {}{}",
        if cfg.tls.is_some() { "TLS" } else { "plain" },
        size,
        msgs,
        cfg.addr,
        cipher
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default(),
    );

    let total = msgs;
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let sub_thread = thread::Builder::new()
        .name("subscriber".into())
        .spawn(move || sub.scan(Some(total)).map(|n| (n, Instant::now())))
        .map_err(|e| format!("spawn subscriber thread: {e}"))?;
    let pub_thread = thread::Builder::new()
        .name("publisher".into())
        .spawn(move || -> Res<()> {
            let mut sent = 0u64;
            while sent < total {
                let n = (per as u64).min(total - sent);
                publisher.send(&batch[..n as usize * msg_len])?;
                sent += n;
            }
            // Flush: the PONG comes after the server processed every PUB.
            publisher.send(b"PING\r\n")?;
            publisher.scan(None).map(drop)
        })
        .map_err(|e| format!("spawn publisher thread: {e}"))?;

    // A failed publisher ends the run at once (the subscriber would only
    // time out waiting).
    pub_thread
        .join()
        .map_err(|_| "publisher thread panicked")??;
    let (got, t1) = sub_thread
        .join()
        .map_err(|_| "subscriber thread panicked")??;
    let cpu = cpu0.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    let secs = t1.duration_since(t0).as_secs_f64().max(1e-9);

    let mut j = format!(
        "{{\"scenario\":\"pubsub\",\"tls\":{},\"size\":{},\"msgs\":{},\"secs\":{:.4},\
         \"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.1}",
        cfg.tls.is_some(),
        size,
        got,
        secs,
        got as f64 / secs,
        got as f64 * size as f64 / secs / 1e6,
    );
    if let Some(cpu) = cpu {
        j += &format!(
            ",\"client_cpu_pct\":{:.0}",
            cpu.as_secs_f64() / secs * 100.0
        );
    }
    if let Some(c) = cipher {
        j += &format!(",\"cipher\":{}", json_str(&c));
    }
    if let Some(l) = &cfg.label {
        j += &format!(",\"label\":{}", json_str(l));
    }
    println!("{j}}}");
    Ok(())
}

/// VmRSS of process `pid` in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> Res<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|e| format!("--server-pid {pid}: {path}: {e}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| format!("--server-pid {pid}: no VmRSS in {path} (a zombie?)"))?;
    let kib = line.trim().strip_suffix("kB").map(str::trim);
    kib.and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("--server-pid {pid}: cannot read VmRSS {:?}", line.trim()))
}

/// The soft and hard RLIMIT_NOFILE from /proc/self/limits (None = unlimited).
fn nofile_limits() -> Res<(Option<u64>, Option<u64>)> {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| format!("/proc/self/limits: {e}"))?;
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .ok_or("/proc/self/limits: no \"Max open files\" line")?;
    let mut f = line.split_whitespace();
    let mut next = || -> Res<Option<u64>> {
        match f.next() {
            Some("unlimited") => Ok(None),
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("/proc/self/limits: bad open-files limit {n:?}")),
            None => Err("/proc/self/limits: short \"Max open files\" line".into()),
        }
    };
    Ok((next()?, next()?))
}

fn run_conns(cfg: &Cfg, n: usize, pid: u32) -> Res<()> {
    let need = n as u64 + SPARE_FDS;
    if let (Some(soft), hard) = nofile_limits()?
        && soft < need
    {
        let hard = hard.map_or("unlimited".into(), |h| h.to_string());
        return Err(format!(
            "--conns {n} needs about {need} open files, but the limit (RLIMIT_NOFILE) is \
             {soft} (hard limit {hard}): raise it with `ulimit -n {need}` in the shell that \
             runs tlsbench (and the server), or use fewer --conns"
        ));
    }
    let mode = if cfg.tls.is_some() { "TLS" } else { "plain" };
    let before = rss_kib(pid)?;
    eprintln!(
        "tlsbench: {n} idle {mode} connections to {} (server pid {pid}, VmRSS {before} KiB)",
        cfg.addr
    );
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let c = Conn::open(cfg, "connection", IDLE_HELLO, CONNS_RBUF)
            .map_err(|e| format!("{e} (connection {} of {n})", i + 1))?;
        conns.push(c);
    }
    // First connect to last PONG.
    let open_secs = t0.elapsed().as_secs_f64().max(1e-9);
    let connected = rss_kib(pid)?;
    // One more round trip on a few connections, the last one included: the
    // server has then handled everything sent on all of them.
    let probes = PROBES.min(n);
    for k in 1..=probes {
        let i = k * n / probes - 1;
        let c = &mut conns[i];
        c.send(b"PING\r\n")
            .and_then(|()| c.scan(None))
            .map_err(|e| format!("{e} (round trip on connection {} of {n})", i + 1))?;
    }
    let after = rss_kib(pid)?;
    eprintln!(
        "tlsbench: {n} connections open in {open_secs:.2} s ({:.0}/s); \
         server VmRSS {before} -> {connected} -> {after} KiB",
        n as f64 / open_secs
    );
    let mut j = format!(
        "{{\"scenario\":\"conns\",\"tls\":{},\"conns\":{n},\"rss_before_kib\":{before},\
         \"rss_after_kib\":{after},\"kib_per_conn\":{:.2},\"open_secs\":{open_secs:.4},\
         \"conns_per_sec\":{:.1}",
        cfg.tls.is_some(),
        (after as f64 - before as f64) / n as f64,
        n as f64 / open_secs,
    );
    if let Some(l) = &cfg.label {
        j += &format!(",\"label\":{}", json_str(l));
    }
    println!("{j}}}");
    Ok(())
}

/// What one `connect` thread did: set-up latencies in µs and when its last
/// connection was set up.
type Connector = (Vec<u32>, Option<Instant>);

/// One `connect` thread: opens (and at once closes) connections until
/// `end`, until `claimed` reaches `max`, or until another thread failed.
fn connector(
    cfg: &Cfg,
    end: Option<Instant>,
    max: usize,
    claimed: &AtomicUsize,
    failed: &AtomicBool,
) -> Res<Connector> {
    let mut lat = Vec::with_capacity(4096);
    let mut last = None;
    while !failed.load(Ordering::Relaxed) && end.is_none_or(|e| Instant::now() < e) {
        let i = claimed.fetch_add(1, Ordering::Relaxed);
        if i >= max {
            break;
        }
        let t = Instant::now();
        let c = Conn::open(cfg, "connection", IDLE_HELLO, CONNS_RBUF).map_err(|e| {
            failed.store(true, Ordering::Relaxed);
            format!("{e} (connection {})", i + 1)
        })?;
        let done = Instant::now();
        drop(c); // close: the client side goes to TIME_WAIT
        lat.push(u32::try_from(done.duration_since(t).as_micros()).unwrap_or(u32::MAX));
        last = Some(done);
    }
    Ok((lat, last))
}

/// The `q` quantile of sorted µs values, in ms (nearest rank).
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn run_connect(
    cfg: &Cfg,
    parallel: usize,
    secs: Option<Duration>,
    max: usize,
    server_pid: Option<u32>,
) -> Res<()> {
    let mode = if cfg.tls.is_some() { "TLS" } else { "plain" };
    // One untimed connection: the server answers, and which cipher.
    let cipher = Conn::open(cfg, "first connection", IDLE_HELLO, CONNS_RBUF)?.cipher();
    eprintln!(
        "tlsbench: {mode} connection set-up, {parallel} threads, {} to {}{}",
        match secs {
            Some(s) => format!("{:.1} s (at most {max} connections)", s.as_secs_f64()),
            None => format!("{max} connections"),
        },
        cfg.addr,
        cipher
            .as_deref()
            .map(|c| format!(" ({c}, no session resumption)"))
            .unwrap_or_default(),
    );
    let server_stat = server_pid.map(|p| format!("/proc/{p}/stat"));
    let server_cpu = || server_stat.as_deref().and_then(proc_cpu_time);
    let (claimed, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let scpu0 = server_cpu();
    if let (Some(pid), None) = (server_pid, scpu0) {
        return Err(format!("--server-pid {pid}: cannot read /proc/{pid}/stat"));
    }
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let end = secs.map(|s| t0 + s);
    let results: Vec<Res<Connector>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|k| {
                let (claimed, failed) = (&claimed, &failed);
                thread::Builder::new()
                    .name(format!("connector-{k}"))
                    .spawn_scoped(scope, move || connector(cfg, end, max, claimed, failed))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map_err(|e| format!("spawn connector thread: {e}"))?
                    .join()
                    .map_err(|_| "connector thread panicked".to_string())?
            })
            .collect()
    });
    let (cpu1, scpu1, t1) = (cpu_time(), server_cpu(), Instant::now());
    let mut lat = Vec::new();
    let mut last = t0;
    for r in results {
        let (l, t) = r?;
        lat.extend(l);
        last = last.max(t.unwrap_or(t0));
    }
    if lat.is_empty() {
        return Err("no connection was set up in the time given (--secs)".into());
    }
    lat.sort_unstable();
    let n = lat.len();
    // First connect to the last connection's PONG.
    let secs = last.duration_since(t0).as_secs_f64().max(1e-9);
    let (p50, p99) = (quantile_ms(&lat, 0.50), quantile_ms(&lat, 0.99));
    eprintln!(
        "tlsbench: {n} connections in {secs:.2} s: {:.0}/s, set-up p50 {p50:.3} ms, \
         p99 {p99:.3} ms, max {:.3} ms",
        n as f64 / secs,
        quantile_ms(&lat, 1.0),
    );
    let mut j = format!(
        "{{\"scenario\":\"connect\",\"tls\":{},\"conns\":{n},\"parallel\":{parallel},\
         \"secs\":{secs:.4},\"conns_per_sec\":{:.1},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3}",
        cfg.tls.is_some(),
        n as f64 / secs,
    );
    // CPU over the whole timed window (the threads end within one set-up
    // of `last`), % of one core.
    let window = t1.duration_since(t0).as_secs_f64().max(1e-9);
    if let Some(cpu) = cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)) {
        j += &format!(
            ",\"client_cpu_pct\":{:.0}",
            cpu.as_secs_f64() / window * 100.0
        );
    }
    if let Some(cpu) = scpu0.zip(scpu1).map(|(a, b)| b.saturating_sub(a)) {
        // Server CPU per connection: its cost, whichever side was the
        // bottleneck (10 ms clock ticks: a rough figure for short runs).
        j += &format!(
            ",\"server_cpu_pct\":{:.0},\"server_cpu_us_per_conn\":{:.1}",
            cpu.as_secs_f64() / window * 100.0,
            cpu.as_secs_f64() * 1e6 / n as f64
        );
    } else if let Some(pid) = server_pid {
        return Err(format!("--server-pid {pid}: cannot read /proc/{pid}/stat"));
    }
    if let Some(c) = cipher {
        j += &format!(",\"cipher\":{}", json_str(&c));
    }
    if let Some(l) = &cfg.label {
        j += &format!(",\"label\":{}", json_str(l));
    }
    println!("{j}}}");
    Ok(())
}

fn run(cfg: &Cfg) -> Res<()> {
    match cfg.scenario {
        Scenario::PubSub { size, msgs } => run_pubsub(cfg, size, msgs),
        Scenario::Conns { conns, server_pid } => run_conns(cfg, conns, server_pid),
        Scenario::Connect {
            parallel,
            secs,
            conns,
            server_pid,
        } => run_connect(cfg, parallel, secs, conns, server_pid),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

fn main() {
    let cfg = parse_args().unwrap_or_else(|e| {
        eprintln!("tlsbench: {e}");
        std::process::exit(2);
    });
    let deadline = cfg.deadline;
    thread::spawn(move || {
        thread::sleep(deadline);
        eprintln!("tlsbench: deadline of {deadline:?} exceeded, giving up");
        std::process::exit(3);
    });
    if let Err(e) = run(&cfg) {
        eprintln!("tlsbench: {e}");
        std::process::exit(1);
    }
}
