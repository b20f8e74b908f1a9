//! One adapter per provider kind: build the upstream request, read the answer,
//! translate streams event by event. No I/O here; `edge/` sends what these build.
//!
//! The canonical form is OpenAI Chat Completions: every adapter takes a
//! [`ChatRequest`](crate::protocol::openai::ChatRequest) and gives back OpenAI
//! `chat.completion` bodies and `chat.completion.chunk` payloads, so the rest of
//! the gateway (accounting, failover, inbound Anthropic) sees one shape.

pub mod anthropic;
pub mod bedrock;
mod common;
pub mod gemini;
pub mod openai;

use crate::config::Provider;

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

    /// For native relaying: the provider's own events seen so far, to forward as
    /// they are (the canonical chunks are then only watched, not sent).
    fn take_raw(&mut self, _out: &mut Vec<u8>) {}
}
