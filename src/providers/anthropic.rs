//! Adapter for Anthropic's Messages API: the canonical (OpenAI) request out, the
//! answer and its SSE event stream back into canonical completions and chunks.
//! Thinking blocks keep their signatures and cache_control markers survive, so
//! tool turns can echo them back as Anthropic requires.

use super::common::{
    json_output_schema, max_tokens, push_turn, stop_sequences, text_of, tool_arguments, unsupported, JSON_TOOL,
};
use super::{AttemptContext, StreamFault, StreamTranslator, UpstreamRequest};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::protocol::USER_AGENT;
use crate::sse::{SseDecoder, SseEvent};
use serde_json::{json, Map, Value};

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Used when neither the client nor the target's capabilities give a max_tokens.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// An OpenAI `image_url` part as an Anthropic image block (base64 for data URLs).
fn image_block(part: &Value) -> Result<Value, GatewayError> {
    let url = part.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) =
            rest.split_once(',').ok_or_else(|| unsupported("messages", "An image data URL has no data."))?;
        let media_type =
            meta.strip_suffix(";base64").ok_or_else(|| unsupported("messages", "Image data URLs must be base64."))?;
        return Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(unsupported("messages", "Images must be https:// or data: URLs."))
}

/// OpenAI content (string or parts) as Anthropic content blocks.
fn blocks(content: &Value) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"type": "text", "text": text})]),
        Value::Array(parts) => parts
            .iter()
            .map(|part| {
                let mut block = match part.get("type").and_then(Value::as_str) {
                    Some("text") => json!({"type": "text", "text": part.get("text").cloned().unwrap_or_default()}),
                    Some("image_url") => image_block(part)?,
                    // Already Anthropic-shaped (e.g. from the /v1/messages endpoint).
                    Some("image" | "document" | "thinking" | "redacted_thinking") => part.clone(),
                    other => {
                        return Err(unsupported(
                            "messages",
                            format!("Content parts of type {other:?} cannot be sent to Anthropic."),
                        ))
                    }
                };
                if let (Some(cache), Some(obj)) = (part.get("cache_control"), block.as_object_mut()) {
                    obj.insert("cache_control".into(), cache.clone());
                }
                Ok(block)
            })
            .collect(),
        _ => Err(unsupported("messages", "Message content must be a string or a list of parts.")),
    }
}

fn translate_messages(request: &ChatRequest) -> Result<(Vec<Value>, Vec<Value>), GatewayError> {
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for message in &request.messages {
        let content = message.rest.get("content").cloned().unwrap_or(Value::Null);
        match message.role.as_str() {
            "system" | "developer" => system.extend(blocks(&content)?),
            "user" => push_turn(&mut messages, "user", "content", blocks(&content)?),
            "assistant" => {
                let mut out = Vec::new();
                // Thinking first: Anthropic wants the signed blocks back, unchanged, before the rest.
                if let Some(Value::Array(thinking)) = message.rest.get("thinking_blocks") {
                    out.extend(thinking.iter().cloned());
                }
                out.extend(blocks(&content)?);
                if let Some(Value::Array(calls)) = message.rest.get("tool_calls") {
                    for call in calls {
                        let input = tool_arguments(call)?;
                        out.push(json!({
                            "type": "tool_use",
                            "id": call.get("id").cloned().unwrap_or_default(),
                            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
                            "input": input,
                        }));
                    }
                }
                push_turn(&mut messages, "assistant", "content", out);
            }
            "tool" | "function" => {
                let id = message.rest.get("tool_call_id").cloned().unwrap_or_default();
                let mut result = json!({"type": "tool_result", "tool_use_id": id, "content": text_of(&content)});
                if let Value::Array(parts) = &content {
                    if parts.iter().any(|p| p.get("type").and_then(Value::as_str) != Some("text")) {
                        result["content"] = Value::Array(blocks(&content)?);
                    }
                }
                push_turn(&mut messages, "user", "content", vec![result]);
            }
            _ => {}
        }
    }
    Ok((system, messages))
}

