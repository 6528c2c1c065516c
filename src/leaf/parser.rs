//! The leaf-node protocol parser: bytes from a leaf link in, [`LeafOp`]s out.
//!
//! Like the client parser (`crate::protocol::parser`) this is a pure function
//! over a slice that starts at an operation boundary: it returns one complete
//! operation and its length, or what it still needs ([`Need`]), so a caller
//! can feed it input split at any byte. Everything borrows from the input.
//!
//! Operations (verbs case-insensitive, as in nats-server's `parser.go`):
//! - `INFO {json}`, `CONNECT {json}`, `PING`, `PONG`, `+OK`, `-ERR text`;
//! - `LS+ <subject> [<queue> <weight>]`, `LS- <subject> [<queue>]`;
//! - `LMSG <subject> [reply] <size>`, `LMSG <subject> + <reply> <q>… <size>`,
//!   `LMSG <subject> | <q>… <size>`, and the same shapes for `HMSG` with
//!   `<header size> <total size>` at the end.
//!
//! Every byte is untrusted: malformed input is an error ([`ProtoError`]),
//! never a panic; control lines and payloads are bounded by [`Limits`].

use crate::protocol::error::ProtoError;
use crate::protocol::parser::{Limits, Need, parse_size};
use memchr::memchr;

/// A message crossing the link (`LMSG` or `HMSG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafMsg<'a> {
    /// The subject published to.
    pub subject: &'a [u8],
    /// The reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// The queue groups the sender picked this side for (space separated;
    /// empty when none). Iterate with [`LeafMsg::queues`].
    pub queue_list: &'a [u8],
    /// `Some(n)` for HMSG: the first `n` bytes of `data` are headers.
    pub header_len: Option<usize>,
    /// Headers (if any) and payload, without the trailing CRLF.
    pub data: &'a [u8],
}

impl<'a> LeafMsg<'a> {
    /// The queue group names listed on the message.
    pub fn queues(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.queue_list
            .split(|&b| is_space(b))
            .filter(|t| !t.is_empty())
    }

    /// Whether `queue` is among the listed queue groups.
    pub fn lists_queue(&self, queue: &[u8]) -> bool {
        self.queues().any(|q| q == queue)
    }
}

