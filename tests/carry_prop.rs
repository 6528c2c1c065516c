//! Property test of the read path: random byte streams, split at random
//! points, go through the parser and the server's own carry logic
//! (`natrium::server::complete_carry`) exactly as `Server::ingest` does.
//! Nothing panics, the tail a connection keeps between reads stays within
//! `max_control_line + 9 + max_payload + 2`, and where the reads split the
//! stream never changes the operations or the error.
//!
//! The same model runs under libFuzzer in fuzz/fuzz_targets/parser.rs.

#[path = "common/read_path.rs"]
mod read_path;

use natrium::protocol::error::ProtoError;
use natrium::protocol::parser::Limits;
use proptest::prelude::*;
use read_path::feed;

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

/// The input the fuzz target found first (see src/protocol/parser.rs
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
