//! Feeds arbitrary bytes to `natrium::protocol::parser::parse` the way the server does
//! (`Server::ingest` in src/server/mod.rs; the model is shared with the
//! property test in tests/common/read_path.rs): the stream arrives in chunks split at
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

#[path = "../../tests/common/read_path.rs"]
mod read_path;

use libfuzzer_sys::fuzz_target;
use natrium::protocol::parser::Limits;
use read_path::feed;

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
    // Each byte is a chunk length (1..=256); the reads end where they add up.
    let ends: Vec<usize> = cuts
        .iter()
        .scan(0usize, |end, &c| {
            *end += usize::from(c) + 1;
            Some(*end)
        })
        .collect();
    let split = feed(stream, &ends, &limits);
    let whole = feed(stream, &[], &limits);
    assert_eq!(split, whole, "splitting changed the outcome");
});