fn translate_tools(extra: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), GatewayError> {
    if let Some(Value::Array(tools)) = extra.get("tools") {
        let mut out = Vec::new();
        for tool in tools {
            let function = tool
                .get("function")
                .ok_or_else(|| unsupported("tools", "Only function tools can be sent to Anthropic."))?;
            let mut t = json!({
                "name": function.get("name").cloned().unwrap_or_default(),
                "input_schema": function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let Some(description) = function.get("description") {
                t["description"] = description.clone();
            }
            if let Some(cache) = tool.get("cache_control") {
                t["cache_control"] = cache.clone();
            }
            out.push(t);
        }
        if !out.is_empty() {
            body.insert("tools".into(), Value::Array(out));
        }
    }
    let mut choice = match extra.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "auto" => Some(json!({"type": "auto"})),
        Some(Value::String(s)) if s == "required" => Some(json!({"type": "any"})),
        Some(Value::String(s)) if s == "none" => Some(json!({"type": "none"})),
        Some(named) => match named.pointer("/function/name") {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => return Err(unsupported("tool_choice", "Unsupported tool_choice.")),
        },
    };
    if extra.get("parallel_tool_calls") == Some(&Value::Bool(false)) && body.contains_key("tools") {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        c["disable_parallel_tool_use"] = Value::Bool(true);
    }
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    Ok(())
}

pub fn chat_request(
    ctx: &AttemptContext,
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<UpstreamRequest, GatewayError> {
    let extra = &req.extra;
    if extra.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(unsupported("n", "Anthropic models return one choice; n must be 1."));
    }
    let json_schema = json_output_schema(extra)?;
    let (system, messages) = translate_messages(req)?;
    let max_tokens = max_tokens(extra).unwrap_or(default_max_tokens);
    let mut body = Map::new();
    body.insert("model".into(), ctx.upstream_model.into());
    body.insert("max_tokens".into(), max_tokens.into());
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    if let Some(t) = extra.get("temperature").and_then(Value::as_f64) {
        // OpenAI's scale is 0..2, Anthropic's 0..1.
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(p) = extra.get("top_p") {
        body.insert("top_p".into(), p.clone());
    }
    if let Some(stop) = stop_sequences(extra) {
        body.insert("stop_sequences".into(), stop);
    }
    if let Some(user) = extra.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(thinking) = extra.get("thinking") {
        body.insert("thinking".into(), thinking.clone());
    } else if let Some(effort) = extra.get("reasoning_effort").and_then(Value::as_str) {
        let budget: u64 = match effort {
            "minimal" | "low" => 1024,
            "medium" => 4096,
            _ => 16_384,
        };
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget.min(max_tokens.saturating_sub(1)).max(1024)}),
        );
    }
    translate_tools(extra, &mut body)?;
    if let Some(schema) = json_schema {
        // JSON output as a forced call of one tool whose input is the answer; the
        // reply comes back as message content (see chat_response / the stream).
        body.insert(
            "tools".into(),
            json!([{"name": JSON_TOOL, "description": "Respond with the answer as this JSON object.", "input_schema": schema}]),
        );
        body.insert("tool_choice".into(), json!({"type": "tool", "name": JSON_TOOL}));
    }
    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if req.is_stream() { "text/event-stream" } else { "application/json" }.to_string()),
        ("anthropic-version", ANTHROPIC_VERSION.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    if let Some(key) = ctx.api_key {
        headers.push(("x-api-key", key.to_string()));
    }
    Ok(UpstreamRequest { url: format!("{}/messages", ctx.provider.base_url), headers, body, stream: req.is_stream() })
}

/// The client's own Anthropic request, relayed natively: only the model is
/// replaced (thinking, cache_control, betas and every field survive exactly).
pub fn native_request(
    ctx: &AttemptContext,
    original: &Map<String, Value>,
    version: Option<&str>,
    beta: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let mut body = original.clone();
    body.insert("model".into(), ctx.upstream_model.into());
    let stream = body.get("stream") == Some(&Value::Bool(true));
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    // Only well-formed protocol headers pass: a date, and beta names.
    let is_date = |v: &&str| v.len() == 10 && v.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    let is_beta = |v: &&str| v.len() <= 512 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_,. ".contains(&b));
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "text/event-stream" } else { "application/json" }.to_string()),
        ("anthropic-version", version.filter(is_date).unwrap_or(ANTHROPIC_VERSION).to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    if let Some(beta) = beta.filter(is_beta) {
        headers.push(("anthropic-beta", beta.to_string()));
    }
    if let Some(key) = ctx.api_key {
        headers.push(("x-api-key", key.to_string()));
    }
    Ok(UpstreamRequest { url: format!("{}/messages", ctx.provider.base_url), headers, body, stream })
}

