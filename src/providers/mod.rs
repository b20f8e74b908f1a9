//! One adapter per provider kind: build the upstream request, read the answer,
//! translate streams event by event. No I/O here; `edge/` sends what these build.
//!
//! The canonical form is OpenAI Chat Completions: every adapter takes a
//! [`ChatRequest`](crate::protocol::openai::ChatRequest) and gives back OpenAI
//! `chat.completion` bodies and `chat.completion.chunk` payloads (built with
//! `protocol::chunk`), so the rest of the gateway (accounting, failover, client dialects
//! Anthropic) sees one shape.

pub mod anthropic;
pub mod bedrock;
mod common;
mod decimal;
pub mod failure;
pub mod gemini;
pub mod openai;
pub mod passthrough;
pub mod quota;

use crate::config::{Provider, ProviderKind};
use crate::error::GatewayError;
use crate::protocol::openai::{ChatRequest, EmbeddingsRequest};
pub use failure::AttemptFailure;

/// Header names (lowercase), from a static list.
pub type HeaderNames = &'static [&'static str];

/// A fully built upstream HTTP request (always POST).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub stream: bool,
}

/// What an adapter needs to know about one attempt.
#[derive(Debug, Clone, Copy)]
pub struct AttemptContext<'a> {
    pub provider: &'a Provider,
    /// The model name the provider knows.
    pub upstream_model: &'a str,
    /// The public model name the client asked for (reported back in `model`).
    pub public_model: &'a str,
    pub api_key: Option<&'a str>,
    /// Wall-clock time in ms since the Unix epoch (for `created` and request signing).
    pub now_ms: u64,
    /// Used as the `chatcmpl-…` id when the provider gives none.
    pub request_id: &'a str,
}

/// What a stream translator is asked for beyond the canonical chunks.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamWants {
    /// Keep the provider's own events for a native relay.
    pub raw: bool,
    /// The client asked for a JSON object (`response_format`), which kinds without
    /// a JSON mode of their own carry in a tool (`common::JSON_TOOL`).
    pub json_output: bool,
}

/// Why a stream could not be translated further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFault {
    /// The provider reported an error inside the stream (message, to be scrubbed).
    Upstream(String),
    /// The bytes are not the provider's format (bounded buffers exceeded, broken framing).
    Malformed(String),
}

/// Turns a provider's streamed body into OpenAI `chat.completion.chunk` JSON
/// payloads (and the final `[DONE]`), incrementally: bytes may be split anywhere.
pub trait StreamTranslator {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault>;
    /// The upstream body ended; flush what is pending.
    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault>;

    /// The prompt's tokens as the provider counted them, once it has said so before
    /// the end (Gemini does in every chunk); `None` until then, or never.
    fn prompt_tokens(&self) -> Option<u64> {
        None
    }

    /// For native relaying: the provider's own events seen so far, to forward as
    /// they are (the canonical chunks are then only watched, not sent).
    fn take_raw(&mut self, _out: &mut Vec<u8>) {}
}

/// The wire format a provider speaks. A client dialect that speaks the same one
/// may have its own body relayed natively (see [`ProviderAdapter::native_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAiChat,
    OpenAiResponses,
    AnthropicMessages,
    Gemini,
    BedrockConverse,
}

/// A whole (non-streamed) chat answer as read by an adapter.
#[derive(Debug, Clone, PartialEq)]
pub enum WholeAnswer {
    /// The provider's bytes already are a canonical `chat.completion`.
    Canonical,
    /// The provider's answer translated into a canonical `chat.completion`.
    Translated(serde_json::Value),
}

/// The client's own body and protocol headers, for relaying natively to a
/// provider that speaks the client's wire format.
#[derive(Debug, Clone, Copy)]
pub struct NativeBody<'a> {
    pub body: &'a serde_json::Map<String, serde_json::Value>,
    pub headers: &'a [(&'static str, String)],
    /// The target's output ceiling: a larger `max_tokens` is lowered to it.
    pub max_output_tokens: Option<u64>,
}

/// A request whose input tokens are to be counted: its canonical form, and the
/// client's own body when the provider speaks the client's wire format.
#[derive(Debug, Clone, Copy)]
pub struct TokenCount<'a> {
    pub request: &'a ChatRequest,
    pub native: Option<NativeBody<'a>>,
}

/// The one contract every provider kind implements. Pure: it builds requests
/// and reads answers; `edge/` sends and receives. Registered in [`adapter`].
pub trait ProviderAdapter: Sync {
    fn wire(&self) -> Wire;

    /// The upstream chat request from the canonical request. `max_output_tokens`
    /// is the target's ceiling, for providers that need an explicit maximum.
    fn chat_request(
        &self,
        ctx: &AttemptContext,
        request: &mut ChatRequest,
        max_output_tokens: Option<u64>,
    ) -> Result<UpstreamRequest, GatewayError>;

    /// The client's own body relayed with only the model replaced, when the
    /// client speaks this provider's wire format. `None`: no native relay.
    fn native_request(
        &self,
        _ctx: &AttemptContext,
        _native: NativeBody,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        None
    }

