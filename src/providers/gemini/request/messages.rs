//! Chat messages → Gemini `contents` (alternating user/model turns) and
//! `systemInstruction`.

use super::invalid;
use super::media::{content_part, part_text, text_part};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::openai::Message;
use serde_json::{Map, Value};

/// Google's documented stand-in for a thought signature the history does not have
/// (a conversation begun on another model, or a client that dropped it). Gemini 3
/// rejects a current-turn function call without one.
const MISSING_SIGNATURE: &str = "skip_thought_signature_validator";

struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

#[derive(Default)]
pub(super) struct Conversation {
    system: Vec<Value>,
    turns: Vec<Turn>,
}

impl Conversation {
    pub(super) fn from_messages(messages: &[Message]) -> Result<Self, GatewayError> {
        let mut conversation = Conversation::default();
        for (i, message) in messages.iter().enumerate() {
            match message.role.as_str() {
                // Gemini has one system instruction: every system/developer message joins it.
                "system" | "developer" => conversation.system.extend(system_parts(message, i)?),
                "user" => conversation.push("user", user_parts(message, i)?),
                "assistant" => conversation.push("model", assistant_parts(message, i)?),
                "tool" => conversation.push("user", vec![tool_result_part(messages, message, i)?]),
                "function" => conversation.push("user", vec![legacy_function_result(message, i)?]),
                other => {
                    return Err(invalid(
                        "invalid_value",
                        format!("Unsupported role {other:?} for a Gemini target."),
                        format!("messages[{i}].role"),
                    ))
                }
            }
        }
        Ok(conversation)
    }

    /// Gemini wants user and model turns to alternate: consecutive messages of one
    /// role (parallel tool results, a tool result then a user note) become one turn.
    fn push(&mut self, role: &'static str, parts: Vec<Value>) {
        if parts.is_empty() {
            return;
        }
        match self.turns.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => self.turns.push(Turn { role, parts }),
        }
    }

    pub(super) fn contents(mut self, signatures_required: bool) -> Value {
        if signatures_required {
            self.turns
                .iter_mut()
                .filter(|turn| turn.role == "model")
                .for_each(|turn| sign_first_function_call(&mut turn.parts));
        }
        Value::Array(self.turns.into_iter().map(|turn| json!({ "role": turn.role, "parts": turn.parts })).collect())
    }

    pub(super) fn system_instruction(&self) -> Option<Value> {
        (!self.system.is_empty()).then(|| json!({ "parts": &self.system }))
    }
}

/// Gemini 3 validates the signature on the first function call of each model step.
fn sign_first_function_call(parts: &mut [Value]) {
    let Some(Value::Object(first)) = parts.iter_mut().find(|p| p.get("functionCall").is_some()) else {
        return;
    };
    first.entry("thoughtSignature").or_insert_with(|| Value::String(MISSING_SIGNATURE.into()));
}

enum Content<'a> {
    Absent,
    Text(&'a str),
    Parts(&'a [Value]),
}

fn content(message: &Message, i: usize) -> Result<Content<'_>, GatewayError> {
    match message.rest.get("content") {
        None | Some(Value::Null) => Ok(Content::Absent),
        Some(Value::String(text)) => Ok(Content::Text(text)),
        Some(Value::Array(parts)) => Ok(Content::Parts(parts)),
        Some(_) => Err(invalid(
            "invalid_type",
            format!("'messages[{i}].content' must be a string or an array of content parts."),
            format!("messages[{i}].content"),
        )),
    }
}

fn system_parts(message: &Message, i: usize) -> Result<Vec<Value>, GatewayError> {
    match content(message, i)? {
        Content::Absent => Ok(Vec::new()),
        Content::Text(text) => Ok(text_part(text).into_iter().collect()),
        Content::Parts(parts) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let param = format!("messages[{i}].content[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text" | "input_text") => out.extend(text_part(part_text(part, &param)?)),
                    _ => {
                        return Err(invalid(
                            "unsupported_content",
                            "Gemini system instructions take text parts only.",
                            param,
                        ))
                    }
                }
            }
            Ok(out)
        }
    }
}

fn user_parts(message: &Message, i: usize) -> Result<Vec<Value>, GatewayError> {
    match content(message, i)? {
        Content::Absent => Ok(Vec::new()),
        Content::Text(text) => Ok(text_part(text).into_iter().collect()),
        Content::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                out.extend(content_part(part, format!("messages[{i}].content[{j}]"))?);
            }
            Ok(out)
        }
    }
}

fn google_signature(extra_content: Option<&Value>) -> Option<&str> {
    extra_content?.get("google")?.get("thought_signature")?.as_str().filter(|s| !s.is_empty())
}

