//! A Responses request into the canonical chat request: `instructions` and the
//! input items (messages, function calls and their outputs, reasoning) become
//! chat messages; tools, tool choice, text format and limits map one to one.

use crate::error::GatewayError;
use crate::json;
use crate::protocol::openai::{ChatRequest, Message, StreamOptions};
use serde_json::{Map, Value};

fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("invalid_value", message).with_param(param.to_string())
}

/// `input` as a list of items: a string is one user message.
pub fn input_items(body: &Map<String, Value>) -> Result<Vec<Value>, GatewayError> {
    match body.get("input") {
        Some(Value::String(text)) => Ok(vec![json!({"type": "message", "role": "user", "content": text})]),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(invalid(&format!("input[{i}]"), format!("input[{i}] must be an object.")));
                }
            }
            Ok(items.clone())
        }
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(GatewayError::invalid_request("invalid_type", "'input' must be a string or a list of items.")
            .with_param("input")),
    }
}

fn message(role: &str, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Message {
    Message::new(role, fields)
}

/// One content part of an input message as a chat content part.
fn chat_part(part: &Value, at: &str) -> Result<Value, GatewayError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or_default()}))
        }
        Some("input_image") => {
            let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                invalid(&format!("{at}.image_url"), "input_image needs an image_url (a URL or a data: URL).")
            })?;
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("refusal") => {
            Ok(json!({"type": "text", "text": part.get("refusal").and_then(Value::as_str).unwrap_or_default()}))
        }
        other => Err(GatewayError::invalid_request(
            "unsupported_value",
            format!("Content parts of type {:?} are not supported.", other.unwrap_or("(none)")),
        )
        .with_param(format!("{at}.type"))),
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// What a reasoning item carries to the assistant turn that follows it.
#[derive(Default)]
struct Reasoning {
    summary: String,
    /// The provider's own reasoning blocks (signatures), as `encrypted_content` carried them.
    blocks: Vec<Value>,
}

/// Input items into chat messages, in order. Function calls join the assistant
/// message before them (parallel calls are one assistant turn).
pub fn messages(items: &[Value]) -> Result<Vec<Message>, GatewayError> {
    // Provider signatures of tool calls ride in reasoning items, wherever they are. Kept
    // in a JSON map (the map type the wasm has anyway), a later one replacing an earlier.
    let mut call_extras = Map::new();
    let blocks = items
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("reasoning"))
        .filter_map(|item| item.get("encrypted_content").and_then(Value::as_str))
        .flat_map(super::output::decode_reasoning)
        .filter(|block| block["type"] == "gateway_call_extra");
    for block in blocks {
        if let (Some(id), Some(extra)) = (block.get("call_id").and_then(Value::as_str), block.get("extra_content")) {
            call_extras.insert(id.to_string(), extra.clone());
        }
    }
    let mut out: Vec<Message> = Vec::new();
    let mut reasoning = Reasoning::default();
    // The assistant message that function calls may still join.
    let mut open_assistant: Option<usize> = None;
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                let content = item.get("content").cloned().unwrap_or(Value::Null);
                match role {
                    "assistant" => {
                        let mut m = message("assistant", [("content", text_of(&content).into())]);
                        take_reasoning(&mut reasoning, &mut m);
                        out.push(m);
                        open_assistant = Some(out.len() - 1);
                    }
                    "user" | "system" | "developer" => {
                        let content = match &content {
                            Value::String(s) => Value::String(s.clone()),
                            Value::Array(parts) => Value::Array(
                                parts
                                    .iter()
                                    .enumerate()
                                    .map(|(j, p)| chat_part(p, &format!("{at}.content[{j}]")))
                                    .collect::<Result<_, _>>()?,
                            ),
                            _ => {
                                return Err(invalid(
                                    &format!("{at}.content"),
                                    "content must be a string or a list of parts.",
                                ))
                            }
                        };
                        // Chat's `developer` role is OpenAI's alone: `system` reaches every provider.
                        let role = if role == "developer" { "system" } else { role };
                        out.push(message(role, [("content", content)]));
                        open_assistant = None;
                    }
                    other => return Err(invalid(&format!("{at}.role"), format!("Unknown role {other:?}."))),
                }
            }
            "function_call" => {
                let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                    GatewayError::invalid_request("missing_required_parameter", "function_call items need a call_id.")
                        .with_param(format!("{at}.call_id"))
                })?;
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                let namespace = item.get("namespace").and_then(Value::as_str);
                let mut call = json!({"id": call_id, "type": "function", "function": {
                    "name": qualified_name(namespace, name),
                    "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}"),
                }});
                if let Some(extra) = call_extras.get(call_id) {
                    call["extra_content"] = extra.clone();
                }
                let index = match open_assistant {
                    Some(index) => index,
                    None => {
                        let mut m = message("assistant", [("content", Value::Null)]);
                        take_reasoning(&mut reasoning, &mut m);
                        out.push(m);
                        out.len() - 1
                    }
                };
                open_assistant = Some(index);
                let calls = out[index].rest.entry("tool_calls").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(calls) = calls {
                    calls.push(call);
                }
            }
            "function_call_output" => {
                let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                    GatewayError::invalid_request(
                        "missing_required_parameter",
                        "function_call_output items need a call_id.",
                    )
                    .with_param(format!("{at}.call_id"))
                })?;
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => text_of(other),
                    None => String::new(),
                };
                out.push(message("tool", [("tool_call_id", call_id.into()), ("content", output.into())]));
                open_assistant = None;
            }
            "reasoning" => {
                for part in item.get("summary").and_then(Value::as_array).into_iter().flatten() {
                    reasoning.summary.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default());
                }
                if let Some(encrypted) = item.get("encrypted_content").and_then(Value::as_str) {
                    reasoning.blocks.extend(super::output::decode_reasoning(encrypted));
                }
            }
            other => {
                return Err(GatewayError::invalid_request(
                    "unsupported_value",
                    format!("Input items of type {other:?} are not supported by this gateway."),
                )
                .with_param(format!("{at}.type")))
            }
        }
    }
    Ok(out)
}

