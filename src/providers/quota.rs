//! What a provider's answer (a success or an error) says about the endpoint's
//! remaining quota, read into one shape: OpenAI's and Azure's `x-ratelimit-*`
//! (resets as durations: `20ms`, `1s`, `6m0s`), Anthropic's `anthropic-ratelimit-*`
//! (resets as RFC 3339 times), and `retry-after-ms` / `retry-after` everywhere.
//! Pure: the caller gives the time the answer arrived. Unreadable values are
//! ignored, never trusted.

use serde::{Deserialize, Serialize};

/// A header lookup (lowercase names).
pub type Headers<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The longest reset or wait believed: a bogus header cannot park an endpoint for days.
pub const MAX_RESET_MS: u64 = 86_400_000;
/// The longest `retry-after` believed (as `parse_retry_after`).
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// One rate-limit window as the provider reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub remaining: u64,
    /// When the window is full again (ms since the epoch), when the provider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_at_ms: Option<u64>,
}

/// Everything one answer said about its endpoint's quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReading {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Window>,
    /// Tokens of any kind (OpenAI counts the prompt plus `max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Window>,
    /// `retry-after-ms` or `retry-after`, as a wait from `at_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// When the answer arrived.
    #[serde(default)]
    pub at_ms: u64,
}

impl QuotaReading {
    pub fn windows(&self) -> [Option<Window>; 4] {
        [self.requests, self.tokens, self.input_tokens, self.output_tokens]
    }

    /// Nothing was read (not worth reporting).
    pub fn is_empty(&self) -> bool {
        self.windows().iter().all(Option::is_none) && self.retry_after_ms.is_none()
    }

    /// Some window has nothing left.
    pub fn exhausted(&self) -> bool {
        self.windows().iter().flatten().any(|w| w.remaining == 0)
    }

    /// How long the endpoint should be left alone after a 429: `retry-after`,
    /// else until the latest reset of the windows that have nothing left.
    pub fn wait_ms(&self) -> Option<u64> {
        self.retry_after_ms.or_else(|| {
            self.windows()
                .iter()
                .flatten()
                .filter(|w| w.remaining == 0)
                .filter_map(|w| w.reset_at_ms)
                .max()
                .map(|at| at.saturating_sub(self.at_ms).min(MAX_RETRY_AFTER_MS))
        })
    }
}

/// The answer headers the pipeline reads from any provider: the body's type and the
/// retry hints. Each kind's list adds what its `quota` reads (`ProviderAdapter::answer_headers`).
pub static COMMON_HEADERS: super::HeaderNames = &["content-type", "retry-after", "retry-after-ms"];

