//! Adapter for the Gemini API (Google AI Studio): `generateContent` and
//! `streamGenerateContent?alt=sse`, key in `x-goog-api-key`. Thought signatures
//! ride on tool calls as `extra_content.google.thought_signature` (Google's own
//! OpenAI-compatibility convention) and go back on the matching functionCall part.

use super::common::{max_tokens, push_turn, stop_sequences, text_of, tool_arguments, unsupported};
use super::openai::{percent_encode, USER_AGENT};
use super::{AttemptContext, StreamFault, StreamTranslator, UpstreamRequest};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::sse::{SseDecoder, SseEvent};
use serde_json::{json, Map, Value};

fn parts(content: &Value) -> Result<Vec<Value>, GatewayError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"text": text})]),
        Value::Array(items) => items
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"text": part.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => {
                    let url = part.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                    match url.strip_prefix("data:").and_then(|rest| rest.split_once(',')) {
                        Some((meta, data)) => {
                            let mime = meta.strip_suffix(";base64").unwrap_or(meta);
                            Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
                        }
                        None if url.starts_with("https://") => {
                            Ok(json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}))
                        }
                        None => Err(unsupported("messages", "Images must be https:// or data: URLs.")),
                    }
                }
                other => {
                    Err(unsupported("messages", format!("Content parts of type {other:?} cannot be sent to Gemini.")))
                }
            })
            .collect(),
        _ => Err(unsupported("messages", "Message content must be a string or a list of parts.")),
    }
}

fn guess_mime(url: &str) -> &'static str {
    let path = url.split('?').next().unwrap_or(url).to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

pub fn chat_request(ctx: &AttemptContext, req: &ChatRequest) -> Result<UpstreamRequest, GatewayError> {
    let mut system = Vec::new();
    let mut contents = Vec::new();
    // Tool results name the function, which OpenAI's tool messages only give by id.
    let mut names: Map<String, Value> = Map::new();
    for message in &req.messages {
        let content = message.rest.get("content").cloned().unwrap_or(Value::Null);
        match message.role.as_str() {
            "system" | "developer" => system.extend(parts(&content)?),
            "user" => push_turn(&mut contents, "user", "parts", parts(&content)?),
            "assistant" => {
                let mut out = parts(&content)?;
                for call in message.rest.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let name = call.pointer("/function/name").cloned().unwrap_or_default();
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        names.insert(id.to_string(), name.clone());
                    }
                    let args = tool_arguments(call)?;
                    let mut part = json!({"functionCall": {"name": name, "args": args}});
                    if let Some(signature) = call.pointer("/extra_content/google/thought_signature") {
                        part["thoughtSignature"] = signature.clone();
                    }
                    out.push(part);
                }
                push_turn(&mut contents, "model", "parts", out);
            }
            "tool" | "function" => {
                let id = message.rest.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
                let name = names.get(id).cloned().or_else(|| message.rest.get("name").cloned()).unwrap_or_default();
                let text = text_of(&content);
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(object)) => Value::Object(object),
                    _ => json!({"content": text}),
                };
                push_turn(
                    &mut contents,
                    "user",
                    "parts",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            _ => {}
        }
    }

    let extra = &req.extra;
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    if let Some(Value::Array(tools)) = extra.get("tools") {
        let declarations: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut d = json!({"name": f.get("name").cloned().unwrap_or_default()});
                if let Some(description) = f.get("description") {
                    d["description"] = description.clone();
                }
                if let Some(parameters) = f.get("parameters") {
                    // Full JSON Schema, as the client wrote it (no lossy down-conversion).
                    d["parametersJsonSchema"] = parameters.clone();
                }
                d
            })
            .collect();
        if !declarations.is_empty() {
            body["tools"] = json!([{"functionDeclarations": declarations}]);
        }
    }
    let mode = match extra.get("tool_choice") {
        Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
        Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
        Some(Value::String(s)) if s == "auto" => Some(json!({"mode": "AUTO"})),
        Some(choice) => {
            choice.pointer("/function/name").map(|name| json!({"mode": "ANY", "allowedFunctionNames": [name]}))
        }
        None => None,
    };
    if let Some(mode) = mode {
        body["toolConfig"] = json!({"functionCallingConfig": mode});
    }

    let mut generation = Map::new();
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"), ("n", "candidateCount")] {
        if let Some(v) = extra.get(from) {
            generation.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = max_tokens(extra) {
        generation.insert("maxOutputTokens".into(), max.into());
    }
    if let Some(stop) = stop_sequences(extra) {
        generation.insert("stopSequences".into(), stop);
    }
    match extra.get("response_format") {
        Some(f) if f.get("type") == Some(&json!("json_object")) => {
            generation.insert("responseMimeType".into(), "application/json".into());
        }
        Some(f) if f.get("type") == Some(&json!("json_schema")) => {
            generation.insert("responseMimeType".into(), "application/json".into());
            if let Some(schema) = f.pointer("/json_schema/schema") {
                generation.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        _ => {}
    }
    if let Some(effort) = extra.get("reasoning_effort").and_then(Value::as_str) {
        let budget = match effort {
            "minimal" => 0,
            "low" => 1024,
            "medium" => 8192,
            _ => 24_576,
        };
        generation.insert("thinkingConfig".into(), json!({"thinkingBudget": budget, "includeThoughts": true}));
    }
    if !generation.is_empty() {
        body["generationConfig"] = Value::Object(generation);
    }

    let stream = req.is_stream();
    let model = percent_encode(ctx.upstream_model);
    let url = if stream {
        format!("{}/models/{model}:streamGenerateContent?alt=sse", ctx.provider.base_url)
    } else {
        format!("{}/models/{model}:generateContent", ctx.provider.base_url)
    };
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "text/event-stream" } else { "application/json" }.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    if let Some(key) = ctx.api_key {
        headers.push(("x-goog-api-key", key.to_string()));
    }
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    Ok(UpstreamRequest { url, headers, body, stream })
}

pub fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> Option<&'static str> {
    Some(match reason? {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    })
}

