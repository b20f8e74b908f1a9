//! Structured log lines (one JSON object per line). Never prompts, completions,
//! headers or keys: only ids, names, numbers and scrubbed messages.

use crate::usage::UsageRecord;
use serde::Serialize;

pub fn emit(line: &impl Serialize) {
    if let Ok(text) = serde_json::to_string(line) {
        worker::console_log!("{text}");
    }
}

pub fn warn(event: &str, detail: &str) {
    emit(&crate::json!({"level": "warn", "event": event, "detail": detail}));
}

pub use crate::pipeline::AttemptRecord as Attempt;

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
    /// The key's (or team's) limits admitted the request from this isolate's
    /// allotment, without a call to the limiter.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub admitted_from_allotment: bool,
    /// Candidates moved behind the others because their learned quota was short.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quota_moved_back: Vec<String>,
    /// Attribution and what the answer used, for the usage store.
    #[serde(skip)]
    pub record: UsageRecord,
    #[serde(skip)]
    pub usage: Option<crate::protocol::openai::Usage>,
}

impl RequestLine {
    /// Records the answer's token usage and what it cost.
    pub fn account(&mut self, usage: Option<crate::protocol::openai::Usage>) {
        self.usage = usage;
        self.prompt_tokens = usage.map(|u| u.prompt_tokens);
        self.completion_tokens = usage.map(|u| u.completion_tokens);
        self.cost_usd = match (usage, self.price) {
            (Some(u), Some(price)) => Some(price.usage_cost_usd(&u)),
            _ => None,
        };
    }
}

impl RequestLine {
    pub fn new(
        rc: &super::RequestContext,
        key: &crate::config::KeyRecord,
        model: &str,
        stream: bool,
        allowed: &crate::routing::residency::AllowedRegions,
    ) -> Self {
        RequestLine {
            event: "chat",
            request_id: rc.id.clone(),
            key: key.name.clone(),
            team: key.team.clone(),
            model: model.to_string(),
            served_model: None,
            stream,
            residency: allowed.describe(),
            provider: None,
            region: None,
            attempts: Vec::new(),
            status: 0,
            outcome: "",
            prompt_tokens: None,
            completion_tokens: None,
            cost_usd: None,
            price: None,
            duration_ms: 0,
            upstream_ms: 0,
            enabled: true,
            limiter_degraded: false,
            admitted_from_allotment: false,
            quota_moved_back: Vec::new(),
            record: UsageRecord::default(),
            usage: None,
        }
    }

    /// The finished request's usage record (the line's facts on its attributed record).
    pub fn usage_record(&self) -> UsageRecord {
        let mut r = self.record.clone();
        r.model = self.model.clone();
        r.served_model = self.served_model.clone();
        r.provider = self.provider.clone();
        r.region = self.region.clone();
        r.stream = self.stream;
        r.attempts = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        r.account(self.usage.as_ref(), self.price.as_ref());
        r.finish(self.status, self.outcome, self.duration_ms);
        r
    }

    /// The plan's candidates that were moved back for their learned quota.
    pub fn planned(&mut self, plan: &crate::routing::Plan<'_>) {
        self.quota_moved_back = plan.quota_moved_back();
    }

    /// What the attempt loop did: its attempts, time upstream, and guard refusals.
    pub fn absorb<H>(&mut self, trail: &mut crate::pipeline::Trail<H>) {
        self.attempts.append(&mut trail.attempts);
        self.upstream_ms += trail.upstream_ms;
        self.limiter_degraded |= trail.limiter_degraded;
        for provider in &trail.residency_blocked {
            warn("residency_violation_prevented", provider);
        }
    }

    /// The candidate that answered.
    pub fn served_by(&mut self, candidate: &crate::routing::Candidate<'_>) {
        self.provider = Some(candidate.provider_id.to_string());
        self.region = Some(candidate.region.to_string());
        self.served_model = Some(candidate.model.to_string());
        self.record.upstream_model = Some(candidate.upstream_model.to_string());
        self.price = candidate.price;
    }

    /// Time spent in the gateway itself: everything but waiting on providers.
    pub fn overhead_ms(&self, rc: &super::RequestContext) -> u64 {
        super::now_ms().saturating_sub(rc.started_ms).saturating_sub(self.upstream_ms)
    }

    pub fn finish(mut self, rc: &super::RequestContext, status: u16, outcome: &'static str) -> Self {
        self.status = status;
        self.outcome = outcome;
        self.duration_ms = super::now_ms().saturating_sub(rc.started_ms);
        rc.usage.push(self.usage_record());
        self
    }
}

/// Writes a request's line, unless the config turned request logs off.
pub fn request(line: &RequestLine) {
    if line.enabled {
        emit(line);
    }
}
