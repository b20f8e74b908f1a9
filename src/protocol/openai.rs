//! OpenAI Chat Completions, the gateway's canonical wire format.
//!
//! Requests are parsed into typed fields the gateway acts on, and every other field
//! is kept as-is so it reaches an OpenAI-compatible provider unchanged.

use crate::error::GatewayError;
use crate::json_path;

mod passthrough;
mod shape;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Serde: written out in `passthrough.rs` (as `#[serde(flatten)]` would read and write it).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Every other field (temperature, tools, response_format, ...), passed through.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: String,
    pub rest: Map<String, Value>,
}

impl Message {
    /// A message built in code from another dialect's fields.
    pub fn new(role: &str, fields: impl IntoIterator<Item = (&'static str, Value)>) -> Message {
        // Inserted one by one: collecting into a map sorts, one more sort instantiation.
        let mut rest = Map::new();
        for (name, value) in fields {
            rest.insert(name.to_string(), value);
        }
        Message { role: role.to_string(), rest }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// The parts of `prompt_tokens` read from or written to a prompt cache
    /// (OpenAI's inclusive convention; adapters normalise Anthropic's to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Reasoning tokens (part of `completion_tokens`), where the provider reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_tokens: Option<u64>,
}

impl Usage {
    /// Prompt tokens read from a cache.
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0)
    }

    /// Prompt tokens written to a cache.
    pub fn cache_creation_tokens(&self) -> u64 {
        self.prompt_tokens_details.and_then(|d| d.cache_creation_tokens).unwrap_or(0)
    }

    /// Completion tokens spent reasoning.
    pub fn reasoning_tokens(&self) -> u64 {
        self.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0)
    }
}

/// Nesting deeper than this is refused before serde sees it: deep recursion would
/// trap the wasm instance, which resets every request it serves.
pub const MAX_JSON_DEPTH: usize = 64;
pub const MAX_MESSAGES: usize = 4096;
pub const MAX_N: u64 = 8;

const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

impl ChatRequest {
    /// Parses and validates a client's body, with OpenAI-style 400s for every mistake.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, GatewayError> {
        check_depth(body)?;
        let request: ChatRequest = serde_json::from_slice(body).map_err(|inner| {
            if inner.is_syntax() || inner.is_eof() {
                return GatewayError::invalid_json(&inner);
            }
            let path = json_path::dotted(&json_path::of_error(body, &inner));
            let text = inner.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text).to_string();
            if let Some(field) = text.strip_prefix("missing field `").and_then(|t| t.strip_suffix('`')) {
                let param = if path == "." { field.to_string() } else { format!("{path}.{field}") };
                return GatewayError::invalid_request(
                    "missing_required_parameter",
                    format!("Missing required parameter: '{param}'."),
                )
                .with_param(param);
            }
            if path == "." {
                GatewayError::invalid_request(
                    "invalid_request",
                    format!("The request body must be a JSON object: {text}."),
                )
            } else {
                GatewayError::invalid_request("invalid_type", format!("Invalid value for '{path}': {text}."))
                    .with_param(path)
            }
        })?;
        request.validate()?;
        Ok(request)
    }

    /// The checks `parse` makes, for a request built in code from another dialect.
    pub fn validate(&self) -> Result<(), GatewayError> {
        if self.model.trim().is_empty() {
            return Err(
                GatewayError::invalid_request("invalid_value", "'model' must not be empty.").with_param("model")
            );
        }
        if self.messages.is_empty() {
            return Err(GatewayError::invalid_request(
                "invalid_value",
                "'messages' must contain at least one message.",
            )
            .with_param("messages"));
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(GatewayError::invalid_request(
                "too_many_messages",
                format!("'messages' has {} entries; the gateway accepts at most {MAX_MESSAGES}.", self.messages.len()),
            )
            .with_param("messages"));
        }
        if let Some((i, m)) = self.messages.iter().enumerate().find(|(_, m)| !ROLES.contains(&m.role.as_str())) {
            return Err(GatewayError::invalid_request(
                "invalid_value",
                format!("Invalid value for 'messages[{i}].role': {:?}. Supported: {}.", m.role, ROLES.join(", ")),
            )
            .with_param(format!("messages[{i}].role")));
        }
        shape::check(self)?;
        self.check_number("temperature", 0.0, 2.0)?;
        self.check_number("top_p", 0.0, 1.0)?;
        self.check_number("presence_penalty", -2.0, 2.0)?;
        self.check_number("frequency_penalty", -2.0, 2.0)?;
        self.check_number("max_tokens", 1.0, 1e9)?;
        self.check_number("max_completion_tokens", 1.0, 1e9)?;
        self.check_number("n", 1.0, MAX_N as f64)?;
        for integer in ["max_tokens", "max_completion_tokens", "n"] {
            if let Some(v) = self.extra.get(integer).filter(|v| !v.is_null()) {
                if v.as_u64().is_none() {
                    return Err(GatewayError::invalid_request(
                        "invalid_type",
                        format!("'{integer}' must be an integer."),
                    )
                    .with_param(integer));
                }
            }
        }
        Ok(())
    }

    fn check_number(&self, field: &'static str, min: f64, max: f64) -> Result<(), GatewayError> {
        match self.extra.get(field) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= min && x <= max => Ok(()),
                _ => Err(GatewayError::invalid_request(
                    "invalid_value",
                    format!("Invalid value for '{field}': {n}. It must be between {min} and {max}."),
                )
                .with_param(field)),
            },
            Some(_) => {
                Err(GatewayError::invalid_request("invalid_type", format!("'{field}' must be a number."))
                    .with_param(field))
            }
        }
    }

    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// Whether `response_format` asks for a JSON object (`json_object` or `json_schema`).
    pub fn asks_json_output(&self) -> bool {
        self.extra
            .get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "json_object" || t == "json_schema")
    }

    /// Whether the client asked for the usage chunk at the end of a stream.
    pub fn wants_stream_usage(&self) -> bool {
        self.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true)
    }
}

