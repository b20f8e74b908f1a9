//! The attempt loop's decisions, free of I/O: what an
//! attempt's failure means (try the next target, or answer the client now), and
//! the error a client sees when every target failed.

use crate::error::{scrub, GatewayError};
use crate::protocol::openai::{ErrorEnvelope, ErrorProbe};
use crate::providers::openai::describe_error;

/// Why one attempt did not produce an answer for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptFailure {
    /// The provider's key is not set as a Worker secret.
    MissingSecret,
    /// The connection failed before any response (refused, reset, DNS, TLS).
    Connect,
    /// No first byte within the deadline.
    Timeout,
    /// A non-2xx answer.
    Status {
        status: u16,
        retry_after_s: Option<u64>,
        message: Option<String>,
        code: Option<String>,
        param: Option<String>,
    },
    /// A 2xx answer that is not what the protocol promises (HTML, broken JSON, wrong type).
    InvalidResponse(&'static str),
    /// An error event inside a stream before any content.
    StreamError(String),
}

/// What the attempt loop does after a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    TryNext,
    /// The answer is the client's to see (its own mistake, e.g. a provider's 400):
    /// retrying elsewhere would only repeat it.
    Answer(GatewayError),
}

/// Reads a provider's error body (OpenAI-shaped, or anything else) into a failure.
pub fn status_failure(status: u16, retry_after: Option<&str>, body: &[u8]) -> AttemptFailure {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
    let error = envelope.error.unwrap_or_default();
    AttemptFailure::Status {
        status,
        retry_after_s: retry_after.and_then(parse_retry_after),
        message: error
            .message
            .clone()
            .filter(|_| is_json(body))
            .map(|_| describe_error(&error)),
        code: code_of(&error),
        param: error.param.clone(),
    }
}

fn is_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn code_of(error: &ErrorProbe) -> Option<String> {
    error
        .code
        .as_ref()
        .and_then(|c| c.as_str().map(str::to_string))
}

/// `Retry-After` as delta-seconds, clamped to an hour so one header cannot park an endpoint for a day.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let seconds: f64 = value.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some((seconds.ceil() as u64).min(3600))
}

pub fn judge(failure: &AttemptFailure, secrets: &[&str]) -> Verdict {
    match failure {
        AttemptFailure::Status {
            status,
            message,
            code,
            param,
            ..
        } if is_client_error(*status) => {
            let message = scrub(
                message
                    .as_deref()
                    .unwrap_or("The provider rejected the request."),
                secrets,
            );
            let mut error = GatewayError::new(
                *status,
                "invalid_request_error",
                code.clone()
                    .unwrap_or_else(|| "upstream_bad_request".into()),
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
        AttemptFailure::Status {
            status: 401 | 403, ..
        } => "the provider rejected the gateway's credentials".into(),
        AttemptFailure::Status {
            status,
            message: Some(m),
            ..
        } => format!("HTTP {status}: {}", scrub(m, secrets)),
        AttemptFailure::Status { status, .. } => format!("HTTP {status}"),
        AttemptFailure::InvalidResponse(what) => format!("invalid response ({what})"),
        AttemptFailure::StreamError(m) => format!("error in stream: {}", scrub(m, secrets)),
    }
}

/// The client's error once every target failed, shaped by the kinds of failure seen.
pub fn exhausted(
    model: &str,
    failures: &[(&str, AttemptFailure)],
    secrets: &[&str],
) -> GatewayError {
    let summary: Vec<String> = failures
        .iter()
        .map(|(provider, failure)| format!("{provider}: {}", describe(failure, secrets)))
        .collect();
    let message = format!(
        "No provider could serve model `{model}` ({} attempt{}): {}.",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" },
        summary.join("; ")
    );
    let all = |pred: fn(&AttemptFailure) -> bool| {
        !failures.is_empty() && failures.iter().all(|(_, f)| pred(f))
    };
    if all(|f| matches!(f, AttemptFailure::Status { status: 429, .. })) {
        let wait = failures
            .iter()
            .filter_map(|(_, f)| match f {
                AttemptFailure::Status { retry_after_s, .. } => *retry_after_s,
                _ => None,
            })
            .min()
            .unwrap_or(1);
        return GatewayError::new(429, "requests", "upstream_rate_limited", message)
            .with_retry_after(wait);
    }
    if all(|f| matches!(f, AttemptFailure::Timeout)) {
        return GatewayError::new(504, "server_error", "upstream_timeout", message);
    }
    if all(|f| {
        matches!(
            f,
            AttemptFailure::Status {
                status: 401 | 403,
                ..
            } | AttemptFailure::MissingSecret
        )
    }) {
        return GatewayError::new(502, "server_error", "upstream_auth_failed", message);
    }
    if all(|f| {
        matches!(
            f,
            AttemptFailure::Status {
                status: 503 | 529,
                ..
            }
        )
    }) {
        return GatewayError::new(503, "server_error", "upstream_unavailable", message)
            .with_retry_after(1);
    }
    GatewayError::new(502, "server_error", "upstream_error", message)
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
            assert_eq!(
                judge(&status(code, "{}"), &[]),
                Verdict::TryNext,
                "status {code}"
            );
        }
        for failure in [
            AttemptFailure::Connect,
            AttemptFailure::Timeout,
            AttemptFailure::InvalidResponse("html"),
        ] {
            assert_eq!(judge(&failure, &[]), Verdict::TryNext);
        }
    }

    #[test]
    fn provider_messages_are_scrubbed() {
        let failure = status(
            400,
            r#"{"error":{"message":"bad key sk-abcdef used with secret-1234"}}"#,
        );
        let Verdict::Answer(err) = judge(&failure, &["secret-1234"]) else {
            panic!()
        };
        assert!(!err.message.contains("abcdef"));
        assert!(!err.message.contains("secret-1234"));
    }

    #[test]
    fn html_error_pages_are_never_quoted() {
        let failure = status(502, "<html><body>Bad Gateway sk-leak</body></html>");
        let AttemptFailure::Status { message, .. } = &failure else {
            panic!()
        };
        assert!(message.is_none());
        let err = exhausted("m", &[("p", failure)], &[]);
        assert!(!err.message.contains("html"));
    }

    #[test]
    fn exhausted_errors_follow_the_failures() {
        let rate_limited = status_failure(429, Some("7"), b"{}");
        let err = exhausted(
            "m",
            &[
                ("a", rate_limited.clone()),
                ("b", status_failure(429, Some("2"), b"{}")),
            ],
            &[],
        );
        assert_eq!((err.status, err.retry_after_s), (429, Some(2)));
        assert_eq!(
            exhausted("m", &[("a", AttemptFailure::Timeout)], &[]).status,
            504
        );
        let auth = exhausted(
            "m",
            &[
                ("a", status(401, "{}")),
                ("b", AttemptFailure::MissingSecret),
            ],
            &[],
        );
        assert_eq!(
            (auth.status, auth.code.as_ref()),
            (502, "upstream_auth_failed")
        );
        assert_eq!(exhausted("m", &[("a", status(503, "{}"))], &[]).status, 503);
        let mixed = exhausted(
            "m",
            &[("a", rate_limited), ("b", AttemptFailure::Connect)],
            &[],
        );
        assert_eq!((mixed.status, mixed.code.as_ref()), (502, "upstream_error"));
        assert!(mixed.message.contains("a: HTTP 429"), "{}", mixed.message);
        assert!(mixed.message.contains("b: connection failed"));
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
