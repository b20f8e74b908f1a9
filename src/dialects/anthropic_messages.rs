//! Anthropic Messages: requests into the canonical form, answers, streams and
//! errors back in Anthropic's shape; relayed natively to Anthropic providers.

mod convert;
pub mod thread;

use super::{canonical_completion, ClientCall, ClientDialect, Encoded, Native, Read, Shape};
use crate::error::GatewayError;
use crate::providers::passthrough::ModelRename;
use crate::providers::{AttemptFailure, WholeAnswer, Wire};
use crate::relay::ClientEncoder;
use convert::{self as messages, AnthropicEncoder, AnthropicRawEncoder};

pub struct AnthropicMessages;

/// The protocol headers of an Anthropic client that a native relay keeps.
const RELAYED_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

impl AnthropicMessages {
    /// A `count_tokens` body (a Messages request without `max_tokens`), read as a request is.
    pub fn parse_count(
        &self,
        body: &[u8],
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ClientCall, GatewayError> {
        call_of(messages::parse_count_request(body)?, header)
    }
}

fn call_of(
    original: serde_json::Map<String, serde_json::Value>,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientCall, GatewayError> {
    let request = messages::to_canonical(&original)?;
    let headers = RELAYED_HEADERS.iter().filter_map(|name| Some((*name, relayed(name, header(name)?)?))).collect();
    let native = Some(Native { body: original, headers });
    Ok(ClientCall { request, native, echo: Default::default(), keep_answer: false })
}

/// A protocol header as relayed: without the threads beta, since the gateway holds
/// threads itself (the provider gets the whole conversation).
fn relayed(name: &str, value: String) -> Option<String> {
    if name != "anthropic-beta" || !value.contains(thread::BETA) {
        return Some(value);
    }
    let kept: Vec<&str> = value.split(',').map(str::trim).filter(|b| !b.is_empty() && *b != thread::BETA).collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

impl ClientDialect for AnthropicMessages {
    fn wire(&self) -> Wire {
        Wire::AnthropicMessages
    }

    fn parse(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Result<ClientCall, GatewayError> {
        call_of(messages::parse_request(body)?, header)
    }

    fn read(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Result<Read, GatewayError> {
        match thread::turn_of(messages::read_object(body)?, body.len() as u64)? {
            Ok(turn) => Ok(Read::Threaded(turn)),
            Err(request) => Ok(Read::Call(call_of(messages::check_request(request, true)?, header)?)),
        }
    }

    fn stream_encoder(&self, call: &ClientCall, shape: &Shape) -> (Box<dyn ClientEncoder>, bool) {
        let encoder: Box<dyn ClientEncoder> = if shape.native {
            Box::new(AnthropicRawEncoder)
        } else {
            Box::new(AnthropicEncoder::new(shape.public_model, shape.message_id, shape.estimated_input_tokens))
        };
        let encoder = if call.keep_answer { Box::new(thread::Keeping::new(encoder)) } else { encoder };
        // The usage chunk always feeds Anthropic's `message_delta` usage.
        (encoder, true)
    }

    fn whole_answer(
        &self,
        call: &ClientCall,
        raw: Vec<u8>,
        answer: WholeAnswer,
        shape: &Shape,
    ) -> Result<Encoded, AttemptFailure> {
        if shape.native {
            let body = ModelRename::whole_answer(shape.upstream_model, shape.public_model, raw);
            let kept = if call.keep_answer { serde_json::from_slice(&body).ok() } else { None };
            return Ok(Encoded { body, kept });
        }
        let completion = canonical_completion(&raw, answer)?;
        let message = messages::from_canonical_response(&completion, shape.public_model, shape.message_id);
        let body = serde_json::to_vec(&message).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?;
        Ok(Encoded { body, kept: call.keep_answer.then_some(message) })
    }

    fn error_body(&self, error: &GatewayError, request_id: &str) -> String {
        messages::error_body(error, request_id)
    }
}
