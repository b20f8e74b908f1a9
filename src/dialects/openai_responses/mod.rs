//! The OpenAI Responses API (`POST /v1/responses`) as a client dialect: a request
//! (instructions and input items, plus a stored conversation's items when it
//! continues one) into the canonical chat request; answers as Responses objects;
//! streams as its numbered event sequence. Storing is the edge's: `previous_items`
//! and the kept answer are what it stores and loads.

mod input;
pub mod output;
pub mod stored;
mod stream;
#[cfg(test)]
mod tests;

use super::{canonical_completion, ClientCall, ClientDialect, Encoded, Shape};
use crate::error::GatewayError;
use crate::providers::{AttemptFailure, WholeAnswer, Wire};
use crate::relay::ClientEncoder;
use serde_json::{Map, Value};

pub use input::input_items;
pub use stream::ResponsesEncoder;

pub struct OpenAiResponses;

/// Fields the gateway refuses rather than silently ignore.
const UNSUPPORTED: [(&str, &str); 3] = [
    ("background", "Background responses are not supported by this gateway."),
    ("conversation", "Conversations objects are not supported; continue with previous_response_id."),
    ("prompt", "Stored prompts are not supported by this gateway."),
];

/// A Responses request, checked.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    pub body: Map<String, Value>,
    /// This request's own input items (a string input is one user message).
    pub items: Vec<Value>,
}

impl ResponsesRequest {
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        crate::protocol::openai::check_depth(body)?;
        let value: Value = serde_json::from_slice(body).map_err(GatewayError::invalid_json)?;
        let Value::Object(body) = value else {
            return Err(GatewayError::invalid_request("invalid_request", "The request body must be a JSON object."));
        };
        if body.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(GatewayError::invalid_request(
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
            )
            .with_param("model"));
        }
        for (field, message) in UNSUPPORTED {
            if body.get(field).is_some_and(|v| !v.is_null() && *v != Value::Bool(false)) {
                return Err(GatewayError::invalid_request("unsupported_parameter", message).with_param(field));
            }
        }
        for (field, check) in [("store", Value::is_boolean as fn(&Value) -> bool), ("stream", Value::is_boolean)] {
            if body.get(field).is_some_and(|v| !v.is_null() && !check(v)) {
                return Err(GatewayError::invalid_request("invalid_type", format!("'{field}' must be a boolean."))
                    .with_param(field));
            }
        }
        if body.get("previous_response_id").is_some_and(|v| !v.is_null() && !v.is_string()) {
            return Err(GatewayError::invalid_request("invalid_type", "'previous_response_id' must be a string.")
                .with_param("previous_response_id"));
        }
        let items = input_items(&body)?;
        Ok(Self { body, items })
    }

    /// `store` defaults to true, as OpenAI's does.
    pub fn store(&self) -> bool {
        self.body.get("store").and_then(Value::as_bool).unwrap_or(true)
    }

    pub fn previous_response_id(&self) -> Option<&str> {
        self.body.get("previous_response_id").and_then(Value::as_str)
    }

    /// The stored responses this request's `item_reference` items point into.
    pub fn referenced_responses(&self) -> Result<Vec<String>, GatewayError> {
        let mut ids: Vec<String> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            if let Some(id) = reference(item, i)? {
                let response = stored::response_of_item(id).ok_or_else(|| item_not_found(id, i))?;
                if !ids.contains(&response) {
                    ids.push(response);
                }
            }
        }
        Ok(ids)
    }

    /// Each `item_reference` replaced by the item it names in `turns` (the stored
    /// responses it points into: their input or output items).
    pub fn resolve_references(&mut self, turns: &[stored::StoredResponse]) -> Result<(), GatewayError> {
        for i in 0..self.items.len() {
            if let Some(id) = reference(&self.items[i], i)? {
                let found = turns
                    .iter()
                    .flat_map(stored::StoredResponse::items)
                    .find(|item| item.get("id").and_then(Value::as_str) == Some(id));
                self.items[i] = found.cloned().ok_or_else(|| item_not_found(id, i))?;
            }
        }
        Ok(())
    }

    /// The canonical call, continuing `previous_items` (a stored conversation).
    pub fn to_call(&self, previous_items: &[Value]) -> Result<ClientCall, GatewayError> {
        let request = input::to_canonical(&self.body, previous_items, &self.items)?;
        Ok(ClientCall { request, native: None, echo: self.body.clone(), keep_answer: self.store() })
    }
}

/// An `item_reference` item's id (it must have one).
fn reference(item: &Value, index: usize) -> Result<Option<&str>, GatewayError> {
    if item.get("type").and_then(Value::as_str) != Some("item_reference") {
        return Ok(None);
    }
    match item.get("id").and_then(Value::as_str) {
        Some(id) => Ok(Some(id)),
        None => Err(GatewayError::invalid_request("missing_required_parameter", "item_reference items need an id.")
            .with_param(format!("input[{index}].id"))),
    }
}

fn item_not_found(id: &str, index: usize) -> GatewayError {
    GatewayError::new(
        404,
        "invalid_request_error",
        "item_not_found",
        format!("No stored item with id '{id}' (items of responses made with store: false are not kept)."),
    )
    .with_param(format!("input[{index}]"))
}

/// A response's id from the answer id the pipeline gives (`msg_<request>`).
pub fn response_id(shape: &Shape) -> String {
    format!("resp_{}", shape.message_id.trim_start_matches("msg_"))
}

impl ClientDialect for OpenAiResponses {
    fn wire(&self) -> Wire {
        Wire::OpenAiResponses
    }

    fn parse(&self, body: &[u8], _header: &dyn Fn(&str) -> Option<String>) -> Result<ClientCall, GatewayError> {
        ResponsesRequest::parse(body)?.to_call(&[])
    }

    fn stream_encoder(&self, call: &ClientCall, shape: &Shape) -> (Box<dyn ClientEncoder>, bool) {
        let encoder =
            ResponsesEncoder::new(&response_id(shape), shape.created_s, shape.public_model, call.echo.clone());
        // Usage always feeds `response.completed`.
        (Box::new(encoder), true)
    }

    fn whole_answer(
        &self,
        call: &ClientCall,
        raw: Vec<u8>,
        answer: WholeAnswer,
        shape: &Shape,
    ) -> Result<Encoded, AttemptFailure> {
        let completion = canonical_completion(&raw, answer)?;
        let id = response_id(shape);
        let frame =
            output::Frame { id: &id, created_at: shape.created_s, model: shape.public_model, request: &call.echo };
        let kept = output::from_completion(&frame, &completion);
        let shown = output::for_client(kept.clone(), output::includes_encrypted_reasoning(&call.echo));
        let body = serde_json::to_vec(&shown).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?;
        Ok(Encoded { body, kept: Some(kept) })
    }

    fn error_body(&self, error: &GatewayError, _request_id: &str) -> String {
        error.to_json()
    }
}
