//! What clients speak. One contract, [`ClientDialect`]: parse a body into the
//! canonical request, and encode an answer, a stream and an error back in the
//! client's own shape. The route table maps a path to a dialect once
//! ([`for_path`]); the pipeline never asks which dialect it serves.

mod anthropic_messages;
mod openai_chat;
pub mod openai_responses;

use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::providers::{AttemptFailure, NativeBody, ProviderAdapter, WholeAnswer, Wire};
use crate::relay::ClientEncoder;
use serde_json::{Map, Value};

pub use anthropic_messages::thread as anthropic_thread;
pub use anthropic_messages::AnthropicMessages;
pub use openai_chat::OpenAiChat;
pub use openai_responses::OpenAiResponses;

/// A client's request: the canonical form, plus its own body when a provider
/// that speaks the same wire format may receive it as it is.
#[derive(Debug, Clone)]
pub struct ClientCall {
    pub request: ChatRequest,
    pub native: Option<Native>,
    /// The client's own request fields that its dialect echoes back in answers
    /// (the Responses API repeats its settings); empty for the others.
    pub echo: Map<String, Value>,
    /// The dialect keeps the whole answer (a thread's next turn continues from it).
    pub keep_answer: bool,
}

#[derive(Debug, Clone)]
pub struct Native {
    pub body: Map<String, Value>,
    /// The client's protocol headers that travel with a native relay.
    pub headers: Vec<(&'static str, String)>,
}

/// A client body as read: a call, or a thread's turn to complete from its thread.
pub enum Read {
    Call(ClientCall),
    Threaded(anthropic_thread::Turn),
}

/// How one answer is shaped for the client.
pub struct Shape<'a> {
    /// The provider receives the client's own body and answers in its format.
    pub native: bool,
    pub upstream_model: &'a str,
    pub public_model: &'a str,
    /// The id of a message the gateway makes up (dialects that need one).
    pub message_id: &'a str,
    /// When the answer was made, in seconds since the epoch.
    pub created_s: u64,
    /// The gateway's estimate of the prompt's tokens, for a stream that must name
    /// them before a provider that counts only at the end has (Anthropic's `message_start`).
    pub estimated_input_tokens: u64,
}

/// A whole answer for the client, and what the dialect keeps of it (the
/// Responses API stores responses to continue them).
pub struct Encoded {
    pub body: Vec<u8>,
    pub kept: Option<Value>,
}

pub trait ClientDialect: Sync {
    /// The wire format this dialect is (for native relaying).
    fn wire(&self) -> Wire;

    /// Reads a client body. `header` gives the request's headers by name.
    fn parse(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Result<ClientCall, GatewayError>;

    /// Reads a client body as the chat route serves it: a call, or a turn of a
    /// thread the gateway keeps, which the edge completes from the stored thread
    /// first (Anthropic's message threads).
    fn read(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Result<Read, GatewayError> {
        self.parse(body, header).map(Read::Call)
    }

    /// The encoder of a streamed answer, and whether the client wants the usage chunk.
    fn stream_encoder(&self, call: &ClientCall, shape: &Shape) -> (Box<dyn ClientEncoder>, bool);

    /// A whole answer's body for the client, from the provider's bytes as the
    /// adapter read them.
    fn whole_answer(
        &self,
        call: &ClientCall,
        raw: Vec<u8>,
        answer: WholeAnswer,
        shape: &Shape,
    ) -> Result<Encoded, AttemptFailure>;

    /// An error body in this dialect's shape.
    fn error_body(&self, error: &GatewayError, request_id: &str) -> String;
}

/// The route table's one lookup: which dialect a chat path speaks.
pub fn for_path(path: &str) -> Option<&'static dyn ClientDialect> {
    match path {
        "/v1/chat/completions" => Some(&OpenAiChat),
        "/v1/messages" => Some(&AnthropicMessages),
        "/v1/responses" => Some(&OpenAiResponses),
        _ => None,
    }
}

/// The dialect a path's errors are written in: a chat path's own, Anthropic's for
/// the rest of `/v1/messages/…` (`count_tokens`, and what the gateway does not
/// serve there), OpenAI's for any other.
pub fn errors_for_path(path: &str) -> &'static dyn ClientDialect {
    match for_path(path) {
        Some(dialect) => dialect,
        None if path.starts_with("/v1/messages/") => &AnthropicMessages,
        None => &OpenAiChat,
    }
}

/// The client's own body for this provider, when both speak the same wire format.
pub fn native_for<'c>(
    dialect: &dyn ClientDialect,
    call: &'c ClientCall,
    adapter: &dyn ProviderAdapter,
) -> Option<NativeBody<'c>> {
    let native = call.native.as_ref().filter(|_| dialect.wire() == adapter.wire())?;
    Some(NativeBody { body: &native.body, headers: &native.headers, max_output_tokens: None })
}

/// The canonical completion in a whole answer (translated, or the provider's own bytes).
pub fn canonical_completion(raw: &[u8], answer: WholeAnswer) -> Result<Value, AttemptFailure> {
    match answer {
        WholeAnswer::Translated(value) => Ok(value),
        WholeAnswer::Canonical => serde_json::from_slice(raw)
            .map_err(|_| AttemptFailure::InvalidResponse("the answer is not a chat completion")),
    }
}

#[cfg(test)]
mod tests;
