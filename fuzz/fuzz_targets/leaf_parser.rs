//! Feeds arbitrary bytes to the leaf-node protocol parser
//! (`natrium::leaf::parser`), the way the loop does: parsed in place, with a
//! cut at a position taken from the input, the tail carried and completed by
//! `complete_carry`.
//!
//! Checked for every input:
//! - nothing panics, and every complete operation has `0 < len <= input`;
//! - the operations (or the first error) are the same whether the input
//!   arrives whole or cut in two at any point: the carry logic never
//!   changes what the peer said.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::leaf::parser::{Parsed, complete_carry, parse};
use natrium::protocol::parser::Limits;

/// The ops of `chunks` fed in order, as text, or the first error.
fn run(chunks: &[&[u8]], limits: &Limits) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    for data in chunks {
        let mut pos = 0;
        if !carry.is_empty() {
            if !complete_carry(&mut carry, data, &mut pos, limits).map_err(|e| format!("{e:?}"))? {
                continue;
            }
            match parse(&carry, limits).map_err(|e| format!("{e:?}"))? {
                Parsed::Complete { op, len } => {
                    assert_eq!(len, carry.len(), "a completed carry is exactly one operation");
                    if let Some(op) = op {
                        out.push(format!("{op:?}"));
                    }
                }
                Parsed::Partial(_) => panic!("complete_carry said complete"),
            }
            carry.clear();
        }
        while pos < data.len() {
            match parse(&data[pos..], limits).map_err(|e| format!("{e:?}"))? {
                Parsed::Complete { op, len } => {
                    assert!(len > 0 && pos + len <= data.len());
                    if let Some(op) = op {
                        out.push(format!("{op:?}"));
                    }
                    pos += len;
                }
                Parsed::Partial(_) => {
                    carry.extend_from_slice(&data[pos..]);
                    break;
                }
            }
        }
    }
    Ok(out)
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let limits = Limits {
        max_control_line: 256,
        max_payload: 1024,
    };
    let cut = usize::from(cut).min(data.len());
    let whole = run(&[data], &limits);
    let split = run(&[&data[..cut], &data[cut..]], &limits);
    assert_eq!(whole, split, "a cut changed the operations or the error");
});
