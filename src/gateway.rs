//! The attempt loop's decisions, free of I/O: what an
//! attempt's failure means (try the next target, or answer the client now), and
//! the error a client sees when every target failed.

use crate::error::{scrub, GatewayError};
pub use crate::providers::failure::{is_context_overflow, parse_retry_after, status_failure, AttemptFailure};

/// What the attempt loop does after a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    TryNext,
    /// The answer is the client's to see (its own mistake, e.g. a provider's 400):
    /// retrying elsewhere would only repeat it.
    Answer(GatewayError),
}

pub fn judge(failure: &AttemptFailure, secrets: &[&str]) -> Verdict {
    match failure {
        AttemptFailure::Status { status, message, code, param, .. } if is_client_error(*status) => {
            let message = scrub(message.as_deref().unwrap_or("The provider rejected the request."), secrets);
            let mut error = GatewayError::new(
                *status,
                "invalid_request_error",
                code.clone().unwrap_or_else(|| "upstream_bad_request".into()),
                message,
            );
            if let Some(param) = param {
                error = error.with_param(param.clone());
            }
            Verdict::Answer(error)
        }
        _ => Verdict::TryNext,
    }
}

/// A provider's 4xx that is about the request itself. 401/403 (our key), 404 (our
/// model name), 408 and 429 are the gateway's problem and fail over instead.
fn is_client_error(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 408 | 429)
}

fn describe(failure: &AttemptFailure, secrets: &[&str]) -> String {
    match failure {
        AttemptFailure::MissingSecret => "its API key secret is not set".into(),
        AttemptFailure::Connect => "connection failed".into(),
        AttemptFailure::Timeout => "no response before the first-byte deadline".into(),
        AttemptFailure::Status { status: 401 | 403, .. } => "the provider rejected the gateway's credentials".into(),
        AttemptFailure::Status { status, message: Some(m), .. } => format!("HTTP {status}: {}", scrub(m, secrets)),
        AttemptFailure::Status { status, .. } => format!("HTTP {status}"),
        AttemptFailure::InvalidResponse(what) => format!("invalid response ({what})"),
        AttemptFailure::StreamError(m) => format!("error in stream: {}", scrub(m, secrets)),
        AttemptFailure::Unservable(e) => e.message.clone(),
    }
}

/// The client's error once every target failed, shaped by the kinds of failure seen.
pub fn exhausted(model: &str, failures: &[(&str, AttemptFailure)], secrets: &[&str]) -> GatewayError {
    let summary: Vec<String> =
        failures.iter().map(|(provider, failure)| format!("{provider}: {}", describe(failure, secrets))).collect();
    let message = format!(
        "No provider could serve model `{model}` ({} attempt{}): {}.",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" },
        summary.join("; ")
    );
    // What went wrong is told by the endpoints that were asked: one that could not
    // take the request at all (unservable) is the answer only when none was asked.
    let asked = || failures.iter().filter(|(_, f)| !matches!(f, AttemptFailure::Unservable(_)));
    if asked().next().is_none() {
        if let Some((_, AttemptFailure::Unservable(first))) = failures.first() {
            return first.clone();
        }
    }
    let all = |pred: fn(&AttemptFailure) -> bool| asked().next().is_some() && asked().all(|(_, f)| pred(f));
    if all(|f| matches!(f, AttemptFailure::Status { status: 429, .. })) {
        let wait = failures
            .iter()
            .filter_map(|(_, f)| match f {
                AttemptFailure::Status { retry_after_s, .. } => *retry_after_s,
                _ => None,
            })
            .min()
            .unwrap_or(1);
        return GatewayError::new(429, "requests", "upstream_rate_limited", message).with_retry_after(wait);
    }
    if all(|f| matches!(f, AttemptFailure::Timeout)) {
        return GatewayError::new(504, "server_error", "upstream_timeout", message);
    }
    if all(|f| matches!(f, AttemptFailure::Status { status: 401 | 403, .. } | AttemptFailure::MissingSecret)) {
        return GatewayError::new(502, "server_error", "upstream_auth_failed", message);
    }
    if all(|f| matches!(f, AttemptFailure::Status { status: 503 | 529, .. })) {
        return GatewayError::new(503, "server_error", "upstream_unavailable", message).with_retry_after(1);
    }
    GatewayError::new(502, "server_error", "upstream_error", message)
}