    /// Reads a whole answer (a 2xx body).
    fn chat_response(&self, ctx: &AttemptContext, body: &[u8]) -> Result<WholeAnswer, AttemptFailure>;

    /// Translates the streamed body into canonical chunks, as `wants` asks.
    fn stream_translator(&self, ctx: &AttemptContext, wants: StreamWants) -> Box<dyn StreamTranslator>;

    /// The content type a streamed answer must have.
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }

    /// The upstream embeddings request; `None` when this kind serves no embeddings.
    fn embeddings_request(
        &self,
        _ctx: &AttemptContext,
        _request: &EmbeddingsRequest,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        None
    }

    /// An embeddings answer as OpenAI's `list` (bytes the client receives).
    fn embeddings_response(
        &self,
        _ctx: &AttemptContext,
        _request: &EmbeddingsRequest,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, AttemptFailure> {
        Ok(body)
    }

    /// The provider's own count of a request's input tokens (a free call, such as
    /// Anthropic's `count_tokens`); `None` when this kind cannot count.
    fn count_tokens_request(
        &self,
        _ctx: &AttemptContext,
        _count: TokenCount,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        None
    }

    /// The input tokens in a count's 2xx answer (`{"input_tokens": n}` by default).
    fn count_tokens_response(&self, body: &[u8]) -> Result<u64, AttemptFailure> {
        token_count(body, "input_tokens")
    }

    /// A free GET that shows whether a stuck endpoint is back (the cron probe):
    /// its URL and headers, or `None` when the kind has none.
    fn probe_request(&self, _provider: &Provider, _api_key: Option<&str>) -> Option<ProbeRequest> {
        None
    }

    /// A non-2xx answer as an attempt failure (a prompt too long for the model's
    /// context window gets the code `context_length_exceeded`).
    fn error(&self, status: u16, retry_after: Option<&str>, body: &[u8]) -> AttemptFailure {
        failure::mark_context_overflow(failure::status_failure(status, retry_after, body), self.context_overflow())
    }

    /// How this provider says a prompt does not fit the model's context window
    /// (lowercase phrases of its error message).
    fn context_overflow(&self) -> &'static [&'static str] {
        &["maximum context length"]
    }

    /// What an answer (any status) says about the endpoint's remaining quota.
    /// By default only `retry-after-ms` / `retry-after`, which anyone may send.
    fn quota(&self, header: quota::Headers, now_ms: u64) -> quota::QuotaReading {
        quota::retry_after(header, now_ms)
    }

    /// The answer headers read from this kind's answers (`quota`'s and the pipeline's):
    /// the runtime looks them up in one call; any other name is still answered, on its own.
    fn answer_headers(&self) -> HeaderNames {
        quota::COMMON_HEADERS
    }
}

/// The number in a count answer's top-level `field` (each provider names it its own way).
pub fn token_count(body: &[u8], field: &str) -> Result<u64, AttemptFailure> {
    let answer: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| AttemptFailure::InvalidResponse("the answer is not JSON"))?;
    answer
        .get(field)
        .and_then(serde_json::Value::as_u64)
        .ok_or(AttemptFailure::InvalidResponse("the answer has no token count"))
}

/// A whole streamed body (SSE, or Bedrock's event stream) as one canonical
/// `chat.completion`: run through the adapter's stream translator in one pass and
/// assembled (see [`crate::protocol::assemble`]). A stream that carries an error
/// or ends before every one of the `choices` finished is a failure, never a
/// partial answer.
pub fn assemble_stream(
    mut translator: Box<dyn StreamTranslator>,
    body: &[u8],
    choices: u64,
) -> Result<serde_json::Value, AttemptFailure> {
    use crate::protocol::assemble::{AssembleError, Assembler};
    let mut events = Vec::new();
    let translated = translator.feed(body, &mut events).and_then(|()| translator.finish(&mut events));
    let mut assembler = Assembler::new(choices);
    // The events before a fault count: an error event there says more than the fault.
    let assembled = events.iter().try_for_each(|event| assembler.push(event));
    match (assembled, translated) {
        (Err(AssembleError::Upstream(message)), _) | (Ok(()), Err(StreamFault::Upstream(message))) => {
            Err(stream_error(message))
        }
        (Err(_), _) | (Ok(()), Err(StreamFault::Malformed(_))) => {
            Err(AttemptFailure::InvalidResponse("the stream could not be read"))
        }
        (Ok(()), Ok(())) => assembler
            .finish()
            .map_err(|_| AttemptFailure::InvalidResponse("the stream ended before the answer finished")),
    }
}

/// An error inside a stream: a safety refusal is the client's answer, anything else the provider's.
fn stream_error(message: String) -> AttemptFailure {
    if message.starts_with("content_filter: ") {
        refusal_or_invalid(&message)
    } else {
        AttemptFailure::StreamError(message)
    }
}

