//! Adapter for Anthropic's Messages API: the canonical (OpenAI) request out, the
//! answer and its SSE event stream back into canonical completions and chunks.
//! Thinking blocks keep their signatures and cache_control markers survive, so
//! tool turns can echo them back as Anthropic requires.

mod stream;

pub use stream::{stream_translator, AnthropicStream};

use super::common::{
    json_output_schema, json_tool_choice, max_tokens, push_turn, stop_sequences, text_of, tool_arguments, unsupported,
    JsonToolChoice, JSON_TOOL, JSON_TOOL_DESCRIPTION,
};
use super::{AttemptContext, UpstreamRequest};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::anthropic::{canonical_usage, finish_reason, ANTHROPIC_VERSION};
use crate::protocol::chunk::{completion_choice, Completion};
use crate::protocol::openai::ChatRequest;
use crate::protocol::USER_AGENT;
use serde_json::{Map, Value};

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

/// JSON output as a call of one tool whose input is the answer; the reply comes back
/// as message content (see chat_response / the stream). Beside the client's tools,
/// the model must call one of them or this one (see `JsonToolChoice`).
fn add_json_tool(body: &mut Map<String, Value>, extra: &Map<String, Value>, schema: Value) {
    let thinks = body.get("thinking").is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    let mut choice = match json_tool_choice(extra, thinks) {
        JsonToolChoice::Left => return,
        JsonToolChoice::Auto => json!({"type": "auto"}),
        JsonToolChoice::AnyTool => json!({"type": "any"}),
        JsonToolChoice::Forced => json!({"type": "tool", "name": JSON_TOOL}),
    };
    let tool = json!({"name": JSON_TOOL, "description": JSON_TOOL_DESCRIPTION, "input_schema": schema});
    match body.get_mut("tools") {
        Some(Value::Array(tools)) => tools.push(tool),
        _ => {
            body.insert("tools".into(), Value::Array(vec![tool]));
        }
    }
    if body.get("tool_choice").and_then(|c| c.get("disable_parallel_tool_use")) == Some(&Value::Bool(true)) {
        choice["disable_parallel_tool_use"] = Value::Bool(true);
    }
    body.insert("tool_choice".into(), choice);
}

/// What Anthropic's `count_tokens` takes of a Messages request.
const COUNTED_FIELDS: [&str; 6] = ["model", "messages", "system", "tools", "tool_choice", "thinking"];

pub fn chat_request(
    ctx: &AttemptContext,
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<UpstreamRequest, GatewayError> {
    let mut body = messages_body(ctx, req, default_max_tokens)?;
    if req.is_stream() {
        body.insert("stream".into(), Value::Bool(true));
    }
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    let headers = request_headers(ctx, req.is_stream());
    Ok(UpstreamRequest { url: format!("{}/messages", ctx.provider.base_url), headers, body, stream: req.is_stream() })
}

/// The count of the Messages request `req` would be (for clients of other dialects).
fn translated_count_request(ctx: &AttemptContext, req: &ChatRequest) -> Result<UpstreamRequest, GatewayError> {
    let mut whole = messages_body(ctx, req, DEFAULT_MAX_TOKENS)?;
    let mut body = Map::new();
    for field in COUNTED_FIELDS {
        if let Some(value) = whole.remove(field) {
            body.insert(field.into(), value);
        }
    }
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    let headers = request_headers(ctx, false);
    Ok(UpstreamRequest {
        url: format!("{}/messages/count_tokens", ctx.provider.base_url),
        headers,
        body,
        stream: false,
    })
}

fn request_headers(ctx: &AttemptContext, stream: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "text/event-stream" } else { "application/json" }.to_string()),
        ("anthropic-version", ANTHROPIC_VERSION.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    if let Some(key) = ctx.api_key {
        headers.push(("x-api-key", key.to_string()));
    }
    headers
}

/// A Messages body for `req` (without `stream`).
fn messages_body(
    ctx: &AttemptContext,
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<Map<String, Value>, GatewayError> {
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
        add_json_tool(&mut body, extra, schema);
    }
    Ok(body)
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

/// The client's `anthropic-version` and `anthropic-beta`, when it sent them.
fn protocol_headers<'a>(native: &super::NativeBody<'a>) -> (Option<&'a str>, Option<&'a str>) {
    let header = |name: &str| native.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    (header("anthropic-version"), header("anthropic-beta"))
}