/// A 401/403 to a request that names external resources (image or file URLs): the
/// provider may have refused the resource, not the gateway's key, so it is the
/// caller's answer (never failed over, never held against the endpoint).
pub fn resource_denied(failure: &AttemptFailure, secrets: &[&str]) -> Option<GatewayError> {
    let AttemptFailure::Status { status: status @ (401 | 403), message, .. } = failure else { return None };
    let detail = message.as_deref().map(|m| format!(": {}", scrub(m, secrets))).unwrap_or_default();
    Some(GatewayError::invalid_request(
        "upstream_resource_denied",
        format!(
            "The provider refused access (HTTP {status}) while serving a request that names external resources (image or file URLs); check that they are readable{detail}."
        ),
    ))
}

/// After a failed attempt: wait and retry the same endpoint, move on, or answer.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    RetrySameAfter {
        wait_ms: u64,
    },
    NextCandidate,
    Answer(GatewayError),
    /// The prompt does not fit this target's context window: fail over only to a
    /// candidate whose window is larger (see [`larger_context`]), else answer this.
    LargerContext(GatewayError),
}

/// After a target with context window `failed` said the prompt does not fit: the
/// index, among the `later` candidates' windows, of the first that is larger.
/// A window not configured is never assumed larger, nor one after an unknown failed one.
pub fn larger_context(failed: Option<u64>, later: impl IntoIterator<Item = Option<u64>>) -> Option<usize> {
    let failed = failed?;
    later.into_iter().position(|window| window.is_some_and(|w| w > failed))
}

/// A 429 whose reset is this close is worth waiting for on the same endpoint.
pub const MAX_RETRY_AFTER_WAIT_MS: u64 = 2_000;
/// First same-endpoint retry waits U(0, 100 ms); the next U(0, 200 ms), ...
pub const BACKOFF_BASE_MS: u64 = 100;
pub const MAX_ATTEMPTS_PER_ENDPOINT: u32 = 2;

/// `attempts_here`: attempts already made on this endpoint (≥ 1). `jitter` in [0, 1).
///
/// A `RetrySameAfter` is what the failure calls for; the caller then asks the
/// endpoint's retry budget, which only a retry that happens should spend.
pub fn next_step(
    failure: &AttemptFailure,
    attempts_here: u32,
    deadline_left_ms: u64,
    first_byte_ms: u64,
    jitter: f64,
    secrets: &[&str],
) -> NextStep {
    if let Verdict::Answer(error) = judge(failure, secrets) {
        if is_context_overflow(failure) {
            return NextStep::LargerContext(error);
        }
        return NextStep::Answer(error);
    }
    let may_retry = attempts_here < MAX_ATTEMPTS_PER_ENDPOINT;
    let fits = |wait_ms: u64| wait_ms + first_byte_ms < deadline_left_ms;
    let wait = match failure {
        AttemptFailure::Status { status: 429, retry_after_s, .. } => match retry_after_s {
            Some(s) if s * 1000 <= MAX_RETRY_AFTER_WAIT_MS => Some(s * 1000),
            _ => None, // a long or unknown reset: cool down and fail over now
        },
        // Transient: one quick retry with full jitter, as the next call often works.
        AttemptFailure::Status { status: 500 | 502 | 504, .. }
        | AttemptFailure::Connect
        | AttemptFailure::InvalidResponse(_) => {
            let cap = BACKOFF_BASE_MS << attempts_here.saturating_sub(1).min(6);
            Some((cap as f64 * jitter.clamp(0.0, 1.0)) as u64)
        }
        // A silent endpoint, an overloaded one, our own credentials or a stream
        // error: retrying the same endpoint would only repeat it.
        _ => None,
    };
    match wait {
        Some(wait_ms) if may_retry && fits(wait_ms) => NextStep::RetrySameAfter { wait_ms },
        _ => NextStep::NextCandidate,
    }
}

