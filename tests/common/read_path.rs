//! The server's read path without the dispatching, for the property test
//! (tests/carry_prop.rs) and the fuzz target (fuzz/fuzz_targets/parser.rs),
//! which include this file by path: chunks of a stream go through
//! `natrium::protocol::parser::parse` and the server's own `complete_carry` exactly as
//! `Server::ingest` (src/server/mod.rs) does, checking every bound on the way.

#![allow(dead_code)]

use natrium::protocol::error::ProtoError;
use natrium::protocol::parser::{Limits, Parsed, parse};
use natrium::server::complete_carry;

/// What a connection saw: the operations, the error that would close it,
/// and the tail still waiting for more bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The operations, as Debug text.
    pub ops: Vec<String>,
    /// The error that would close the connection.
    pub error: Option<ProtoError>,
    /// What is kept waiting for more bytes.
    pub tail: Vec<u8>,
}

/// The most a connection may keep between reads.
pub fn max_tail(limits: &Limits) -> usize {
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
                Parsed::Partial(need) => panic!("complete carry parsed as partial: {need:?}"),
            }
            carry.clear();
        } else {
            assert_eq!(pos, data.len());
            return Ok(());
        }
    }
    while pos < data.len() {
        match parse(&data[pos..], limits)? {
            Parsed::Complete { op, len } => {
                assert!(len > 0 && pos + len <= data.len());
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

/// Feeds `stream` cut at `cuts` (any order, out-of-range ignored).
pub fn feed(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
    let mut ends: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < stream.len())
        .collect();
    ends.sort_unstable();
    ends.dedup();
    ends.push(stream.len());
    let mut carry = Vec::new();
    let mut ops = Vec::new();
    let mut error = None;
    let mut start = 0;
    for end in ends {
        if let Err(e) = ingest(&mut carry, &stream[start..end], limits, &mut ops) {
            error = Some(e);
            break;
        }
        assert!(
            carry.len() <= max_tail(limits),
            "kept {} bytes, bound {} ({limits:?})",
            carry.len(),
            max_tail(limits)
        );
        start = end;
    }
    let tail = if error.is_some() { Vec::new() } else { carry };
    Outcome { ops, error, tail }
}
