//! OpenAI Chat Completions request → Gemini `GenerateContentRequest`.

mod generation;
mod media;
mod messages;
mod tools;

use super::{headers, method_url};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::openai::ChatRequest;
use crate::providers::{AttemptContext, UpstreamRequest};
use generation::{generation_config, uses_thinking_levels};
use messages::Conversation;
use serde_json::{Map, Value};
use tools::{function_declarations, tool_config};

#[cfg(test)]
pub(super) use generation::gemini_major_version;

/// Builds the `generateContent` (or `streamGenerateContent?alt=sse`) request.
pub fn chat_request(ctx: &AttemptContext, req: &ChatRequest) -> Result<UpstreamRequest, GatewayError> {
    let stream = req.is_stream();
    let body = serde_json::to_vec(&Value::Object(generate_content_body(ctx, req)?))
        .map_err(|e| GatewayError::internal(format!("could not encode the Gemini request: {e}")))?;
    let url = if stream {
        format!("{}?alt=sse", method_url(ctx, "streamGenerateContent"))
    } else {
        method_url(ctx, "generateContent")
    };
    Ok(UpstreamRequest { url, headers: headers(ctx, stream), body, stream })
}

/// `countTokens` for the whole `generateContent` request this request would be
/// (system instruction and function declarations counted too).
pub fn count_tokens_request(ctx: &AttemptContext, req: &ChatRequest) -> Result<UpstreamRequest, GatewayError> {
    let mut generate = generate_content_body(ctx, req)?;
    generate.insert("model".into(), format!("models/{}", ctx.upstream_model).into());
    let body = serde_json::to_vec(&json!({ "generateContentRequest": generate }))
        .map_err(|e| GatewayError::internal(format!("could not encode the Gemini request: {e}")))?;
    Ok(UpstreamRequest { url: method_url(ctx, "countTokens"), headers: headers(ctx, false), body, stream: false })
}

fn generate_content_body(ctx: &AttemptContext, req: &ChatRequest) -> Result<Map<String, Value>, GatewayError> {
    reject_unsupported(req)?;
    let conversation = Conversation::from_messages(&req.messages)?;

    let mut body = Map::new();
    if let Some(system) = conversation.system_instruction() {
        body.insert("systemInstruction".into(), system);
    }
    body.insert("contents".into(), conversation.contents(uses_thinking_levels(ctx.upstream_model)));
    let declarations = function_declarations(req)?;
    let tool_config = tool_config(req, !declarations.is_empty())?;
    if !declarations.is_empty() {
        body.insert("tools".into(), json!([{ "functionDeclarations": declarations }]));
    }
    if let Some(config) = tool_config {
        body.insert("toolConfig".into(), config);
    }
    let generation = generation_config(ctx, req)?;
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(body)
}

pub(super) fn invalid(code: &'static str, message: impl Into<String>, param: String) -> GatewayError {
    GatewayError::invalid_request(code, message).with_param(param)
}

fn unsupported(message: impl Into<String>, param: &'static str) -> GatewayError {
    GatewayError::invalid_request("unsupported_parameter", message).with_param(param)
}

pub(super) fn present<'a>(req: &'a ChatRequest, field: &str) -> Option<&'a Value> {
    req.extra.get(field).filter(|v| !v.is_null())
}

/// Fields Gemini has no equivalent for and that change what the client gets back:
/// refused rather than silently dropped. (Hints such as `user`, `metadata`, `store`,
/// `service_tier`, `parallel_tool_calls` and `prediction` are dropped.)
fn reject_unsupported(req: &ChatRequest) -> Result<(), GatewayError> {
    if present(req, "logprobs").is_some_and(|v| v != &Value::Bool(false)) || present(req, "top_logprobs").is_some() {
        return Err(unsupported("'logprobs' is not supported for Gemini targets by this gateway.", "logprobs"));
    }
    if present(req, "audio").is_some() {
        return Err(unsupported("Audio output is not supported for Gemini targets.", "audio"));
    }
    if let Some(modalities) = present(req, "modalities") {
        let text_only = modalities.as_array().is_some_and(|m| m.iter().all(|v| v.as_str() == Some("text")));
        if !text_only {
            return Err(unsupported("Only the 'text' output modality is supported for Gemini targets.", "modalities"));
        }
    }
    if present(req, "web_search_options").is_some() {
        return Err(unsupported("'web_search_options' is not supported for Gemini targets.", "web_search_options"));
    }
    if req.is_stream() && present(req, "n").and_then(Value::as_u64).unwrap_or(1) > 1 {
        return Err(unsupported("Gemini streams a single candidate: 'n' must be 1 when 'stream' is true.", "n"));
    }
    Ok(())
}
