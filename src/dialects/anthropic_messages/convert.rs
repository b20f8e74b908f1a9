//! Anthropic Messages to and from the canonical form: requests in, answers and
//! chunks back as Anthropic messages with its exact event sequence, and its error
//! shape. (An Anthropic target gets the client's own body instead: native relay.)

use crate::error::GatewayError;
use crate::json;
use crate::protocol::anthropic::{anthropic_usage, stop_reason};
use crate::protocol::openai::{ChatRequest, Message, StreamOptions};
use crate::relay::ClientEncoder;
use crate::sse;
use serde_json::{Map, Value};

fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("invalid_request_error", message).with_param(param.to_string())
}

/// Validates the parts of an Anthropic request the gateway relies on.
pub fn parse_request(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    parse_body(body, true)
}

/// Validates a `count_tokens` body: a Messages request without `max_tokens`.
pub fn parse_count_request(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    parse_body(body, false)
}

fn parse_body(body: &[u8], needs_max_tokens: bool) -> Result<Map<String, Value>, GatewayError> {
    check_request(read_object(body)?, needs_max_tokens)
}

/// A body read as a JSON object, not yet checked as a request.
pub fn read_object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    crate::protocol::openai::check_depth(body)?;
    let value: Value = serde_json::from_slice(body).map_err(GatewayError::invalid_json)?;
    let Value::Object(request) = value else { return Err(invalid("", "The request body must be a JSON object.")) };
    Ok(request)
}

/// Checks a Messages request's fields (`max_tokens` too unless it is a count).
pub fn check_request(request: Map<String, Value>, needs_max_tokens: bool) -> Result<Map<String, Value>, GatewayError> {
    if request.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("model", "model: Field required (a non-empty string)."));
    }
    if needs_max_tokens && request.get("max_tokens").and_then(Value::as_u64).is_none_or(|n| n == 0) {
        return Err(invalid("max_tokens", "max_tokens: Field required (an integer ≥ 1)."));
    }
    match request.get("messages").and_then(Value::as_array) {
        Some(messages) if !messages.is_empty() => {
            let role = |i: usize| messages.get(i).and_then(|m| m.get("role")).and_then(Value::as_str);
            for (i, m) in messages.iter().enumerate() {
                match role(i) {
                    Some("user" | "assistant") => {}
                    // A mid-conversation system message (Claude Code sends them), placed as
                    // Anthropic allows it: right after a user turn.
                    Some("system") if i > 0 && role(i - 1) == Some("user") => {}
                    Some("system") => {
                        return Err(invalid(
                            &format!("messages.{i}.role"),
                            format!("messages.{i}.role: a \"system\" message must follow a user turn."),
                        ))
                    }
                    _ => {
                        return Err(invalid(
                            &format!("messages.{i}.role"),
                            format!("messages.{i}.role: must be \"user\", \"assistant\" or \"system\"."),
                        ))
                    }
                }
                if !matches!(m.get("content"), Some(Value::String(_) | Value::Array(_))) {
                    return Err(invalid(
                        &format!("messages.{i}.content"),
                        format!("messages.{i}.content: must be a string or a list of blocks."),
                    ));
                }
            }
        }
        _ => return Err(invalid("messages", "messages: at least one message is required.")),
    }
    Ok(request)
}

fn openai_part(block: &Value) -> Option<Value> {
    let mut part = match block.get("type").and_then(Value::as_str)? {
        "text" => json!({"type": "text", "text": block.get("text").cloned().unwrap_or_default()}),
        "image" => {
            let source = block.get("source")?;
            let url = match source.get("type").and_then(Value::as_str)? {
                "base64" => format!(
                    "data:{};base64,{}",
                    source.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
                    source.get("data").and_then(Value::as_str).unwrap_or_default()
                ),
                "url" => source.get("url").and_then(Value::as_str)?.to_string(),
                _ => return None,
            };
            json!({"type": "image_url", "image_url": {"url": url}})
        }
        _ => return None,
    };
    if let (Some(cache), Some(obj)) = (block.get("cache_control"), part.as_object_mut()) {
        obj.insert("cache_control".into(), cache.clone());
    }
    Some(part)
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    }
}