/// A health probe: GET this URL with these headers; any 2xx means up.
pub struct ProbeRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The one lookup from a provider kind to its adapter.
pub fn adapter(kind: &ProviderKind) -> &'static dyn ProviderAdapter {
    match kind {
        ProviderKind::Openai | ProviderKind::AzureOpenai { .. } => &openai::OpenAi,
        ProviderKind::Anthropic => &anthropic::Anthropic,
        ProviderKind::Gemini => &gemini::Gemini,
        ProviderKind::Bedrock { .. } => &bedrock::Bedrock,
    }
}

/// A provider's safety refusal is the client's answer (a 400, never failed over);
/// anything else unreadable is a broken answer.
pub fn refusal_or_invalid(reason: &str) -> AttemptFailure {
    match reason.strip_prefix("content_filter: ") {
        Some(detail) => AttemptFailure::Status {
            status: 400,
            retry_after_s: None,
            message: Some(format!("The provider refused the request: {detail}.")),
            code: Some("content_filter".into()),
            param: None,
        },
        None => AttemptFailure::InvalidResponse("the answer could not be read"),
    }
}

/// OpenAI's `encoding_format: "base64"` (what the official SDKs ask for by
/// default): each embedding's floats as little-endian f32 bytes, base64-encoded.
pub fn embeddings_as_base64(list: &mut serde_json::Value) {
    for item in list.get_mut("data").and_then(serde_json::Value::as_array_mut).into_iter().flatten() {
        if let Some(values) = item.get("embedding").filter(|e| e.is_array()) {
            let encoded = float32_base64(values);
            item["embedding"] = serde_json::Value::String(encoded);
        }
    }
}

fn float32_base64(values: &serde_json::Value) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| (v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::openai::ChatRequest;
    use std::cell::RefCell;

    /// Every header a kind's `quota` asks for, and what the pipeline reads from any
    /// answer, is in the kind's `answer_headers` (read in one call, not one by one).
    #[test]
    fn every_kind_lists_the_answer_headers_it_reads() {
        let kinds = [
            ProviderKind::Openai,
            ProviderKind::AzureOpenai { api_version: "2024-10-21".into() },
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
            ProviderKind::Bedrock { aws_region: "eu-central-1".into() },
        ];
        for kind in kinds {
            let adapter = adapter(&kind);
            let asked = RefCell::new(Vec::new());
            adapter.quota(
                &|name| {
                    asked.borrow_mut().push(name.to_string());
                    Some("1".into())
                },
                0,
            );
            let listed = adapter.answer_headers();
            for name in asked.into_inner().iter().map(String::as_str).chain(["content-type", "retry-after"]) {
                assert!(listed.contains(&name), "{kind:?}: {name} is read but not listed");
            }
        }
    }

    /// A JSON request asked for as a stream upstream (to assemble): every kind builds its streaming call.
    #[test]
    fn every_kind_streams_a_request_whose_stream_flag_is_on() {
        let kinds = [
            (ProviderKind::Openai, "https://api.example/v1/chat/completions", "text/event-stream"),
            (
                ProviderKind::AzureOpenai { api_version: "2024-10-21".into() },
                "https://az.example/openai/deployments/up/chat/completions?api-version=2024-10-21",
                "text/event-stream",
            ),
            (ProviderKind::Anthropic, "https://api.example/v1/messages", "text/event-stream"),
            (
                ProviderKind::Gemini,
                "https://api.example/v1/models/up:streamGenerateContent?alt=sse",
                "text/event-stream",
            ),
            (
                ProviderKind::Bedrock { aws_region: "eu-central-1".into() },
                "https://bedrock.example/model/up/converse-stream",
                "application/vnd.amazon.eventstream",
            ),
        ];
        for (kind, url, accept) in kinds {
            let base = match kind {
                ProviderKind::AzureOpenai { .. } => "https://az.example",
                ProviderKind::Bedrock { .. } => "https://bedrock.example",
                _ => "https://api.example/v1",
            };
            let provider = Provider {
                kind: kind.clone(),
                base_url: base.into(),
                api_key_secret: None,
                region: "us".into(),
                location_hint: None,
                limits: Default::default(),
            };
            let ctx = AttemptContext {
                provider: &provider,
                upstream_model: "up",
                public_model: "m",
                api_key: Some("AK:SK"),
                now_ms: 1_700_000_000_000,
                request_id: "req_1",
            };
            let mut request =
                ChatRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
            request.stream = Some(true);
            let up = adapter(&kind).chat_request(&ctx, &mut request, Some(1024)).unwrap();
            assert!(up.stream, "{kind:?}");
            assert_eq!(up.url, url);
            assert!(up.headers.contains(&("accept", accept.to_string())), "{kind:?}");
            assert_eq!(adapter(&kind).stream_content_type(), accept);
            if matches!(kind, ProviderKind::Openai | ProviderKind::AzureOpenai { .. }) {
                let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
                assert_eq!(body["stream_options"]["include_usage"], true, "usage arrives in the stream");
            }
        }
    }

    #[test]
    fn base64_embeddings_match_openai_encoding() {
        let mut list = serde_json::json!({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]});
        super::embeddings_as_base64(&mut list);
        assert_eq!(list["data"][0]["embedding"], "AACAPw==");
        assert_eq!(list["data"][1]["embedding"], "AACAPwAAAEA=");
    }
}
