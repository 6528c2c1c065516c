//! The `$JS.API` vocabulary: error codes with nats-server's texts, the
//! response envelopes (`type`, `error`), time and duration encodings.
//!
//! Pure: JSON in and out, no state. The request handlers live in
//! [`super::engine`].

use serde::Serialize;
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One API error, as nats-server sends it: HTTP-like `code`, JetStream
/// `err_code` and the description text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP-like status code.
    pub code: u16,
    /// JetStream error code (`JSErrCode`).
    pub err_code: u16,
    /// Human-readable text, byte-identical to nats-server's.
    pub description: String,
}

impl ApiError {
    /// An error with a fixed text.
    pub fn new(code: u16, err_code: u16, description: impl Into<String>) -> ApiError {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// The `error` object.
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "err_code": self.err_code, "description": self.description})
    }
}

/// The error catalogue (nats-server's `server/errors.json`, the ones
/// natrium can produce).
pub mod err {
    use super::ApiError;

    pub fn stream_not_found() -> ApiError {
        ApiError::new(404, 10059, "stream not found")
    }
    pub fn consumer_not_found() -> ApiError {
        ApiError::new(404, 10014, "consumer not found")
    }
    pub fn stream_name_exists() -> ApiError {
        ApiError::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }
    pub fn subjects_overlap() -> ApiError {
        ApiError::new(400, 10065, "subjects overlap with an existing stream")
    }
    pub fn stream_name_mismatch() -> ApiError {
        ApiError::new(400, 10056, "stream name in subject does not match request")
    }
    pub fn consumer_name_mismatch() -> ApiError {
        ApiError::new(
            400,
            10017,
            "consumer name in subject does not match durable name in request",
        )
    }
    pub fn invalid_json(detail: &str) -> ApiError {
        ApiError::new(400, 10025, format!("invalid JSON: {detail}"))
    }
    pub fn bad_request() -> ApiError {
        ApiError::new(400, 10003, "bad request")
    }
    pub fn stream_config(detail: &str) -> ApiError {
        ApiError::new(500, 10052, detail)
    }
    pub fn stream_update(detail: &str) -> ApiError {
        ApiError::new(500, 10052, detail)
    }
    pub fn replicas_not_supported() -> ApiError {
        ApiError::new(
            500,
            10074,
            "replicas > 1 not supported in non-clustered mode",
        )
    }
    pub fn insufficient_storage() -> ApiError {
        ApiError::new(500, 10047, "insufficient storage resources available")
    }
    pub fn insufficient_memory() -> ApiError {
        ApiError::new(500, 10028, "insufficient memory resources available")
    }
    pub fn no_message_found() -> ApiError {
        ApiError::new(404, 10037, "no message found")
    }
    pub fn sequence_not_found(seq: u64) -> ApiError {
        ApiError::new(400, 10043, format!("sequence {seq} not found"))
    }
    pub fn expected_stream() -> ApiError {
        ApiError::new(400, 10060, "expected stream does not match")
    }
    pub fn wrong_last_sequence(seq: u64) -> ApiError {
        ApiError::new(400, 10071, format!("wrong last sequence: {seq}"))
    }
    pub fn wrong_last_msg_id(id: &str) -> ApiError {
        ApiError::new(400, 10070, format!("wrong last msg ID: {id}"))
    }
    pub fn message_too_big() -> ApiError {
        ApiError::new(400, 10054, "message size exceeds maximum allowed")
    }
    pub fn max_messages() -> ApiError {
        ApiError::new(503, 10077, "maximum messages exceeded")
    }
    pub fn max_bytes() -> ApiError {
        ApiError::new(503, 10077, "maximum bytes exceeded")
    }
    pub fn max_messages_per_subject() -> ApiError {
        ApiError::new(503, 10077, "maximum messages per subject exceeded")
    }
    pub fn stream_sealed() -> ApiError {
        ApiError::new(400, 10109, "invalid operation on sealed stream")
    }
    pub fn rollup_not_permitted() -> ApiError {
        ApiError::new(400, 10115, "rollup not permitted")
    }
    pub fn invalid_rollup(v: &str) -> ApiError {
        ApiError::new(400, 10130, format!("rollup value invalid: {v}"))
    }
    pub fn message_delete_denied() -> ApiError {
        ApiError::new(400, 10056, "message delete not permitted")
    }
    pub fn purge_denied() -> ApiError {
        ApiError::new(400, 10053, "stream purge not permitted")
    }
    pub fn storage_failed(detail: &str) -> ApiError {
        ApiError::new(500, 10077, format!("storage failure: {detail}"))
    }
    pub fn deliver_by_start_seq() -> ApiError {
        ApiError::new(
            400,
            10094,
            "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
        )
    }
    pub fn deliver_by_start_time() -> ApiError {
        ApiError::new(
            400,
            10096,
            "consumer delivery policy is deliver by start time, but optional start time is not set",
        )
    }
    pub fn opt_start_not_allowed() -> ApiError {
        ApiError::new(
            400,
            10105,
            "consumer delivery policy is not deliver by start sequence or time, but an optional start was set",
        )
    }
    pub fn ephemeral_with_durable() -> ApiError {
        ApiError::new(
            400,
            10020,
            "consumer expected to be ephemeral but a durable name was set in request",
        )
    }
    pub fn durable_name_mismatch() -> ApiError {
        ApiError::new(
            400,
            10016,
            "consumer name in subject does not match durable name in request",
        )
    }
    pub fn workqueue_filter_not_unique() -> ApiError {
        ApiError::new(
            400,
            10100,
            "filtered consumer not unique on workqueue stream",
        )
    }
    pub fn workqueue_multiple_unfiltered() -> ApiError {
        ApiError::new(
            400,
            10099,
            "multiple non-filtered consumers not allowed on workqueue stream",
        )
    }
    pub fn workqueue_pull_ack() -> ApiError {
        ApiError::new(
            400,
            10084,
            "consumer in pull mode requires explicit ack policy on workqueue stream",
        )
    }
    pub fn workqueue_deliver_all() -> ApiError {
        ApiError::new(
            400,
            10101,
            "consumer must be deliver all on workqueue stream",
        )
    }
    pub fn ack_policy_update() -> ApiError {
        ApiError::new(500, 10012, "ack policy can not be updated")
    }
    pub fn consumer_exists() -> ApiError {
        ApiError::new(400, 10148, "consumer already exists")
    }
    pub fn consumer_config(detail: &str) -> ApiError {
        ApiError::new(400, 10078, detail)
    }
    pub fn filter_not_in_stream() -> ApiError {
        ApiError::new(
            400,
            10093,
            "consumer filter subject is not a valid subset of the interest subjects",
        )
    }
    pub fn max_waiting_negative() -> ApiError {
        ApiError::new(400, 10089, "consumer max waiting needs to be positive")
    }
    pub fn push_max_waiting() -> ApiError {
        ApiError::new(400, 10088, "consumer in push mode can not set max waiting")
    }
    pub fn deliver_subject_wildcards() -> ApiError {
        ApiError::new(400, 10080, "consumer deliver subject has wildcards")
    }
    pub fn bad_name() -> ApiError {
        ApiError::new(400, 10033, "stream name is required")
    }
    pub fn invalid_stream_name() -> ApiError {
        ApiError::new(400, 10128, "stream name can not contain '.', '*', '>'")
    }
    pub fn invalid_consumer_name() -> ApiError {
        ApiError::new(400, 10103, "consumer name can not contain path separators")
    }
    pub fn max_consumers() -> ApiError {
        ApiError::new(400, 10026, "maximum consumers limit reached")
    }
    pub fn not_enabled() -> ApiError {
        ApiError::new(503, 10039, "jetstream not enabled for account")
    }
    pub fn unknown_request() -> ApiError {
        ApiError::new(400, 10003, "bad request")
    }
}

