//! NATS header blocks (`NATS/1.0[ status text]\r\nKey: Value\r\n...\r\n\r\n`):
//! reading a header of a published message, and building the blocks
//! JetStream sends (status messages, direct-get headers).

/// The value of header `name` in `block` (exact name first, then
/// case-insensitive, as nats-server's lookups accept either), trimmed.
/// `None` for an empty or malformed block.
pub fn get<'a>(block: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(block).ok()?;
    let mut lines = text.split("\r\n");
    if !lines.next()?.starts_with("NATS/1.0") {
        return None;
    }
    let mut folded = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k == name {
            return Some(v.trim());
        }
        if folded.is_none() && k.eq_ignore_ascii_case(name) {
            folded = Some(v.trim());
        }
    }
    folded
}

/// A header block with a status line and headers.
pub fn status(code: u16, text: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("NATS/1.0 {code} {text}\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A header block without status: `base` (a block from a stored message,
/// or empty) with `extra` headers added.
pub fn with_extra(base: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = if base.len() >= 12 && base.ends_with(b"\r\n\r\n") {
        base[..base.len() - 2].to_vec()
    } else {
        b"NATS/1.0\r\n".to_vec()
    };
    for (k, v) in extra {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        let b = b"NATS/1.0\r\nNats-Msg-Id: abc \r\nX: 1\r\n\r\n";
        assert_eq!(get(b, "Nats-Msg-Id"), Some("abc"));
        assert_eq!(get(b, "nats-msg-id"), Some("abc"));
        assert_eq!(get(b, "Y"), None);
        assert_eq!(get(b"", "X"), None);
        assert_eq!(get(b"garbage", "X"), None);
        assert_eq!(get(&[0xff, 0xfe], "X"), None);
    }

    #[test]
    fn builds_blocks() {
        assert_eq!(
            status(404, "No Messages", &[]),
            b"NATS/1.0 404 No Messages\r\n\r\n"
        );
        assert_eq!(
            with_extra(b"NATS/1.0\r\nA: 1\r\n\r\n", &[("B", "2")]),
            b"NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(with_extra(b"", &[("B", "2")]), b"NATS/1.0\r\nB: 2\r\n\r\n");
    }
}
