//! Feeds arbitrary bytes to `natrium::parser::parse` the way the server does
//! (`Server::ingest` in src/server.rs): the stream arrives in chunks split at
//! fuzzer-chosen points; an operation left incomplete at the end of a chunk
//! is kept in a carry buffer and completed from the next chunk with
//! `natrium::server::complete_carry` (the server's own function), and the
//! rest of each chunk is parsed in place.
//!
//! Checked for every input:
//! - nothing panics;
//! - every `len` the parser returns is in bounds, and a carry that
//!   `complete_carry` calls complete parses as exactly one operation;
//! - the carried tail never exceeds `max_control_line + 9 + max_payload + 2`
//!   (so a client cannot grow a connection's memory by withholding bytes);
//! - splitting does not change the outcome: the operations and the error
//!   (if any) are the same as when the whole stream arrives in one read.
//!
//! Input layout: byte 0 picks `max_control_line` (1..=64), byte 1
//! `max_payload` (1..=128), byte 2 the number of cuts (0..=15), then one
//! byte per chunk length (1..=256); the remaining bytes are the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::error::ProtoError;
use natrium::parser::{Limits, Parsed, parse};
use natrium::server::complete_carry;

/// What a connection saw: the operations (as Debug text), the error that
/// would close it, and the tail still waiting for more bytes.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    ops: Vec<String>,
    error: Option<ProtoError>,
    tail: Vec<u8>,
}

/// The most a connection may keep between reads.
fn max_tail(limits: &Limits) -> usize {
    limits.max_control_line + 9 + limits.max_payload + 2
}

/// One read's worth of `Server::ingest`, without the dispatching.
fn ingest(
    carry: &mut Vec<u8>,
    data: &[u8],
    limits: &Limits,
    ops: &mut Vec<String>,
) -> Result<(), ProtoError> {
    let mut pos = 0;
    if !carry.is_empty() {
        if complete_carry(carry, data, &mut pos, limits)? {
            match parse(carry, limits)? {
                Parsed::Complete { op, len } => {
                    assert_eq!(len, carry.len(), "carry holds more than one operation");
                    if let Some(op) = op {
                        ops.push(format!("{op:?}"));
                    }
                }
                Parsed::Partial(need) => {
                    panic!("complete_carry said complete, parse says {need:?}")
                }
            }
            carry.clear();
        } else {
            assert_eq!(pos, data.len(), "complete_carry stopped early");
            return Ok(());
        }
    }
    while pos < data.len() {
        match parse(&data[pos..], limits)? {
            Parsed::Complete { op, len } => {
                assert!(len > 0 && pos + len <= data.len(), "bad len {len}");
                if let Some(op) = op {
                    ops.push(format!("{op:?}"));
                }
                pos += len;
            }
            Parsed::Partial(_) => {
                carry.extend_from_slice(&data[pos..]);
                break;
            }
        }
    }
    Ok(())
}

/// Feeds `stream` in chunks of the given lengths (the rest in one last chunk).
fn feed(stream: &[u8], chunks: &[usize], limits: &Limits) -> Outcome {
    let mut carry = Vec::new();
    let mut ops = Vec::new();
    let mut start = 0;
    let mut error = None;
    let ends = chunks
        .iter()
        .scan(0usize, |end, &n| {
            *end += n;
            Some(*end)
        })
        .filter(|&end| end < stream.len())
        .chain(std::iter::once(stream.len()));
    for end in ends {
        if let Err(e) = ingest(&mut carry, &stream[start..end], limits, &mut ops) {
            error = Some(e);
            break;
        }
        assert!(
            carry.len() <= max_tail(limits),
            "carry of {} bytes over the bound {} ({limits:?})",
            carry.len(),
            max_tail(limits)
        );
        start = end;
    }
    let tail = if error.is_some() { Vec::new() } else { carry };
    Outcome { ops, error, tail }
}

fuzz_target!(|input: &[u8]| {
    let [a, b, n, rest @ ..] = input else {
        return;
    };
    let limits = Limits {
        max_control_line: 1 + usize::from(*a) % 64,
        max_payload: 1 + usize::from(*b) % 128,
    };
    let n = usize::from(*n) % 16;
    if rest.len() < n {
        return;
    }
    let (cuts, stream) = rest.split_at(n);
    let chunks: Vec<usize> = cuts.iter().map(|&c| usize::from(c) + 1).collect();
    let split = feed(stream, &chunks, &limits);
    let whole = feed(stream, &[], &limits);
    assert_eq!(split, whole, "splitting changed the outcome");
});