/// Anthropic content as OpenAI content: a plain string when it is one text block.
fn openai_content(parts: Vec<Value>) -> Value {
    match parts.as_slice() {
        [] => Value::Null,
        [only] if only.get("type").and_then(Value::as_str) == Some("text") && only.get("cache_control").is_none() => {
            only.get("text").cloned().unwrap_or_default()
        }
        _ => Value::Array(parts),
    }
}

fn message(role: &str, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Message {
    Message::new(role, fields)
}

/// An Anthropic request (as `parse_request` accepted it) in the canonical form, for
/// targets that are not Anthropic; checked as a client's canonical request would be.
pub fn to_canonical(request: &Map<String, Value>) -> Result<ChatRequest, GatewayError> {
    let mut messages = Vec::new();
    match request.get("system") {
        Some(Value::String(s)) => messages.push(message("system", [("content", s.as_str().into())])),
        Some(Value::Array(blocks)) => {
            let parts: Vec<Value> = blocks.iter().filter_map(openai_part).collect();
            messages.push(message("system", [("content", openai_content(parts))]));
        }
        _ => {}
    }
    for turn in request.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = turn.get("role").and_then(Value::as_str).unwrap_or("user");
        let blocks: Vec<Value> = match turn.get("content") {
            Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
            Some(Value::Array(b)) => b.clone(),
            _ => Vec::new(),
        };
        if role == "assistant" {
            messages.push(assistant_message(&blocks));
            continue;
        }
        if role == "system" {
            // Where it stands: OpenAI-format targets take system messages anywhere, the
            // other adapters gather them into their system instruction.
            let parts: Vec<Value> = blocks.iter().filter_map(openai_part).collect();
            messages.push(message("system", [("content", openai_content(parts))]));
            continue;
        }
        // A user turn: tool results become `tool` messages (first, as OpenAI expects
        // them right after the assistant's calls), the rest one user message.
        for result in blocks.iter().filter(|b| b["type"] == "tool_result") {
            messages.push(message(
                "tool",
                [("tool_call_id", result["tool_use_id"].clone()), ("content", text_of(&result["content"]).into())],
            ));
        }
        let parts: Vec<Value> = blocks.iter().filter(|b| b["type"] != "tool_result").filter_map(openai_part).collect();
        if !parts.is_empty() {
            messages.push(message("user", [("content", openai_content(parts))]));
        }
    }

    let stream = request.get("stream") == Some(&Value::Bool(true));
    let canonical = ChatRequest {
        model: request.get("model").and_then(Value::as_str).unwrap_or_default().to_string(),
        messages,
        stream: stream.then_some(true),
        // Anthropic always reports usage at the end of a stream.
        stream_options: stream.then(|| StreamOptions { include_usage: Some(true), extra: Map::new() }),
        extra: canonical_parameters(request),
    };
    canonical.validate()?;
    Ok(canonical)
}

fn assistant_message(blocks: &[Value]) -> Message {
    let text: String = blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
    let calls: Vec<Value> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| json!({"id": &b["id"], "type": "function", "function": {"name": &b["name"], "arguments": b["input"].to_string()}}))
        .collect();
    let thinking: Vec<Value> =
        blocks.iter().filter(|b| b["type"] == "thinking" || b["type"] == "redacted_thinking").cloned().collect();
    let content = if text.is_empty() && !calls.is_empty() { Value::Null } else { text.into() };
    let mut fields = vec![("content", content)];
    if !calls.is_empty() {
        fields.push(("tool_calls", Value::Array(calls)));
    }
    if !thinking.is_empty() {
        fields.push(("thinking_blocks", Value::Array(thinking)));
    }
    message("assistant", fields)
}

