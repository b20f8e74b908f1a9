//! Why one attempt did not produce an answer, and reading a provider's error
//! body into it (the default for OpenAI-shaped errors; adapters may refine it).

use crate::error::GatewayError;
use crate::protocol::openai::{describe_error, ErrorEnvelope, ErrorProbe};

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
    /// This provider cannot take the request as it is (e.g. a parameter it has no
    /// equivalent for); another target may.
    Unservable(GatewayError),
}

/// Reads a provider's error body (OpenAI-shaped, or anything else) into a failure.
pub fn status_failure(status: u16, retry_after: Option<&str>, body: &[u8]) -> AttemptFailure {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
    let error = envelope.error.unwrap_or(ErrorProbe { message: envelope.message, ..ErrorProbe::default() });
    AttemptFailure::Status {
        status,
        retry_after_s: retry_after.and_then(parse_retry_after),
        message: error.message.clone().filter(|_| is_json(body)).map(|_| describe_error(&error)),
        code: code_of(&error),
        param: error.param.clone(),
    }
}

fn is_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn code_of(error: &ErrorProbe) -> Option<String> {
    error.code.as_ref().and_then(|c| c.as_str().map(str::to_string))
}

/// `Retry-After` as delta-seconds, clamped to an hour so one header cannot park an endpoint for a day.
pub fn parse_retry_after(value: &str) -> Option<u64> {
    let seconds: f64 = value.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some((seconds.ceil() as u64).min(3600))
}