/// One leaf-link operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafOp<'a> {
    /// `INFO {json}`
    Info(&'a [u8]),
    /// `CONNECT {json}`
    Connect(&'a [u8]),
    /// `PING`
    Ping,
    /// `PONG`
    Pong,
    /// `+OK`
    Ok,
    /// `-ERR <text>`
    Err(&'a [u8]),
    /// `LS+`: the peer has interest in `subject` (for queue `queue`, with
    /// `weight` members behind it).
    Sub {
        /// Subject filter (not yet validated).
        subject: &'a [u8],
        /// Queue group.
        queue: Option<&'a [u8]>,
        /// Members of the queue group behind the peer (1 for plain interest).
        weight: u32,
    },
    /// `LS-`: the peer's interest in `subject` (and `queue`) is gone.
    Unsub {
        /// Subject filter.
        subject: &'a [u8],
        /// Queue group.
        queue: Option<&'a [u8]>,
    },
    /// `LMSG` / `HMSG`.
    Msg(LeafMsg<'a>),
}

/// The result of [`parse`] on a buffer that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// One operation (`None` for a blank line) spanning `len` bytes.
    Complete {
        /// The operation, `None` for a blank line.
        op: Option<LeafOp<'a>>,
        /// Bytes consumed from the start of the buffer.
        len: usize,
    },
    /// More bytes are needed; nothing was consumed.
    Partial(Need),
}

#[inline]
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Longest verb with its separator ("CONNECT ").
const VERB_SLACK: usize = 9;

/// Parses the leaf operation at the start of `buf`.
///
/// Returns [`Parsed::Partial`] when `buf` holds only a prefix of one; the
/// `len` of a complete one is always `0 < len <= buf.len()`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ProtoError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > limits.max_control_line + VERB_SLACK {
            return Err(ProtoError::MaxControlLine);
        }
        return Ok(Parsed::Partial(Need::LineEnd));
    };
    if nl > limits.max_control_line + VERB_SLACK {
        return Err(ProtoError::MaxControlLine);
    }
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
    let verb_end = line.iter().position(|&b| is_space(b)).unwrap_or(line.len());
    let word = &line[..verb_end];
    let args = trim(&line[verb_end..]);
    let done = |op| {
        Ok(Parsed::Complete {
            op: Some(op),
            len: line_len,
        })
    };
    for (prefix, json_op) in [(&b"INFO"[..], true), (b"CONNECT", false)] {
        if starts_with_ignore_case(line, prefix) && line.get(prefix.len()) == Some(&b'{') {
            let json = &line[prefix.len()..];
            return done(if json_op {
                LeafOp::Info(json)
            } else {
                LeafOp::Connect(json)
            });
        }
    }
    if starts_with_ignore_case(line, b"PING") {
        return done(LeafOp::Ping);
    }
    if starts_with_ignore_case(line, b"PONG") {
        return done(LeafOp::Pong);
    }
    if starts_with_ignore_case(line, b"+OK") {
        return done(LeafOp::Ok);
    }
    if starts_with_ignore_case(line, b"-ERR") {
        return done(LeafOp::Err(trim(&line[4..])));
    }
    if args.is_empty() {
        return Err(ProtoError::UnknownOp);
    }
    if word.eq_ignore_ascii_case(b"INFO") {
        return done(LeafOp::Info(args));
    }
    if word.eq_ignore_ascii_case(b"CONNECT") {
        return done(LeafOp::Connect(args));
    }
    if word.eq_ignore_ascii_case(b"LS+") {
        let mut t = tokens(args);
        let subject = t.next().ok_or(ProtoError::Malformed)?;
        let op = match (t.next(), t.next(), t.next()) {
            (None, _, _) => LeafOp::Sub {
                subject,
                queue: None,
                weight: 1,
            },
            (Some(queue), Some(weight), None) => {
                let weight = parse_size(weight)?;
                LeafOp::Sub {
                    subject,
                    queue: Some(queue),
                    // At most 9 digits: fits in u32.
                    weight: u32::try_from(weight).map_err(|_| ProtoError::Malformed)?,
                }
            }
            _ => return Err(ProtoError::Malformed),
        };
        return done(op);
    }
    if word.eq_ignore_ascii_case(b"LS-") {
        let mut t = tokens(args);
        let subject = t.next().ok_or(ProtoError::Malformed)?;
        // nats-server keys interest by subject and queue; extra words are an error.
        let queue = t.next();
        if t.next().is_some() {
            return Err(ProtoError::Malformed);
        }
        return done(LeafOp::Unsub { subject, queue });
    }
    let headers = if word.eq_ignore_ascii_case(b"LMSG") {
        false
    } else if word.eq_ignore_ascii_case(b"HMSG") {
        true
    } else {
        return Err(ProtoError::UnknownOp);
    };
    parse_msg(buf, line_len, args, headers, limits)
}

/// The arguments of LMSG/HMSG, then the payload after the line.
fn parse_msg<'a>(
    buf: &'a [u8],
    line_len: usize,
    args: &'a [u8],
    headers: bool,
    limits: &Limits,
) -> Result<Parsed<'a>, ProtoError> {
    // Sizes are the last one (LMSG) or two (HMSG) words.
    let (rest, total) = split_last(args).ok_or(ProtoError::Malformed)?;
    let total = parse_size(total)?;
    let (rest, header_len) = if headers {
        let (rest, h) = split_last(rest).ok_or(ProtoError::Malformed)?;
        let h = parse_size(h)?;
        if h > total {
            return Err(ProtoError::Malformed);
        }
        (rest, Some(h))
    } else {
        (rest, None)
    };
    let (subject, rest) = split_first(rest).ok_or(ProtoError::Malformed)?;
    let (reply, queue_list) = match split_first(rest) {
        None => (None, &[][..]),
        Some((b"+", rest)) => {
            let (reply, queues) = split_first(rest).ok_or(ProtoError::Malformed)?;
            if queues.is_empty() {
                return Err(ProtoError::Malformed);
            }
            (Some(reply), queues)
        }
        Some((b"|", queues)) => {
            if queues.is_empty() {
                return Err(ProtoError::Malformed);
            }
            (None, queues)
        }
        Some((reply, more)) => {
            if !more.is_empty() {
                return Err(ProtoError::Malformed);
            }
            (Some(reply), &[][..])
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
        op: Some(LeafOp::Msg(LeafMsg {
            subject,
            reply,
            queue_list,
            header_len,
            data: &buf[line_len..end],
        })),
        len: op_len,
    })
}