fn assistant_parts(message: &Message, i: usize) -> Result<Vec<Value>, GatewayError> {
    let mut parts = user_parts(message, i)?;
    // `reasoning_content` / `thinking_blocks` are not sent back: Gemini does not take
    // thought text as input; its reasoning state travels in the signatures.
    if let Some(signature) = google_signature(message.rest.get("extra_content")) {
        if let Some(Value::Object(last_text)) = parts.iter_mut().rev().find(|p| p.get("text").is_some()) {
            last_text.insert("thoughtSignature".into(), signature.into());
        }
    }
    if let Some(calls) = message.rest.get("tool_calls").filter(|v| !v.is_null()) {
        let calls = calls.as_array().ok_or_else(|| {
            invalid("invalid_type", "'tool_calls' must be an array.", format!("messages[{i}].tool_calls"))
        })?;
        for (j, call) in calls.iter().enumerate() {
            let param = format!("messages[{i}].tool_calls[{j}].function");
            let function = call.get("function").unwrap_or(&Value::Null);
            let mut part = function_call(function, &param)?;
            if let Some(signature) = google_signature(call.get("extra_content")) {
                part.insert("thoughtSignature".into(), signature.into());
            }
            parts.push(Value::Object(part));
        }
    }
    if let Some(function) = message.rest.get("function_call").filter(|v| !v.is_null()) {
        let part = function_call(function, &format!("messages[{i}].function_call"))?;
        parts.push(Value::Object(part));
    }
    Ok(parts)
}

/// An OpenAI `{name, arguments}` (at `param`) as a Gemini `functionCall` part.
fn function_call(function: &Value, param: &str) -> Result<Map<String, Value>, GatewayError> {
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("invalid_value", "A tool call needs a function 'name'.", format!("{param}.name")))?;
    let args = call_arguments(function.get("arguments"), param)?;
    let mut part = Map::new();
    part.insert("functionCall".into(), json!({ "name": name, "args": args }));
    Ok(part)
}

/// Arguments are a JSON object encoded as a string; Gemini wants the object.
fn call_arguments(arguments: Option<&Value>, param: &str) -> Result<Value, GatewayError> {
    let bad = || {
        invalid(
            "invalid_value",
            "Tool call 'arguments' must be a JSON object encoded as a string.",
            format!("{param}.arguments"),
        )
    };
    match arguments {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(json!({})),
        Some(Value::String(text)) => match crate::json_value::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => Ok(object),
            _ => Err(bad()),
        },
        Some(object @ Value::Object(_)) => Ok(object.clone()),
        Some(_) => Err(bad()),
    }
}

/// A `role: tool` message as a `functionResponse` part; Gemini matches results by
/// function name, recovered from the assistant tool call with the same id.
fn tool_result_part(messages: &[Message], message: &Message, i: usize) -> Result<Value, GatewayError> {
    let id = message.rest.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
        invalid(
            "missing_required_parameter",
            "A tool message needs 'tool_call_id'.",
            format!("messages[{i}].tool_call_id"),
        )
    })?;
    let name = called_function_name(messages.get(..i).unwrap_or_default(), id).ok_or_else(|| {
        invalid(
            "invalid_value",
            format!("No earlier assistant tool call has the id {id:?}."),
            format!("messages[{i}].tool_call_id"),
        )
    })?;
    let response = function_response(message, i)?;
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

/// The nearest earlier assistant tool call with this id (ids may repeat across turns).
fn called_function_name<'a>(history: &'a [Message], id: &str) -> Option<&'a str> {
    history
        .iter()
        .rev()
        .filter(|m| m.role == "assistant")
        .filter_map(|m| m.rest.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .find(|call| call.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|call| call.get("function")?.get("name")?.as_str())
}

fn legacy_function_result(message: &Message, i: usize) -> Result<Value, GatewayError> {
    let name = message.rest.get("name").and_then(Value::as_str).ok_or_else(|| {
        invalid("missing_required_parameter", "A function message needs 'name'.", format!("messages[{i}].name"))
    })?;
    let response = function_response(message, i)?;
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

/// Gemini's `response` is an object: a result that is a JSON object goes as is,
/// anything else is wrapped as `{"content": "..."}`.
fn function_response(message: &Message, i: usize) -> Result<Value, GatewayError> {
    let text = match content(message, i)? {
        Content::Absent => String::new(),
        Content::Text(text) => text.to_string(),
        Content::Parts(parts) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                text.push_str(part_text(part, &format!("messages[{i}].content[{j}]"))?);
            }
            text
        }
    };
    match crate::json_value::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => Ok(object),
        _ => Ok(json!({ "content": text })),
    }
}
