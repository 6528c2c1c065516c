//! Property test of the read path: random byte streams, split at random
//! points, go through the parser and the server's own carry logic
//! (`natrium::server::complete_carry`) exactly as `Server::ingest` does.
//! Nothing panics, the tail a connection keeps between reads stays within
//! `max_control_line + 9 + max_payload + 2`, and where the reads split the
//! stream never changes the operations or the error.
//!
//! The same model runs under libFuzzer in fuzz/fuzz_targets/parser.rs.

use natrium::error::ProtoError;
use natrium::parser::{Limits, Parsed, parse};
use natrium::server::complete_carry;
use proptest::prelude::*;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    ops: Vec<String>,
    error: Option<ProtoError>,
    tail: Vec<u8>,
}

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
fn feed(stream: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
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

/// Streams that look like the protocol often enough to get past the first
/// line: fragments of real operations mixed with random bytes.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop_oneof![
        Just(b"PUB ".to_vec()),
        Just(b"HPUB ".to_vec()),
        Just(b"SUB ".to_vec()),
        Just(b"UNSUB ".to_vec()),
        Just(b"CONNECT {}".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"PONG".to_vec()),
        Just(b"+OK".to_vec()),
        Just(b"-ERR x".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"foo.bar".to_vec()),
        Just(b"NATS/1.0\r\n\r\n".to_vec()),
        (0usize..200).prop_map(|n| n.to_string().into_bytes()),
        (0usize..120).prop_map(|n| vec![b' '; n]),
        (0usize..120).prop_map(|n| vec![b'a'; n]),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(fragment, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_streams_split_anywhere(
        data in stream(),
        cuts in proptest::collection::vec(0usize..2000, 0..24),
        control in 1usize..80,
        payload in 1usize..150,
    ) {
        let limits = Limits { max_control_line: control, max_payload: payload };
        let split = feed(&data, &cuts, &limits);
        let whole = feed(&data, &[], &limits);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn random_bytes_split_anywhere(
        data in proptest::collection::vec(any::<u8>(), 0..1500),
        cuts in proptest::collection::vec(0usize..1500, 0..24),
    ) {
        let limits = Limits { max_control_line: 64, max_payload: 128 };
        let split = feed(&data, &cuts, &limits);
        let whole = feed(&data, &[], &limits);
        prop_assert_eq!(split, whole);
    }

    /// Every single-byte split of a stream built from valid operations.
    #[test]
    fn byte_by_byte(data in stream()) {
        let limits = Limits { max_control_line: 64, max_payload: 128 };
        let every: Vec<usize> = (1..data.len()).collect();
        prop_assert_eq!(feed(&data, &every, &limits), feed(&data, &[], &limits));
    }
}

/// The input the fuzz target found first (see src/parser.rs
/// `long_line_is_refused_whole_or_split`), through the whole read path.
#[test]
fn fuzz_regression_whitespace_after_verb() {
    let limits = Limits {
        max_control_line: 64,
        max_payload: 11,
    };
    let stream = b"PUB                       '                                                     PONGfoo 5\r\nx\r\n";
    let whole = feed(stream, &[], &limits);
    assert_eq!(whole.error, Some(ProtoError::MaxControlLine));
    for cut in 1..stream.len() {
        assert_eq!(feed(stream, &[cut], &limits), whole, "cut at {cut}");
    }
}