pub fn usage(meta: &Value) -> Value {
    let n = |f: &str| meta.get(f).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount");
    let completion = n("candidatesTokenCount") + n("thoughtsTokenCount");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": n("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": n("thoughtsTokenCount")},
    })
}

/// What one response (or one streamed chunk) says, in canonical pieces.
struct Pieces {
    text: String,
    reasoning: String,
    calls: Vec<Value>,
    finish: Option<String>,
}

fn pieces(response: &Value, first_call_index: usize) -> Pieces {
    let candidate = response.pointer("/candidates/0").cloned().unwrap_or_default();
    let mut out = Pieces { text: String::new(), reasoning: String::new(), calls: Vec::new(), finish: None };
    for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        if let Some(call) = part.get("functionCall") {
            let index = first_call_index + out.calls.len();
            let mut tool_call = json!({
                "id": call.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{index}"), str::to_string),
                "type": "function",
                "function": {"name": call.get("name").cloned().unwrap_or_default(),
                             "arguments": call.get("args").map_or_else(|| "{}".to_string(), Value::to_string)},
            });
            if let Some(signature) = part.get("thoughtSignature") {
                tool_call["extra_content"] = json!({"google": {"thought_signature": signature}});
            }
            out.calls.push(tool_call);
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought") == Some(&Value::Bool(true)) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        }
    }
    out.finish = candidate.get("finishReason").and_then(Value::as_str).map(str::to_string);
    out
}

/// A prompt Gemini refused outright has no candidates, only a block reason.
fn blocked(response: &Value) -> Option<String> {
    let reason = response.pointer("/promptFeedback/blockReason").and_then(Value::as_str)?;
    response.pointer("/candidates/0").is_none().then(|| format!("content_filter: the prompt was blocked ({reason})"))
}

pub fn chat_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let response: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    if let Some(reason) = blocked(&response) {
        return Err(reason);
    }
    let p = pieces(&response, 0);
    let mut message = json!({"role": "assistant", "content": if p.text.is_empty() && !p.calls.is_empty() { Value::Null } else { p.text.into() }, "refusal": null});
    if !p.reasoning.is_empty() {
        message["reasoning_content"] = p.reasoning.into();
    }
    let has_calls = !p.calls.is_empty();
    if has_calls {
        message["tool_calls"] = Value::Array(p.calls);
    }
    Ok(json!({
        "id": response.get("responseId").and_then(Value::as_str).map_or_else(|| format!("chatcmpl-{}", ctx.request_id), str::to_string),
        "object": "chat.completion",
        "created": ctx.now_ms / 1000,
        "model": ctx.public_model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
                     "finish_reason": finish_reason(p.finish.as_deref(), has_calls).unwrap_or("stop")}],
        "usage": usage(response.get("usageMetadata").unwrap_or(&Value::Null)),
    }))
}