/// The request's parameters other than model, messages and streaming, by their canonical names.
fn canonical_parameters(request: &Map<String, Value>) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("max_tokens".into(), request.get("max_tokens").cloned().unwrap_or(Value::Null));
    for field in ["temperature", "top_p"] {
        if let Some(v) = request.get(field) {
            extra.insert(field.into(), v.clone());
        }
    }
    if let Some(stop) = request.get("stop_sequences") {
        extra.insert("stop".into(), stop.clone());
    }
    // OpenAI's `user` takes at most 64 characters; a longer id (Claude Code's is a JSON
    // text of ~150) is left out rather than make the provider refuse the request.
    if let Some(user) = request
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.as_str().is_some_and(|u| u.chars().count() <= 64))
    {
        extra.insert("user".into(), user.clone());
    }
    if let Some(Value::Array(tools)) = request.get("tools") {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut function = json!({"name": &t["name"], "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
                if let Some(d) = t.get("description") {
                    function["description"] = d.clone();
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        extra.insert("tools".into(), Value::Array(tools));
    }
    // Structured outputs (`output_config.format`, in beta `output_format`): a JSON
    // schema the answer's text must follow, as OpenAI's `response_format`.
    let format = request.get("output_config").and_then(|c| c.get("format")).or_else(|| request.get("output_format"));
    if let Some(schema) = format.filter(|f| f.get("type") == Some(&json!("json_schema"))).and_then(|f| f.get("schema"))
    {
        extra.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}),
        );
    }
    if let Some(choice) = request.get("tool_choice") {
        let canonical_choice = match choice.get("type").and_then(Value::as_str) {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": &choice["name"]}}),
            _ => json!("auto"),
        };
        extra.insert("tool_choice".into(), canonical_choice);
        if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            extra.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    extra
}

/// A canonical completion as an Anthropic message.
pub fn from_canonical_response(completion: &Value, public_model: &str, message_id: &str) -> Value {
    let message = completion.pointer("/choices/0/message").cloned().unwrap_or_default();
    let mut content = Vec::new();
    if let Some(Value::Array(thinking)) = message.get("thinking_blocks") {
        content.extend(thinking.iter().cloned());
    }
    if let Some(text) = message.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
        let input = crate::json_value::from_str::<Value>(arguments).unwrap_or_else(|_| json!({}));
        content.push(
            json!({"type": "tool_use", "id": &call["id"], "name": call.pointer("/function/name"), "input": input}),
        );
    }
    json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": public_model,
        "content": content,
        "stop_reason": stop_reason(completion.pointer("/choices/0/finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": anthropic_usage(completion.get("usage").unwrap_or(&Value::Null)),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    Tool(u64),
}

/// Canonical chunks as Anthropic's event sequence: message_start, then one
/// content block at a time (text, thinking, or a tool call by index), then
/// message_delta with the stop reason and usage, then message_stop.
pub struct AnthropicEncoder {
    model: String,
    message_id: String,
    /// `message_start`'s input tokens: Anthropic's stream names the prompt's size
    /// first, while OpenAI-format and Bedrock providers report usage only at the
    /// end. Clients such as Claude Code track their context from `message_start`
    /// (0 would read as an empty context, never compacted): the gateway's estimate,
    /// or the provider's count when it comes first (Gemini's); `message_delta` then
    /// carries the provider's exact counts.
    input_tokens: u64,
    started: bool,
    open: Open,
    next_index: u64,
    stop_reason: Option<&'static str>,
    usage: Option<Value>,
    finished: bool,
}

impl AnthropicEncoder {
    pub fn new(public_model: &str, message_id: &str, estimated_input_tokens: u64) -> Self {
        Self {
            model: public_model.into(),
            message_id: message_id.into(),
            input_tokens: estimated_input_tokens,
            started: false,
            open: Open::None,
            next_index: 0,
            stop_reason: None,
            usage: None,
            finished: false,
        }
    }

    fn emit(name: &str, data: Value, out: &mut Vec<u8>) {
        sse::encode(Some(name), &data.to_string(), out);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let message = json!({"id": &self.message_id, "type": "message", "role": "assistant", "content": [], "model": &self.model,
                "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": self.input_tokens, "output_tokens": 0}});
            Self::emit("message_start", json!({"type": "message_start", "message": message}), out);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            Self::emit("content_block_stop", json!({"type": "content_block_stop", "index": self.next_index - 1}), out);
            self.open = Open::None;
        }
    }

    fn open(&mut self, kind: Open, block: Value, out: &mut Vec<u8>) {
        if self.open == kind {
            return;
        }
        self.close(out);
        Self::emit(
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
            out,
        );
        self.next_index += 1;
        self.open = kind;
    }

    fn delta(&self, delta: Value, out: &mut Vec<u8>) {
        Self::emit(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next_index - 1, "delta": delta}),
            out,
        );
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.start(out);
        self.close(out);
        let usage = anthropic_usage(self.usage.as_ref().unwrap_or(&Value::Null));
        Self::emit(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage}),
            out,
        );
        Self::emit("message_stop", json!({"type": "message_stop"}), out);
    }
}

