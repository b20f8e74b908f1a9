//! Adapter for the Google AI Studio Gemini API (`generativelanguage.googleapis.com`):
//! OpenAI Chat Completions in, `generateContent` / `streamGenerateContent?alt=sse`
//! out, and back. Also `/v1/embeddings` through `batchEmbedContents`. No I/O.
//!
//! Conventions kept lossless across the translation:
//! - Gemini thought signatures ride on `tool_calls[i].extra_content.google.thought_signature`
//!   (Google's own OpenAI-compatibility convention) and are echoed back on the matching
//!   `functionCall` part; a signature on a text part rides on the message (or delta)
//!   as `extra_content.google.thought_signature` and goes back on the last text part.
//! - Thought summaries (`thought: true` parts) become `reasoning_content`.
//! - Tool and response schemas go out as plain JSON Schema (`parametersJsonSchema`,
//!   `responseJsonSchema`), so nothing is lost to the older OpenAPI-subset `Schema`.

mod embeddings;
mod request;
mod response;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

pub use embeddings::{embeddings_request, embeddings_response};
pub use request::{chat_request, count_tokens_request};
pub use response::{chat_response, error_details};
pub use stream::{stream_translator, GeminiStreamTranslator};

use crate::protocol::USER_AGENT;
use crate::providers::AttemptContext;

/// The model id as the path segment Gemini expects: without a `models/` prefix
/// (configs may carry either form) and percent-encoded, so a configured name can
/// never change the path or add a query.
fn model_segment(upstream_model: &str) -> String {
    let name = bare_model_name(upstream_model);
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn bare_model_name(upstream_model: &str) -> &str {
    upstream_model.strip_prefix("models/").unwrap_or(upstream_model)
}

/// `{base_url}/models/{model}:{method}`.
fn method_url(ctx: &AttemptContext, method: &str) -> String {
    format!("{}/models/{}:{method}", ctx.provider.base_url.trim_end_matches('/'), model_segment(ctx.upstream_model))
}

/// Protocol headers plus the provider's own key; nothing of the client's leaves.
fn headers(ctx: &AttemptContext, stream: bool) -> Vec<(&'static str, String)> {
    let accept = if stream { "text/event-stream" } else { "application/json" };
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", accept.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    if let Some(key) = ctx.api_key {
        headers.push(("x-goog-api-key", key.to_string()));
    }
    headers
}

/// Google's Gemini API (AI Studio).
pub struct Gemini;

impl super::ProviderAdapter for Gemini {
    fn wire(&self) -> super::Wire {
        super::Wire::Gemini
    }

    fn context_overflow(&self) -> &'static [&'static str] {
        &["exceeds the maximum number of tokens"]
    }

    fn chat_request(
        &self,
        ctx: &AttemptContext,
        request: &mut crate::protocol::openai::ChatRequest,
        _max_output_tokens: Option<u64>,
    ) -> Result<super::UpstreamRequest, crate::error::GatewayError> {
        chat_request(ctx, request)
    }

    fn chat_response(&self, ctx: &AttemptContext, body: &[u8]) -> Result<super::WholeAnswer, super::AttemptFailure> {
        chat_response(ctx, body)
            .map(super::WholeAnswer::Translated)
            .map_err(|reason| super::refusal_or_invalid(&reason))
    }

    fn stream_translator(&self, ctx: &AttemptContext, _wants: super::StreamWants) -> Box<dyn super::StreamTranslator> {
        Box::new(stream_translator(ctx, true))
    }

    fn count_tokens_request(
        &self,
        ctx: &AttemptContext,
        count: super::TokenCount,
    ) -> Option<Result<super::UpstreamRequest, crate::error::GatewayError>> {
        Some(count_tokens_request(ctx, count.request))
    }

    fn count_tokens_response(&self, body: &[u8]) -> Result<u64, super::AttemptFailure> {
        super::token_count(body, "totalTokens")
    }

    fn embeddings_request(
        &self,
        ctx: &AttemptContext,
        request: &crate::protocol::openai::EmbeddingsRequest,
    ) -> Option<Result<super::UpstreamRequest, crate::error::GatewayError>> {
        let dimensions = request.extra.get("dimensions").and_then(|d| d.as_u64()).and_then(|d| u32::try_from(d).ok());
        Some(embeddings_request(ctx, &request.input, dimensions))
    }

    fn embeddings_response(
        &self,
        ctx: &AttemptContext,
        request: &crate::protocol::openai::EmbeddingsRequest,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, super::AttemptFailure> {
        // In OpenAI's shape, base64 when asked (as the SDKs do by default).
        let base64 = request.extra.get("encoding_format").and_then(|v| v.as_str()) == Some("base64");
        let mut list = embeddings_response(ctx, &body)
            .map_err(|_| super::AttemptFailure::InvalidResponse("the answer has no embeddings"))?;
        if base64 {
            super::embeddings_as_base64(&mut list);
        }
        serde_json::to_vec(&list).map_err(|_| super::AttemptFailure::InvalidResponse("the answer has no embeddings"))
    }
}
