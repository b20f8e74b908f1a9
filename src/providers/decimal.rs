//! Decimal text to `f64` for the providers' header values (`Retry-After`, rate-limit
//! counts and durations, RFC 3339 fractions), without `str::parse::<f64>`: that parser
//! brings a 20 KB table of powers of five into the wasm (about 17 KB of its gzip size),
//! and nothing else in the Worker uses it (serde_json parses its own numbers).
//!
//! Accepts exactly what `str::parse::<f64>` accepts: an optional sign, then digits with
//! at most one `.` (at least one digit on either side) and an optional exponent, or
//! `inf`, `infinity` or `nan` in any case. The value is correctly rounded, as
//! `str::parse` makes it, whenever the significant digits fit in 2^53 and the
//! exponent is within ±22 (every header value providers send); beyond that it can
//! differ from it in the last bit.

/// `text.parse::<f64>().ok()`.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        f64::INFINITY
    } else if body.eq_ignore_ascii_case("nan") {
        f64::NAN
    } else {
        decimal(body.as_bytes())?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Significant digits kept: more cannot be exact in a `u64` anyway.
const MAX_DIGITS: u32 = 19;

fn decimal(bytes: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut kept: u32 = 0;
    // Power of ten the mantissa is to be multiplied by.
    let mut exponent: i64 = 0;
    let mut digits = 0usize;
    let mut seen_point = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                if mantissa == 0 && b == b'0' {
                    // A leading zero: only moves the point.
                    if seen_point {
                        exponent -= 1;
                    }
                } else if kept < MAX_DIGITS {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    kept += 1;
                    if seen_point {
                        exponent -= 1;
                    }
                } else if !seen_point {
                    // A digit beyond those kept, before the point: one more power of ten.
                    exponent += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if let Some(rest) = bytes.get(i..).filter(|rest| !rest.is_empty()) {
        exponent = exponent.saturating_add(exponent_part(&rest[1..])?);
    }
    if mantissa == 0 {
        return Some(0.0);
    }
    Some(scale(mantissa, exponent))
}

/// The digits after `e`: an optional sign and at least one digit (saturating).
fn exponent_part(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')).min(1 << 20));
    Some(if negative { -value } else { value })
}

/// `mantissa × 10^exponent`: one exact operation (so correctly rounded) when both
/// operands are exact in `f64`.
fn scale(mantissa: u64, exponent: i64) -> f64 {
    const EXACT_POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let value = mantissa as f64;
    if mantissa <= 1 << 53 {
        if let Some(&power) = usize::try_from(exponent.unsigned_abs()).ok().and_then(|e| EXACT_POWERS.get(e)) {
            return if exponent < 0 { value / power } else { value * power };
        }
    }
    // Beyond the exact range: within an ulp or so; overflow gives infinity, underflow 0.
    let exponent = exponent.clamp(-400, 400) as i32;
    if exponent < -300 {
        value * 10f64.powi(exponent + 300) * 1e-300
    } else {
        value * 10f64.powi(exponent)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_f64;

    fn same_as_std(text: &str) {
        let ours = parse_f64(text);
        let theirs = text.parse::<f64>().ok();
        match (ours, theirs) {
            (Some(a), Some(b)) if a.is_nan() && b.is_nan() => {}
            (Some(a), Some(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{text}: {a} vs {b}"),
            (a, b) => assert_eq!(a.is_some(), b.is_some(), "{text}: {a:?} vs {b:?}"),
        }
    }

    #[test]
    fn reads_what_str_parse_reads_and_refuses_what_it_refuses() {
        for text in [
            "0",
            "1",
            "12",
            "1.5",
            "59.56",
            ".5",
            "5.",
            "+5",
            "-5",
            "-0",
            "+0.0",
            "0.000",
            "007",
            "00.100",
            "1e3",
            "1E3",
            "1e+3",
            "1e-3",
            "2.5e-3",
            "12e0",
            "0e999",
            "inf",
            "-inf",
            "INF",
            "Infinity",
            "+infinity",
            "nan",
            "NaN",
            "-nan",
            "1.2345678",
            "0.001",
            "0.1",
            "0.2",
            "0.3",
            "3600",
            "86400.5",
            "9007199254740992",
            "9007199254740993",
            "1e22",
            "1e-22",
            "1e400",
            "-1e400",
            "1e-400",
            "",
            ".",
            "+",
            "-",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1..2",
            " 1",
            "1 ",
            "1s",
            "0x10",
            "1_000",
            "--1",
            "+-1",
            "infinit",
            "nana",
            "1e5.5",
            "1.e5",
            ".e5",
            "٣",
        ] {
            same_as_std(text);
        }
    }

    #[test]
    fn header_shaped_numbers_are_exact() {
        // Retry-After seconds, counts, Go durations' numbers and RFC 3339 fractions.
        for whole in 0..2000u32 {
            for fraction in ["", ".0", ".5", ".25", ".125", ".001", ".56", ".999", ".123456789"] {
                same_as_std(&format!("{whole}{fraction}"));
                same_as_std(&format!("0.{whole}{}", fraction.trim_start_matches('.')));
            }
        }
    }

    #[test]
    fn long_or_far_numbers_stay_within_an_ulp() {
        for text in [
            "123456789012345678901234567890",
            "0.1234567890123456789012345",
            "123456789012345678",
            "1e30",
            "3.3e-30",
            "1e300",
            "1.7976931348623157e308",
            "2.2250738585072014e-308",
        ] {
            let (ours, theirs) = (parse_f64(text).unwrap(), text.parse::<f64>().unwrap());
            assert!((ours - theirs).abs() <= theirs.abs() * 4.0 * f64::EPSILON, "{text}: {ours} vs {theirs}");
        }
    }
}
