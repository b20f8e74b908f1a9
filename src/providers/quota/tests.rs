//! Golden cases from the providers' documentation and recorded answers.

use super::*;
use std::collections::HashMap;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| map.get(name).cloned()
}

const NOW: u64 = 1_755_780_000_000; // 2025-08-21T12:40:00Z

#[test]
fn openai_durations() {
    for (text, ms) in [
        ("1s", 1_000),
        ("6m0s", 360_000),
        ("20ms", 20),
        ("12ms", 12),
        ("1h2m3s", 3_723_000),
        ("59.56s", 59_560),
        ("2m59.56s", 179_560),
        ("7.66s", 7_660),
        ("1500us", 2),
        ("250µs", 1),
        ("0s", 0),
        ("20", 20_000),
        (" 6m0s ", 360_000),
    ] {
        assert_eq!(parse_duration_ms(text), Some(ms), "{text}");
    }
    for bad in ["", "s", "1x", "-1s", "1s2", "1.2.3s", "forever", "1d"] {
        assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
    }
    assert_eq!(parse_duration_ms("99999h"), Some(MAX_RESET_MS), "capped");
}

#[test]
fn rfc3339_times() {
    assert_eq!(parse_rfc3339_ms("2025-08-21T12:40:59Z"), Some(1_755_780_059_000));
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339_ms("2024-02-29T23:59:59.5+02:00"), Some(1_709_243_999_500));
    assert_eq!(parse_rfc3339_ms("2025-08-21t12:40:59.000z"), Some(1_755_780_059_000));
    for bad in [
        "",
        "2025-08-21",
        "2025-13-01T00:00:00Z",
        "2025-08-21T25:00:00Z",
        "2025-08-21T12:40:59",
        "yesterday",
        "1969-12-31T23:59:59Z",
        "2025-08-21T12:40:59+0200",
    ] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad:?}");
    }
}

#[test]
fn openai_headers_from_the_rate_limits_guide() {
    // platform.openai.com/docs/guides/rate-limits: "Rate limits in headers".
    let headers = lookup(&[
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ]);
    let reading = openai(&headers, NOW);
    assert_eq!(reading.requests, Some(Window { remaining: 59, reset_at_ms: Some(NOW + 1_000) }));
    assert_eq!(reading.tokens, Some(Window { remaining: 149_984, reset_at_ms: Some(NOW + 360_000) }));
    assert_eq!((reading.input_tokens, reading.output_tokens, reading.retry_after_ms), (None, None, None));
    assert!(!reading.exhausted() && !reading.is_empty());
}

#[test]
fn an_exhausted_openai_window_and_its_wait() {
    let headers = lookup(&[
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "20s"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "6s"),
    ]);
    let reading = openai(&headers, NOW);
    assert!(reading.exhausted());
    assert_eq!(reading.wait_ms(), Some(20_000), "until both windows have room");
    // A retry-after says it better.
    let headers =
        lookup(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "20s"), ("retry-after", "3")]);
    assert_eq!(openai(&headers, NOW).wait_ms(), Some(3_000));
}

#[test]
fn azure_headers_and_its_not_applicable_minus_one() {
    let headers = lookup(&[
        ("x-ratelimit-remaining-requests", "99"),
        ("x-ratelimit-remaining-tokens", "-1"),
        ("x-ratelimit-reset-tokens", "0"),
        ("retry-after-ms", "1500"),
        ("retry-after", "2"),
    ]);
    let reading = openai(&headers, NOW);
    assert_eq!(reading.requests, Some(Window { remaining: 99, reset_at_ms: None }));
    assert_eq!(reading.tokens, None, "-1 says nothing");
    assert_eq!(reading.retry_after_ms, Some(1_500), "retry-after-ms is the more precise");
}