/// An OpenAI embeddings request as Gemini's `batchEmbedContents`.
pub fn embeddings_request(
    ctx: &AttemptContext,
    request: &crate::protocol::openai::EmbeddingsRequest,
) -> Result<UpstreamRequest, GatewayError> {
    let inputs: Vec<&str> = match &request.input {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().ok_or_else(|| unsupported("input", "Gemini embeds text inputs only, not token arrays."))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(unsupported("input", "'input' must be a string or a list of strings.")),
    };
    let model = format!("models/{}", ctx.upstream_model);
    let dimensions = request.extra.get("dimensions").and_then(Value::as_u64);
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut r = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let Some(d) = dimensions {
                r["outputDimensionality"] = d.into();
            }
            r
        })
        .collect();
    let body = serde_json::to_vec(&json!({"requests": requests})).map_err(|e| GatewayError::internal(e.to_string()))?;
    let mut headers = vec![("content-type", "application/json".to_string()), ("user-agent", USER_AGENT.to_string())];
    if let Some(key) = ctx.api_key {
        headers.push(("x-goog-api-key", key.to_string()));
    }
    let url = format!("{}/models/{}:batchEmbedContents", ctx.provider.base_url, percent_encode(ctx.upstream_model));
    Ok(UpstreamRequest { url, headers, body, stream: false })
}

/// Gemini's `{"embeddings":[{"values":[…]}]}` as OpenAI's list, base64 when asked
/// (the official SDKs ask by default).
pub fn embeddings_response(
    ctx: &AttemptContext,
    body: &[u8],
    base64: bool,
    estimated_tokens: u64,
) -> Result<Value, String> {
    let response: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    let embeddings = response.get("embeddings").and_then(Value::as_array).ok_or("the answer has no embeddings")?;
    let data: Vec<Value> = embeddings
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let values = e.get("values").cloned().unwrap_or_else(|| json!([]));
            let embedding = if base64 { Value::String(float32_base64(&values)) } else { values };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({"object": "list", "data": data, "model": ctx.public_model,
        "usage": {"prompt_tokens": estimated_tokens, "total_tokens": estimated_tokens}}))
}

/// Little-endian float32s, base64-encoded: OpenAI's `encoding_format: "base64"`.
fn float32_base64(values: &Value) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|v| (v.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Gemini's stream: every `data:` is a partial GenerateContentResponse.
pub struct GeminiStream {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    created: u64,
    model: String,
    started: bool,
    tool_calls: usize,
    usage: Option<Value>,
    finished: bool,
}

pub fn stream_translator(ctx: &AttemptContext) -> GeminiStream {
    GeminiStream {
        decoder: SseDecoder::default(),
        events: Vec::new(),
        id: format!("chatcmpl-{}", ctx.request_id),
        created: ctx.now_ms / 1000,
        model: ctx.public_model.to_string(),
        started: false,
        tool_calls: 0,
        usage: None,
        finished: false,
    }
}

impl GeminiStream {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        .to_string()
    }

    fn on_data(&mut self, data: &str, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let Ok(response) = serde_json::from_str::<Value>(data) else { return Ok(()) };
        if let Some(error) = response.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("error").to_string();
            return Err(StreamFault::Upstream(message));
        }
        if let Some(reason) = blocked(&response) {
            return Err(StreamFault::Upstream(reason));
        }
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
        let p = pieces(&response, self.tool_calls);
        if !p.reasoning.is_empty() {
            out.push(self.chunk(json!({"reasoning_content": p.reasoning}), None));
        }
        if !p.text.is_empty() {
            out.push(self.chunk(json!({"content": p.text}), None));
        }
        for (offset, mut call) in p.calls.into_iter().enumerate() {
            call["index"] = json!(self.tool_calls + offset);
            out.push(self.chunk(json!({"tool_calls": [call]}), None));
        }
        self.tool_calls += response
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
            .map_or(0, |parts| parts.iter().filter(|p| p.get("functionCall").is_some()).count());
        if let Some(meta) = response.get("usageMetadata") {
            self.usage = Some(usage(meta));
        }
        if let Some(reason) = finish_reason(p.finish.as_deref(), self.tool_calls > 0) {
            out.push(self.chunk(json!({}), Some(reason)));
            self.finished = true;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<String>) {
        if self.finished {
            if let Some(usage) = self.usage.take() {
                out.push(
                    json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                           "choices": [], "usage": usage})
                    .to_string(),
                );
            }
            out.push("[DONE]".into());
            self.finished = false;
        }
    }
}

impl StreamTranslator for GeminiStream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.feed(bytes, &mut self.events).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        for event in std::mem::take(&mut self.events) {
            self.on_data(&event.data, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.finish(&mut self.events);
        for event in std::mem::take(&mut self.events) {
            self.on_data(&event.data, out)?;
        }
        // Gemini ends its stream by closing it: the finish reason seen means complete.
        self.end(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
