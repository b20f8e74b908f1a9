//! Pieces every translating adapter needs: the same request fields read the same
//! way, whatever the provider calls them.

use crate::error::GatewayError;
use crate::json;
use serde_json::{Map, Value};

pub fn unsupported(param: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("unsupported_parameter", message).with_param(param)
}

/// Text of OpenAI content: the string, or its text parts joined.
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => String::new(),
    }
}

/// Appends a turn, merging into the previous one when the role repeats (Anthropic,
/// Gemini and Bedrock all want user and assistant turns to alternate). `field` is
/// where the blocks live: `content`, or `parts` for Gemini.
pub fn push_turn(turns: &mut Vec<Value>, role: &str, field: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = turns.last_mut().filter(|t| t.get("role").and_then(Value::as_str) == Some(role)) {
        if let Some(Value::Array(existing)) = last.get_mut(field) {
            existing.extend(blocks);
            return;
        }
    }
    turns.push(json!({"role": role, field: blocks}));
}

/// A tool call's `function.arguments` string as JSON (empty means `{}`).
pub fn tool_arguments(call: &Value) -> Result<Value, GatewayError> {
    let arguments = call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
    crate::json_value::from_str(if arguments.trim().is_empty() { "{}" } else { arguments })
        .map_err(|_| unsupported("messages", "A tool call's arguments are not valid JSON."))
}

/// `max_completion_tokens`, else `max_tokens`.
pub fn max_tokens(extra: &Map<String, Value>) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"].iter().find_map(|f| extra.get(*f).and_then(Value::as_u64))
}

/// `stop` as a list (OpenAI allows a single string).
pub fn stop_sequences(extra: &Map<String, Value>) -> Option<Value> {
    match extra.get("stop") {
        Some(Value::String(s)) => Some(json!([s])),
        Some(Value::Array(list)) => Some(Value::Array(list.clone())),
        _ => None,
    }
}

/// The tool that carries `response_format` JSON output to and from providers that
/// have no JSON mode of their own (Anthropic, Bedrock): forced, its input is the answer.
pub const JSON_TOOL: &str = "gateway_json_response";
pub const JSON_TOOL_DESCRIPTION: &str = "Respond with the answer as this JSON object, always by calling this tool.";

/// A stream's text when the client asked for JSON output, which the JSON tool carries:
/// text written before an unforced call (thinking on) is held, left out when the call
/// comes (the content must be the JSON alone), and sent at the end if it never does
/// (the model answered in text). Without JSON output, text passes as it comes.
#[derive(Debug, Default)]
pub struct JsonAnswerText {
    json_output: bool,
    /// The JSON tool's call has begun.
    answering: bool,
    held: String,
}

impl JsonAnswerText {
    pub fn new(json_output: bool) -> Self {
        Self { json_output, ..Self::default() }
    }

    /// The text to send now: `None` when it is held or left out.
    pub fn text<'t>(&mut self, text: &'t str) -> Option<&'t str> {
        if !self.json_output {
            return Some(text);
        }
        if !self.answering {
            self.held.push_str(text);
        }
        None
    }

    /// The JSON tool's call began: the text held so far is left out.
    pub fn answering(&mut self) {
        self.answering = true;
        self.held.clear();
    }

    pub fn is_answering(&self) -> bool {
        self.answering
    }

    /// The message ended: the text held, when no call came.
    pub fn release(&mut self) -> Option<String> {
        (!self.held.is_empty()).then(|| std::mem::take(&mut self.held))
    }
}

/// How the JSON tool is offered beside a request's own tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonToolChoice {
    /// Not offered: the client forces a tool of its own (`required`, or one by name),
    /// so this turn is a tool call, not the answer.
    Left,
    /// Offered, the model choosing (thinking on: Claude refuses a forced tool).
    Auto,
    /// Some tool must be called: one of the client's, or the JSON tool to answer.
    AnyTool,
    /// The JSON tool alone is callable, forced by name.
    Forced,
}

/// The JSON tool's place among the client's tools (an agent asks for a structured
/// final answer and offers tools in every turn, e.g. the OpenAI Agents SDK's `output_type`).
pub fn json_tool_choice(extra: &Map<String, Value>, thinks: bool) -> JsonToolChoice {
    let choice = extra.get("tool_choice");
    let has_tools = extra.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    let none = choice.and_then(Value::as_str) == Some("none");
    if has_tools
        && (choice.and_then(Value::as_str) == Some("required")
            || choice.is_some_and(|c| c.pointer("/function/name").is_some()))
    {
        JsonToolChoice::Left
    } else if thinks {
        JsonToolChoice::Auto
    } else if has_tools && !none {
        JsonToolChoice::AnyTool
    } else {
        JsonToolChoice::Forced
    }
}

/// The schema a `response_format` asks for (`{"type":"object"}` for json_object).
pub fn json_output_schema(extra: &Map<String, Value>) -> Result<Option<Value>, GatewayError> {
    let Some(format) = extra.get("response_format") else { return Ok(None) };
    let schema = match format.get("type").and_then(Value::as_str) {
        None | Some("text") => return Ok(None),
        Some("json_object") => json!({"type": "object"}),
        Some("json_schema") => {
            format.pointer("/json_schema/schema").cloned().unwrap_or_else(|| json!({"type": "object"}))
        }
        Some(other) => return Err(unsupported("response_format", format!("Unknown response_format type {other:?}."))),
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(unsupported(
            "response_format",
            "This provider can return a JSON object only (schema type \"object\").",
        ));
    }
    Ok(Some(schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_merge_by_role() {
        let mut turns = Vec::new();
        push_turn(&mut turns, "user", "parts", vec![json!({"text": "a"})]);
        push_turn(&mut turns, "user", "parts", vec![json!({"text": "b"})]);
        push_turn(&mut turns, "model", "parts", vec![]);
        push_turn(&mut turns, "model", "parts", vec![json!({"text": "c"})]);
        assert_eq!(
            turns,
            vec![
                json!({"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}),
                json!({"role": "model", "parts": [{"text": "c"}]})
            ]
        );
    }

    #[test]
    fn fields_read_the_same_everywhere() {
        let extra: Map<String, Value> = serde_json::from_value(json!({"max_tokens": 5, "stop": "END"})).unwrap();
        assert_eq!(max_tokens(&extra), Some(5));
        assert_eq!(stop_sequences(&extra), Some(json!(["END"])));
        assert_eq!(tool_arguments(&json!({"function": {"arguments": ""}})).unwrap(), json!({}));
        assert!(tool_arguments(&json!({"function": {"arguments": "{oops"}})).is_err());
        assert_eq!(text_of(&json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])), "ab");
    }
}
