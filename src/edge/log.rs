//! Structured log lines (one JSON object per line). Never prompts, completions,
//! headers or keys: only ids, names, numbers and scrubbed messages.

use serde::Serialize;

pub fn emit(line: &impl Serialize) {
    if let Ok(text) = serde_json::to_string(line) {
        worker::console_log!("{text}");
    }
}

pub fn warn(event: &str, detail: &str) {
    emit(&serde_json::json!({"level": "warn", "event": event, "detail": detail}));
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub provider: String,
    pub region: String,
    pub outcome: String,
    pub ms: u64,
}

/// The one line written per chat request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLine {
    pub event: &'static str,
    pub request_id: String,
    pub key: String,
    pub model: String,
    /// The public model that answered (after rules, aliases and fallback models).
    pub served_model: Option<String>,
    pub stream: bool,
    /// The residency policy the request was held to (so an operator can prove where data went).
    pub residency: String,
    pub provider: Option<String>,
    pub region: Option<String>,
    pub attempts: Vec<Attempt>,
    pub status: u16,
    pub outcome: &'static str,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub duration_ms: u64,
    /// Time spent waiting on providers (the rest is the gateway's overhead).
    pub upstream_ms: u64,
    /// `settings.request_log`: whether this line is written at all.
    #[serde(skip)]
    pub enabled: bool,
    /// The rate limiter could not be reached and limits were not enforced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub limiter_degraded: bool,
}

/// Writes a request's line, unless the config turned request logs off.
pub fn request(line: &RequestLine) {
    if line.enabled {
        emit(line);
    }
}
