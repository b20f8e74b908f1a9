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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
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
    /// What the answer cost at the serving target's `price` (absent without a price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The serving target's price, for `cost_usd`.
    #[serde(skip)]
    pub price: Option<crate::config::Price>,
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

impl RequestLine {
    /// Records the answer's token usage and what it cost.
    pub fn account(&mut self, usage: Option<crate::protocol::openai::Usage>) {
        self.prompt_tokens = usage.map(|u| u.prompt_tokens);
        self.completion_tokens = usage.map(|u| u.completion_tokens);
        self.cost_usd = match (usage, self.price) {
            (Some(u), Some(price)) => Some(price.usage_cost_usd(&u)),
            _ => None,
        };
    }
}

/// Writes a request's line, unless the config turned request logs off.
pub fn request(line: &RequestLine) {
    if line.enabled {
        emit(line);
    }
}
