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
    let seconds = super::decimal::parse_f64(value.trim())?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some((seconds.ceil() as u64).min(3600))
}

/// The code a provider's "the prompt does not fit the context window" carries
/// once read (OpenAI's own; other providers' phrasings are given it).
pub const CONTEXT_LENGTH_EXCEEDED: &str = "context_length_exceeded";

/// Gives a provider's 4xx the code [`CONTEXT_LENGTH_EXCEEDED`] when its message
/// says, in that provider's words (`phrases`, lowercase), that the prompt is too
/// long for the model: the attempt loop then looks for a larger context window.
pub fn mark_context_overflow(mut failure: AttemptFailure, phrases: &[&str]) -> AttemptFailure {
    if let AttemptFailure::Status { status: 400 | 413 | 422, message: Some(message), code, .. } = &mut failure {
        let message = message.to_ascii_lowercase();
        let unnamed = code.is_none() || code.as_deref() == Some("invalid_request_error");
        if unnamed && phrases.iter().any(|p| message.contains(p)) {
            *code = Some(CONTEXT_LENGTH_EXCEEDED.into());
        }
    }
    failure
}

/// Whether a failure is a provider saying the prompt does not fit its context window.
pub fn is_context_overflow(failure: &AttemptFailure) -> bool {
    matches!(failure, AttemptFailure::Status { code: Some(code), .. } if code == CONTEXT_LENGTH_EXCEEDED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(status: u16, body: &str, phrases: &[&str]) -> bool {
        is_context_overflow(&mark_context_overflow(status_failure(status, None, body.as_bytes()), phrases))
    }

    #[test]
    fn context_overflow_in_each_providers_words() {
        // OpenAI: its own code.
        let openai = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert!(marked(400, openai, &[]));
        // OpenAI-compatible servers (vLLM) without the code.
        let vllm = r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}"#;
        assert!(marked(400, vllm, &["maximum context length"]));
        // Anthropic.
        let anthropic = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}"#;
        assert!(marked(400, anthropic, &["prompt is too long"]));
        // Gemini.
        let gemini = r#"{"error":{"code":400,"message":"The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        assert!(marked(400, gemini, &["exceeds the maximum number of tokens"]));
        // Bedrock.
        assert!(marked(400, r#"{"message":"Input is too long for requested model."}"#, &["input is too long"]));
        // Not every 400 is one, nor any other status.
        assert!(!marked(400, r#"{"error":{"message":"Invalid value for temperature"}}"#, &["prompt is too long"]));
        assert!(!marked(500, anthropic, &["prompt is too long"]));
        let other_code = r#"{"error":{"message":"prompt is too long","code":"content_filter"}}"#;
        assert!(!marked(400, other_code, &["prompt is too long"]), "a provider's own other code stays");
    }
}
