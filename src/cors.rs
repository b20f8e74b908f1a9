//! CORS for browser clients: off unless `settings.cors_origins` names origins.
//! Preflights are answered without authentication (browsers send none); the
//! actual request is authenticated as usual.

/// Headers a browser may read from our answers (beyond the CORS-safelisted ones).
pub const EXPOSED_HEADERS: &str = "x-request-id, x-gateway-provider, x-gateway-region, x-gateway-model, \
x-gateway-attempts, x-gateway-overhead-ms, x-gateway-cost-usd, x-ratelimit-limit-requests, \
x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, \
x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, retry-after, x-should-retry";

pub const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";

/// The longest a request header list may be echoed back in a preflight answer.
const MAX_REQUEST_HEADERS: usize = 2048;

/// The value of `Access-Control-Allow-Origin` for this `Origin`, when it is allowed.
pub fn allow_origin<'a>(allowed: &'a [String], origin: Option<&'a str>) -> Option<&'a str> {
    let origin = origin?;
    if allowed.iter().any(|a| a == "*") {
        return Some("*");
    }
    allowed.iter().find(|a| a.eq_ignore_ascii_case(origin)).map(String::as_str)
}

/// The request headers a preflight may allow: what the browser asked for, when it
/// is a plain comma-separated list of header names.
pub fn allow_headers(requested: Option<&str>) -> Option<&str> {
    let requested = requested?.trim();
    let plain = requested.len() <= MAX_REQUEST_HEADERS
        && requested.split(',').all(|name| {
            let name = name.trim();
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    plain.then_some(requested)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let allowed = origins(&["https://app.example.com"]);
        assert_eq!(allow_origin(&allowed, Some("https://app.example.com")), Some("https://app.example.com"));
        assert_eq!(allow_origin(&allowed, Some("https://evil.example")), None);
        assert_eq!(allow_origin(&allowed, None), None);
        assert_eq!(allow_origin(&[], Some("https://app.example.com")), None, "off by default");
        assert_eq!(allow_origin(&origins(&["*"]), Some("https://any.example")), Some("*"));
    }

    #[test]
    fn preflight_headers_are_echoed_only_when_plain() {
        assert_eq!(
            allow_headers(Some("authorization, content-type, x-stainless-os")),
            Some("authorization, content-type, x-stainless-os")
        );
        assert_eq!(allow_headers(Some("authorization\r\nx-evil: 1")), None);
        assert_eq!(allow_headers(Some("")), None);
        assert_eq!(allow_headers(None), None);
    }
}
