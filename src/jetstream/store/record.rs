//! The on-disk record format of the file store, and segment headers.
//!
//! Every record starts with a kind byte (which doubles as the magic that
//! recovery scans for after damage) and ends with a CRC-32 (IEEE, via
//! `crc32fast`) of every byte before it: kind, lengths, sequence, time,
//! subject, headers and payload. A flipped bit anywhere, a length
//! included, fails the check, so a damaged record is never taken for a
//! message. Layout (integers little-endian, `varint` = LEB128):
//!
//! ```text
//! message:   kind(E1 | E2 with headers) seq:varint time:i64 subj_len:varint
//!            [hdr_len:varint if E2] payload_len:varint subject headers payload crc:u32
//! erased:    the same with kind E5 | E6 and subject, headers, payload zeroed
//! delete:    E3 seq:varint crc:u32        (tombstone of one message)
//! floor:     E4 seq:varint crc:u32        (every message below seq is gone)
//! seal:      E7 segment:varint crc:u32    (last record of a full segment)
//! ```
//!
//! Decoding never panics and never allocates: every length is checked
//! against the bytes at hand before it is used.

/// A message without headers.
pub const K_MSG: u8 = 0xE1;
/// A message with headers.
pub const K_MSG_HDR: u8 = 0xE2;
/// A tombstone.
pub const K_DELETE: u8 = 0xE3;
/// A purge floor.
pub const K_FLOOR: u8 = 0xE4;
/// An erased message (no headers).
pub const K_ERASED: u8 = 0xE5;
/// An erased message (with headers).
pub const K_ERASED_HDR: u8 = 0xE6;
/// The end of a segment that was closed.
pub const K_SEAL: u8 = 0xE7;

/// The longest subject a record may carry.
pub const MAX_SUBJECT: usize = 64 * 1024;
/// The longest record (a 64 MiB payload, headers and framing).
pub const MAX_RECORD: usize = 64 * 1024 * 1024 + 2 * 1024 * 1024;

/// The magic at the start of a segment file.
pub const SEG_MAGIC: &[u8; 8] = b"NATRSEG1";

/// Whether `b` starts a record.
pub fn is_kind(b: u8) -> bool {
    (K_MSG..=K_SEAL).contains(&b)
}

/// A decoded record, borrowing the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// A message.
    Msg {
        seq: u64,
        time: i64,
        subject: &'a str,
        headers: &'a [u8],
        payload: &'a [u8],
    },
    /// A message erased in place.
    Erased { seq: u64 },
    /// A removed message.
    Delete { seq: u64 },
    /// Every message below `seq` is removed.
    Floor { seq: u64 },
    /// The end of segment `seq`.
    Seal { seq: u64 },
}

