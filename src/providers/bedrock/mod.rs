//! Adapter for AWS Bedrock's Converse and ConverseStream APIs, SigV4-signed.
//! The provider's secret holds `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`,
//! or a Bedrock API key (sent as a bearer token) when it has no colon.
//! Region-specific endpoints make this the main way to serve Anthropic and other
//! models from EU regions.

mod crc32;
pub mod eventstream;
pub mod sigv4;

use super::common::{
    json_output_schema, json_tool_choice, max_tokens, push_turn, stop_sequences, text_of, tool_arguments, unsupported,
    JsonAnswerText, JsonToolChoice, JSON_TOOL, JSON_TOOL_DESCRIPTION,
};
use super::openai::percent_encode;
use super::{AttemptContext, StreamFault, StreamTranslator, UpstreamRequest};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::chunk::{completion_choice, Completion, StreamChunks};
use crate::protocol::openai::ChatRequest;
use crate::protocol::USER_AGENT;
use serde_json::{Map, Value};

fn content_blocks(content: &Value) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(json!({"text": part.get("text").cloned().unwrap_or_default()})),
                    Some("image_url") => {
                        let url = part.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                        let (meta, data) =
                            url.strip_prefix("data:").and_then(|rest| rest.split_once(',')).ok_or_else(|| {
                                unsupported("messages", "Bedrock takes images as base64 data: URLs only.")
                            })?;
                        let format = meta.trim_end_matches(";base64").trim_start_matches("image/").to_string();
                        out.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
                    }
                    other => {
                        return Err(unsupported(
                            "messages",
                            format!("Content parts of type {other:?} cannot be sent to Bedrock."),
                        ))
                    }
                }
                if part.get("cache_control").is_some() {
                    out.push(json!({"cachePoint": {"type": "default"}}));
                }
            }
            Ok(out)
        }
        _ => Err(unsupported("messages", "Message content must be a string or a list of parts.")),
    }
}

fn converse_body(req: &ChatRequest, default_max_tokens: u64) -> Result<Value, GatewayError> {
    let extra = &req.extra;
    if extra.get("n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(unsupported("n", "Bedrock Converse returns one choice; n must be 1."));
    }
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for message in &req.messages {
        let content = message.rest.get("content").cloned().unwrap_or(Value::Null);
        match message.role.as_str() {
            "system" | "developer" => system.extend(content_blocks(&content)?),
            "user" => push_turn(&mut messages, "user", "content", content_blocks(&content)?),
            "assistant" => {
                let mut blocks = Vec::new();
                for t in message.rest.get("thinking_blocks").and_then(Value::as_array).into_iter().flatten() {
                    if t.get("type").and_then(Value::as_str) == Some("thinking") {
                        blocks.push(json!({"reasoningContent": {"reasoningText": {"text": &t["thinking"], "signature": &t["signature"]}}}));
                    } else if let Some(data) = t.get("data") {
                        blocks.push(json!({"reasoningContent": {"redactedContent": data}}));
                    }
                }
                blocks.extend(content_blocks(&content)?);
                for call in message.rest.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let input = tool_arguments(call)?;
                    blocks.push(json!({"toolUse": {"toolUseId": &call["id"], "name": call.pointer("/function/name"), "input": input}}));
                }
                push_turn(&mut messages, "assistant", "content", blocks);
            }
            "tool" | "function" => {
                let text = text_of(&content);
                let result =
                    json!({"toolResult": {"toolUseId": message.rest.get("tool_call_id"), "content": [{"text": text}]}});
                push_turn(&mut messages, "user", "content", vec![result]);
            }
            _ => {}
        }
    }
    let mut body = json!({"messages": messages});
    if !system.is_empty() {
        body["system"] = Value::Array(system);
    }
    let mut inference = Map::new();
    let max = max_tokens(extra);
    inference.insert("maxTokens".into(), max.unwrap_or(default_max_tokens).into());
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = extra.get(from) {
            inference.insert(to.into(), v.clone());
        }
    }
    if let Some(stop) = stop_sequences(extra) {
        inference.insert("stopSequences".into(), stop);
    }
    body["inferenceConfig"] = Value::Object(inference);
    let tools: Vec<Value> = extra
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("function"))
        .map(|f| {
            json!({"toolSpec": {"name": &f["name"], "description": f.get("description").cloned().unwrap_or_else(|| json!("")),
                "inputSchema": {"json": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}))}}})
        })
        .collect();
    let choice = extra.get("tool_choice");
    if !tools.is_empty() && choice != Some(&json!("none")) {
        let mut config = json!({"tools": tools});
        match choice {
            Some(Value::String(s)) if s == "required" => config["toolChoice"] = json!({"any": {}}),
            Some(named) if named.pointer("/function/name").is_some() => {
                config["toolChoice"] = json!({"tool": {"name": named.pointer("/function/name")}})
            }
            _ => {}
        }
        body["toolConfig"] = config;
    }
    let effort = extra.get("reasoning_effort").and_then(Value::as_str);
    if let Some(schema) = json_output_schema(extra)? {
        // JSON output as a tool whose input is the answer (see chat_response), beside
        // the client's tools (see `JsonToolChoice`).
        let choice = json_tool_choice(extra, effort.is_some());
        if choice != JsonToolChoice::Left {
            // Forced alone: Bedrock has no "none" choice, so the client's tools are not sent then.
            let mut tools = match (choice, body.pointer_mut("/toolConfig/tools").map(Value::take)) {
                (JsonToolChoice::Forced, _) => Vec::new(),
                (_, Some(Value::Array(tools))) => tools,
                _ => Vec::new(),
            };
            tools.push(json!({"toolSpec": {"name": JSON_TOOL, "description": JSON_TOOL_DESCRIPTION, "inputSchema": {"json": schema}}}));
            let mut config = json!({"tools": tools});
            match choice {
                JsonToolChoice::AnyTool => config["toolChoice"] = json!({"any": {}}),
                JsonToolChoice::Forced => config["toolChoice"] = json!({"tool": {"name": JSON_TOOL}}),
                JsonToolChoice::Auto | JsonToolChoice::Left => {}
            }
            body["toolConfig"] = config;
        }
    }
    if let Some(effort) = effort {
        let budget = match effort {
            "minimal" | "low" => 1024,
            "medium" => 4096,
            _ => 16_384,
        };
        body["additionalModelRequestFields"] = json!({"thinking": {"type": "enabled", "budget_tokens": budget}});
    }
    Ok(body)
}

