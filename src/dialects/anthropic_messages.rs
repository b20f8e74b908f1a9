//! Anthropic Messages: requests into the canonical form, answers, streams and
//! errors back in Anthropic's shape; relayed natively to Anthropic providers.

mod convert;

use super::{canonical_completion, ClientCall, ClientDialect, Encoded, Native, Shape};
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
    let headers = RELAYED_HEADERS.iter().filter_map(|name| Some((*name, header(name)?))).collect();
    Ok(ClientCall { request, native: Some(Native { body: original, headers }), echo: Default::default() })
}

impl ClientDialect for AnthropicMessages {
    fn wire(&self) -> Wire {
        Wire::AnthropicMessages
    }

    fn parse(&self, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Result<ClientCall, GatewayError> {
        call_of(messages::parse_request(body)?, header)
    }

    fn stream_encoder(&self, _call: &ClientCall, shape: &Shape) -> (Box<dyn ClientEncoder>, bool) {
        // The usage chunk always feeds Anthropic's `message_delta` usage.
        if shape.native {
            (Box::new(AnthropicRawEncoder), true)
        } else {
            (Box::new(AnthropicEncoder::new(shape.public_model, shape.message_id, shape.estimated_input_tokens)), true)
        }
    }

    fn whole_answer(
        &self,
        _call: &ClientCall,
        raw: Vec<u8>,
        answer: WholeAnswer,
        shape: &Shape,
    ) -> Result<Encoded, AttemptFailure> {
        if shape.native {
            let body = ModelRename::whole_answer(shape.upstream_model, shape.public_model, raw);
            return Ok(Encoded { body, kept: None });
        }
        let completion = canonical_completion(&raw, answer)?;
        let message = messages::from_canonical_response(&completion, shape.public_model, shape.message_id);
        let body = serde_json::to_vec(&message).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?;
        Ok(Encoded { body, kept: None })
    }

    fn error_body(&self, error: &GatewayError, request_id: &str) -> String {
        messages::error_body(error, request_id)
    }
}