/// A response with `type` and the given fields.
pub fn response(kind: &str, fields: Value) -> Value {
    let mut map = Map::new();
    map.insert(
        "type".into(),
        Value::String(format!("io.nats.jetstream.api.v1.{kind}")),
    );
    if let Value::Object(f) = fields {
        map.extend(f);
    }
    Value::Object(map)
}

/// An error response with `type`.
pub fn error_response(kind: &str, e: &ApiError) -> Value {
    response(kind, json!({ "error": e.to_json() }))
}

/// Serialises a value for the wire (compact, as nats-server).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // A `Value` or a derived Serialize of plain data cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// RFC 3339 with nanoseconds as Go writes it; Go's zero time for 0.
pub fn time_string(ns: i64) -> String {
    if ns <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    crate::monitor::timefmt::rfc3339_nano(UNIX_EPOCH + Duration::from_nanos(ns as u64))
}

/// Parses an RFC 3339 timestamp (`2026-12-01T10:00:00.123Z`,
/// `...+01:00`) into nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let o = h * 3600 + m * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let ns = 1_764_590_400_123_456_789;
        let s = time_string(ns);
        assert_eq!(parse_time(&s), Some(ns));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00"), Some(1_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00.5Z"), Some(500_000_000));
        assert_eq!(parse_time("nonsense"), None);
        assert_eq!(parse_time("1970-13-01T00:00:00Z"), None);
        assert_eq!(time_string(0), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn error_envelope() {
        let v = error_response("stream_info_response", &err::stream_not_found());
        assert_eq!(
            v.to_string(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#
        );
    }
}
