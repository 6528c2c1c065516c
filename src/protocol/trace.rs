//! How protocol bytes are shown in the log, as nats-server shows them:
//! an operation's control line in brackets (`[PUB a 2]`), a payload quoted
//! as Go's `%q` does (`["hi"]`), cut at `max_traced_msg_len` with `...`,
//! passwords and tokens of a CONNECT redacted, and the first bytes of input
//! that failed to parse (`proto='"SUB foo\r\n"...'`).
//!
//! Pure functions over byte slices; the loop decides when to call them
//! (only when tracing is on, or on a parse error).

/// Bytes of offending input shown with a parse error (nats-server's
/// `PROTO_SNIPPET_SIZE`).
pub const PROTO_SNIPPET: usize = 32;

/// Appends `bytes` quoted as Go's `%q` does: printable text as is, `"` and
/// `\` escaped, control characters as `\n`, `\r`, `\t`... or `\x00`, bytes
/// that are not UTF-8 as `\xff`.
pub fn push_quoted(out: &mut String, bytes: &[u8]) {
    use std::fmt::Write as _;
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
}

/// `["payload"]`, or `["first max bytes..."]` when longer than `max`
/// (0: no limit), as nats-server's `MSG_PAYLOAD` trace.
pub fn payload(bytes: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(bytes.len().min(256) + 8);
    out.push('[');
    if max > 0 && bytes.len() > max {
        let mut q = String::new();
        push_quoted(&mut q, &bytes[..max]);
        q.pop(); // the closing quote: nats-server puts "..." inside
        out.push_str(&q);
        out.push_str("...\"");
    } else {
        push_quoted(&mut out, bytes);
    }
    out.push(']');
    out
}

/// `[LINE]`: a control line as traced (bounded by `max_control_line`, or
/// the server's own); the values of `pass` and `auth_token` in a CONNECT
/// are `[REDACTED]`.
pub fn control_line(line: &[u8]) -> String {
    let line = trim_line_end(line);
    let redacted;
    let line = if line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"CONNECT") {
        redacted = redact(line, &[b"\"pass\"", b"\"auth_token\""]);
        &redacted[..]
    } else {
        line
    };
    format!("[{}]", String::from_utf8_lossy(line))
}

/// `'"first bytes"...'`: the start of input that did not parse.
pub fn snippet(bytes: &[u8]) -> String {
    let mut out = String::from("'");
    push_quoted(&mut out, &bytes[..bytes.len().min(PROTO_SNIPPET)]);
    if bytes.len() > PROTO_SNIPPET {
        out.push_str("...");
    }
    out.push('\'');
    out
}

/// One operation of the server's own output, split for tracing.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOp<'a> {
    /// The control line without its `\r\n`.
    pub line: &'a [u8],
    /// The payload of a MSG or HMSG (headers included), without `\r\n`.
    pub payload: Option<&'a [u8]>,
}

/// Splits what the server wrote into operations. The output is the
/// server's own and well formed; anything else ends the walk (never a
/// panic): a cut operation at the end is shown as far as it goes.
pub fn out_ops(mut bytes: &[u8]) -> impl Iterator<Item = OutOp<'_>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let line_end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
        let line = trim_line_end(&bytes[..line_end]);
        bytes = &bytes[line_end..];
        let is_msg = line.starts_with(b"MSG ") || line.starts_with(b"HMSG ");
        let payload = if is_msg {
            let size = line
                .rsplit(|&b| b == b' ')
                .next()
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
            let take = size.min(bytes.len());
            let p = &bytes[..take];
            bytes = &bytes[take..];
            let crlf = bytes.len().min(2);
            bytes = &bytes[crlf..];
            Some(p)
        } else {
            None
        };
        Some(OutOp { line, payload })
    })
}

/// The payload of a PUB or HPUB, given the whole operation (control line,
/// payload, `\r\n`).
pub fn in_payload(op: &[u8]) -> Option<&[u8]> {
    let starts = |verb: &[u8]| op.len() > verb.len() && op[..verb.len()].eq_ignore_ascii_case(verb);
    let is_pub = starts(b"PUB ") || starts(b"HPUB ");
    if !is_pub {
        return None;
    }
    let line_end = memchr::memchr(b'\n', op)? + 1;
    let rest = &op[line_end..];
    Some(rest.strip_suffix(b"\r\n").unwrap_or(rest))
}

