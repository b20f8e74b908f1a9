//! UTC timestamps for the query API: `2026-12-01`, `2026-12-01T10:00:00Z`
//! (optionally with fractional seconds) or Unix milliseconds, and back to ISO 8601.

use crate::limits::budget::{civil, days_from_civil};

/// Unix milliseconds of a timestamp, or `None` when it is not one of the forms above.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00"))?)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = number(parts.next()?, 4)?;
    let month: u32 = number(parts.next()?, 2)?;
    let day: u32 = number(parts.next()?, 2)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let mut ms = u64::try_from(days_from_civil(year, month, day)).ok()? * 86_400_000;
    if let Some(time) = time {
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut hms = hms.split(':');
        let h: u64 = number(hms.next()?, 2)?;
        let m: u64 = number(hms.next()?, 2)?;
        let s: u64 = hms.next().map_or(Some(0), |s| number(s, 2))?;
        if hms.next().is_some() || h > 23 || m > 59 || s > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let millis =
            fraction.bytes().take(3).enumerate().map(|(i, b)| u64::from(b - b'0') * [100, 10, 1][i]).sum::<u64>();
        ms += ((h * 60 + m) * 60 + s) * 1000 + millis;
    }
    Some(ms)
}

fn number<T: std::str::FromStr>(text: &str, digits: usize) -> Option<T> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok())?
}

/// `2026-12-01T10:05:00Z`.
pub fn iso(ms: u64) -> String {
    let (year, month, day) = civil((ms / 86_400_000) as i64);
    let secs = (ms % 86_400_000) / 1000;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_times_and_milliseconds() {
        assert_eq!(parse("1970-01-02"), Some(86_400_000));
        assert_eq!(parse("2026-12-01T10:05:00Z").map(iso).as_deref(), Some("2026-12-01T10:05:00Z"));
        assert_eq!(parse("2026-12-01T10:05:00.250Z").map(|ms| ms % 1000), Some(250));
        assert_eq!(parse("1234"), Some(1234));
        for bad in ["", "yesterday", "2026-13-01", "2026-12-01T25:00:00Z", "2026-12-01T10:00:00+02:00", "-5"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
