//! Parser throughput in bytes/s on typical operation streams.

mod bench_util;
use bench_util::bench;
use natrium::protocol::parser::{Limits, Parsed, parse};
use std::hint::black_box;

/// A stream of `n` PUBs with `size`-byte payloads.
fn pubs(n: usize, size: usize) -> Vec<u8> {
    let payload = vec![b'x'; size];
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!("PUB bench.subject.{} {size}\r\n", i % 10).as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses a whole buffer; returns the number of operations.
fn parse_all(buf: &[u8], limits: &Limits) -> usize {
    let mut pos = 0;
    let mut ops = 0;
    while let Ok(Parsed::Complete { op, len }) = parse(&buf[pos..], limits) {
        ops += usize::from(op.is_some());
        pos += len;
        if pos == buf.len() {
            break;
        }
    }
    ops
}

fn main() {
    let limits = Limits::default();
    for size in [16usize, 128, 1024, 65536] {
        let n = (1 << 20) / (size + 30) + 1;
        let stream = pubs(n, size);
        bench(
            &format!("parse PUB {size} B"),
            "B",
            stream.len() as f64,
            || {
                black_box(parse_all(black_box(&stream), &limits));
            },
        );
        bench(&format!("parse PUB {size} B (ops)"), "op", n as f64, || {
            black_box(parse_all(black_box(&stream), &limits));
        });
    }
    let mut mixed = Vec::new();
    for i in 0..10_000 {
        mixed.extend_from_slice(
            format!("SUB foo.{i}.* q {i}\r\nPING\r\nUNSUB {i} 5\r\n").as_bytes(),
        );
    }
    bench("parse SUB/PING/UNSUB mix", "B", mixed.len() as f64, || {
        black_box(parse_all(black_box(&mixed), &limits));
    });
}
