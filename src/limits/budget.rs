//! Monthly spending caps: calendar months in UTC, amounts in micro-dollars
//! (integers, so concurrent reservations add up exactly).

/// Micro-dollars from dollars, rounded up (a cap is never under-charged).
pub fn micro_usd(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e6).ceil() as u64
    } else {
        0
    }
}

/// Months since January 1970 for a Unix time in milliseconds.
pub fn month_index(now_ms: u64) -> u32 {
    let (year, month, _) = civil((now_ms / 86_400_000) as i64);
    ((year - 1970) * 12 + (month as i64 - 1)) as u32
}

/// Unix milliseconds at the start of the month after `now_ms` (when a budget resets).
pub fn next_month_start_ms(now_ms: u64) -> u64 {
    let next = i64::from(month_index(now_ms)) + 1;
    let (year, month) = (1970 + next / 12, (next % 12) as u32 + 1);
    days_from_civil(year, month, 1).max(0) as u64 * 86_400_000
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds.
pub fn utc_date(ms: u64) -> String {
    let (year, month, day) = civil((ms / 86_400_000) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn months_and_resets() {
        assert_eq!(month_index(0), 0);
        // 2026-11-30T12:00Z and 2026-12-01T00:00Z
        let nov_30 = 1_796_040_000_000;
        let dec_1 = 1_796_083_200_000;
        assert_eq!(month_index(nov_30), (2026 - 1970) * 12 + 10);
        assert_eq!(month_index(dec_1), month_index(nov_30) + 1);
        assert_eq!(month_index(dec_1 - 1), month_index(nov_30));
        assert_eq!(next_month_start_ms(nov_30), dec_1);
        // Leap day and the year boundary.
        let feb_29_2028 = days_from_civil(2028, 2, 29) as u64 * DAY;
        assert_eq!(next_month_start_ms(feb_29_2028), days_from_civil(2028, 3, 1) as u64 * DAY);
        let dec_31 = days_from_civil(2026, 12, 31) as u64 * DAY + DAY - 1;
        assert_eq!(next_month_start_ms(dec_31), days_from_civil(2027, 1, 1) as u64 * DAY);
        assert_eq!(utc_date(dec_1), "2026-12-01");
        assert_eq!(utc_date(feb_29_2028), "2028-02-29");
        assert_eq!(utc_date(0), "1970-01-01");
    }

    #[test]
    fn micro_dollars_round_up_and_ignore_nonsense() {
        assert_eq!(micro_usd(0.0024), 2_400);
        assert_eq!(micro_usd(0.000_000_1), 1);
        assert_eq!(micro_usd(-1.0), 0);
        assert_eq!(micro_usd(f64::NAN), 0);
        assert_eq!(micro_usd(50.0), 50_000_000);
    }
}
