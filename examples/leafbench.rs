//! Throughput through a leaf link: a publisher on one server, a subscriber
//! on another, messages per second as the subscriber sees them.
//!
//!     leafbench --pub HOST:PORT --sub HOST:PORT [--msgs N] [--size N] [--label S]
//!
//! The subscriber subscribes on `leafbench.<nonce>`, then the publisher
//! sends probes until one arrives (interest crossed the link); then the
//! publisher writes N messages of `size` bytes as fast as TCP takes them,
//! and the clock runs from the first byte written to the last message
//! read. Prints one JSON line. Raw protocol over std TCP, so the client is
//! not the bottleneck; every wait has a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

struct Cfg {
    publish: String,
    subscribe: String,
    msgs: usize,
    size: usize,
    label: String,
}

fn parse_args() -> Res<Cfg> {
    let mut cfg = Cfg {
        publish: String::new(),
        subscribe: String::new(),
        msgs: 1_000_000,
        size: 128,
        label: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pub" => cfg.publish = val()?,
            "--sub" => cfg.subscribe = val()?,
            "--msgs" => cfg.msgs = val()?.parse().map_err(|e| format!("--msgs: {e}"))?,
            "--size" => cfg.size = val()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--label" => cfg.label = val()?,
            "-h" | "--help" => {
                println!(
                    "leafbench --pub HOST:PORT --sub HOST:PORT [--msgs N] [--size N] [--label S]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if cfg.publish.is_empty() || cfg.subscribe.is_empty() {
        return Err("--pub and --sub are required".into());
    }
    Ok(cfg)
}

/// Connects, reads INFO, sends CONNECT and a PING, waits for PONG.
fn connect(addr: &str) -> Res<(TcpStream, BufReader<TcpStream>)> {
    let addr = addr.trim_start_matches("nats://");
    let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut r = BufReader::with_capacity(1 << 20, s.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| format!("INFO: {e}"))?;
    let mut w = s;
    w.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\nPING\r\n")
        .map_err(|e| e.to_string())?;
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| format!("PONG: {e}"))?;
        if line.starts_with("PONG") {
            return Ok((w, r));
        }
        if line.is_empty() {
            return Err("closed during connect".into());
        }
    }
}

/// Reads one MSG (skipping PINGs, which it answers); returns its payload length.
fn read_msg(r: &mut BufReader<TcpStream>, w: &mut TcpStream, line: &mut String) -> Res<usize> {
    loop {
        line.clear();
        let n = r.read_line(line).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("subscriber connection closed".into());
        }
        if line.starts_with("PING") {
            w.write_all(b"PONG\r\n").map_err(|e| e.to_string())?;
            continue;
        }
        if let Some(rest) = line.strip_prefix("MSG ") {
            let size: usize = rest
                .split_whitespace()
                .last()
                .and_then(|s| s.parse().ok())
                .ok_or("bad MSG line")?;
            let mut skip = vec![0u8; size + 2];
            r.read_exact(&mut skip).map_err(|e| e.to_string())?;
            return Ok(size);
        }
    }
}

fn run(cfg: &Cfg) -> Res<()> {
    let subject = format!("leafbench.{:x}", std::process::id() as u64 * 7919 + 17);
    let (mut sw, mut sr) = connect(&cfg.subscribe)?;
    sw.write_all(format!("SUB {subject} 1\r\nSUB {subject}.probe 2\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let (mut pw, mut pr) = connect(&cfg.publish)?;
    // Probe until the interest has crossed.
    let deadline = Instant::now() + Duration::from_secs(30);
    sr.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .ok();
    let mut line = String::new();
    loop {
        pw.write_all(format!("PUB {subject}.probe 1\r\np\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        match read_msg(&mut sr, &mut sw, &mut line) {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => continue,
            Err(e) => return Err(format!("interest never crossed: {e}")),
        }
    }
    sw.write_all(b"UNSUB 2\r\n").map_err(|e| e.to_string())?;
    // Drain stray probes with a round trip.
    sr.get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok();
    // Publisher: one thread writing everything in big batches.
    let payload = vec![b'x'; cfg.size];
    let mut frame = format!("PUB {subject} {}\r\n", cfg.size).into_bytes();
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(b"\r\n");
    let per_batch = (64 * 1024 / frame.len()).max(1);
    let batch: Vec<u8> = frame.repeat(per_batch);
    let msgs = cfg.msgs;
    let start = Instant::now();
    let publisher = std::thread::spawn(move || -> Res<()> {
        let mut left = msgs;
        while left > 0 {
            let n = left.min(per_batch);
            pw.write_all(&batch[..n * frame.len()])
                .map_err(|e| e.to_string())?;
            left -= n;
        }
        pw.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        let mut l = String::new();
        loop {
            l.clear();
            if pr.read_line(&mut l).map_err(|e| e.to_string())? == 0 || l.starts_with("PONG") {
                return Ok(());
            }
        }
    });
    let mut got = 0;
    while got < cfg.msgs {
        let size = read_msg(&mut sr, &mut sw, &mut line)?;
        if size == cfg.size {
            got += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    publisher
        .join()
        .map_err(|_| "publisher panicked".to_string())??;
    println!(
        "{{\"label\":\"{}\",\"msgs\":{},\"size\":{},\"secs\":{:.3},\"msgs_per_sec\":{:.0}}}",
        cfg.label,
        cfg.msgs,
        cfg.size,
        secs,
        cfg.msgs as f64 / secs
    );
    Ok(())
}

fn main() {
    // A global watchdog: the whole run may not exceed 10 minutes.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(600));
        eprintln!("leafbench: deadline exceeded");
        std::process::exit(3);
    });
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leafbench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&cfg) {
        eprintln!("leafbench: {e}");
        std::process::exit(1);
    }
}