/// Caps same-endpoint retries to a share of first attempts over a rolling window,
/// so an outage cannot multiply the load on a provider (Envoy's retry budget).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryBudget {
    window_start_ms: u64,
    first_attempts: u32,
    retries: u32,
}

pub const RETRY_BUDGET_WINDOW_MS: u64 = 10_000;
pub const RETRY_BUDGET_RATIO: f64 = 0.2;
pub const RETRY_BUDGET_MIN: u32 = 3;

impl RetryBudget {
    fn roll(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.window_start_ms) >= RETRY_BUDGET_WINDOW_MS {
            *self = RetryBudget { window_start_ms: now_ms, first_attempts: 0, retries: 0 };
        }
    }

    pub fn record_first_attempt(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.first_attempts += 1;
    }

    /// Takes one retry from the budget if there is one.
    pub fn try_retry(&mut self, now_ms: u64) -> bool {
        self.roll(now_ms);
        let allowed = (f64::from(self.first_attempts) * RETRY_BUDGET_RATIO).floor() as u32;
        if self.retries < allowed.max(RETRY_BUDGET_MIN) {
            self.retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> AttemptFailure {
        status_failure(code, None, body.as_bytes())
    }

    #[test]
    fn provider_400_is_answered_not_failed_over_and_keeps_its_code() {
        let failure = status(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        match judge(&failure, &[]) {
            Verdict::Answer(err) => {
                assert_eq!(err.status, 400);
                assert_eq!(err.code, "context_length_exceeded");
                assert_eq!(err.param.as_deref(), Some("messages"));
                assert!(err.message.contains("maximum context length"));
            }
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn transient_and_gateway_side_failures_fail_over() {
        for code in [401, 403, 404, 408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(judge(&status(code, "{}"), &[]), Verdict::TryNext, "status {code}");
        }
        for failure in [AttemptFailure::Connect, AttemptFailure::Timeout, AttemptFailure::InvalidResponse("html")] {
            assert_eq!(judge(&failure, &[]), Verdict::TryNext);
        }
    }

    #[test]
    fn provider_messages_are_scrubbed() {
        let failure = status(400, r#"{"error":{"message":"bad key sk-abcdef used with secret-1234"}}"#);
        let Verdict::Answer(err) = judge(&failure, &["secret-1234"]) else { panic!() };
        assert!(!err.message.contains("abcdef"));
        assert!(!err.message.contains("secret-1234"));
    }

    #[test]
    fn html_error_pages_are_never_quoted() {
        let failure = status(502, "<html><body>Bad Gateway sk-leak</body></html>");
        let AttemptFailure::Status { message, .. } = &failure else { panic!() };
        assert!(message.is_none());
        let err = exhausted("m", &[("p", failure)], &[]);
        assert!(!err.message.contains("html"));
    }

    #[test]
    fn exhausted_errors_follow_the_failures() {
        let rate_limited = status_failure(429, Some("7"), b"{}");
        let err = exhausted("m", &[("a", rate_limited.clone()), ("b", status_failure(429, Some("2"), b"{}"))], &[]);
        assert_eq!((err.status, err.retry_after_s), (429, Some(2)));
        assert_eq!(exhausted("m", &[("a", AttemptFailure::Timeout)], &[]).status, 504);
        let auth = exhausted("m", &[("a", status(401, "{}")), ("b", AttemptFailure::MissingSecret)], &[]);
        assert_eq!((auth.status, auth.code.as_ref()), (502, "upstream_auth_failed"));
        assert_eq!(exhausted("m", &[("a", status(503, "{}"))], &[]).status, 503);
        let mixed = exhausted("m", &[("a", rate_limited), ("b", AttemptFailure::Connect)], &[]);
        assert_eq!((mixed.status, mixed.code.as_ref()), (502, "upstream_error"));
        assert!(mixed.message.contains("a: HTTP 429"), "{}", mixed.message);
        assert!(mixed.message.contains("b: connection failed"));
        let unservable = AttemptFailure::Unservable(GatewayError::invalid_request("unsupported_model", "no"));
        let overloaded = exhausted("m", &[("a", status(529, "{}")), ("b", unservable.clone())], &[]);
        assert_eq!(overloaded.status, 503, "told by the endpoint that was asked, not the one that could not be");
        assert_eq!(exhausted("m", &[("b", unservable)], &[]).status, 400, "none asked: the unservable's own answer");
    }

    fn step(failure: &AttemptFailure, attempts: u32) -> NextStep {
        next_step(failure, attempts, 60_000, 10_000, 0.5, &[])
    }

    #[test]
    fn next_step_table() {
        let s500 = status(500, "{}");
        assert_eq!(step(&s500, 1), NextStep::RetrySameAfter { wait_ms: 50 });
        assert_eq!(step(&s500, 2), NextStep::NextCandidate, "at most two attempts per endpoint");
        assert_eq!(step(&AttemptFailure::Connect, 1), NextStep::RetrySameAfter { wait_ms: 50 });
        assert_eq!(step(&AttemptFailure::Timeout, 1), NextStep::NextCandidate, "never retry a silent endpoint");
        assert_eq!(step(&status(503, "{}"), 1), NextStep::NextCandidate);
        assert_eq!(step(&status(401, "{}"), 1), NextStep::NextCandidate);
        assert_eq!(step(&status_failure(429, Some("1"), b"{}"), 1), NextStep::RetrySameAfter { wait_ms: 1_000 });
        assert_eq!(step(&status_failure(429, Some("30"), b"{}"), 1), NextStep::NextCandidate);
        assert_eq!(step(&status_failure(429, None, b"{}"), 1), NextStep::NextCandidate);
        assert!(matches!(step(&status(400, "{}"), 1), NextStep::Answer(_)));
        // No retry that would overrun the deadline.
        assert_eq!(next_step(&s500, 1, 10_010, 10_000, 0.5, &[]), NextStep::NextCandidate);
    }

    #[test]
    fn a_prompt_too_long_looks_for_a_larger_context_window() {
        let too_long = status(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#,
        );
        let NextStep::LargerContext(error) = step(&too_long, 1) else { panic!("{:?}", step(&too_long, 1)) };
        assert_eq!(
            (error.status, error.code.as_ref()),
            (400, "context_length_exceeded"),
            "the answer if none is larger"
        );
        // The first later window that is larger: never a smaller or equal one.
        assert_eq!(larger_context(Some(8_192), [Some(4_096), Some(8_192), Some(128_000), Some(200_000)]), Some(2));
        assert_eq!(larger_context(Some(128_000), [Some(8_192), Some(128_000)]), None);
        assert_eq!(
            larger_context(Some(8_192), [None, Some(16_384)]),
            Some(1),
            "an unknown window is not assumed larger"
        );
        assert_eq!(larger_context(None, [Some(1_000_000)]), None, "nothing is known larger than an unknown window");
        assert_eq!(larger_context(Some(8_192), []), None);
    }

    #[test]
    fn backoff_is_full_jitter_and_grows() {
        let s500 = status(500, "{}");
        assert_eq!(next_step(&s500, 1, 60_000, 1_000, 0.0, &[]), NextStep::RetrySameAfter { wait_ms: 0 });
        assert_eq!(next_step(&s500, 1, 60_000, 1_000, 0.999, &[]), NextStep::RetrySameAfter { wait_ms: 99 });
    }

    #[test]
    fn retry_budget_is_twenty_percent_with_a_floor() {
        let mut budget = RetryBudget::default();
        for _ in 0..100 {
            budget.record_first_attempt(1_000);
        }
        let granted = (0..100).filter(|_| budget.try_retry(1_000)).count();
        assert_eq!(granted, 20);
        let mut quiet = RetryBudget::default();
        quiet.record_first_attempt(1_000);
        assert_eq!((0..10).filter(|_| quiet.try_retry(1_000)).count(), 3, "floor of 3 per window");
        // A new window refills it.
        assert!(quiet.try_retry(1_000 + RETRY_BUDGET_WINDOW_MS));
    }

    #[test]
    fn retry_after_is_clamped_and_tolerant() {
        assert_eq!(parse_retry_after("2"), Some(2));
        assert_eq!(parse_retry_after(" 0.2 "), Some(1));
        assert_eq!(parse_retry_after("86400"), Some(3600));
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