/// The outcome of decoding at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A valid record and its length.
    Ok(Record<'a>, usize),
    /// The record claims to run past the end of the buffer.
    Short,
    /// Not a valid record.
    Bad,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`; `None` if cut short or longer than 10 bytes.
fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn finish(out: &mut Vec<u8>, start: usize) {
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends a message record to `out`.
pub fn encode_msg(
    out: &mut Vec<u8>,
    seq: u64,
    time: i64,
    subject: &str,
    headers: &[u8],
    payload: &[u8],
) {
    let start = out.len();
    out.push(if headers.is_empty() { K_MSG } else { K_MSG_HDR });
    put_varint(out, seq);
    out.extend_from_slice(&time.to_le_bytes());
    put_varint(out, subject.len() as u64);
    if !headers.is_empty() {
        put_varint(out, headers.len() as u64);
    }
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(subject.as_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    finish(out, start);
}

/// The length [`encode_msg`] would produce.
pub fn msg_len(seq: u64, subject: &str, headers: &[u8], payload: &[u8]) -> usize {
    let vl = |v: u64| (64 - (v | 1).leading_zeros() as usize).div_ceil(7);
    let h = if headers.is_empty() {
        0
    } else {
        vl(headers.len() as u64)
    };
    1 + vl(seq)
        + 8
        + vl(subject.len() as u64)
        + h
        + vl(payload.len() as u64)
        + subject.len()
        + headers.len()
        + payload.len()
        + 4
}

/// Appends a tombstone for `seq`.
pub fn encode_delete(out: &mut Vec<u8>, seq: u64) {
    let start = out.len();
    out.push(K_DELETE);
    put_varint(out, seq);
    finish(out, start);
}

/// Appends the seal of segment `id`.
pub fn encode_seal(out: &mut Vec<u8>, id: u64) {
    let start = out.len();
    out.push(K_SEAL);
    put_varint(out, id);
    finish(out, start);
}

/// Appends a purge floor: every message below `seq` is gone.
pub fn encode_floor(out: &mut Vec<u8>, seq: u64) {
    let start = out.len();
    out.push(K_FLOOR);
    put_varint(out, seq);
    finish(out, start);
}

/// The erased form of a message record: same length and sequence, kind
/// erased, subject, headers and payload zeroed. `None` unless `rec` is
/// exactly one valid message record.
pub fn erased(rec: &[u8]) -> Option<Vec<u8>> {
    let Decoded::Ok(Record::Msg { .. }, n) = decode(rec) else {
        return None;
    };
    if n != rec.len() {
        return None;
    }
    let mut out = rec.to_vec();
    let has_h = out[0] == K_MSG_HDR;
    out[0] = if has_h { K_ERASED_HDR } else { K_ERASED };
    let mut pos = 1;
    get_varint(&out, &mut pos)?;
    pos += 8;
    let s = get_varint(&out, &mut pos)? as usize;
    let h = if has_h {
        get_varint(&out, &mut pos)? as usize
    } else {
        0
    };
    let p = get_varint(&out, &mut pos)? as usize;
    let body = out.get_mut(pos..pos + s + h + p)?;
    body.fill(0);
    let end = out.len() - 4;
    let crc = crc32fast::hash(&out[..end]);
    out[end..].copy_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Whether a subject read back looks like one (checked before the CRC, to
/// make resynchronisation over garbage cheap).
fn plausible_subject(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| b > b' ' && b != 0x7F)
}

/// Decodes the record at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(&kind) = buf.first() else {
        return Decoded::Short;
    };
    if !is_kind(kind) {
        return Decoded::Bad;
    }
    let mut pos = 1;
    let Some(seq) = get_varint(buf, &mut pos) else {
        return if pos >= buf.len() {
            Decoded::Short
        } else {
            Decoded::Bad
        };
    };
    if seq == 0 || seq == u64::MAX {
        return Decoded::Bad;
    }
    let check = |end: usize| -> bool {
        match (buf.get(..end), buf.get(end..end + 4)) {
            (Some(body), Some(c)) => {
                let mut b = [0u8; 4];
                b.copy_from_slice(c);
                crc32fast::hash(body) == u32::from_le_bytes(b)
            }
            _ => false,
        }
    };
    match kind {
        K_DELETE | K_FLOOR | K_SEAL => {
            if buf.len() < pos + 4 {
                return Decoded::Short;
            }
            if !check(pos) {
                return Decoded::Bad;
            }
            let r = match kind {
                K_DELETE => Record::Delete { seq },
                K_FLOOR => Record::Floor { seq },
                _ => Record::Seal { seq },
            };
            Decoded::Ok(r, pos + 4)
        }
        _ => {
            let Some(tb) = buf.get(pos..pos + 8) else {
                return Decoded::Short;
            };
            let mut t = [0u8; 8];
            t.copy_from_slice(tb);
            let time = i64::from_le_bytes(t);
            pos += 8;
            let has_h = kind == K_MSG_HDR || kind == K_ERASED_HDR;
            let mut lens = [0usize; 3];
            for (i, l) in lens.iter_mut().enumerate() {
                if i == 1 && !has_h {
                    continue;
                }
                let Some(v) = get_varint(buf, &mut pos) else {
                    return if pos >= buf.len() {
                        Decoded::Short
                    } else {
                        Decoded::Bad
                    };
                };
                if v > MAX_RECORD as u64 {
                    return Decoded::Bad;
                }
                *l = v as usize;
            }
            let [s, h, p] = lens;
            if s > MAX_SUBJECT || s == 0 || (has_h && h == 0) {
                return Decoded::Bad;
            }
            let end = pos + s + h + p;
            if end + 4 > MAX_RECORD {
                return Decoded::Bad;
            }
            if buf.len() < end + 4 {
                return Decoded::Short;
            }
            let erased = kind == K_ERASED || kind == K_ERASED_HDR;
            let subj = &buf[pos..pos + s];
            if !erased && !plausible_subject(subj) {
                return Decoded::Bad;
            }
            if !check(end) {
                return Decoded::Bad;
            }
            if erased {
                return Decoded::Ok(Record::Erased { seq }, end + 4);
            }
            let Ok(subject) = std::str::from_utf8(subj) else {
                return Decoded::Bad;
            };
            Decoded::Ok(
                Record::Msg {
                    seq,
                    time,
                    subject,
                    headers: &buf[pos + s..pos + s + h],
                    payload: &buf[pos + s + h..end],
                },
                end + 4,
            )
        }
    }
}

/// The kind, sequence and length a message record claims, without
/// checking it: for telling a torn in-place erase from damage. `None`
/// unless the framing parses and fits in `buf`.
pub fn peek(buf: &[u8]) -> Option<(u8, u64, usize)> {
    let kind = *buf.first()?;
    if !matches!(kind, K_MSG | K_MSG_HDR | K_ERASED | K_ERASED_HDR) {
        return None;
    }
    let mut pos = 1;
    let seq = get_varint(buf, &mut pos)?;
    pos += 8;
    let has_h = kind == K_MSG_HDR || kind == K_ERASED_HDR;
    let mut body: usize = 0;
    for i in 0..3 {
        if i == 1 && !has_h {
            continue;
        }
        let v = usize::try_from(get_varint(buf, &mut pos)?).ok()?;
        body = body.checked_add(v)?;
    }
    let len = pos.checked_add(body)?.checked_add(4)?;
    (len <= buf.len() && len <= MAX_RECORD).then_some((kind, seq, len))
}

/// The next offset after `from` at which a valid record starts, if any.
pub fn resync(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buf.len() {
        let rel = buf.get(at..)?.iter().position(|&b| is_kind(b))?;
        at += rel;
        if let Decoded::Ok(..) = decode(&buf[at..]) {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// A segment header: magic, config length, CRC, the stream's config bytes
/// (a copy, should both metadata files be lost).
pub fn encode_seg_header(config: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + config.len());
    out.extend_from_slice(SEG_MAGIC);
    out.extend_from_slice(&(config.len() as u32).to_le_bytes());
    let mut c = crc32fast::Hasher::new();
    c.update(&out);
    c.update(config);
    out.extend_from_slice(&c.finalize().to_le_bytes());
    out.extend_from_slice(config);
    out
}

/// Parses a segment header: where its records start and its config bytes.
/// `None` if the header is damaged.
pub fn parse_seg_header(buf: &[u8]) -> Option<(usize, &[u8])> {
    if buf.get(..8)? != SEG_MAGIC {
        return None;
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(buf.get(8..12)?);
    let len = u32::from_le_bytes(l) as usize;
    let mut c = [0u8; 4];
    c.copy_from_slice(buf.get(12..16)?);
    let cfg = buf.get(16..16usize.checked_add(len)?)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..12]);
    h.update(cfg);
    (h.finalize() == u32::from_le_bytes(c)).then_some((16 + len, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        let mut v = Vec::new();
        encode_msg(&mut v, 1_000_000, 1, "orders.new1", b"", &[7u8; 16]);
        assert_eq!(v.len(), 45);
        assert_eq!(v.len(), msg_len(1_000_000, "orders.new1", b"", &[7u8; 16]));
        let mut v = Vec::new();
        encode_delete(&mut v, 300);
        assert_eq!(v.len(), 7);
    }

    #[test]
    fn every_bit_flip_is_caught() {
        let mut v = Vec::new();
        encode_msg(&mut v, 77, -5, "a.b", b"NATS/1.0\r\n\r\n", b"hello");
        for bit in 0..v.len() * 8 {
            let mut w = v.clone();
            w[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode(&w), Decoded::Ok(Record::Msg { .. }, _)),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn erased_keeps_length_and_seq() {
        let mut v = Vec::new();
        encode_msg(&mut v, 9, 3, "x.y", b"NATS/1.0\r\n\r\n", b"secret");
        let e = erased(&v).unwrap();
        assert_eq!(e.len(), v.len());
        assert_eq!(decode(&e), Decoded::Ok(Record::Erased { seq: 9 }, v.len()));
        assert!(!e.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn header_round_trip() {
        let h = encode_seg_header(b"{\"name\":\"S\"}");
        assert_eq!(
            parse_seg_header(&h),
            Some((h.len(), &b"{\"name\":\"S\"}"[..]))
        );
        let mut d = h.clone();
        d[13] ^= 4;
        assert_eq!(parse_seg_header(&d), None);
    }

    proptest! {
        #[test]
        fn round_trip(seq in 1u64..u64::MAX, time: i64, subj in "[a-z.]{1,20}",
                      hdr in proptest::collection::vec(any::<u8>(), 0..40),
                      pl in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut v = vec![0u8; 3];
            encode_msg(&mut v, seq, time, &subj, &hdr, &pl);
            prop_assert_eq!(v.len() - 3, msg_len(seq, &subj, &hdr, &pl));
            let r = decode(&v[3..]);
            prop_assert_eq!(r, Decoded::Ok(Record::Msg { seq, time, subject: &subj, headers: &hdr, payload: &pl }, v.len() - 3));
            prop_assert_eq!(resync(&v, 0), Some(3));
        }

        #[test]
        fn garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&buf);
            let _ = resync(&buf, 0);
            let _ = parse_seg_header(&buf);
            let _ = erased(&buf);
        }
    }
}
