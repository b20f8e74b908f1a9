//! The routing config document: schema (serde), validation with JSON-pointer
//! error paths, and lookups used on the hot path.
//!
//! The document lives in Workers KV; `config/schema.json` is its JSON Schema and
//! `config/default.json` the built-in development config.

pub mod attribution;
mod breaker;
pub mod diff;
mod environment;
pub mod history;
mod issue;
mod provider;
mod validate;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use breaker::BreakerPolicy;
pub use environment::Environment;
pub use issue::ConfigIssue;
pub use provider::{bedrock_region, Provider, ProviderKind};

/// The only schema version this gateway reads.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version of the document (always 1 for now).
    pub version: u32,
    /// Free-form label an operator can use to tell documents apart (e.g. a git SHA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default)]
    pub settings: Settings,
    pub providers: BTreeMap<String, Provider>,
    pub models: BTreeMap<String, Model>,
    #[serde(default)]
    pub keys: BTreeMap<String, KeyRecord>,
    /// Limits shared by every key of a team (a key names its team).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub teams: BTreeMap<String, Team>,
    #[serde(default, skip_serializing_if = "Residency::is_empty")]
    pub residency: Residency,
    /// Derived once per document: the jurisdiction of each team's limiter.
    #[serde(skip)]
    team_jurisdictions: BTreeMap<String, &'static str>,
}

/// Data-residency policies and the geo rules that impose them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residency {
    /// Named policies and the region tags that satisfy them, e.g. `"eu": ["eu", "eu-de"]`.
    /// A policy not listed here is satisfied by its own tag and the tags below it
    /// (`eu` by `eu`, `eu-de`, `eu-fr`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Vec<String>>,
    /// Evaluated in order on the client's location; the first rule that matches applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geo_rules: Vec<GeoRule>,
}

impl Residency {
    fn is_empty(&self) -> bool {
        self.policies.is_empty() && self.geo_rules.is_empty()
    }
}

/// "Requests from these places are served only where these policies allow."
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ISO 3166-1 alpha-2 codes, e.g. `["CH", "LI"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// Cloudflare continent codes: AF, AN, AS, EU, NA, OC, SA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continents: Vec<String>,
    /// Matches every EU member state (`request.cf.isEUCountry`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eu_countries: bool,
    /// Matches requests whose location is unknown (no country).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown_location: bool,
    /// The policies such requests may be served under.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Allow `http://` provider URLs. Only for local development with mock providers, and
    /// only where the environment allows it (`Environment::allow_http_providers`).
    pub allow_http_providers: bool,
    pub max_body_bytes: usize,
    /// Deadline for a provider's first byte (headers, and the first event of a stream).
    pub first_byte_timeout_ms: u64,
    /// Deadline for the whole request, all attempts included.
    pub request_timeout_ms: u64,
    /// Longest silence allowed between two chunks of a stream.
    pub stream_idle_timeout_ms: u64,
    /// Longest a stream may run; limiter leases are sized to cover it.
    pub max_stream_ms: u64,
    /// How long a rate limiter may take to answer before limits fail open (budgets closed).
    pub limiter_timeout_ms: u64,
    /// How long an isolate serves its cached copy of this document before re-reading KV.
    pub config_cache_ttl_ms: u64,
    pub circuit_breaker: BreakerPolicy,
    /// Write one structured log line per request (ids, routing, attempts, tokens; never content).
    pub request_log: bool,
    /// Browser origins allowed to call the API (CORS), e.g. `https://app.example.com`;
    /// `"*"` allows any. Empty (the default): no CORS headers at all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cors_origins: Vec<String>,
    /// How long stored Responses (`store: true`) are kept.
    pub response_retention_days: u64,
    /// The largest stored conversation (every turn's input and output), in bytes.
    pub max_conversation_bytes: u64,
    /// Days raw usage records are kept in D1 (per-minute rollups stay); the cron deletes older ones.
    pub usage_retention_days: u64,
    /// Every this many minutes the cron sends a small tool-calling probe to every chat
    /// target and records its tool-call accuracy and latency (0, the default: never).
    pub tool_probe_minutes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_http_providers: false,
            max_body_bytes: 8 * 1024 * 1024,
            first_byte_timeout_ms: 30_000,
            request_timeout_ms: 600_000,
            stream_idle_timeout_ms: 30_000,
            max_stream_ms: 3_600_000,
            limiter_timeout_ms: 3_000,
            config_cache_ttl_ms: 5_000,
            circuit_breaker: BreakerPolicy::default(),
            request_log: true,
            cors_origins: Vec::new(),
            response_retention_days: 30,
            max_conversation_bytes: 1024 * 1024,
            usage_retention_days: 30,
            tool_probe_minutes: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The endpoints that serve this model, ordered for the `priority` strategy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// Makes this entry an alias or group: the targets of these models, pooled in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Strategy::is_priority")]
    pub strategy: Strategy,
    /// Checked in order; the first rule whose condition holds sends the request to another model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RoutingRule>,
    /// Deadlines for this model, overriding `settings` (reasoning models need longer).
    #[serde(default, skip_serializing_if = "Timeouts::is_empty")]
    pub timeouts: Timeouts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_ms: Option<u64>,
}

