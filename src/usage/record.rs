//! One usage record per finished request: who, what, where, how it went, what it
//! used and cost. Ids, names and numbers only: never prompts, completions,
//! headers or keys (the key is its configured name).

use super::attribution::Attribution;
use crate::config::Price;
use crate::protocol::openai::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageRecord {
    /// When the request started, Unix milliseconds.
    pub ts_ms: u64,
    pub request_id: String,
    /// `chat`, `messages` or `embeddings`.
    pub kind: String,
    /// The key's configured name.
    pub key: String,
    pub team: Option<String>,
    pub project: Option<String>,
    pub agent: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// The public model asked for.
    pub model: String,
    /// The public model that answered (after rules, aliases, fallbacks).
    pub served_model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub region: Option<String>,
    pub stream: bool,
    pub status: u16,
    /// `complete`, `error`, `rate_limited`, `interrupted`, `client_gone`, ...
    pub outcome: String,
    pub attempts: u32,
    pub latency_ms: u64,
    /// Streams: from the request's start to the first content relayed.
    pub ttft_ms: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
    /// Whether every tool call of the answer was valid (absent: no tool calls checked).
    pub tool_calls_valid: Option<bool>,
}

impl UsageRecord {
    /// A record for a request by `key`, attributed as resolved.
    pub fn start(request_id: &str, ts_ms: u64, kind: &str, key: &crate::config::KeyRecord, who: Attribution) -> Self {
        UsageRecord {
            ts_ms,
            request_id: request_id.to_string(),
            kind: kind.to_string(),
            key: key.name.clone(),
            team: key.team.clone(),
            project: who.project,
            agent: who.agent,
            tags: who.tags,
            ..Default::default()
        }
    }

    /// Counts what the answer used, priced at the serving target's `price`.
    pub fn account(&mut self, usage: Option<&Usage>, price: Option<&Price>) {
        let Some(u) = usage else { return };
        self.prompt_tokens = u.prompt_tokens;
        self.completion_tokens = u.completion_tokens;
        self.cached_tokens = u.cached_tokens();
        self.cache_write_tokens = u.cache_creation_tokens();
        self.reasoning_tokens = u.reasoning_tokens();
        self.cost_usd = price.map_or(0.0, |p| p.usage_cost_usd(u));
    }

    /// How it ended.
    pub fn finish(&mut self, status: u16, outcome: &str, latency_ms: u64) {
        self.status = status;
        self.outcome = outcome.to_string();
        self.latency_ms = latency_ms;
    }

    /// An error for the error rate: a failed status, or a stream that did not end cleanly.
    pub fn is_error(&self) -> bool {
        is_error(self.status, &self.outcome)
    }
}

pub fn is_error(status: u16, outcome: &str) -> bool {
    status >= 400 || !matches!(outcome, "complete" | "client_gone")
}

/// `2xx`, `4xx`, `5xx`, or `stream_error` for a stream broken after a 200.
pub fn status_class(status: u16, outcome: &str) -> String {
    if status < 400 && is_error(status, outcome) {
        return "stream_error".into();
    }
    format!("{}xx", status / 100)
}

/// Serialized records packed into Queue messages: one record a line, as many lines a
/// message as fit in `max_bytes` (a record longer than that alone in its message).
/// A message per record cost a Queue write, read and delete each; a consumer
/// splits a message's lines back into records, and reads a message of one record
/// (as isolates of earlier deploys send) the same way.
pub fn pack_lines(records: &[String], max_bytes: usize) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    for record in records {
        match messages.last_mut() {
            Some(message) if !message.is_empty() && message.len() + 1 + record.len() <= max_bytes => {
                message.push('\n');
                message.push_str(record);
            }
            _ => messages.push(record.clone()),
        }
    }
    messages
}

/// The records of one Queue message ([`pack_lines`]); lines that are not records are
/// returned as errors, for the consumer to log.
pub fn unpack_lines(message: &str) -> impl Iterator<Item = Result<UsageRecord, ()>> + '_ {
    message
        .split('\n')
        .filter(|line| !line.trim().is_empty())
        .map(|line| crate::json_value::from_str(line).map_err(drop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyRecord;
    use crate::protocol::openai::PromptTokensDetails;

    #[test]
    fn a_record_counts_tokens_by_kind_and_cost() {
        let key = KeyRecord { name: "bot".into(), team: Some("research".into()), ..Default::default() };
        let who = Attribution { project: Some("search".into()), ..Default::default() };
        let mut record = UsageRecord::start("req_1", 1_000, "chat", &key, who);
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 100,
            total_tokens: 1_100,
            prompt_tokens_details: Some(PromptTokensDetails { cached_tokens: Some(400), cache_creation_tokens: None }),
            ..Default::default()
        };
        let price = Price { cached_input_per_mtok: Some(0.5), ..Price::new(1.0, 2.0) };
        record.account(Some(&usage), Some(&price));
        record.finish(200, "complete", 42);
        assert_eq!((record.prompt_tokens, record.cached_tokens, record.completion_tokens), (1_000, 400, 100));
        assert!((record.cost_usd - (600.0 * 1.0 + 400.0 * 0.5 + 100.0 * 2.0) / 1e6).abs() < 1e-12);
        assert_eq!((record.team.as_deref(), record.project.as_deref()), (Some("research"), Some("search")));
        assert!(!record.is_error());
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("messages") && !json.contains("content"));
    }

    #[test]
    fn status_classes_tell_broken_streams_apart() {
        assert_eq!(status_class(200, "complete"), "2xx");
        assert_eq!(status_class(200, "interrupted"), "stream_error");
        assert_eq!(status_class(429, "rate_limited"), "4xx");
        assert_eq!(status_class(502, "error"), "5xx");
        assert!(!is_error(200, "client_gone"));
        assert!(is_error(200, "idle_timeout"));
    }
}