impl ClientEncoder for AnthropicEncoder {
    fn prompt_tokens(&mut self, tokens: u64) {
        if !self.started {
            self.input_tokens = tokens;
        }
    }

    fn event(&mut self, payload: &str, out: &mut Vec<u8>) {
        if payload.trim() == "[DONE]" {
            return self.end(out);
        }
        let Ok(chunk) = crate::json_value::from_str::<Value>(payload) else { return };
        self.start(out);
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.pointer("/choices/0") else { return };
        let delta = choice.get("delta").cloned().unwrap_or_default();
        if let Some(text) = delta.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.open(Open::Thinking, json!({"type": "thinking", "thinking": ""}), out);
            self.delta(json!({"type": "thinking_delta", "thinking": text}), out);
        }
        for block in delta.get("thinking_blocks").and_then(Value::as_array).into_iter().flatten() {
            if let Some(signature) = block.get("signature").and_then(Value::as_str) {
                self.open(Open::Thinking, json!({"type": "thinking", "thinking": ""}), out);
                self.delta(json!({"type": "signature_delta", "signature": signature}), out);
            }
        }
        if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.open(Open::Text, json!({"type": "text", "text": ""}), out);
            self.delta(json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            if self.open != Open::Tool(index) {
                let block = json!({"type": "tool_use", "id": call.get("id").cloned().unwrap_or_default(),
                    "name": call.pointer("/function/name").cloned().unwrap_or_default(), "input": {}});
                self.open(Open::Tool(index), block, out);
            }
            if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str).filter(|a| !a.is_empty()) {
                self.delta(json!({"type": "input_json_delta", "partial_json": args}), out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop_reason = Some(stop_reason(Some(reason)));
        }
    }

    fn error(&mut self, _code: &str, message: &str, out: &mut Vec<u8>) {
        Self::emit("error", json!({"type": "error", "error": {"type": "api_error", "message": message}}), out);
    }
}

/// Passes the provider's own Anthropic events through (native relaying); only
/// errors are written here.
#[derive(Debug, Default)]
pub struct AnthropicRawEncoder;

impl ClientEncoder for AnthropicRawEncoder {
    fn event(&mut self, _payload: &str, _out: &mut Vec<u8>) {}

    fn error(&mut self, _code: &str, message: &str, out: &mut Vec<u8>) {
        sse::encode(
            Some("error"),
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string(),
            out,
        );
    }
}

/// Anthropic's error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 415 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error body: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn error_body(error: &GatewayError, request_id: &str) -> String {
    let mut inner = json!({"type": error_type(error.status), "message": &error.message});
    if super::thread::has_details(&error.code) {
        inner["details"] = json!({"error_code": error.code.as_ref()});
    }
    json!({"type": "error", "error": inner, "request_id": request_id}).to_string()
}

#[cfg(test)]
mod tests;