fn take_reasoning(reasoning: &mut Reasoning, assistant: &mut Message) {
    let taken = std::mem::take(reasoning);
    let mut thinking = Vec::new();
    for block in taken.blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("gateway_message_extra") => {
                if let Some(extra) = block.get("extra_content") {
                    assistant.rest.insert("extra_content".into(), extra.clone());
                }
            }
            Some("gateway_call_extra") => {} // joined to its call
            _ => thinking.push(block),
        }
    }
    if !taken.summary.is_empty() || !thinking.is_empty() {
        assistant.rest.insert("reasoning_content".into(), taken.summary.into());
    }
    if !thinking.is_empty() {
        assistant.rest.insert("thinking_blocks".into(), Value::Array(thinking));
    }
}

/// Function tools as chat tools: a namespace's functions under their qualified names
/// (`ns__name`, see [`qualified_name`]); hosted web search, which no provider here runs,
/// left out (Codex always offers it); any other tool type refused by name.
fn tools(body: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    let Some(list) = body.get("tools").filter(|t| !t.is_null()) else { return Ok(None) };
    let list = list
        .as_array()
        .ok_or_else(|| GatewayError::invalid_request("invalid_type", "'tools' must be a list.").with_param("tools"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => out.push(function_tool(tool, None, &format!("tools[{i}]"))?),
            Some("namespace") => {
                let namespace =
                    tool.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
                        GatewayError::invalid_request("missing_required_parameter", "Namespace tools need a name.")
                            .with_param(format!("tools[{i}].name"))
                    })?;
                for (j, inner) in tool.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let at = format!("tools[{i}].tools[{j}]");
                    if inner.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(GatewayError::invalid_request(
                            "unsupported_tool",
                            "Only function tools are supported inside a namespace by this gateway.",
                        )
                        .with_param(format!("{at}.type")));
                    }
                    out.push(function_tool(inner, Some(namespace), &at)?);
                }
            }
            Some(hosted) if hosted.starts_with("web_search") => {}
            other => {
                return Err(GatewayError::invalid_request(
                    "unsupported_tool",
                    format!(
                        "Tools of type {:?} are not supported by this gateway; use function tools.",
                        other.unwrap_or("(none)")
                    ),
                )
                .with_param(format!("tools[{i}].type")))
            }
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// One function tool as a chat tool, under its qualified name inside a namespace.
fn function_tool(tool: &Value, namespace: Option<&str>, at: &str) -> Result<Value, GatewayError> {
    let name = tool.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
        GatewayError::invalid_request("missing_required_parameter", "Function tools need a name.")
            .with_param(format!("{at}.name"))
    })?;
    let mut function = json!({"name": qualified_name(namespace, name)});
    for field in ["description", "parameters", "strict"] {
        if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
            function[field] = value.clone();
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

/// What a namespaced function is called for providers, whose tools have no namespaces:
/// `ns__name` (characters every provider's tool names allow). Calls are split back by
/// the namespaces the request declared (`output::call_item`).
pub fn qualified_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}{NAMESPACE_SEPARATOR}{name}"),
        None => name.to_string(),
    }
}

pub const NAMESPACE_SEPARATOR: &str = "__";

fn tool_choice(choice: &Value) -> Result<Value, GatewayError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(choice.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or_default()}}))
        }
        _ => Err(invalid("tool_choice", "tool_choice must be auto, none, required or a function tool.")),
    }
}

fn response_format(text: &Value) -> Result<Option<Value>, GatewayError> {
    let Some(format) = text.get("format").filter(|f| !f.is_null()) else { return Ok(None) };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = json!({"name": format.get("name").cloned().unwrap_or_else(|| "response".into())});
            for field in ["schema", "strict", "description"] {
                if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                    schema[field] = value.clone();
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(invalid("text.format.type", "text.format.type must be text, json_object or json_schema.")),
    }
}

/// The canonical request: `history` (a stored conversation's items) then this
/// request's own input items, after `instructions`.
pub fn to_canonical(
    body: &Map<String, Value>,
    history: &[Value],
    items: &[Value],
) -> Result<ChatRequest, GatewayError> {
    let model = body.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut messages = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        messages.push(message("system", [("content", instructions.into())]));
    }
    let all: Vec<Value> = history.iter().chain(items).cloned().collect();
    messages.extend(self::messages(&all)?);
    let mut extra = Map::new();
    if let Some(tools) = tools(body)? {
        extra.insert("tools".into(), tools);
    }
    if let Some(choice) = body.get("tool_choice").filter(|c| !c.is_null()) {
        extra.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(text) = body.get("text") {
        if let Some(format) = response_format(text)? {
            extra.insert("response_format".into(), format);
        }
    }
    if let Some(max) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        let max = max
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid("max_output_tokens", "max_output_tokens must be a positive integer."))?;
        extra.insert("max_completion_tokens".into(), max.into());
    }
    for field in ["temperature", "top_p", "parallel_tool_calls", "user", "metadata"] {
        if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
            extra.insert(field.into(), value.clone());
        }
    }
    if let Some(effort) = body.get("reasoning").and_then(|r| r.get("effort")).and_then(Value::as_str) {
        extra.insert("reasoning_effort".into(), effort.into());
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let request = ChatRequest {
        model,
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions { include_usage: Some(true), ..StreamOptions::default() }),
        extra,
    };
    request.validate()?;
    Ok(request)
}