#[test]
fn anthropic_headers_from_a_recorded_answer() {
    // A 200 from api.anthropic.com (Thu, 21 Aug 2025 12:41:00 GMT).
    let headers = lookup(&[
        ("anthropic-ratelimit-input-tokens-limit", "80000"),
        ("anthropic-ratelimit-input-tokens-remaining", "80000"),
        ("anthropic-ratelimit-input-tokens-reset", "2025-08-21T12:40:59Z"),
        ("anthropic-ratelimit-output-tokens-limit", "16000"),
        ("anthropic-ratelimit-output-tokens-remaining", "16000"),
        ("anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:41:00Z"),
        ("anthropic-ratelimit-requests-limit", "1000"),
        ("anthropic-ratelimit-requests-remaining", "999"),
        ("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z"),
        ("anthropic-ratelimit-tokens-limit", "96000"),
        ("anthropic-ratelimit-tokens-remaining", "96000"),
        ("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:59Z"),
    ]);
    let now = 1_755_780_060_000;
    let reading = anthropic(&headers, now);
    assert_eq!(reading.requests, Some(Window { remaining: 999, reset_at_ms: Some(1_755_780_059_000) }));
    assert_eq!(reading.input_tokens, Some(Window { remaining: 80_000, reset_at_ms: Some(1_755_780_059_000) }));
    assert_eq!(reading.output_tokens, Some(Window { remaining: 16_000, reset_at_ms: Some(1_755_780_060_000) }));
    assert_eq!(reading.tokens, None, "the combined window is whichever of input and output is tighter");
    assert_eq!(reading.at_ms, now);
}

#[test]
fn an_anthropic_429_with_retry_after() {
    // docs.anthropic.com/en/api/rate-limits: retry-after in seconds.
    let headers = lookup(&[
        ("retry-after", "5"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:30Z"),
    ]);
    let reading = anthropic(&headers, NOW);
    assert_eq!(reading.tokens, Some(Window { remaining: 0, reset_at_ms: Some(NOW + 30_000) }));
    assert_eq!(reading.wait_ms(), Some(5_000));
    let without = anthropic(
        &lookup(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:30Z"),
        ]),
        NOW,
    );
    assert_eq!(without.wait_ms(), Some(30_000), "until the reset");
}

#[test]
fn retry_after_everywhere() {
    assert_eq!(retry_after(&lookup(&[("retry-after", "2")]), NOW).retry_after_ms, Some(2_000));
    assert_eq!(retry_after(&lookup(&[("retry-after", "0.2")]), NOW).retry_after_ms, Some(200));
    assert_eq!(retry_after(&lookup(&[("retry-after-ms", "20")]), NOW).retry_after_ms, Some(20));
    assert_eq!(retry_after(&lookup(&[("retry-after", "86400")]), NOW).retry_after_ms, Some(MAX_RETRY_AFTER_MS));
    // An HTTP date (RFC 9110 IMF-fixdate).
    let date = 1_445_412_480_000; // Wed, 21 Oct 2015 07:28:00 GMT
    let reading = retry_after(&lookup(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), date - 7_000);
    assert_eq!(reading.retry_after_ms, Some(7_000));
    assert_eq!(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", date + 1), Some(0), "a date past is no wait");
    for bad in ["-5", "soon", "Wed, 41 Oct 2015 07:28:00 GMT", ""] {
        assert_eq!(parse_retry_after_ms(bad, NOW), None, "{bad:?}");
    }
    assert!(retry_after(&lookup(&[]), NOW).is_empty());
}

#[test]
fn garbage_never_panics() {
    let long = "9".repeat(400);
    for value in
        ["", " ", "NaN", "inf", "1e400", "18446744073709551616", "１s", "µ", "2025-08-21T12:40:59Zjunk", long.as_str()]
    {
        let headers = lookup(&[
            ("x-ratelimit-remaining-requests", value),
            ("x-ratelimit-reset-requests", value),
            ("anthropic-ratelimit-requests-remaining", value),
            ("anthropic-ratelimit-requests-reset", value),
            ("retry-after", value),
            ("retry-after-ms", value),
        ]);
        let _ = openai(&headers, NOW);
        let _ = anthropic(&headers, NOW);
        let _ = parse_rfc3339_ms(value);
        let _ = parse_duration_ms(value);
    }
}