impl Timeouts {
    fn is_empty(&self) -> bool {
        *self == Timeouts::default()
    }
}

/// How a model's candidates are ordered (after residency, capability and health filtering).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Configured order: the first is the primary.
    #[default]
    Priority,
    /// Random order weighted by `weight` (load balancing).
    Weighted,
    /// Lowest estimated cost for this request first (from `price`).
    Cheapest,
    /// Lowest recent latency first: power of two choices over EWMA time to first token.
    Fastest,
    /// For requests that offer tools: the endpoint whose recent answers had the most
    /// valid tool calls first (unmeasured counts as valid); otherwise `priority`.
    ToolAccuracy,
}

impl Strategy {
    fn is_priority(&self) -> bool {
        *self == Strategy::Priority
    }
}

/// Sends a request to `use_model` when every given condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub when: RuleCondition,
    pub use_model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleCondition {
    /// Request headers with these exact values, e.g. `{"x-gateway-tier": "routine"}` (names lowercase).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Entries of the request body's `metadata` object with these exact values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The request offers no tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_tools: Option<bool>,
    /// The prompt estimate is at most this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    /// The model name the provider knows (the deployment name on Azure).
    pub model: String,
    /// What this upstream model can take; unknown means allowed.
    #[serde(default, skip_serializing_if = "Capabilities::is_unknown")]
    pub capabilities: Capabilities,
    /// Share of traffic under the `weighted` strategy (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// USD per million tokens, for `cheapest` routing and cost accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Prompt tokens read from the provider's cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// Prompt tokens written to the provider's cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_mtok: Option<f64>,
}

impl Price {
    pub fn new(input_per_mtok: f64, output_per_mtok: f64) -> Self {
        Price { input_per_mtok, output_per_mtok, cached_input_per_mtok: None, cache_write_per_mtok: None }
    }

    /// US dollars for a request of `prompt_tokens` (none cached) and `completion_tokens`.
    pub fn cost_usd(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        self.estimate_micro_usd(prompt_tokens, completion_tokens) / 1e6
    }

    /// Micro-dollars for budgets, rounded up (for estimates: no cache hits assumed).
    pub fn cost_micro_usd(&self, prompt_tokens: u64, completion_tokens: u64) -> u64 {
        round_up_micro(self.estimate_micro_usd(prompt_tokens, completion_tokens))
    }

    /// US dollars for a real answer, cache reads and writes at their own prices.
    pub fn usage_cost_usd(&self, usage: &crate::protocol::openai::Usage) -> f64 {
        self.usage_micro_usd(usage) / 1e6
    }

    pub fn usage_cost_micro_usd(&self, usage: &crate::protocol::openai::Usage) -> u64 {
        round_up_micro(self.usage_micro_usd(usage))
    }

    // A price per million tokens is exactly micro-dollars per token, so whole-cent
    // prices add up without float drift.
    fn estimate_micro_usd(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        prompt_tokens as f64 * self.input_per_mtok + completion_tokens as f64 * self.output_per_mtok
    }

