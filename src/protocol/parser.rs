//! The client protocol parser: bytes in, [`Op`]s out.
//!
//! The parser is a pure function over a byte slice that starts at an
//! operation boundary. It either returns one complete operation together with
//! the number of bytes it spans, or says what it still needs
//! ([`Need`]): the end of the control line, or a known total length once the
//! control line of a PUB/HPUB is complete. "Need more" is a normal value, not
//! an error, so a caller can feed it data split at any byte (see
//! `client::ReadState` for how the connection keeps the partial tail).
//!
//! Everything an [`Op`] holds borrows from the input: nothing is copied or
//! allocated, and a payload is never scanned, only sliced by its declared
//! size.
//!
//! Rules (nats-server's, see `protocol.md`):
//! - verbs are case-insensitive; arguments are separated by spaces or tabs;
//! - control lines end in `\r\n` or a bare `\n`; payloads end in exactly `\r\n`;
//! - the argument part of a control line may be at most `max_control_line`
//!   bytes, also while the line is still incomplete;
//! - a blank line is ignored (nats-server closes the connection instead).

use crate::protocol::error::ProtoError;
use memchr::memchr;

/// Limits the parser enforces while reading.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum bytes of arguments in one control line.
    pub max_control_line: usize,
    /// Maximum declared payload (headers included for HPUB).
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_control_line: 4096,
            max_payload: 1024 * 1024,
        }
    }
}

/// A message published by a client (PUB or HPUB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// The subject published to.
    pub subject: &'a [u8],
    /// The reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// `Some(n)` for HPUB: the first `n` bytes of `data` are the header block.
    pub header_len: Option<usize>,
    /// Headers (if any) followed by the payload, without the trailing CRLF.
    pub data: &'a [u8],
}

impl<'a> Publish<'a> {
    /// The payload without the header block.
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.header_len.unwrap_or(0)..]
    }
}