pub fn chat_request(
    ctx: &AttemptContext,
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<UpstreamRequest, GatewayError> {
    let stream = req.is_stream();
    let body = serde_json::to_vec(&converse_body(req, default_max_tokens)?)
        .map_err(|e| GatewayError::internal(e.to_string()))?;
    signed_post(ctx, if stream { "converse-stream" } else { "converse" }, body, stream)
}

/// CountTokens for the Converse request this request would be: its input parts
/// (messages, system, tools, extra model fields), not its inference settings.
pub fn count_tokens_request(ctx: &AttemptContext, req: &ChatRequest) -> Result<UpstreamRequest, GatewayError> {
    let Value::Object(mut converse) = converse_body(req, 1)? else {
        return Err(GatewayError::internal("the Converse request is not an object"));
    };
    let mut input = Map::new();
    for field in ["messages", "system", "toolConfig", "additionalModelRequestFields"] {
        if let Some(value) = converse.remove(field) {
            input.insert(field.into(), value);
        }
    }
    let body = serde_json::to_vec(&json!({"input": {"converse": input}}))
        .map_err(|e| GatewayError::internal(e.to_string()))?;
    signed_post(ctx, "count-tokens", body, false)
}

/// A POST to the model's `action`, signed with the provider's credentials (SigV4) or its API key.
fn signed_post(
    ctx: &AttemptContext,
    action: &str,
    body: Vec<u8>,
    stream: bool,
) -> Result<UpstreamRequest, GatewayError> {
    let (scheme, rest) = ctx.provider.base_url.split_once("://").unwrap_or(("https", &ctx.provider.base_url));
    let host = rest.split('/').next().unwrap_or_default().to_string();
    let region =
        ctx.provider.signing_region().ok_or_else(|| GatewayError::internal("the Bedrock provider has no region"))?;
    let path = format!("/model/{}/{action}", percent_encode(ctx.upstream_model));
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "application/vnd.amazon.eventstream" } else { "application/json" }.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    let secret = ctx.api_key.unwrap_or_default();
    let mut parts = secret.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(key), token) if !id.is_empty() && !key.is_empty() => {
            let credentials = sigv4::Credentials { access_key_id: id, secret_access_key: key, session_token: token };
            headers.extend(sigv4::sign_post(&host, &path, &body, &credentials, region, "bedrock", ctx.now_ms));
        }
        (Some(api_key), None, _) if !api_key.is_empty() => headers.push(("authorization", format!("Bearer {api_key}"))),
        _ => {
            return Err(GatewayError::new(
                502,
                "server_error",
                "upstream_auth_failed",
                "The Bedrock credentials secret must be ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN] or a Bedrock API key.",
            ))
        }
    }
    Ok(UpstreamRequest { url: format!("{scheme}://{host}{path}"), headers, body, stream })
}

pub fn finish_reason(stop_reason: Option<&str>) -> Option<&'static str> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    })
}