pub fn finish_reason(stop_reason: Option<&str>) -> Option<&'static str> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    })
}

pub fn usage(usage: &Value) -> Value {
    let n = |f: &str| usage.get(f).and_then(Value::as_u64).unwrap_or(0);
    let (input, output, read, write) =
        (n("input_tokens"), n("output_tokens"), n("cache_read_input_tokens"), n("cache_creation_input_tokens"));
    json!({
        "prompt_tokens": input + read + write,
        "completion_tokens": output,
        "total_tokens": input + read + write + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
    })
}

/// An Anthropic message as an OpenAI `chat.completion`.
pub fn chat_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let message: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    let content = message.get("content").and_then(Value::as_array).ok_or("the answer has no content")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or_default());
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                json_answer = true;
                text.push_str(&block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()));
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").cloned().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or_default(),
                    "arguments": block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() }, "refusal": null});
    if !tool_calls.is_empty() {
        msg["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking_blocks.is_empty() {
        msg["reasoning_content"] = reasoning.into();
        msg["thinking_blocks"] = Value::Array(thinking_blocks);
    }
    Ok(json!({
        "id": message.get("id").cloned().unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id).into()),
        "object": "chat.completion",
        "created": ctx.now_ms / 1000,
        "model": ctx.public_model,
        "choices": [{
            "index": 0,
            "message": msg,
            "logprobs": null,
            "finish_reason": if json_answer { "stop" } else {
                finish_reason(message.get("stop_reason").and_then(Value::as_str)).unwrap_or("stop")
            },
        }],
        "usage": usage(message.get("usage").unwrap_or(&Value::Null)),
    }))
}

/// Anthropic's error body `{"type":"error","error":{"type","message"}}`.
pub fn error_details(body: &[u8]) -> Option<(String, Option<String>)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error = v.get("error")?;
    Some((error.get("message")?.as_str()?.to_string(), error.get("type").and_then(Value::as_str).map(str::to_string)))
}

enum Block {
    Text,
    Tool,
    /// The JSON-output tool: its input streams out as content.
    JsonAnswer,
    Thinking {
        text: String,
        signature: String,
    },
    Other,
}

/// Anthropic's event stream as canonical chunks. Tool-use blocks get OpenAI tool
/// indexes 0, 1, 2… in order of appearance, whatever their Anthropic block index.
pub struct AnthropicStream {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    created: u64,
    model: String,
    blocks: Vec<(u64, Block, usize)>,
    next_tool: usize,
    /// The answer is JSON output carried by the JSON tool.
    json_answer: bool,
    usage: Map<String, Value>,
    stopped: bool,
    /// Raw events to forward unchanged (native Anthropic-to-Anthropic relaying).
    raw: Option<Vec<u8>>,
}

pub fn stream_translator(ctx: &AttemptContext) -> AnthropicStream {
    AnthropicStream {
        decoder: SseDecoder::default(),
        events: Vec::new(),
        id: format!("chatcmpl-{}", ctx.request_id),
        created: ctx.now_ms / 1000,
        model: ctx.public_model.to_string(),
        blocks: Vec::new(),
        next_tool: 0,
        json_answer: false,
        usage: Map::new(),
        stopped: false,
        raw: None,
    }
}

impl AnthropicStream {
    /// Keeps a copy of every event as received, for native relaying.
    pub fn keep_raw(mut self) -> Self {
        self.raw = Some(Vec::new());
        self
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
        .to_string()
    }