    fn usage_micro_usd(&self, usage: &crate::protocol::openai::Usage) -> f64 {
        let cached = usage.cached_tokens().min(usage.prompt_tokens);
        let written = usage.cache_creation_tokens().min(usage.prompt_tokens - cached);
        let plain = usage.prompt_tokens - cached - written;
        plain as f64 * self.input_per_mtok
            + cached as f64 * self.cached_input_per_mtok.unwrap_or(self.input_per_mtok)
            + written as f64 * self.cache_write_per_mtok.unwrap_or(self.input_per_mtok)
            + usage.completion_tokens as f64 * self.output_per_mtok
    }
}

fn round_up_micro(exact: f64) -> u64 {
    if exact.is_finite() && exact > 0.0 {
        (exact - 1e-6).ceil().max(0.0) as u64
    } else {
        0
    }
}

/// What an upstream model supports. A target that cannot take a request's input
/// is never chosen for it; `None` means "not declared" and is treated as allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Image inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// `response_format` JSON object / JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_output: Option<bool>,
    /// Context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Largest output the model produces; also the default `max_tokens` where a provider requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
}

impl Capabilities {
    fn is_unknown(&self) -> bool {
        *self == Capabilities::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub name: String,
    /// Public model names this key may use; `"*"` allows all.
    pub models: Vec<String>,
    /// Residency policies this key's requests are pinned to (empty: not pinned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Requests and tokens per minute and concurrent requests, enforced exactly by the key's `RateLimiter`.
    #[serde(default, skip_serializing_if = "crate::limits::Limits::is_empty")]
    pub limits: crate::limits::Limits,
    /// Limits on this key's use of one public model, on top of `limits`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_limits: BTreeMap<String, crate::limits::Limits>,
    /// The team whose shared limits this key's requests also count against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Spending cap per calendar month (UTC) in US dollars, at the targets' `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget_usd: Option<f64>,
    /// Usage attribution defaults: requests may refine them (see `usage::attribution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Requests may add tags but not change this key's project, agent or tags.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_attribution: bool,
    /// `GET /v1/usage` with this key shows its whole team's usage, not only its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub team_admin: bool,
}

/// Durable Object jurisdictions: limiter objects of keys pinned to one of these
/// policies (or to regions below it, `eu-de`) are created there.
const JURISDICTIONS: [&str; 2] = ["eu", "fedramp"];

impl KeyRecord {
    pub fn jurisdiction(&self) -> Option<&'static str> {
        let within = |j: &str, r: &str| r == j || r.strip_prefix(j).is_some_and(|rest| rest.starts_with('-'));
        JURISDICTIONS.into_iter().find(|j| !self.regions.is_empty() && self.regions.iter().all(|r| within(j, r)))
    }

    /// The scopes this key's `RateLimiter` checks for a request to `model`.
    pub fn limit_scopes(&self, model: &str) -> Vec<crate::limits::Scoped> {
        scopes(self.limits, self.monthly_budget_usd, &self.model_limits, model)
    }

    /// The scopes a request that may be served by any of `models` counts in.
    pub fn limit_scopes_for(&self, models: &[&str]) -> Vec<crate::limits::Scoped> {
        scopes_for(self.limits, self.monthly_budget_usd, &self.model_limits, models)
    }
}

/// A group of keys with shared limits, enforced by the team's own `RateLimiter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    #[serde(default, skip_serializing_if = "crate::limits::Limits::is_empty")]
    pub limits: crate::limits::Limits,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_limits: BTreeMap<String, crate::limits::Limits>,
    /// Spending cap per calendar month (UTC) in US dollars, shared by the team's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget_usd: Option<f64>,
}

impl Team {
    pub fn limit_scopes(&self, model: &str) -> Vec<crate::limits::Scoped> {
        scopes(self.limits, self.monthly_budget_usd, &self.model_limits, model)
    }

    /// The scopes a request that may be served by any of `models` counts in.
    pub fn limit_scopes_for(&self, models: &[&str]) -> Vec<crate::limits::Scoped> {
        scopes_for(self.limits, self.monthly_budget_usd, &self.model_limits, models)
    }
}

/// The whole-key (or team) scope and the model's own, those that set any limit.
fn scopes(
    limits: crate::limits::Limits,
    monthly_budget_usd: Option<f64>,
    model_limits: &BTreeMap<String, crate::limits::Limits>,
    model: &str,
) -> Vec<crate::limits::Scoped> {
    scopes_for(limits, monthly_budget_usd, model_limits, &[model])
}

