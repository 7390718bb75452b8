//! Timestamps as providers send them, to milliseconds since the Unix epoch,
//! without a calendar crate: RFC 3339 / ISO 8601 UTC text and Unix seconds;
//! and the freshness check of a signed timestamp.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a signed timestamp may be from now, either way: a captured
/// request cannot be replayed later than this.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Refuses a signed timestamp (Unix seconds, as text of digits only) more
/// than [`TOLERANCE`] from `now`.
pub fn check_fresh(sent: &str, now: SystemTime) -> Result<(), super::Rejection> {
    use super::Rejection;
    let sent = sent
        .parse::<u64>()
        .ok()
        .filter(|_| !sent.is_empty() && sent.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Rejection::unauthorized("the timestamp is not Unix seconds"))?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if sent.saturating_add(TOLERANCE.as_secs()) < now {
        return Err(Rejection::unauthorized("timestamp too old (replay?)"));
    }
    if sent > now.saturating_add(TOLERANCE.as_secs()) {
        return Err(Rejection::unauthorized("timestamp too far in the future"));
    }
    Ok(())
}

/// `2024-03-23T21:41:44.477Z` (or with an offset such as `+02:00`) → ms.
/// `None` for anything else.
pub fn rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        for i in 0..3 {
            millis = millis * 10
                + fraction
                    .get(i)
                    .filter(|_| i < digits)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hm = [h1, h2, m1, m2];
            if !hm.iter().all(|d| d.is_ascii_digit()) {
                return None;
            }
            let minutes = i64::from((h1 - b'0') * 10 + (h2 - b'0')) * 60
                + i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Unix seconds as a number or a numeric string (Meta sends `"1603059201"`)
/// → ms. `None` for anything else or an overflow.
pub fn unix_seconds_ms(value: &serde_json::Value) -> Option<u64> {
    let seconds = match value {
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok()?,
        serde_json::Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    seconds.checked_mul(1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsable_timestamps() {
        // date -d 2024-03-23T21:41:44Z +%s → 1711230104
        assert_eq!(
            rfc3339_ms("2024-03-23T21:41:44.477Z"),
            Some(1_711_230_104_477)
        );
        assert_eq!(rfc3339_ms("2024-03-23T21:41:44Z"), Some(1_711_230_104_000));
        assert_eq!(
            rfc3339_ms("2024-03-23T23:41:44.4+02:00"),
            Some(1_711_230_104_400)
        );
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for text in [
            "",
            "2024",
            "2024-13-01T00:00:00Z",
            "2024-03-23T21:41:44",
            "1969-12-31T23:59:59Z",
            "２０２４-03-23T21:41:44Z",
            "2024-03-23T21:41:44.Z",
        ] {
            assert_eq!(rfc3339_ms(text), None, "{text}");
        }
    }

    #[test]
    fn unix_seconds() {
        assert_eq!(
            unix_seconds_ms(&serde_json::json!("1603059201")),
            Some(1_603_059_201_000)
        );
        assert_eq!(
            unix_seconds_ms(&serde_json::json!(1603059201)),
            Some(1_603_059_201_000)
        );
        assert_eq!(unix_seconds_ms(&serde_json::json!("soon")), None);
        assert_eq!(unix_seconds_ms(&serde_json::json!(u64::MAX)), None);
    }
}