/// What [`openai`] reads, with [`COMMON_HEADERS`].
pub static OPENAI_HEADERS: super::HeaderNames = &[
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

/// What [`anthropic`] reads, with [`COMMON_HEADERS`].
pub static ANTHROPIC_HEADERS: super::HeaderNames = &[
    "content-type",
    "retry-after",
    "retry-after-ms",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
];

/// `retry-after-ms` (Azure, OpenAI) or `retry-after` (seconds or an HTTP date) only:
/// what every provider may send.
pub fn retry_after(header: Headers, now_ms: u64) -> QuotaReading {
    let retry_after_ms = header("retry-after-ms")
        .and_then(|v| parse_number(&v))
        .map(|ms| ms.ceil() as u64)
        .or_else(|| header("retry-after").and_then(|v| parse_retry_after_ms(&v, now_ms)))
        .map(|ms| ms.min(MAX_RETRY_AFTER_MS));
    QuotaReading { retry_after_ms, at_ms: now_ms, ..QuotaReading::default() }
}

/// OpenAI and Azure OpenAI: `x-ratelimit-remaining-{requests,tokens}` and
/// `x-ratelimit-reset-{requests,tokens}` (a duration until the window is full again).
pub fn openai(header: Headers, now_ms: u64) -> QuotaReading {
    let window = |what: &str| {
        let remaining = parse_count(&header(&format!("x-ratelimit-remaining-{what}"))?)?;
        let reset = header(&format!("x-ratelimit-reset-{what}")).and_then(|v| parse_duration_ms(&v));
        Some(Window { remaining, reset_at_ms: reset.map(|ms| now_ms.saturating_add(ms.min(MAX_RESET_MS))) })
    };
    QuotaReading { requests: window("requests"), tokens: window("tokens"), ..retry_after(header, now_ms) }
}

/// Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`
/// and `-reset` (an RFC 3339 time). The combined `tokens` window is the most
/// restrictive of input and output, whichever that is, so it is kept only when the
/// separate windows are absent.
pub fn anthropic(header: Headers, now_ms: u64) -> QuotaReading {
    let window = |what: &str| {
        let remaining = parse_count(&header(&format!("anthropic-ratelimit-{what}-remaining"))?)?;
        let reset = header(&format!("anthropic-ratelimit-{what}-reset")).and_then(|v| parse_rfc3339_ms(&v));
        Some(Window { remaining, reset_at_ms: reset.map(|at| at.min(now_ms.saturating_add(MAX_RESET_MS))) })
    };
    let input_tokens = window("input-tokens");
    let output_tokens = window("output-tokens");
    let tokens = if input_tokens.is_none() && output_tokens.is_none() { window("tokens") } else { None };
    QuotaReading { requests: window("requests"), tokens, input_tokens, output_tokens, ..retry_after(header, now_ms) }
}

fn parse_number(value: &str) -> Option<f64> {
    let n = super::decimal::parse_f64(value.trim())?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// A remaining count; negative values (Azure's `-1`: not applicable) say nothing.
pub fn parse_count(value: &str) -> Option<u64> {
    parse_number(value).map(|n| n.floor().min(u64::MAX as f64) as u64)
}

/// OpenAI's duration format (Go's): `20ms`, `1s`, `6m0s`, `1h2m3s`, `59.56s`,
/// also `us`/`µs`/`ns`; a bare number is seconds. Rounded up to whole milliseconds.
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let text = value.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Some(seconds) = parse_number(text) {
        return Some((seconds * 1000.0).ceil().min(MAX_RESET_MS as f64) as u64);
    }
    let mut total_ms = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = super::decimal::parse_f64(rest.get(..number_len)?)?;
        rest = rest.get(number_len..)?;
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let per_unit_ms = match rest.get(..unit_len)? {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" | "μs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total_ms += number * per_unit_ms;
        rest = rest.get(unit_len..)?;
    }
    Some(total_ms.ceil().min(MAX_RESET_MS as f64) as u64)
}

/// An RFC 3339 time (`2025-08-21T12:40:59Z`, fractions and offsets allowed) as
/// ms since the epoch.
pub fn parse_rfc3339_ms(value: &str) -> Option<u64> {
    let text = value.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if [bytes[4], bytes[7], bytes[13], bytes[16]] != [b'-', b'-', b':', b':'] {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0.0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
        if len == 0 {
            return None;
        }
        millis = super::decimal::parse_f64(&format!("0.{}", fraction.get(..len)?))? * 1000.0;
        rest = fraction.get(len..)?;
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds).ok().map(|s| s * 1000 + millis.ceil() as u64)
}

/// `retry-after` as delta-seconds or an HTTP date (IMF-fixdate), as a wait from now.
pub fn parse_retry_after_ms(value: &str, now_ms: u64) -> Option<u64> {
    if let Some(seconds) = parse_number(value) {
        return Some((seconds * 1000.0).ceil().min(MAX_RETRY_AFTER_MS as f64) as u64);
    }
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let day: u64 = day.parse().ok()?;
    let text = format!("{year}-{month:02}-{day:02}T{time}Z");
    parse_rfc3339_ms(&text).map(|at| at.saturating_sub(now_ms).min(MAX_RETRY_AFTER_MS))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests;