/// The whole scope and the scope of every model a request may be served by (an
/// alias or a fallback can land on any of them, so each one's limit is checked).
fn scopes_for(
    limits: crate::limits::Limits,
    monthly_budget_usd: Option<f64>,
    model_limits: &BTreeMap<String, crate::limits::Limits>,
    models: &[&str],
) -> Vec<crate::limits::Scoped> {
    let mut out = Vec::new();
    if !limits.is_empty() || monthly_budget_usd.is_some() {
        let budget = monthly_budget_usd.map(crate::limits::budget::micro_usd);
        out.push(crate::limits::Scoped::whole(limits).with_budget(budget));
    }
    let mut seen = std::collections::BTreeSet::new();
    for model in models.iter().filter(|m| seen.insert(**m)) {
        if let Some(limits) = model_limits.get(*model).filter(|l| !l.is_empty()) {
            out.push(crate::limits::Scoped::model(model, *limits));
        }
    }
    out
}

impl Config {
    /// A team's limiter lives in a jurisdiction only when every key of the team is
    /// pinned to it (one object per team, so its placement cannot depend on the key).
    pub fn team_jurisdiction(&self, team: &str) -> Option<&'static str> {
        self.team_jurisdictions.get(team).copied()
    }

    fn derive_lookups(&mut self) {
        let mut by_team: BTreeMap<&str, Vec<Option<&'static str>>> = BTreeMap::new();
        for key in self.keys.values() {
            if let Some(team) = key.team.as_deref() {
                by_team.entry(team).or_default().push(key.jurisdiction());
            }
        }
        // Inserted one by one (already in order): collecting into a map sorts first.
        self.team_jurisdictions = BTreeMap::new();
        for (team, places) in by_team {
            if let Some(first) = places.first().copied().flatten() {
                if places.iter().all(|p| *p == Some(first)) {
                    self.team_jurisdictions.insert(team.to_string(), first);
                }
            }
        }
    }

    /// This document with more keys (by SHA-256 hex), e.g. the key registry's; they
    /// authenticate and are limited exactly like the document's own.
    pub fn with_keys(&self, extra: impl IntoIterator<Item = (String, KeyRecord)>) -> Config {
        let mut config = self.clone();
        config.keys.extend(extra);
        config.derive_lookups();
        config
    }

    /// Parses and validates a document for a production environment (no `http://`
    /// providers); every problem is reported with its JSON pointer.
    pub fn from_json(text: &str) -> Result<Config, Vec<ConfigIssue>> {
        validate::parse_and_validate(text, &Environment::default())
    }

    /// Parses and validates a document for the environment the Worker runs in.
    pub fn from_json_in(text: &str, env: &Environment) -> Result<Config, Vec<ConfigIssue>> {
        validate::parse_and_validate(text, env)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The key record for a SHA-256 hex digest, compared in constant time.
    pub fn key_by_hash(&self, presented_hash: &str) -> Option<&KeyRecord> {
        crate::auth::find_by_hash(&self.keys, presented_hash)
    }

    /// The settings with a model's own deadlines applied.
    pub fn settings_for(&self, model: &str) -> Settings {
        let mut settings = self.settings.clone();
        if let Some(t) = self.models.get(model).map(|m| m.timeouts) {
            settings.first_byte_timeout_ms = t.first_byte_ms.unwrap_or(settings.first_byte_timeout_ms);
            settings.request_timeout_ms = t.request_ms.unwrap_or(settings.request_timeout_ms);
            settings.stream_idle_timeout_ms = t.stream_idle_ms.unwrap_or(settings.stream_idle_timeout_ms);
        }
        settings
    }

    /// Public model names the key may use, sorted.
    pub fn models_for<'a>(&'a self, key: &'a KeyRecord) -> impl Iterator<Item = &'a str> + 'a {
        self.models.keys().map(String::as_str).filter(move |m| key.allows(m))
    }
}

impl KeyRecord {
    pub fn allows(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == "*" || m == model)
    }
}

#[cfg(test)]
mod tests;