/// One client operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT <json>`
    Connect(&'a [u8]),
    /// `INFO <json>` sent by a client (ignored when it is valid JSON).
    Info(&'a [u8]),
    /// `PUB` or `HPUB`.
    Pub(Publish<'a>),
    /// `SUB <subject> [queue] <sid>`
    Sub {
        /// Subject filter, possibly with wildcards (not yet validated).
        subject: &'a [u8],
        /// Queue group name.
        queue: Option<&'a [u8]>,
        /// Client-chosen subscription id.
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max]`
    Unsub {
        /// The subscription id.
        sid: &'a [u8],
        /// `Some(n)` (n > 0): remove after n deliveries in total; `None`: remove now.
        max: Option<u64>,
    },
    /// `PING`
    Ping,
    /// `PONG`
    Pong,
    /// `+OK` sent by a client (ignored).
    Ok,
    /// `-ERR` sent by a client (nats-server closes the connection).
    Err(&'a [u8]),
}

/// What an incomplete buffer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The control line has not ended yet.
    LineEnd,
    /// The operation spans this many bytes in total (control line, payload, CRLF).
    Total(usize),
}

/// The result of [`parse`] on a buffer that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// One operation (or `None` for an ignored blank line) spanning `len` bytes.
    Complete {
        /// The operation, `None` for a blank line.
        op: Option<Op<'a>>,
        /// Bytes consumed from the start of the buffer.
        len: usize,
    },
    /// More bytes are needed; nothing was consumed.
    Partial(Need),
}

/// Verbs with their fixed spelling (upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Connect,
    Info,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Ok,
    Err,
}

/// Spaces and tabs separate arguments.
#[inline]
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses the operation at the start of `buf`.
///
/// Returns [`Parsed::Partial`] when `buf` holds only a prefix of an operation
/// (it never consumes a partial operation), or an error for input nats-server
/// rejects. The returned `len` always satisfies `0 < len <= buf.len()`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ProtoError> {
    let Some(nl) = memchr(b'\n', buf) else {
        check_partial_line(buf, limits)?;
        return Ok(Parsed::Partial(Need::LineEnd));
    };
    // The same check on a complete line, so that the outcome does not depend
    // on where reads split it (extra whitespace or junk after PING could
    // otherwise make a line longer than any partial one may be).
    check_partial_line(&buf[..nl], limits)?;
    let line = match buf[..nl].last() {
        Some(b'\r') => &buf[..nl - 1],
        _ => &buf[..nl],
    };
    let line_len = nl + 1;
    if line.iter().all(|&b| is_space(b)) {
        return Ok(Parsed::Complete {
            op: None,
            len: line_len,
        });
    }
    let (verb, args) = split_verb(line)?;
    if args.len() > limits.max_control_line {
        return Err(ProtoError::MaxControlLine);
    }
    let op = match verb {
        Verb::Ping => Op::Ping,
        Verb::Pong => Op::Pong,
        Verb::Ok => Op::Ok,
        Verb::Err => Op::Err(args),
        Verb::Connect => Op::Connect(args),
        Verb::Info => Op::Info(args),
        Verb::Sub => {
            let (a, n) = split_args::<3>(args)?;
            match n {
                2 => Op::Sub {
                    subject: a[0],
                    queue: None,
                    sid: a[1],
                },
                3 => Op::Sub {
                    subject: a[0],
                    queue: Some(a[1]),
                    sid: a[2],
                },
                _ => return Err(ProtoError::Malformed),
            }
        }
        Verb::Unsub => {
            let (a, n) = split_args::<2>(args)?;
            match n {
                1 => Op::Unsub {
                    sid: a[0],
                    max: None,
                },
                2 => Op::Unsub {
                    sid: a[0],
                    max: parse_unsub_max(a[1]),
                },
                _ => return Err(ProtoError::Malformed),
            }
        }
        Verb::Pub | Verb::Hpub => {
            return parse_publish(buf, line_len, verb == Verb::Hpub, args, limits);
        }
    };
    Ok(Parsed::Complete {
        op: Some(op),
        len: line_len,
    })
}

/// Parses the arguments of PUB/HPUB and takes the payload that follows the line.
fn parse_publish<'a>(
    buf: &'a [u8],
    line_len: usize,
    with_headers: bool,
    args: &'a [u8],
    limits: &Limits,
) -> Result<Parsed<'a>, ProtoError> {
    let (a, n) = split_args::<4>(args)?;
    let (subject, reply, header_len, total) = if with_headers {
        let (reply, h, t) = match n {
            3 => (None, a[1], a[2]),
            4 => (Some(a[1]), a[2], a[3]),
            _ => return Err(ProtoError::Malformed),
        };
        let h = parse_size(h)?;
        let t = parse_size(t)?;
        if h > t {
            return Err(ProtoError::Malformed);
        }
        (a[0], reply, Some(h), t)
    } else {
        match n {
            2 => (a[0], None, None, parse_size(a[1])?),
            3 => (a[0], Some(a[1]), None, parse_size(a[2])?),
            _ => return Err(ProtoError::Malformed),
        }
    };
    if total > limits.max_payload {
        return Err(ProtoError::MaxPayload);
    }
    let end = line_len + total;
    let op_len = end + 2;
    if buf.len() < op_len {
        return Ok(Parsed::Partial(Need::Total(op_len)));
    }
    if &buf[end..op_len] != b"\r\n" {
        return Err(ProtoError::UnknownOp);
    }
    Ok(Parsed::Complete {
        op: Some(Op::Pub(Publish {
            subject,
            reply,
            header_len,
            data: &buf[line_len..end],
        })),
        len: op_len,
    })
}

/// Splits a control line into its verb and the argument bytes after the
/// separating whitespace.
fn split_verb(line: &[u8]) -> Result<(Verb, &[u8]), ProtoError> {
    let verb_end = line.iter().position(|&b| is_space(b)).unwrap_or(line.len());
    let word = &line[..verb_end];
    let rest = &line[verb_end..];
    let args_start = rest
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(rest.len());
    let args = &rest[args_start..];
    let has_sep = !rest.is_empty();

    // PING, PONG, +OK and -ERR ignore whatever follows them on the line.
    for (prefix, verb) in [
        (&b"PING"[..], Verb::Ping),
        (b"PONG", Verb::Pong),
        (b"+OK", Verb::Ok),
        (b"-ERR", Verb::Err),
    ] {
        if starts_with_ignore_case(line, prefix) {
            return Ok((verb, args));
        }
    }
    // CONNECT{...} and INFO{...} need no space before the JSON.
    for (prefix, verb) in [(&b"CONNECT"[..], Verb::Connect), (b"INFO", Verb::Info)] {
        if starts_with_ignore_case(line, prefix) && line.get(prefix.len()) == Some(&b'{') {
            return Ok((verb, &line[prefix.len()..]));
        }
    }
    let verb = match word.len() {
        3 if word.eq_ignore_ascii_case(b"PUB") => Verb::Pub,
        3 if word.eq_ignore_ascii_case(b"SUB") => Verb::Sub,
        4 if word.eq_ignore_ascii_case(b"HPUB") => Verb::Hpub,
        4 if word.eq_ignore_ascii_case(b"INFO") => Verb::Info,
        5 if word.eq_ignore_ascii_case(b"UNSUB") => Verb::Unsub,
        7 if word.eq_ignore_ascii_case(b"CONNECT") => Verb::Connect,
        _ => return Err(ProtoError::UnknownOp),
    };
    if !has_sep {
        // `SUB\r\n`: a verb that takes arguments must be followed by a separator.
        return Err(ProtoError::UnknownOp);
    }
    Ok((verb, args))
}

/// Enforces the control-line limit on a line whose end has not arrived yet,
/// so that a client cannot grow the read buffer by never ending a line.
fn check_partial_line(buf: &[u8], limits: &Limits) -> Result<(), ProtoError> {
    // Longest verb plus its separator is "CONNECT " (8 bytes); anything that
    // fits in the limit plus that plus a pending '\r' cannot be over it yet.
    if buf.len() <= limits.max_control_line + 9 {
        return Ok(());
    }
    let verb_end = buf.iter().position(|&b| is_space(b)).unwrap_or(buf.len());
    let word = &buf[..verb_end];
    let known = [&b"PUB"[..], b"HPUB", b"SUB", b"UNSUB", b"CONNECT", b"INFO"]
        .iter()
        .any(|v| word.eq_ignore_ascii_case(v))
        || [
            &b"PING"[..],
            b"PONG",
            b"+OK",
            b"-ERR",
            b"CONNECT{",
            b"INFO{",
        ]
        .iter()
        .any(|p| starts_with_ignore_case(buf, p));
    if known {
        Err(ProtoError::MaxControlLine)
    } else {
        Err(ProtoError::UnknownOp)
    }
}

/// Splits arguments on runs of spaces/tabs into at most `N` slices.
/// More than `N` arguments is a malformed line.
fn split_args<const N: usize>(args: &[u8]) -> Result<([&[u8]; N], usize), ProtoError> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for token in args.split(|&b| is_space(b)).filter(|t| !t.is_empty()) {
        if count == N {
            return Err(ProtoError::Malformed);
        }
        out[count] = token;
        count += 1;
    }
    Ok((out, count))
}

/// Parses a size argument: 1 to 9 ASCII digits, as nats-server accepts.
pub fn parse_size(token: &[u8]) -> Result<usize, ProtoError> {
    if token.is_empty() || token.len() > 9 {
        return Err(ProtoError::Malformed);
    }
    let mut n = 0usize;
    for &b in token {
        if !b.is_ascii_digit() {
            return Err(ProtoError::Malformed);
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Ok(n)
}

/// The optional max of UNSUB: a positive number, or `None` for "remove now"
/// (missing, zero, negative, non-numeric and, as nats-server parses it like
/// a size, longer than 9 digits all mean that in nats-server).
fn parse_unsub_max(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 9 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = token
        .iter()
        .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    (n > 0).then_some(n)
}

/// ASCII case-insensitive prefix test.
fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// Parses a whole buffer into its ops, or the first error.
    fn parse_all(buf: &[u8]) -> Result<(Vec<Op<'_>>, usize), ProtoError> {
        let mut ops = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            match parse(&buf[pos..], &limits())? {
                Parsed::Complete { op, len } => {
                    if let Some(op) = op {
                        ops.push(op);
                    }
                    pos += len;
                }
                Parsed::Partial(_) => break,
            }
        }
        Ok((ops, pos))
    }

    /// Owned form of an op, to compare results from different buffers.
    fn owned(op: &Op<'_>) -> String {
        format!("{op:?}")
    }

    /// Feeds `stream` in the given chunks the way a connection does: keep
    /// the unparsed tail, append the next chunk, parse again.
    fn feed_split(stream: &[u8], cuts: &[usize]) -> Result<Vec<String>, ProtoError> {
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut last = 0;
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < stream.len()).collect();
        bounds.sort_unstable();
        bounds.push(stream.len());
        for cut in bounds {
            pending.extend_from_slice(&stream[last..cut]);
            last = cut;
            let mut pos = 0;
            while let Parsed::Complete { op, len } = parse(&pending[pos..], &limits())? {
                if let Some(op) = op {
                    out.push(owned(&op));
                }
                pos += len;
            }
            pending.drain(..pos);
        }
        Ok(out)
    }

    #[test]
    fn ping_pong_any_case_and_trailing_bytes() {
        for input in [
            &b"PING\r\n"[..],
            b"ping\r\n",
            b"PiNg\n",
            b"PINGX\r\n",
            b"PING foo\r\n",
        ] {
            assert_eq!(
                parse(input, &limits()).unwrap(),
                Parsed::Complete {
                    op: Some(Op::Ping),
                    len: input.len()
                }
            );
        }
        assert!(matches!(
            parse(b"pong\r\n", &limits()).unwrap(),
            Parsed::Complete {
                op: Some(Op::Pong),
                ..
            }
        ));
    }

    #[test]
    fn pub_with_and_without_reply() {
        let input = b"PUB foo 5\r\nhello\r\npub\tfoo  bar\t 0\r\n\r\n";
        let (ops, used) = parse_all(input).unwrap();
        assert_eq!(used, input.len());
        assert_eq!(
            ops,
            vec![
                Op::Pub(Publish {
                    subject: b"foo",
                    reply: None,
                    header_len: None,
                    data: b"hello"
                }),
                Op::Pub(Publish {
                    subject: b"foo",
                    reply: Some(b"bar"),
                    header_len: None,
                    data: b""
                }),
            ]
        );
    }

    #[test]
    fn payload_may_hold_crlf_and_binary() {
        let input = b"PUB x 6\r\n\r\n\0\xff\n\r\r\n";
        let (ops, _) = parse_all(input).unwrap();
        assert_eq!(
            ops,
            vec![Op::Pub(Publish {
                subject: b"x",
                reply: None,
                header_len: None,
                data: b"\r\n\0\xff\n\r"
            })]
        );
    }

    #[test]
    fn hpub_sizes() {
        let input = b"HPUB foo r 12 17\r\nNATS/1.0\r\n\r\nhello\r\n";
        let (ops, _) = parse_all(input).unwrap();
        let Op::Pub(p) = ops[0] else {
            panic!("not a pub")
        };
        assert_eq!(p.header_len, Some(12));
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.reply, Some(&b"r"[..]));
        // header size larger than the total: closed silently
        assert_eq!(
            parse(b"HPUB foo 20 10\r\n", &limits()),
            Err(ProtoError::Malformed)
        );
    }

    #[test]
    fn sub_unsub() {
        let (ops, _) =
            parse_all(b"SUB foo.* 1\r\nsub foo q 2\nUNSUB 1\r\nunsub 2 5\r\nUNSUB 3 x\r\n")
                .unwrap();
        assert_eq!(
            ops,
            vec![
                Op::Sub {
                    subject: b"foo.*",
                    queue: None,
                    sid: b"1"
                },
                Op::Sub {
                    subject: b"foo",
                    queue: Some(b"q"),
                    sid: b"2"
                },
                Op::Unsub {
                    sid: b"1",
                    max: None
                },
                Op::Unsub {
                    sid: b"2",
                    max: Some(5)
                },
                Op::Unsub {
                    sid: b"3",
                    max: None
                },
            ]
        );
    }

    #[test]
    fn connect_and_info_without_space() {
        let (ops, _) =
            parse_all(b"CONNECT {\"verbose\":false}\r\nconnect{}\r\nINFO{}\r\n").unwrap();
        assert_eq!(
            ops,
            vec![
                Op::Connect(b"{\"verbose\":false}"),
                Op::Connect(b"{}"),
                Op::Info(b"{}")
            ]
        );
    }

    #[test]
    fn blank_lines_are_ignored() {
        let (ops, used) = parse_all(b"\r\n\n  \r\nPING\r\n").unwrap();
        assert_eq!(ops, vec![Op::Ping]);
        assert_eq!(used, 13);
    }

    /// Inputs nats-server rejects, with the reaction it has (fact sheet §3.3).
    #[test]
    fn should_fail() {
        let cases: &[(&[u8], ProtoError)] = &[
            (b"FOO bar\r\n", ProtoError::UnknownOp),
            (b" PING\r\n", ProtoError::UnknownOp),
            (b"MSG foo 1 2\r\n", ProtoError::UnknownOp),
            (b"SUB\r\n", ProtoError::UnknownOp),
            (b"UNSUB\r\n", ProtoError::UnknownOp),
            (b"PUBX foo 1\r\n", ProtoError::UnknownOp),
            (b"PUB foo 5\r\nhello\nX", ProtoError::UnknownOp),
            (b"PUB foo 3\r\nhello\r\n", ProtoError::UnknownOp),
            (b"SUB foo\r\n", ProtoError::Malformed),
            (b"SUB a b c d\r\n", ProtoError::Malformed),
            (b"SUB \r\n", ProtoError::Malformed),
            (b"UNSUB 1 2 3\r\n", ProtoError::Malformed),
            (b"PUB foo\r\n", ProtoError::Malformed),
            (b"PUB foo bar baz 1\r\n", ProtoError::Malformed),
            (b"PUB foo x\r\n", ProtoError::Malformed),
            (b"PUB foo -1\r\n", ProtoError::Malformed),
            (b"PUB foo 1234567890\r\n", ProtoError::Malformed),
            (b"HPUB foo 1\r\n", ProtoError::Malformed),
            (b"PUB foo 1048577\r\n", ProtoError::MaxPayload),
            (b"HPUB foo 10 1048577\r\n", ProtoError::MaxPayload),
        ];
        for (input, want) in cases {
            let got = parse_all(input).map(|(ops, _)| ops.len());
            assert_eq!(
                got,
                Err(want.clone()),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn max_payload_is_inclusive() {
        let mut input = b"PUB foo 1048576\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1048576));
        input.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse(&input, &limits()).unwrap(),
            Parsed::Complete { .. }
        ));
    }

    #[test]
    fn control_line_limit_counts_argument_bytes() {
        let arg = "a".repeat(4096);
        let ok = format!("SUB {arg}\r\n");
        // 4096 bytes of arguments: one token, so malformed but not over the limit.
        assert_eq!(parse(ok.as_bytes(), &limits()), Err(ProtoError::Malformed));
        let over = format!("SUB {arg}a\r\n");
        assert_eq!(
            parse(over.as_bytes(), &limits()),
            Err(ProtoError::MaxControlLine)
        );
        let connect = format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(4100));
        assert_eq!(
            parse(connect.as_bytes(), &limits()),
            Err(ProtoError::MaxControlLine)
        );
    }

    #[test]
    fn endless_line_is_refused_before_it_ends() {
        let mut line = b"PUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 4096));
        assert_eq!(parse(&line, &limits()), Ok(Parsed::Partial(Need::LineEnd)));
        line.extend_from_slice(b"aaaaaaaaaa");
        assert_eq!(parse(&line, &limits()), Err(ProtoError::MaxControlLine));
        let garbage = vec![b'z'; 5000];
        assert_eq!(parse(&garbage, &limits()), Err(ProtoError::UnknownOp));
    }

    /// Fuzz regression (fuzz/fuzz_targets/parser.rs): a PUB whose verb is
    /// followed by a long run of whitespace has arguments within the limit,
    /// but its line is longer than any incomplete line may be. Whole, it was
    /// accepted (and its tail kept: 94 bytes with a bound of 86); split, it
    /// was refused. Now it is refused either way.
    #[test]
    fn long_line_is_refused_whole_or_split() {
        let limits = Limits {
            max_control_line: 64,
            max_payload: 11,
        };
        let stream = b"PUB                       '                                                     PONGfoo 5\r\nx\r\n";
        assert_eq!(parse(stream, &limits), Err(ProtoError::MaxControlLine));
        assert_eq!(
            parse(&stream[..80], &limits),
            Err(ProtoError::MaxControlLine)
        );
        // PING ignores what follows it, but not without bound.
        let mut ping = b"PING ".to_vec();
        ping.extend(std::iter::repeat_n(b'x', 100));
        ping.extend_from_slice(b"\r\n");
        assert_eq!(parse(&ping, &limits), Err(ProtoError::MaxControlLine));
        assert_eq!(parse(&ping[..90], &limits), Err(ProtoError::MaxControlLine));
        // A blank line that never seems to end is refused the same way whole.
        let blank = [&[b' '; 100][..], b"\r\n"].concat();
        assert_eq!(parse(&blank, &limits), Err(ProtoError::UnknownOp));
        assert_eq!(parse(&blank[..90], &limits), Err(ProtoError::UnknownOp));
        // The longest line within the limit still parses.
        let ok = format!("CONNECT {{\"name\":\"{}\"}}\r\n", "n".repeat(53));
        assert_eq!(ok.len(), 8 + 64 + 2);
        assert!(matches!(
            parse(ok.as_bytes(), &limits),
            Ok(Parsed::Complete {
                op: Some(Op::Connect(_)),
                ..
            })
        ));
    }

    #[test]
    fn partial_reports_what_it_needs() {
        assert_eq!(parse(b"PU", &limits()), Ok(Parsed::Partial(Need::LineEnd)));
        assert_eq!(
            parse(b"PUB foo 5\r\nhel", &limits()),
            Ok(Parsed::Partial(Need::Total(18)))
        );
    }

    #[test]
    fn every_one_byte_split_gives_the_same_ops() {
        let stream = b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo r 5\r\nhe\r\no\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\nUNSUB 1 3\r\n";
        let whole = feed_split(stream, &[]).unwrap();
        assert_eq!(whole.len(), 6);
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(feed_split(stream, &every).unwrap(), whole);
    }

    proptest! {
        /// Any split of a valid stream yields the same operations.
        #[test]
        fn random_splits_give_the_same_ops(cuts in proptest::collection::vec(0usize..200, 0..20)) {
            let stream = b"SUB a.b 1\r\nPUB a.b 3\r\n\r\n\n\r\nHPUB a 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPING\r\nPONG\r\nUNSUB 1\r\n";
            let whole = feed_split(stream, &[]).unwrap();
            prop_assert_eq!(feed_split(stream, &cuts).unwrap(), whole);
        }

        /// Random bytes never panic, `len` stays in bounds, and a buffer the
        /// parser calls partial never exceeds the control-line limit plus
        /// the declared payload.
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let limits = Limits { max_control_line: 64, max_payload: 128 };
            let mut pos = 0;
            while pos < data.len() {
                match parse(&data[pos..], &limits) {
                    Ok(Parsed::Complete { len, .. }) => {
                        prop_assert!(len > 0 && pos + len <= data.len());
                        pos += len;
                    }
                    Ok(Parsed::Partial(Need::LineEnd)) => {
                        prop_assert!(data.len() - pos <= limits.max_control_line + 9);
                        break;
                    }
                    Ok(Parsed::Partial(Need::Total(t))) => {
                        // The control line is complete, so it lies within this buffer.
                        let line_bound = (data.len() - pos).max(limits.max_control_line + 9);
                        prop_assert!(t <= line_bound + limits.max_payload + 2);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