/// An Anthropic message as an OpenAI `chat.completion`.
pub fn chat_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let message: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    let content = message.get("content").and_then(Value::as_array).ok_or("the answer has no content")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = None;
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or_default());
                thinking_blocks.push(block.clone());
            }
            Some("redacted_thinking") => thinking_blocks.push(block.clone()),
            Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                json_answer = Some(block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()));
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
    // The JSON answer is the content alone: text the model wrote around an unforced
    // call (thinking on) would break it.
    let is_json_answer = json_answer.is_some();
    if let Some(json) = json_answer {
        text = json;
    }
    // Real tool calls beside it end the turn as tool calls: the agent runs them and asks again.
    let answered = is_json_answer && tool_calls.is_empty();
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() }, "refusal": null});
    if !tool_calls.is_empty() {
        msg["tool_calls"] = Value::Array(tool_calls);
    }
    if !thinking_blocks.is_empty() {
        msg["reasoning_content"] = reasoning.into();
        msg["thinking_blocks"] = Value::Array(thinking_blocks);
    }
    let reason = if answered {
        "stop"
    } else {
        finish_reason(message.get("stop_reason").and_then(Value::as_str)).unwrap_or("stop")
    };
    Ok(Completion {
        id: message.get("id").cloned().unwrap_or_else(|| format!("chatcmpl-{}", ctx.request_id).into()),
        created: ctx.now_ms / 1000,
        model: ctx.public_model,
        choices: vec![completion_choice(0, msg, reason)],
        usage: canonical_usage(message.get("usage").unwrap_or(&Value::Null)),
    }
    .into_json())
}

/// Anthropic's error body `{"type":"error","error":{"type","message"}}`.
pub fn error_details(body: &[u8]) -> Option<(String, Option<String>)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let error = v.get("error")?;
    Some((error.get("message")?.as_str()?.to_string(), error.get("type").and_then(Value::as_str).map(str::to_string)))
}

#[cfg(test)]
mod tests;

/// Anthropic's Messages API.
pub struct Anthropic;

impl super::ProviderAdapter for Anthropic {
    fn wire(&self) -> super::Wire {
        super::Wire::AnthropicMessages
    }

    fn quota(&self, header: super::quota::Headers, now_ms: u64) -> super::quota::QuotaReading {
        super::quota::anthropic(header, now_ms)
    }

    fn answer_headers(&self) -> super::HeaderNames {
        super::quota::ANTHROPIC_HEADERS
    }

    fn context_overflow(&self) -> &'static [&'static str] {
        &["prompt is too long"]
    }

    fn chat_request(
        &self,
        ctx: &AttemptContext,
        request: &mut ChatRequest,
        max_output_tokens: Option<u64>,
    ) -> Result<UpstreamRequest, GatewayError> {
        chat_request(ctx, request, max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS))
    }

    fn count_tokens_request(
        &self,
        ctx: &AttemptContext,
        count: super::TokenCount,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        // The client's own body (a `count_tokens` body), only the model replaced; from
        // another dialect, the Messages request it would be, with the fields a count takes.
        let Some(native) = count.native else {
            return Some(translated_count_request(ctx, count.request));
        };
        let (version, beta) = protocol_headers(&native);
        Some(native_request(ctx, native.body, version, beta).map(|mut request| {
            request.url.push_str("/count_tokens");
            request
        }))
    }

    fn native_request(
        &self,
        ctx: &AttemptContext,
        native: super::NativeBody,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        let (version, beta) = protocol_headers(&native);
        let asked = native.body.get("max_tokens").and_then(Value::as_u64);
        match (asked, native.max_output_tokens) {
            // SDKs send their own default ceiling: fitted to this target's.
            (Some(asked), Some(ceiling)) if asked > ceiling => {
                let mut fitted = native.body.clone();
                fitted.insert("max_tokens".into(), ceiling.into());
                Some(native_request(ctx, &fitted, version, beta))
            }
            _ => Some(native_request(ctx, native.body, version, beta)),
        }
    }

    fn chat_response(&self, ctx: &AttemptContext, body: &[u8]) -> Result<super::WholeAnswer, super::AttemptFailure> {
        chat_response(ctx, body)
            .map(super::WholeAnswer::Translated)
            .map_err(|_| super::AttemptFailure::InvalidResponse("the answer is not a message"))
    }

    fn stream_translator(&self, ctx: &AttemptContext, wants: super::StreamWants) -> Box<dyn super::StreamTranslator> {
        let translator = stream_translator(ctx, wants.json_output);
        Box::new(if wants.raw { translator.keep_raw(ctx) } else { translator })
    }
}
