//! What a request needs from a model: capabilities, and a token estimate made
//! before any provider has counted (for context-window checks, cheapest routing
//! and token reservations).

use crate::protocol::openai::ChatRequest;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestNeeds {
    pub tools: bool,
    pub vision: bool,
    pub json_output: bool,
    /// Estimated prompt tokens (about 4 bytes of text per token, plus per-message and per-image costs).
    pub prompt_tokens: u64,
    /// `max_completion_tokens` / `max_tokens` as asked (per choice).
    pub max_output_tokens: Option<u64>,
    pub choices: u64,
}

/// Output tokens assumed for estimates when the client gave no limit.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 1_024;

impl RequestNeeds {
    /// The output the request may produce: its limit for every choice, or a default.
    pub fn estimated_output_tokens(&self) -> u64 {
        self.choices * self.max_output_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE)
    }

    /// Prompt estimate plus the output the request may produce (what limits reserve).
    pub fn estimated_total_tokens(&self) -> u64 {
        self.prompt_tokens + self.estimated_output_tokens()
    }
}

/// OpenAI's published cost of a low-detail image, and a conservative one for others.
const LOW_DETAIL_IMAGE_TOKENS: u64 = 85;
const IMAGE_TOKENS: u64 = 1_000;
const PER_MESSAGE_TOKENS: u64 = 4;

pub fn needs(request: &ChatRequest) -> RequestNeeds {
    let mut text_bytes = 0u64;
    let mut image_tokens = 0u64;
    let mut vision = false;
    for message in &request.messages {
        for (field, value) in &message.rest {
            if field == "content" {
                count_content(value, &mut text_bytes, &mut image_tokens, &mut vision);
            } else {
                text_bytes += json_len(value);
            }
        }
    }
    let extra = &request.extra;
    let tools = extra.get("tools").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    if let Some(tools) = extra.get("tools") {
        text_bytes += json_len(tools);
    }
    let json_output = request.asks_json_output();
    let max_output_tokens =
        ["max_completion_tokens", "max_tokens"].iter().find_map(|f| extra.get(*f).and_then(Value::as_u64));
    RequestNeeds {
        tools,
        vision,
        json_output,
        prompt_tokens: text_bytes.div_ceil(4) + PER_MESSAGE_TOKENS * request.messages.len() as u64 + image_tokens,
        max_output_tokens,
        choices: extra.get("n").and_then(Value::as_u64).unwrap_or(1).max(1),
    }
}

fn count_content(content: &Value, text_bytes: &mut u64, image_tokens: &mut u64, vision: &mut bool) {
    match content {
        Value::String(text) => *text_bytes += text.len() as u64,
        Value::Array(parts) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        *text_bytes += part.get("text").and_then(Value::as_str).map_or(0, |t| t.len() as u64)
                    }
                    Some("image_url") | Some("image") => {
                        *vision = true;
                        let low = part.pointer("/image_url/detail").and_then(Value::as_str) == Some("low");
                        *image_tokens += if low { LOW_DETAIL_IMAGE_TOKENS } else { IMAGE_TOKENS };
                    }
                    _ => *text_bytes += json_len(part),
                }
            }
        }
        Value::Null => {}
        other => *text_bytes += json_len(other),
    }
}

fn json_len(value: &Value) -> u64 {
    serde_json::to_string(value).map_or(0, |s| s.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ChatRequest {
        ChatRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn plain_text_estimate() {
        let n = needs(&parse(json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(400)}]})));
        assert_eq!(n.prompt_tokens, 100 + 4);
        assert!(!n.tools && !n.vision && !n.json_output);
        assert_eq!(n.max_output_tokens, None);
        assert_eq!(n.choices, 1);
    }

    #[test]
    fn images_tools_json_and_limits_are_seen() {
        let n = needs(&parse(json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
            ]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "max_completion_tokens": 500,
            "n": 2
        })));
        assert!(n.tools && n.vision && n.json_output);
        assert_eq!(n.max_output_tokens, Some(500));
        assert_eq!(n.choices, 2);
        assert!(n.prompt_tokens >= 1_085, "{}", n.prompt_tokens);
    }

    #[test]
    fn empty_tools_do_not_count_as_tools() {
        let n = needs(&parse(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": []})));
        assert!(!n.tools);
    }
}