    fn block_mut(&mut self, index: u64) -> Option<&mut (u64, Block, usize)> {
        self.blocks.iter_mut().find(|(i, _, _)| *i == index)
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { return Ok(()) };
        let kind = data.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or_default();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(id) = data.pointer("/message/id").and_then(Value::as_str) {
                    self.id = id.to_string();
                }
                if let Some(Value::Object(u)) = data.pointer("/message/usage") {
                    self.usage.extend(u.clone());
                }
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                let (kind, tool) = match block.get("type").and_then(Value::as_str) {
                    Some("text") => (Block::Text, 0),
                    Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                        self.json_answer = true;
                        (Block::JsonAnswer, 0)
                    }
                    Some("tool_use") => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": tool, "id": block.get("id"), "type": "function",
                                "function": {"name": block.get("name"), "arguments": ""}}]}),
                            None,
                        ));
                        (Block::Tool, tool)
                    }
                    Some("thinking") => (Block::Thinking { text: String::new(), signature: String::new() }, 0),
                    Some("redacted_thinking") => {
                        out.push(self.chunk(json!({"thinking_blocks": [block]}), None));
                        (Block::Other, 0)
                    }
                    _ => (Block::Other, 0),
                };
                self.blocks.push((index, kind, tool));
            }
            "content_block_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                let text = |f: &str| delta.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
                let chunk = match (delta.get("type").and_then(Value::as_str), self.block_mut(index)) {
                    (Some("text_delta"), _) => Some(json!({"content": text("text")})),
                    (Some("input_json_delta"), Some((_, Block::JsonAnswer, _))) => {
                        Some(json!({"content": text("partial_json")}))
                    }
                    (Some("input_json_delta"), Some((_, Block::Tool, tool))) => {
                        Some(json!({"tool_calls": [{"index": *tool, "function": {"arguments": text("partial_json")}}]}))
                    }
                    (Some("thinking_delta"), Some((_, Block::Thinking { text: acc, .. }, _))) => {
                        acc.push_str(&text("thinking"));
                        Some(json!({"reasoning_content": text("thinking")}))
                    }
                    (Some("signature_delta"), Some((_, Block::Thinking { signature, .. }, _))) => {
                        signature.push_str(&text("signature"));
                        None
                    }
                    _ => None,
                };
                if let Some(delta) = chunk {
                    out.push(self.chunk(delta, None));
                }
            }
            "content_block_stop" => {
                if let Some((_, Block::Thinking { text, signature }, _)) = self.block_mut(index) {
                    // The whole signed block at once, so clients can echo it back on tool turns.
                    let block = json!({"type": "thinking", "thinking": std::mem::take(text), "signature": std::mem::take(signature)});
                    out.push(self.chunk(json!({"thinking_blocks": [block]}), None));
                }
            }
            "message_delta" => {
                if let Some(Value::Object(u)) = data.get("usage") {
                    self.usage.extend(u.clone());
                }
                let reason = finish_reason(data.pointer("/delta/stop_reason").and_then(Value::as_str));
                let reason = if self.json_answer { "stop" } else { reason.unwrap_or("stop") };
                out.push(self.chunk(json!({}), Some(reason)));
            }
            "message_stop" => self.stop(out),
            "error" => {
                let message = data.pointer("/error/message").and_then(Value::as_str).unwrap_or("error");
                let kind = data.pointer("/error/type").and_then(Value::as_str).unwrap_or("api_error");
                return Err(StreamFault::Upstream(format!("{message} ({kind})")));
            }
            _ => {} // ping and future event types
        }
        Ok(())
    }

    fn stop(&mut self, out: &mut Vec<String>) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Always emitted: the gateway accounts for every stream, and drops this chunk
        // on the way out when the client did not ask for usage.
        let usage = usage(&Value::Object(self.usage.clone()));
        out.push(
            json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage})
            .to_string(),
        );
        out.push("[DONE]".into());
    }

    fn process(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        for event in std::mem::take(&mut self.events) {
            if let Some(raw) = self.raw.as_mut() {
                crate::sse::encode(event.event.as_deref(), &event.data, raw);
            }
            self.on_event(&event, out)?;
        }
        Ok(())
    }
}

impl StreamTranslator for AnthropicStream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.feed(bytes, &mut self.events).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        self.process(out)
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.finish(&mut self.events);
        self.process(out)
    }

    fn take_raw(&mut self, out: &mut Vec<u8>) {
        if let Some(raw) = self.raw.as_mut() {
            out.append(raw);
        }
    }
}

#[cfg(test)]
mod tests;