/// The line without its `\r\n` (or `\n`).
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Replaces the string value of each of `keys` in JSON text with
/// `[REDACTED]` (as nats-server hides passwords in its trace).
fn redact(text: &[u8], keys: &[&[u8]]) -> Vec<u8> {
    let mut out = text.to_vec();
    for key in keys {
        let mut from = 0;
        while let Some(at) = memchr::memmem::find(&out[from..], key) {
            let mut i = from + at + key.len();
            while out.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            if out.get(i) != Some(&b':') {
                from = i;
                continue;
            }
            i += 1;
            while out.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            if out.get(i) != Some(&b'"') {
                from = i;
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while end < out.len() && out[end] != b'"' {
                end += if out[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(out.len());
            out.splice(start..end, b"[REDACTED]".iter().copied());
            from = start + b"[REDACTED]".len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_go_percent_q() {
        let mut s = String::new();
        push_quoted(&mut s, "hi \"x\"\\\r\n\t\x00\x7fé".as_bytes());
        push_quoted(&mut s, b"\xff");
        assert_eq!(s, r#""hi \"x\"\\\r\n\t\x00\x7fé""\xff""#);
    }

    #[test]
    fn payloads_are_cut_with_dots() {
        assert_eq!(payload(b"hi", 0), r#"["hi"]"#);
        assert_eq!(payload(b"hello", 3), r#"["hel..."]"#);
        assert_eq!(payload(b"hel", 3), r#"["hel"]"#);
        assert_eq!(payload(b"", 0), r#"[""]"#);
    }

    #[test]
    fn control_lines_and_redaction() {
        assert_eq!(control_line(b"PUB a 2\r\n"), "[PUB a 2]");
        assert_eq!(
            control_line(
                br#"CONNECT {"user":"u","pass" : "s\"ecret","auth_token":"t","name":"n"}"#
            ),
            r#"[CONNECT {"user":"u","pass" : "[REDACTED]","auth_token":"[REDACTED]","name":"n"}]"#
        );
        // A key with no string value is left alone, and nothing panics.
        assert_eq!(
            control_line(br#"CONNECT {"pass":1,"pass""#),
            r#"[CONNECT {"pass":1,"pass"]"#
        );
        assert_eq!(
            control_line(br#"CONNECT {"pass":"unterminated"#),
            r#"[CONNECT {"pass":"[REDACTED]]"#
        );
    }

    #[test]
    fn output_is_split_into_operations() {
        let out = b"INFO {}\r\nMSG a 1 2\r\nhi\r\nHMSG b 2 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPONG\r\nMSG cut 1 10\r\nabc";
        let ops: Vec<OutOp<'_>> = out_ops(out).collect();
        assert_eq!(ops.len(), 5);
        assert_eq!(ops[0].line, b"INFO {}");
        assert_eq!(
            (ops[1].line, ops[1].payload),
            (&b"MSG a 1 2"[..], Some(&b"hi"[..]))
        );
        assert_eq!(ops[2].payload, Some(&b"NATS/1.0\r\n\r\nhi"[..]));
        assert_eq!((ops[3].line, ops[3].payload), (&b"PONG"[..], None));
        assert_eq!(ops[4].payload, Some(&b"abc"[..]));
    }

    #[test]
    fn publish_payloads_and_snippets() {
        assert_eq!(in_payload(b"PUB a 2\r\nhi\r\n"), Some(&b"hi"[..]));
        assert_eq!(
            in_payload(b"hpub a 5 7\r\nab\r\n\r\nxy\r\n"),
            Some(&b"ab\r\n\r\nxy"[..])
        );
        assert_eq!(in_payload(b"SUB a 1\r\n"), None);
        assert_eq!(in_payload(b"PUB"), None);
        assert_eq!(snippet(b"SUB foo\r\n"), r#"'"SUB foo\r\n"'"#);
        let long = [b'x'; 40];
        assert_eq!(snippet(&long), format!("'\"{}\"...'", "x".repeat(32)));
    }
}