pub fn usage(usage: &Value) -> Value {
    let n = |f: &str| usage.get(f).and_then(Value::as_u64).unwrap_or(0);
    let (input, output, read, write) =
        (n("inputTokens"), n("outputTokens"), n("cacheReadInputTokens"), n("cacheWriteInputTokens"));
    json!({"prompt_tokens": input + read + write, "completion_tokens": output, "total_tokens": input + read + write + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write}})
}

pub fn chat_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let response: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    let content =
        response.pointer("/output/message/content").and_then(Value::as_array).ok_or("the answer has no message")?;
    let (mut text, mut reasoning, mut thinking, mut calls) = (String::new(), String::new(), Vec::new(), Vec::new());
    let mut json_answer = None;
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tool) = block.get("toolUse").filter(|t| t["name"] == JSON_TOOL) {
            json_answer = Some(tool.get("input").map_or_else(|| "{}".into(), Value::to_string));
        } else if let Some(tool) = block.get("toolUse") {
            calls.push(json!({"id": &tool["toolUseId"], "type": "function",
                "function": {"name": &tool["name"], "arguments": tool.get("input").map_or_else(|| "{}".into(), Value::to_string)}}));
        } else if let Some(r) = block.pointer("/reasoningContent/reasoningText") {
            let t = r.get("text").and_then(Value::as_str).unwrap_or_default();
            reasoning.push_str(t);
            thinking.push(json!({"type": "thinking", "thinking": t, "signature": r.get("signature").cloned().unwrap_or_default()}));
        } else if let Some(data) = block.pointer("/reasoningContent/redactedContent") {
            thinking.push(json!({"type": "redacted_thinking", "data": data}));
        }
    }
    // The JSON answer is the content alone (text around an unforced call would break it).
    // Real tool calls beside it end the turn as tool calls: the agent runs them and asks again.
    let answered = json_answer.is_some() && calls.is_empty();
    if let Some(json) = json_answer {
        text = json;
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { text.into() }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        message["reasoning_content"] = reasoning.into();
        message["thinking_blocks"] = Value::Array(thinking);
    }
    let reason = if answered {
        "stop"
    } else {
        finish_reason(response.get("stopReason").and_then(Value::as_str)).unwrap_or("stop")
    };
    Ok(Completion {
        id: format!("chatcmpl-{}", ctx.request_id).into(),
        created: ctx.now_ms / 1000,
        model: ctx.public_model,
        choices: vec![completion_choice(0, message, reason)],
        usage: usage(response.get("usage").unwrap_or(&Value::Null)),
    }
    .into_json())
}

/// Bedrock's error body is `{"message": …}`; the error type is in `x-amzn-errortype`.
pub fn error_details(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get("message")?.as_str().map(str::to_string)
}

/// ConverseStream frames as canonical chunks.
pub struct BedrockStream {
    decoder: eventstream::Decoder,
    messages: Vec<eventstream::Message>,
    chunks: StreamChunks,
    /// Bedrock content block index → OpenAI tool-call index.
    tools: Vec<(u64, usize)>,
    thinking: Option<(String, String)>,
    /// The content block carrying JSON output (the JSON tool), if any.
    json_block: Option<u64>,
    /// The text, held while the JSON tool's call may still come.
    json: JsonAnswerText,
    usage: Option<Value>,
    stopped: bool,
}

pub fn stream_translator(ctx: &AttemptContext, json_output: bool) -> BedrockStream {
    BedrockStream {
        decoder: eventstream::Decoder::default(),
        messages: Vec::new(),
        chunks: StreamChunks {
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.now_ms / 1000,
            model: ctx.public_model.to_string(),
        },
        tools: Vec::new(),
        thinking: None,
        json_block: None,
        json: JsonAnswerText::new(json_output),
        usage: None,
        stopped: false,
    }
}

