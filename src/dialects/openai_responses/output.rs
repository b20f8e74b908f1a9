//! Canonical answers as Responses objects: output items (reasoning, message,
//! function calls), usage, status, and the request's settings echoed back.

use crate::json;
use serde_json::{Map, Value};

/// Marks reasoning the gateway carries for a provider (its signed thinking
/// blocks) inside `encrypted_content`, so a later turn can send it back as is.
const REASONING_PREFIX: &str = "gw1:";

pub fn encode_reasoning(blocks: &[Value]) -> String {
    format!("{REASONING_PREFIX}{}", Value::Array(blocks.to_vec()))
}

/// A provider's signature on one tool call (Gemini's thought signatures), carried
/// in a reasoning item so a stateless client sends it back.
pub fn call_extra_block(call_id: &str, extra: &Value) -> Value {
    json!({"type": "gateway_call_extra", "call_id": call_id, "extra_content": extra})
}

/// A provider's signature on the answer's text.
pub fn message_extra_block(extra: &Value) -> Value {
    json!({"type": "gateway_message_extra", "extra_content": extra})
}

/// The provider blocks in an `encrypted_content` this gateway wrote; nothing for others.
pub fn decode_reasoning(encrypted: &str) -> Vec<Value> {
    encrypted
        .strip_prefix(REASONING_PREFIX)
        .and_then(|json| crate::json_value::from_str::<Vec<Value>>(json).ok())
        .unwrap_or_default()
}

/// What identifies and frames one response.
pub struct Frame<'a> {
    /// `resp_…`; items take ids derived from it.
    pub id: &'a str,
    pub created_at: u64,
    /// The public model.
    pub model: &'a str,
    /// The client's request, whose settings the response echoes.
    pub request: &'a Map<String, Value>,
}

impl Frame<'_> {
    fn suffix(&self) -> &str {
        self.id.trim_start_matches("resp_")
    }

    pub fn message_id(&self) -> String {
        format!("msg_{}", self.suffix())
    }

    pub fn reasoning_id(&self) -> String {
        format!("rs_{}", self.suffix())
    }

    pub fn call_item_id(&self, index: usize) -> String {
        format!("fc_{}_{index}", self.suffix())
    }

    /// The response object; `output` and `usage` as known so far.
    pub fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        finish_reason: Option<&str>,
    ) -> Value {
        let echo =
            |field: &str, default: Value| self.request.get(field).filter(|v| !v.is_null()).cloned().unwrap_or(default);
        let incomplete = match (status, finish_reason) {
            ("incomplete", Some("content_filter")) => json!({"reason": "content_filter"}),
            ("incomplete", _) => json!({"reason": "max_output_tokens"}),
            _ => Value::Null,
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", true.into()),
            "previous_response_id": echo("previous_response_id", Value::Null),
            "reasoning": echo("reasoning", json!({"effort": null, "summary": null})),
            "store": echo("store", true.into()),
            "temperature": echo("temperature", 1.0.into()),
            "text": echo("text", json!({"format": {"type": "text"}})),
            "tool_choice": echo("tool_choice", "auto".into()),
            "tools": echo("tools", json!([])),
            "top_p": echo("top_p", 1.0.into()),
            "truncation": "disabled",
            "usage": usage.unwrap_or(Value::Null),
            "user": echo("user", Value::Null),
            "metadata": echo("metadata", json!({})),
        })
    }
}

/// The status a finish reason gives a response.
pub fn status(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length" | "content_filter") => "incomplete",
        _ => "completed",
    }
}

/// Canonical usage as the Responses API counts it.
pub fn usage(canonical: &Value) -> Value {
    let n =
        |v: &Value, path: &[&str]| path.iter().try_fold(v, |v, key| v.get(key)).and_then(Value::as_u64).unwrap_or(0);
    let input = n(canonical, &["prompt_tokens"]);
    let output = n(canonical, &["completion_tokens"]);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": n(canonical, &["prompt_tokens_details", "cached_tokens"])},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": n(canonical, &["completion_tokens_details", "reasoning_tokens"])},
        "total_tokens": n(canonical, &["total_tokens"]).max(input + output),
    })
}

pub fn reasoning_item(frame: &Frame, summary: &str, blocks: &[Value]) -> Value {
    let mut item = json!({"type": "reasoning", "id": frame.reasoning_id(), "summary": []});
    if !summary.is_empty() {
        item["summary"] = json!([{"type": "summary_text", "text": summary}]);
    }
    if !blocks.is_empty() {
        item["encrypted_content"] = encode_reasoning(blocks).into();
    }
    item
}