/// `POST /v1/embeddings`, OpenAI's shape; fields other than `model` and `input` pass through.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    pub model: String,
    /// A string, a list of strings, or token arrays.
    pub input: Value,
    pub extra: Map<String, Value>,
}

/// The most inputs one embeddings request may carry (OpenAI's own limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

impl EmbeddingsRequest {
    pub fn parse(body: &[u8]) -> Result<EmbeddingsRequest, GatewayError> {
        check_depth(body)?;
        let request: EmbeddingsRequest = serde_json::from_slice(body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                GatewayError::invalid_json(&e)
            } else {
                let text = e.to_string();
                GatewayError::invalid_request(
                    "invalid_request",
                    text.split(" at line ").next().unwrap_or(&text).to_string(),
                )
            }
        })?;
        let count = match &request.input {
            Value::String(s) if !s.is_empty() => 1,
            Value::Array(items) if !items.is_empty() => items.len(),
            _ => 0,
        };
        if count == 0 {
            return Err(GatewayError::invalid_request("invalid_value", "'input' must be a non-empty string or list.")
                .with_param("input"));
        }
        if count > MAX_EMBEDDING_INPUTS {
            return Err(GatewayError::invalid_request(
                "invalid_value",
                format!("'input' has {count} items; at most {MAX_EMBEDDING_INPUTS} are accepted."),
            )
            .with_param("input"));
        }
        Ok(request)
    }

    /// About 4 bytes of text per token.
    pub fn estimated_tokens(&self) -> u64 {
        serde_json::to_string(&self.input).map_or(0, |s| s.len() as u64).div_ceil(4)
    }
}

/// Linear pre-scan for nesting depth (strings are skipped, escapes honoured).
pub fn check_depth(body: &[u8]) -> Result<(), GatewayError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(GatewayError::invalid_request(
                        "json_too_deep",
                        format!("The JSON body nests deeper than {MAX_JSON_DEPTH} levels."),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Just enough of a streamed chunk to account for it and to find where it ends.
#[derive(Debug, Deserialize)]
pub struct ChunkProbe {
    #[serde(default)]
    pub choices: Option<Vec<ChoiceProbe>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub error: Option<ErrorProbe>,
}

#[derive(Debug, Deserialize)]
pub struct ChoiceProbe {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(default)]
    pub delta: Option<DeltaProbe>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeltaProbe {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDeltaProbe>>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallDeltaProbe {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub function: Option<FunctionDeltaProbe>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionDeltaProbe {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// An error object as OpenAI-compatible providers send it (in a body or an SSE event).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorProbe {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub param: Option<String>,
}

/// A provider error object as one line of text (to be scrubbed before it leaves).
pub fn describe_error(error: &ErrorProbe) -> String {
    let message = error.message.as_deref().unwrap_or("no message");
    match error.code.as_ref().and_then(|c| c.as_str().map(str::to_string).or_else(|| Some(c.to_string()))) {
        Some(code) if code != "null" => format!("{message} ({code})"),
        _ => message.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error: Option<ErrorProbe>,
    /// Bedrock (and some others) put the message at the top level.
    #[serde(default)]
    pub message: Option<String>,
}

/// Just enough of a non-streamed completion to check it is one and to account for it.
#[derive(Debug, Deserialize)]
pub struct CompletionProbe {
    pub choices: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[cfg(test)]
mod tests;
