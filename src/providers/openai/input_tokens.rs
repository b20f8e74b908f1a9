//! OpenAI's input-token count (`POST /responses/input_tokens`): the canonical
//! request written as the Responses body it would be. Chat Completions has no
//! count of its own; the Responses API counts the same conversation.

use crate::json;
use crate::protocol::openai::{ChatRequest, Message};
use serde_json::{Map, Value};

/// The Responses body that counts `request`'s input (model, input items,
/// tools and the settings that change the count; nothing to generate).
pub fn body(request: &ChatRequest, upstream_model: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("model".into(), upstream_model.into());
    let mut input = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        push_input_items(message, &mut input);
    }
    body.insert("input".into(), Value::Array(input));
    let extra = &request.extra;
    if let Some(Value::Array(tools)) = extra.get("tools") {
        body.insert("tools".into(), Value::Array(tools.iter().map(tool).collect()));
    }
    if let Some(choice) = extra.get("tool_choice") {
        let choice = match choice.pointer("/function/name") {
            Some(name) => json!({"type": "function", "name": name}),
            None => choice.clone(),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(parallel) = extra.get("parallel_tool_calls") {
        body.insert("parallel_tool_calls".into(), parallel.clone());
    }
    if let Some(format) = extra.get("response_format").and_then(text_format) {
        body.insert("text".into(), json!({"format": format}));
    }
    if let Some(effort) = extra.get("reasoning_effort") {
        body.insert("reasoning".into(), json!({"effort": effort}));
    }
    body
}

/// One chat message as Responses input items (an assistant turn with tool calls
/// is its text, then one `function_call` item per call).
fn push_input_items(message: &Message, items: &mut Vec<Value>) {
    let content = message.rest.get("content").filter(|c| !c.is_null());
    match message.role.as_str() {
        "tool" | "function" => items.push(json!({
            "type": "function_call_output",
            "call_id": message.rest.get("tool_call_id").cloned().unwrap_or_default(),
            "output": content.map_or_else(String::new, text_of),
        })),
        "assistant" => {
            if let Some(content) = content.map(text_of).filter(|t| !t.is_empty()) {
                items.push(json!({"type": "message", "role": "assistant", "content": content}));
            }
            for call in message.rest.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                items.push(json!({
                    "type": "function_call",
                    "call_id": call.get("id").cloned().unwrap_or_default(),
                    "name": call.pointer("/function/name").cloned().unwrap_or_default(),
                    "arguments": call.pointer("/function/arguments").cloned().unwrap_or_else(|| "{}".into()),
                }));
            }
        }
        role => {
            let content = match content {
                Some(Value::Array(parts)) => Value::Array(parts.iter().filter_map(input_part).collect()),
                Some(other) => Value::String(text_of(other)),
                None => Value::String(String::new()),
            };
            items.push(json!({"type": "message", "role": role, "content": content}));
        }
    }
}

/// A chat content part as a Responses input part (text, image, file).
fn input_part(part: &Value) -> Option<Value> {
    match part.get("type").and_then(Value::as_str)? {
        "text" => Some(json!({"type": "input_text", "text": part.get("text")?})),
        "image_url" => {
            let image = part.get("image_url")?;
            let url = image.get("url").or(Some(image)).filter(|u| u.is_string())?;
            let detail = image.get("detail").cloned().unwrap_or_else(|| "auto".into());
            Some(json!({"type": "input_image", "image_url": url, "detail": detail}))
        }
        "file" => {
            let mut file = part.get("file")?.as_object()?.clone();
            file.insert("type".into(), "input_file".into());
            Some(Value::Object(file))
        }
        _ => None,
    }
}

/// A message's text: a string, or its text parts joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// A Chat Completions tool as a Responses tool (the function's fields flattened).
fn tool(tool: &Value) -> Value {
    match tool.get("function").and_then(Value::as_object) {
        Some(function) => {
            let mut flat = function.clone();
            flat.insert("type".into(), "function".into());
            Value::Object(flat)
        }
        None => tool.clone(),
    }
}

/// `response_format` as the Responses `text.format`.
fn text_format(format: &Value) -> Option<Value> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let mut flat = format.get("json_schema")?.as_object()?.clone();
            flat.insert("type".into(), "json_schema".into());
            Some(Value::Object(flat))
        }
        kind => Some(json!({"type": kind})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool turn from OpenAI's function-calling guide, as the count receives it.
    #[test]
    fn a_chat_conversation_counts_as_its_responses_input() {
        let request = ChatRequest::parse(
            json!({
                "model": "public",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/sky.png"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}],
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
                "reasoning_effort": "low",
                "temperature": 0.2
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let body = Value::Object(body(&request, "gpt-4.1"));
        assert_eq!(
            body,
            json!({
                "model": "gpt-4.1",
                "input": [
                    {"type": "message", "role": "system", "content": "Be brief."},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"},
                        {"type": "input_image", "image_url": "https://example.com/sky.png", "detail": "auto"}]},
                    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "18°C"}
                ],
                "tools": [{"type": "function", "name": "get_weather", "description": "Weather",
                    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
                "reasoning": {"effort": "low"}
            })
        );
    }
}