impl BedrockStream {
    fn on_message(&mut self, message: &eventstream::Message, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let payload: Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        if message.header(":message-type") == Some("exception") || message.header(":message-type") == Some("error") {
            let kind = message.header(":exception-type").or(message.header(":error-code")).unwrap_or("exception");
            let text = payload.get("message").and_then(Value::as_str).unwrap_or("error");
            return Err(StreamFault::Upstream(format!("{text} ({kind})")));
        }
        let index = payload.get("contentBlockIndex").and_then(Value::as_u64).unwrap_or(0);
        match message.header(":event-type").unwrap_or_default() {
            "messageStart" => out.push(self.chunks.delta(json!({"role": "assistant", "content": ""}), None)),
            "contentBlockStart" => {
                if payload.pointer("/start/toolUse/name").is_some_and(|n| n == JSON_TOOL) {
                    self.json_block = Some(index);
                    self.json.answering();
                } else if let Some(tool) = payload.pointer("/start/toolUse") {
                    let tool_index = self.tools.len();
                    self.tools.push((index, tool_index));
                    out.push(self.chunks.delta(
                        json!({"tool_calls": [{"index": tool_index, "id": &tool["toolUseId"], "type": "function",
                            "function": {"name": &tool["name"], "arguments": ""}}]}),
                        None,
                    ));
                }
            }
            "contentBlockDelta" => {
                let delta = payload.get("delta").cloned().unwrap_or_default();
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    if let Some(text) = self.json.text(text) {
                        out.push(self.chunks.delta(json!({"content": text}), None));
                    }
                } else if let Some(input) =
                    delta.pointer("/toolUse/input").and_then(Value::as_str).filter(|_| self.json_block == Some(index))
                {
                    out.push(self.chunks.delta(json!({"content": input}), None));
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
                    let tool_index = self.tools.iter().find(|(i, _)| *i == index).map_or(0, |(_, t)| *t);
                    out.push(
                        self.chunks.delta(
                            json!({"tool_calls": [{"index": tool_index, "function": {"arguments": input}}]}),
                            None,
                        ),
                    );
                } else if let Some(r) = delta.get("reasoningContent") {
                    let text = r.get("text").and_then(Value::as_str);
                    let (acc, signature) = self.thinking.get_or_insert_with(Default::default);
                    acc.push_str(text.unwrap_or_default());
                    signature.push_str(r.get("signature").and_then(Value::as_str).unwrap_or_default());
                    if let Some(t) = text {
                        out.push(self.chunks.delta(json!({"reasoning_content": t}), None));
                    }
                }
            }
            "contentBlockStop" => {
                if let Some((text, signature)) = self.thinking.take() {
                    let block = json!({"type": "thinking", "thinking": text, "signature": signature});
                    out.push(self.chunks.delta(json!({"thinking_blocks": [block]}), None));
                }
            }
            "messageStop" => {
                if let Some(text) = self.json.release() {
                    out.push(self.chunks.delta(json!({"content": text}), None));
                }
                let reason = finish_reason(payload.get("stopReason").and_then(Value::as_str)).unwrap_or("stop");
                let reason = if self.json_block.is_some() && self.tools.is_empty() { "stop" } else { reason };
                out.push(self.chunks.delta(json!({}), Some(reason)));
                self.stopped = true;
            }
            "metadata" => {
                if let Some(u) = payload.get("usage") {
                    self.usage = Some(usage(u));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        for message in std::mem::take(&mut self.messages) {
            self.on_message(&message, out)?;
        }
        Ok(())
    }
}

impl StreamTranslator for BedrockStream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.feed(bytes, &mut self.messages).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        self.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.drain(out)?;
        if self.stopped {
            if let Some(usage) = self.usage.take() {
                out.push(self.chunks.usage(usage));
            }
            out.push("[DONE]".into());
        }
        Ok(())
    }
}

/// AWS Bedrock's Converse API.
pub struct Bedrock;

impl super::ProviderAdapter for Bedrock {
    fn wire(&self) -> super::Wire {
        super::Wire::BedrockConverse
    }

    fn context_overflow(&self) -> &'static [&'static str] {
        &["input is too long", "prompt is too long"]
    }

    fn chat_request(
        &self,
        ctx: &AttemptContext,
        request: &mut ChatRequest,
        max_output_tokens: Option<u64>,
    ) -> Result<UpstreamRequest, GatewayError> {
        chat_request(ctx, request, max_output_tokens.unwrap_or(crate::providers::anthropic::DEFAULT_MAX_TOKENS))
    }

    fn chat_response(&self, ctx: &AttemptContext, body: &[u8]) -> Result<super::WholeAnswer, super::AttemptFailure> {
        chat_response(ctx, body)
            .map(super::WholeAnswer::Translated)
            .map_err(|_| super::AttemptFailure::InvalidResponse("the answer is not a message"))
    }

    fn stream_translator(&self, ctx: &AttemptContext, wants: super::StreamWants) -> Box<dyn super::StreamTranslator> {
        Box::new(stream_translator(ctx, wants.json_output))
    }

    fn stream_content_type(&self) -> &'static str {
        "application/vnd.amazon.eventstream"
    }

    fn count_tokens_request(
        &self,
        ctx: &AttemptContext,
        count: super::TokenCount,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        Some(count_tokens_request(ctx, count.request))
    }

    fn count_tokens_response(&self, body: &[u8]) -> Result<u64, super::AttemptFailure> {
        super::token_count(body, "inputTokens")
    }
}

#[cfg(test)]
mod tests;
