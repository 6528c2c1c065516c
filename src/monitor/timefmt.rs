//! Time as the monitoring endpoints write it, byte for byte as nats-server
//! (Go) does: RFC 3339 timestamps with nanoseconds (`time.RFC3339Nano`,
//! trailing zeros dropped, UTC `Z`), Go's `time.Duration.String()` (the
//! `rtt` of a connection), nats-server's uptime strings (`1d2h3m4s`), and
//! the IMF-fixdate of the HTTP `Date` header.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, proleptic Gregorian calendar).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds and nanoseconds since the epoch (times before it count as the epoch).
fn since_epoch(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// `2026-11-25T20:38:06.4914021Z`: Go's `time.RFC3339Nano` in UTC (the
/// fraction without trailing zeros, and no fraction at all when it is zero).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = since_epoch(t);
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut s = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    push_frac(&mut s, u64::from(nanos), 9);
    s.push('Z');
    s
}

/// `Wed, 25 Nov 2026 20:38:06 GMT`: the HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (secs, _) = since_epoch(t);
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let rem = secs % 86_400;
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month as usize - 1) % 12],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Appends `.ddd` for the fraction `v / 10^prec`, without trailing zeros
/// (nothing when the fraction is zero), as Go's `fmtFrac`.
fn push_frac(s: &mut String, v: u64, prec: u32) {
    let mut frac = v % 10u64.pow(prec);
    if frac == 0 {
        return;
    }
    let mut digits = prec;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    let _ = write!(s, ".{frac:0width$}", width = digits as usize);
}

/// Go's `time.Duration.String()`: `0s`, `999ns`, `512µs`, `1.234567ms`,
/// `1.5s`, `2m3.5s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let u = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let mut s = String::new();
    if u == 0 {
        return "0s".to_string();
    }
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let _ = write!(s, "{}", u / 10u64.pow(prec));
        push_frac(&mut s, u, prec);
        s.push_str(unit);
        return s;
    }
    let secs = u / 1_000_000_000;
    let (hours, mins) = (secs / 3600, secs / 60 % 60);
    if hours > 0 {
        let _ = write!(s, "{hours}h{mins}m");
    } else if mins > 0 {
        let _ = write!(s, "{mins}m");
    }
    let _ = write!(s, "{}", secs % 60);
    push_frac(&mut s, u, 9);
    s.push('s');
    s
}

/// nats-server's `myUptime`: whole seconds as `4s`, `3m4s`, `2h3m4s`,
/// `1d2h3m4s` or `1y1d2h3m4s`.
pub fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    let years = days / 365;
    let (s, m, h, dd) = (secs % 60, mins % 60, hours % 24, days % 365);
    if years > 0 {
        format!("{years}y{dd}d{h}h{m}m{s}s")
    } else if days > 0 {
        format!("{days}d{h}h{m}m{s}s")
    } else if hours > 0 {
        format!("{hours}h{m}m{s}s")
    } else if mins > 0 {
        format!("{mins}m{s}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_782), (2026, 11, 25));
    }

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(rfc3339_nano(at(0, 0)), "1970-01-01T00:00:00Z");
        // Values read from a real nats-server's /varz.
        assert_eq!(
            rfc3339_nano(at(1_795_639_085, 555_412_618)),
            "2026-11-25T20:38:05.555412618Z"
        );
        assert_eq!(
            rfc3339_nano(at(1_795_639_093, 733_264_290)),
            "2026-11-25T20:38:13.73326429Z"
        );
        assert_eq!(
            rfc3339_nano(at(951_782_400, 500_000_000)),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(rfc3339_nano(at(1, 1)), "1970-01-01T00:00:01.000000001Z");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(at(0, 0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(at(1_795_639_086, 1)),
            "Wed, 25 Nov 2026 20:38:06 GMT"
        );
        assert_eq!(
            http_date(at(784_111_777, 0)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn go_durations() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(1), "1µs"),
            (Duration::from_micros(212), "212µs"),
            (Duration::from_nanos(512_300), "512.3µs"),
            (Duration::from_nanos(1_234_567), "1.234567ms"),
            (Duration::from_nanos(761_011_781), "761.011781ms"),
            (Duration::from_millis(1), "1ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(59), "59s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_millis(123_500), "2m3.5s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::new(90_061, 1), "25h1m1.000000001s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn uptimes_like_nats_server() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m0s"),
            (3_599, "59m59s"),
            (3_600, "1h0m0s"),
            (86_399, "23h59m59s"),
            (86_400 + 2 * 3600 + 3 * 60 + 4, "1d2h3m4s"),
            (365 * 86_400, "1y0d0h0m0s"),
            (400 * 86_400 + 5, "1y35d0h0m5s"),
        ];
        for (secs, want) in cases {
            assert_eq!(uptime(Duration::from_secs(secs)), want, "{secs}");
        }
        assert_eq!(uptime(Duration::from_millis(1_999)), "1s");
    }
}
