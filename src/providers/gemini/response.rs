//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`, plus the pieces the
//! stream translator shares: part reading, tool-call ids, finish reasons, usage.

use crate::json;
use crate::protocol::chunk::{completion_choice, Completion};
use crate::providers::AttemptContext;
use serde_json::{Map, Value};

/// Turns a non-streamed Gemini success body into an OpenAI `chat.completion`.
/// A prompt Gemini blocked (no candidates, `promptFeedback.blockReason`) is an
/// `Err` starting with `content_filter:`, for the caller to answer with a 400.
pub fn chat_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let response: Value =
        serde_json::from_slice(body).map_err(|e| format!("Gemini returned a body that is not JSON: {e}"))?;
    if let Some(error) = response.get("error") {
        return Err(describe_error(error));
    }
    let candidates = candidates(&response);
    if candidates.is_empty() {
        return Err(match block_reason(&response) {
            Some(reason) => blocked_prompt_message(reason),
            None => "Gemini returned no candidates".to_string(),
        });
    }
    let response_id = response_id(&response);
    let mut call_ids = ToolCallIds::for_response(response_id);
    let choices: Vec<Value> =
        candidates.iter().enumerate().map(|(position, candidate)| choice(candidate, position, &mut call_ids)).collect();
    Ok(Completion {
        id: completion_id(response_id, ctx.request_id).into(),
        created: ctx.now_ms / 1000,
        model: ctx.public_model,
        choices,
        usage: usage(response.get("usageMetadata")),
    }
    .into_json())
}

/// Message and code (Gemini's `status`, else its numeric `code`) of an error body
/// `{"error":{"code","message","status"}}`; Gemini sometimes wraps it in an array.
pub fn error_details(body: &[u8]) -> Option<(String, Option<String>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = match &value {
        Value::Array(items) => items.first()?.get("error")?,
        other => other.get("error")?,
    };
    let code = error_code(error);
    let message = error.get("message").and_then(Value::as_str).map(str::to_string).or_else(|| code.clone())?;
    Some((message, code))
}

fn error_code(error: &Value) -> Option<String> {
    error.get("status").and_then(Value::as_str).map(str::to_string).or_else(|| match error.get("code") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    })
}

/// An error object as one line of text (to be scrubbed before it leaves).
pub(super) fn describe_error(error: &Value) -> String {
    let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
    match error_code(error) {
        Some(code) => format!("{message} ({code})"),
        None => message.to_string(),
    }
}