pub fn message_item(frame: &Frame, text: &str, refusal: Option<&str>, status: &str) -> Value {
    let content = match refusal {
        Some(refusal) => json!([{"type": "refusal", "refusal": refusal}]),
        None => json!([{"type": "output_text", "text": text, "annotations": []}]),
    };
    json!({"type": "message", "id": frame.message_id(), "status": status, "role": "assistant", "content": content})
}

pub fn call_item(frame: &Frame, index: usize, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    let mut item = json!({"type": "function_call", "id": frame.call_item_id(index), "call_id": call_id, "name": name,
           "arguments": arguments, "status": status});
    if let Some((namespace, inner)) = namespaced(frame.request, name) {
        item["name"] = inner.into();
        item["namespace"] = namespace.into();
    }
    item
}

/// A call to a function of a namespace the request declared, split back into the
/// namespace and the function's own name (see `input::qualified_name`).
fn namespaced<'n>(request: &Map<String, Value>, name: &'n str) -> Option<(&'n str, &'n str)> {
    let tools = request.get("tools").and_then(Value::as_array)?;
    tools.iter().filter(|t| t.get("type").and_then(Value::as_str) == Some("namespace")).find_map(|t| {
        let namespace = t.get("name").and_then(Value::as_str)?;
        let inner = name.strip_prefix(namespace)?.strip_prefix(super::input::NAMESPACE_SEPARATOR)?;
        let declared = t
            .get("tools")
            .and_then(Value::as_array)?
            .iter()
            .any(|f| f.get("name").and_then(Value::as_str) == Some(inner));
        // The namespace as a slice of `name` (its prefix, so at a char boundary).
        declared.then(|| (&name[..namespace.len()], inner))
    })
}

/// The output items of a canonical completion's first choice.
pub fn output_items(frame: &Frame, completion: &Value) -> Vec<Value> {
    let message = &completion["choices"][0]["message"];
    let mut items = Vec::new();
    let summary = message.get("reasoning_content").and_then(Value::as_str).unwrap_or_default();
    let mut blocks = message.get("thinking_blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    let calls = message.get("tool_calls").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(extra) = message.get("extra_content") {
        blocks.push(message_extra_block(extra));
    }
    for call in &calls {
        if let (Some(id), Some(extra)) = (call.get("id").and_then(Value::as_str), call.get("extra_content")) {
            blocks.push(call_extra_block(id, extra));
        }
    }
    if !summary.is_empty() || !blocks.is_empty() {
        items.push(reasoning_item(frame, summary, &blocks));
    }
    let text = message.get("content").and_then(Value::as_str).unwrap_or_default();
    let refusal = message.get("refusal").and_then(Value::as_str);
    if !text.is_empty() || refusal.is_some() || calls.is_empty() {
        items.push(message_item(frame, text, refusal, "completed"));
    }
    for (index, call) in calls.iter().enumerate() {
        let function = &call["function"];
        items.push(call_item(
            frame,
            index,
            call.get("id").and_then(Value::as_str).unwrap_or_default(),
            function.get("name").and_then(Value::as_str).unwrap_or_default(),
            function.get("arguments").and_then(Value::as_str).unwrap_or("{}"),
            "completed",
        ));
    }
    items
}

/// The whole response for a canonical completion.
pub fn from_completion(frame: &Frame, completion: &Value) -> Value {
    let finish_reason = completion["choices"][0].get("finish_reason").and_then(Value::as_str);
    let usage = completion.get("usage").filter(|u| u.is_object()).map(self::usage);
    frame.response(status(finish_reason), output_items(frame, completion), usage, finish_reason)
}

/// What the client sees: provider reasoning blocks only when it asked for them
/// (`include: ["reasoning.encrypted_content"]`); the gateway keeps them anyway.
pub fn for_client(mut response: Value, include_encrypted: bool) -> Value {
    if !include_encrypted {
        for item in response.get_mut("output").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(item) = item.as_object_mut() {
                item.remove("encrypted_content");
            }
        }
    }
    response
}

/// Whether the request asked for reasoning it can send back in a later turn.
pub fn includes_encrypted_reasoning(request: &Map<String, Value>) -> bool {
    request
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|v| v.as_str() == Some("reasoning.encrypted_content")))
}
