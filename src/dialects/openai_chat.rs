//! OpenAI Chat Completions, the canonical form itself: bodies pass through with
//! the public model name; errors are `{"error": {...}}`.

use super::{ClientCall, ClientDialect, Encoded, Shape};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::providers::passthrough::ModelRename;
use crate::providers::{AttemptFailure, WholeAnswer, Wire};
use crate::relay::{ClientEncoder, OpenAiEncoder};

pub struct OpenAiChat;

impl ClientDialect for OpenAiChat {
    fn wire(&self) -> Wire {
        Wire::OpenAiChat
    }

    fn parse(&self, body: &[u8], _header: &dyn Fn(&str) -> Option<String>) -> Result<ClientCall, GatewayError> {
        // The canonical request is the client's body: nothing to relay natively.
        Ok(ClientCall {
            request: ChatRequest::parse(body)?,
            native: None,
            echo: Default::default(),
            keep_answer: false,
        })
    }

    fn stream_encoder(&self, call: &ClientCall, _shape: &Shape) -> (Box<dyn ClientEncoder>, bool) {
        (Box::new(OpenAiEncoder), call.request.wants_stream_usage())
    }

    fn whole_answer(
        &self,
        _call: &ClientCall,
        raw: Vec<u8>,
        answer: WholeAnswer,
        shape: &Shape,
    ) -> Result<Encoded, AttemptFailure> {
        let body = match answer {
            WholeAnswer::Canonical => ModelRename::whole_answer(shape.upstream_model, shape.public_model, raw),
            WholeAnswer::Translated(completion) => {
                serde_json::to_vec(&completion).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?
            }
        };
        Ok(Encoded { body, kept: None })
    }

    fn error_body(&self, error: &GatewayError, _request_id: &str) -> String {
        error.to_json()
    }
}