/// Completes the operation held in `carry` with bytes from `data[*pos..]`,
/// taking only what it needs. True once `carry` holds one whole operation.
pub fn complete_carry(
    carry: &mut Vec<u8>,
    data: &[u8],
    pos: &mut usize,
    limits: &Limits,
) -> Result<bool, ProtoError> {
    loop {
        let need = match parse(carry, limits)? {
            Parsed::Complete { .. } => return Ok(true),
            Parsed::Partial(need) => need,
        };
        let rest = &data[*pos..];
        if rest.is_empty() {
            return Ok(false);
        }
        let take = match need {
            Need::LineEnd => memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
            Need::Total(total) => total.saturating_sub(carry.len()).min(rest.len()),
        };
        if take == 0 {
            // Not reachable: a partial operation always needs more bytes.
            return Err(ProtoError::Malformed);
        }
        carry.extend_from_slice(&rest[..take]);
        *pos += take;
    }
}

fn tokens(args: &[u8]) -> impl Iterator<Item = &[u8]> {
    args.split(|&b| is_space(b)).filter(|t| !t.is_empty())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// The first word and the trimmed rest.
fn split_first(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let end = s.iter().position(|&b| is_space(b)).unwrap_or(s.len());
    Some((&s[..end], trim(&s[end..])))
}

/// The trimmed rest and the last word.
fn split_last(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let start = s.iter().rposition(|&b| is_space(b)).map_or(0, |i| i + 1);
    Some((trim(&s[..start]), &s[start..]))
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_control_line: 4096,
            max_payload: 1 << 20,
        }
    }

    fn one(buf: &[u8]) -> LeafOp<'_> {
        match parse(buf, &limits()) {
            Ok(Parsed::Complete { op: Some(op), len }) => {
                assert_eq!(len, buf.len());
                op
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subs_and_unsubs() {
        assert_eq!(
            one(b"LS+ foo.bar\r\n"),
            LeafOp::Sub {
                subject: b"foo.bar",
                queue: None,
                weight: 1
            }
        );
        assert_eq!(
            one(b"ls+ foo q 3\r\n"),
            LeafOp::Sub {
                subject: b"foo",
                queue: Some(b"q"),
                weight: 3
            }
        );
        assert_eq!(
            one(b"LS- foo q\n"),
            LeafOp::Unsub {
                subject: b"foo",
                queue: Some(b"q")
            }
        );
        assert_eq!(
            one(b"LS- foo\r\n"),
            LeafOp::Unsub {
                subject: b"foo",
                queue: None
            }
        );
        for bad in [
            &b"LS+ foo q\r\n"[..],
            b"LS+ foo q x\r\n",
            b"LS+ foo q 1 2\r\n",
            b"LS+\r\n",
            b"LS- a b c\r\n",
            b"LS* foo\r\n",
        ] {
            assert!(parse(bad, &limits()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_in_every_shape() {
        let m = |buf: &'static [u8]| match one(buf) {
            LeafOp::Msg(m) => m,
            other => panic!("{other:?}"),
        };
        let a = m(b"LMSG foo 5\r\nhello\r\n");
        assert_eq!(
            (a.subject, a.reply, a.data),
            (&b"foo"[..], None, &b"hello"[..])
        );
        let b = m(b"LMSG foo _INBOX.1 2\r\nhi\r\n");
        assert_eq!(b.reply, Some(&b"_INBOX.1"[..]));
        assert_eq!(b.queues().count(), 0);
        let c = m(b"LMSG foo + _INBOX.1 q1 q2 2\r\nhi\r\n");
        assert_eq!(c.reply, Some(&b"_INBOX.1"[..]));
        assert_eq!(c.queues().collect::<Vec<_>>(), vec![&b"q1"[..], b"q2"]);
        assert!(c.lists_queue(b"q2") && !c.lists_queue(b"q3"));
        let d = m(b"LMSG foo | q1 2\r\nhi\r\n");
        assert_eq!((d.reply, d.queue_list), (None, &b"q1"[..]));
        let e = m(b"HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!((e.header_len, e.data.len()), (Some(12), 14));
        let f = m(b"HMSG foo + r q 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
        assert_eq!((f.reply, f.queue_list), (Some(&b"r"[..]), &b"q"[..]));
        let g = m(b"hmsg foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        assert_eq!(g.reply, Some(&b"r"[..]));
        for bad in [
            &b"LMSG foo\r\n"[..],
            b"LMSG 5\r\nhello\r\n",
            b"LMSG foo + r 5\r\nhello\r\n",
            b"LMSG foo | 5\r\nhello\r\n",
            b"LMSG foo a b 5\r\nhello\r\n",
            b"HMSG foo 6 5\r\nhello\r\n",
            b"LMSG foo 5\r\nhelloXX",
            b"LMSG foo x\r\n",
        ] {
            assert!(parse(bad, &limits()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_hold() {
        let l = Limits {
            max_control_line: 16,
            max_payload: 4,
        };
        assert_eq!(
            parse(b"LMSG foo 5\r\nhello\r\n", &l),
            Err(ProtoError::MaxPayload)
        );
        assert_eq!(parse(&[b'L'; 64], &l), Err(ProtoError::MaxControlLine));
        assert_eq!(
            parse(b"LS+ aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", &l),
            Err(ProtoError::MaxControlLine)
        );
    }

    #[test]
    fn control_ops() {
        assert_eq!(one(b"PING\r\n"), LeafOp::Ping);
        assert_eq!(one(b"pong\r\n"), LeafOp::Pong);
        assert_eq!(one(b"+OK\r\n"), LeafOp::Ok);
        assert_eq!(one(b"-ERR 'Loop'\r\n"), LeafOp::Err(b"'Loop'"));
        assert_eq!(one(b"INFO {\"a\":1}\r\n"), LeafOp::Info(b"{\"a\":1}"));
        assert_eq!(one(b"CONNECT {}\r\n"), LeafOp::Connect(b"{}"));
        assert_eq!(one(b"INFO{}\r\n"), LeafOp::Info(b"{}"));
    }

    /// Parses a whole stream fed in the given chunks, the way the server
    /// does (carry + in-place), into owned descriptions of the ops.
    fn run_split(stream: &[u8], cuts: &[usize]) -> Result<Vec<String>, ProtoError> {
        let l = limits();
        let mut out = Vec::new();
        let mut carry = Vec::new();
        let mut last = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
        bounds.sort_unstable();
        bounds.push(stream.len());
        for b in bounds {
            let data = &stream[last..b];
            last = b;
            let mut pos = 0;
            if !carry.is_empty() {
                if !complete_carry(&mut carry, data, &mut pos, &l)? {
                    continue;
                }
                if let Parsed::Complete { op: Some(op), .. } = parse(&carry, &l)? {
                    out.push(format!("{op:?}"));
                }
                carry.clear();
            }
            while pos < data.len() {
                match parse(&data[pos..], &l)? {
                    Parsed::Complete { op, len } => {
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

    const STREAM: &[u8] = b"INFO {\"x\":1}\r\nLS+ foo\r\nLS+ bar q 2\r\nLMSG foo + r q 3\r\nabc\r\nHMSG bar | q 12 14\r\nNATS/1.0\r\n\r\nhi\r\nLS- bar q\r\nPING\r\n\r\nLMSG x 0\r\n\r\n";

    #[test]
    fn every_split_gives_the_same_ops() {
        let whole = run_split(STREAM, &[]).unwrap();
        assert_eq!(whole.len(), 8);
        for i in 0..=STREAM.len() {
            assert_eq!(run_split(STREAM, &[i]).unwrap(), whole, "cut at {i}");
            for j in i..=STREAM.len() {
                assert_eq!(run_split(STREAM, &[i, j]).unwrap(), whole, "cuts {i},{j}");
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_split_anywhere_agree(data in proptest::collection::vec(any::<u8>(), 0..300),
                                        cut in 0usize..300) {
            prop_assert_eq!(run_split(&data, &[cut]), run_split(&data, &[]));
        }

        #[test]
        fn mutated_streams_split_anywhere_agree(pos in 0usize..STREAM.len(), byte in any::<u8>(),
                                       cut in 0usize..STREAM.len()) {
            let mut s = STREAM.to_vec();
            s[pos] = byte;
            prop_assert_eq!(run_split(&s, &[cut]), run_split(&s, &[]));
        }

        #[test]
        fn random_splits_agree(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..6)) {
            prop_assert_eq!(run_split(STREAM, &cuts).unwrap(), run_split(STREAM, &[]).unwrap());
        }
    }
}
