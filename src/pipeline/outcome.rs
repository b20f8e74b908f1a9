//! What an attempt says about its endpoint (its health outcome, its learned
//! quota), and its name in the request log.

use super::{HealthView, Reply};
use crate::gateway::is_context_overflow;
use crate::health::Outcome;
use crate::providers::quota::QuotaReading;
use crate::providers::{AttemptFailure, ProviderAdapter};

/// Reads what an answer (any status) says about its endpoint's remaining quota,
/// and reports it with the endpoint's health.
pub(super) fn learn_quota<H: HealthView>(
    health: &H,
    provider_id: &str,
    adapter: &dyn ProviderAdapter,
    reply: &impl Reply,
    now_ms: u64,
) -> QuotaReading {
    let reading = adapter.quota(&|name| reply.header(name), now_ms);
    // A bare retry-after is the failure's business (its cooldown), not learned quota.
    if reading.windows().iter().any(Option::is_some) {
        health.record(provider_id, Outcome::Quota(reading));
    }
    reading
}

/// A non-2xx answer as a failure, read by its adapter. A 429 without a usable
/// `retry-after` waits until the reset its rate-limit headers give.
pub(super) async fn failure_of(
    adapter: &dyn ProviderAdapter,
    reply: &mut impl Reply,
    quota: &QuotaReading,
    within_ms: u64,
) -> AttemptFailure {
    let retry_after = reply.header("retry-after");
    let body = reply.body(within_ms).await.unwrap_or_default();
    let mut failure = adapter.error(reply.status(), retry_after.as_deref(), &body);
    if let AttemptFailure::Status { status: 429, retry_after_s: wait @ None, .. } = &mut failure {
        *wait = quota.wait_ms().map(|ms| ms.div_ceil(1000).clamp(1, 3600));
    }
    failure
}

/// What the request itself may cause, so that its failures are never held
/// against an endpoint every tenant shares.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RequestTraits {
    /// It names resources the provider fetches itself (image or file URLs): a
    /// 401/403 may be about them rather than the gateway's own key.
    pub names_external_resources: bool,
    /// Its answer cannot be expected to start fast (a long non-streamed
    /// generation): a first-byte timeout says nothing about the endpoint's liveness.
    pub slow_first_byte_expected: bool,
}

/// The health outcome of a failed attempt; `None` when it says nothing about the
/// endpoint (the gateway's own config, a request this provider cannot take, or
/// what the request itself caused). Classified by cause:
/// - endpoint failures: connection errors, 5xx, broken answers, first-byte timeouts of
///   requests that could answer fast, 401/403 about the gateway's own key;
/// - capacity: 429 (a cooldown, never a breaker failure);
/// - the caller's: other 4xx, 401/403 about a resource the request names, timeouts of
///   answers that cannot start fast.
pub fn health_outcome(failure: &AttemptFailure, traits: RequestTraits) -> Option<Outcome> {
    match failure {
        AttemptFailure::MissingSecret | AttemptFailure::Unservable(_) => None,
        AttemptFailure::Status { status: 401 | 403, .. } if traits.names_external_resources => None,
        AttemptFailure::Timeout if traits.slow_first_byte_expected => None,
        AttemptFailure::Status { status: 429, retry_after_s, .. } => {
            Some(Outcome::RateLimited { retry_after_ms: retry_after_s.map(|s| s * 1000) })
        }
        AttemptFailure::Status { status: 401 | 403, .. } => Some(Outcome::AuthFailure),
        AttemptFailure::Status { status, .. } if (400..500).contains(status) && *status != 404 && *status != 408 => {
            None
        }
        _ => Some(Outcome::Failure),
    }
}

pub fn outcome_name(failure: &AttemptFailure) -> &'static str {
    match failure {
        AttemptFailure::MissingSecret => "missing_secret",
        AttemptFailure::Connect => "connect_error",
        AttemptFailure::Timeout => "timeout",
        AttemptFailure::Status { status: 429, .. } => "rate_limited",
        failure if is_context_overflow(failure) => "context_length_exceeded",
        AttemptFailure::Status { status: 400..=499, .. } => "client_error",
        AttemptFailure::Status { .. } => "server_error",
        AttemptFailure::InvalidResponse(_) => "invalid_response",
        AttemptFailure::StreamError(_) => "stream_error",
        AttemptFailure::Unservable(_) => "unservable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::failure::status_failure;

    fn health_outcome(failure: &AttemptFailure) -> Option<Outcome> {
        super::health_outcome(failure, RequestTraits::default())
    }

    #[test]
    fn what_the_request_causes_is_never_held_against_the_endpoint() {
        let with_url = RequestTraits { names_external_resources: true, ..Default::default() };
        assert_eq!(super::health_outcome(&status_failure(403, None, b"{}"), with_url), None);
        assert_eq!(super::health_outcome(&status_failure(500, None, b"{}"), with_url), Some(Outcome::Failure));
        let long = RequestTraits { slow_first_byte_expected: true, ..Default::default() };
        assert_eq!(super::health_outcome(&AttemptFailure::Timeout, long), None);
        assert_eq!(super::health_outcome(&AttemptFailure::Connect, long), Some(Outcome::Failure));
    }

    #[test]
    fn outcomes_by_failure() {
        let status = |code: u16| status_failure(code, None, b"{}");
        assert_eq!(health_outcome(&status(500)), Some(Outcome::Failure));
        assert_eq!(health_outcome(&status(404)), Some(Outcome::Failure), "our model name is wrong");
        assert_eq!(health_outcome(&status(401)), Some(Outcome::AuthFailure));
        assert_eq!(health_outcome(&status(403)), Some(Outcome::AuthFailure));
        assert_eq!(health_outcome(&status(400)), None, "the request's own mistake");
        assert_eq!(health_outcome(&status(422)), None);
        assert_eq!(
            health_outcome(&status_failure(429, Some("3"), b"{}")),
            Some(Outcome::RateLimited { retry_after_ms: Some(3_000) })
        );
        assert_eq!(health_outcome(&AttemptFailure::MissingSecret), None);
        assert_eq!(health_outcome(&AttemptFailure::Timeout), Some(Outcome::Failure));
        assert_eq!(health_outcome(&AttemptFailure::Connect), Some(Outcome::Failure));
        assert_eq!(health_outcome(&AttemptFailure::InvalidResponse("html")), Some(Outcome::Failure));
    }

    #[test]
    fn log_names() {
        assert_eq!(outcome_name(&status_failure(429, None, b"")), "rate_limited");
        assert_eq!(outcome_name(&status_failure(400, None, b"")), "client_error");
        assert_eq!(outcome_name(&status_failure(502, None, b"")), "server_error");
        assert_eq!(outcome_name(&AttemptFailure::Timeout), "timeout");
    }
}