pub(super) fn candidates(response: &Value) -> &[Value] {
    response.get("candidates").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub(super) fn block_reason(response: &Value) -> Option<&str> {
    response.get("promptFeedback")?.get("blockReason")?.as_str()
}

pub(super) fn blocked_prompt_message(reason: &str) -> String {
    format!("content_filter: Gemini blocked the prompt ({reason})")
}

pub(super) fn response_id(response: &Value) -> Option<&str> {
    response.get("responseId").and_then(Value::as_str)
}

/// Keeps ids to a safe alphabet and length, whatever the provider sent.
fn id_token(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(48).collect()
}

/// `chatcmpl-<responseId>` when Gemini gives one, else `chatcmpl-<request id>`.
pub(super) fn completion_id(response_id: Option<&str>, request_id: &str) -> String {
    let token = response_id.map(id_token).filter(|t| !t.is_empty());
    format!("chatcmpl-{}", token.unwrap_or_else(|| id_token(request_id)))
}

/// Tool-call ids for one response: Gemini's own `functionCall.id` when it sends
/// one, else `call_<responseId>_<n>` (`call_<n>` without a response id), so they are
/// deterministic per response and do not repeat across the turns of a conversation.
pub(super) struct ToolCallIds {
    prefix: String,
    next: usize,
}

impl ToolCallIds {
    pub(super) fn for_response(response_id: Option<&str>) -> Self {
        let prefix = match response_id.map(id_token).filter(|t| !t.is_empty()) {
            Some(token) => format!("call_{token}_"),
            None => "call_".to_string(),
        };
        Self { prefix, next: 0 }
    }

    fn assign(&mut self, provided: Option<&str>) -> String {
        let n = self.next;
        self.next += 1;
        match provided.map(id_token).filter(|t| !t.is_empty()) {
            Some(id) => id,
            None => format!("{}{n}", self.prefix),
        }
    }
}

/// What one Gemini part contributes to the assistant message.
pub(super) enum PartKind<'a> {
    /// A thought summary (`thought: true`).
    Thought(&'a str),
    Text(&'a str),
    FunctionCall {
        name: &'a str,
        args: Option<&'a Value>,
        id: Option<&'a str>,
    },
    /// Media, code execution and anything newer: not representable in Chat Completions.
    Other,
}

pub(super) fn part_kind(part: &Value) -> PartKind<'_> {
    if let Some(call) = part.get("functionCall") {
        return match call.get("name").and_then(Value::as_str) {
            Some(name) => {
                PartKind::FunctionCall { name, args: call.get("args"), id: call.get("id").and_then(Value::as_str) }
            }
            None => PartKind::Other,
        };
    }
    match part.get("text").and_then(Value::as_str) {
        Some(text) if part.get("thought").and_then(Value::as_bool) == Some(true) => PartKind::Thought(text),
        Some(text) => PartKind::Text(text),
        None => PartKind::Other,
    }
}

pub(super) fn thought_signature(part: &Value) -> Option<&str> {
    part.get("thoughtSignature").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Google's OpenAI-compatibility carrier for a thought signature.
pub(super) fn google_extra(signature: &str) -> Value {
    json!({ "google": { "thought_signature": signature } })
}

/// A complete OpenAI tool call for a Gemini `functionCall` part.
pub(super) fn tool_call(
    ids: &mut ToolCallIds,
    name: &str,
    args: Option<&Value>,
    id: Option<&str>,
    signature: Option<&str>,
) -> Map<String, Value> {
    let arguments = match args {
        Some(args) if !args.is_null() => args.to_string(),
        _ => "{}".to_string(),
    };
    let mut call = Map::new();
    call.insert("id".into(), ids.assign(id).into());
    call.insert("type".into(), "function".into());
    call.insert("function".into(), json!({ "name": name, "arguments": arguments }));
    if let Some(signature) = signature {
        call.insert("extra_content".into(), google_extra(signature));
    }
    call
}

/// OpenAI's finish reason for Gemini's. Anything that is not a token limit or a
/// safety stop ends the turn normally (`tool_calls` when the turn called tools).
pub(super) fn finish_reason(gemini: Option<&str>, called_tools: bool) -> &'static str {
    match gemini {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => "content_filter",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// OpenAI usage from `usageMetadata`: thoughts count as completion tokens (as
/// OpenAI counts reasoning), tool-use prompt tokens as prompt tokens, and cached
/// content as cached prompt tokens.
pub(super) fn usage(metadata: Option<&Value>) -> Value {
    let count = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_u64).unwrap_or(0);
    let prompt = count("promptTokenCount").saturating_add(count("toolUsePromptTokenCount"));
    let thoughts = count("thoughtsTokenCount");
    let completion = count("candidatesTokenCount").saturating_add(thoughts);
    let total = metadata
        .and_then(|m| m.get("totalTokenCount"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| prompt.saturating_add(completion));
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": { "cached_tokens": count("cachedContentTokenCount") },
        "completion_tokens_details": { "reasoning_tokens": thoughts },
    })
}

fn choice(candidate: &Value, position: usize, ids: &mut ToolCallIds) -> Value {
    let parts = candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut signature = None;
    for part in parts {
        let part_signature = thought_signature(part);
        match part_kind(part) {
            PartKind::Thought(t) => reasoning.get_or_insert_with(String::new).push_str(t),
            PartKind::Text(t) => text.get_or_insert_with(String::new).push_str(t),
            PartKind::FunctionCall { name, args, id } => {
                let call = tool_call(ids, name, args, id, part_signature);
                tool_calls.push(Value::Object(call));
                continue;
            }
            PartKind::Other => {}
        }
        // A signature outside a function call (Gemini puts it on the last part).
        if part_signature.is_some() {
            signature = part_signature;
        }
    }

    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), text.map_or(Value::Null, Value::String));
    if let Some(reasoning) = reasoning {
        message.insert("reasoning_content".into(), reasoning.into());
    }
    let called_tools = !tool_calls.is_empty();
    if called_tools {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    message.insert("refusal".into(), Value::Null);
    if let Some(signature) = signature {
        message.insert("extra_content".into(), google_extra(signature));
    }
    let index = candidate.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
    let reason = candidate.get("finishReason").and_then(Value::as_str);
    completion_choice(index, Value::Object(message), finish_reason(reason, called_tools))
}
