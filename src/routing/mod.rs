//! Choosing where a request goes: the model (rules, aliases, the client's fallback
//! list), then every candidate endpoint kept or dropped with a reason (request
//! preferences, residency, capability, health), then the order to try them in.
//! The same plan drives the attempt loop and `POST /v1/route/explain`.

pub mod needs;
pub mod preferences;
pub mod quota;
pub mod residency;
pub mod strategy;

use crate::config::{Capabilities, Config, KeyRecord, Price, Provider, Strategy};
use crate::error::GatewayError;
use needs::RequestNeeds;
use preferences::Preferences;
use residency::AllowedRegions;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use strategy::Rng;

/// What the router knows of one endpoint's health (from the health snapshot).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct EndpointHealth {
    /// False while the circuit is open or the endpoint is cooling down after a 429.
    pub available: bool,
    /// Smoothed time to first token (or to the whole answer), in ms.
    pub ewma_latency_ms: Option<f64>,
    /// Why it is unavailable, for explain output.
    pub note: Option<String>,
    /// What the provider's rate-limit headers said is left, until its reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<quota::QuotaLeft>,
    /// Recent share of answers whose tool calls were valid (the `tool_accuracy` strategy).
    #[serde(default)]
    pub tool_call_accuracy: Option<f64>,
    /// Smoothed output tokens per second of whole answers (time to first token included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_second: Option<f64>,
}

/// How fast an endpoint has been answering, as its health learned it: how the
/// attempt asks for a JSON answer depends on it (see `pipeline::chat`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pace {
    /// Smoothed output tokens per second of whole answers.
    pub tokens_per_second: Option<f64>,
    /// Smoothed time to first token (or to a whole answer), in ms.
    pub first_token_ms: Option<f64>,
}

impl Pace {
    fn of(health: Option<&EndpointHealth>) -> Self {
        health.map_or_else(Self::default, |h| Self {
            tokens_per_second: h.tokens_per_second,
            first_token_ms: h.ewma_latency_ms,
        })
    }
}

/// Health by provider id; endpoints missing from it count as healthy and unmeasured.
pub type HealthSnapshot = HashMap<String, EndpointHealth>;

pub struct RouteInput<'c, 'r> {
    pub config: &'c Config,
    pub key: &'r KeyRecord,
    pub model: &'r str,
    pub needs: RequestNeeds,
    pub preferences: &'r Preferences,
    /// Request header lookup (lowercase names), for rule conditions.
    pub header: &'r dyn Fn(&str) -> Option<String>,
    /// The request body's `metadata` object, for rule conditions.
    pub metadata: Option<&'r Map<String, Value>>,
    pub allowed: &'r AllowedRegions,
    pub health: &'r HealthSnapshot,
    /// `x-gateway-session`, for affinity.
    pub session: Option<&'r str>,
    /// The endpoint (`provider/upstream_model`) that served this conversation's
    /// previous turn, when known: it goes first while it is still a candidate.
    pub previous: Option<&'r str>,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate<'a> {
    pub provider_id: &'a str,
    #[serde(skip)]
    pub provider: &'a Provider,
    pub region: &'a str,
    pub upstream_model: &'a str,
    /// The public model this candidate serves (differs from the requested one for
    /// rules, aliases and fallback models).
    pub model: &'a str,
    #[serde(skip)]
    pub capabilities: &'a Capabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(skip)]
    weight: u64,
    /// Why it is where it is in the order.
    pub why: String,
    /// Its endpoint's learned quota (from the provider's rate-limit headers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<quota::QuotaLeft>,
    /// Moved behind the candidates with room: why (its learned quota is short).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_back: Option<String>,
    #[serde(skip)]
    pub pace: Pace,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dropped<'a> {
    pub provider_id: &'a str,
    pub region: &'a str,
    pub upstream_model: &'a str,
    pub model: &'a str,
    pub reason: DropReason,
    pub detail: String,
    /// Its endpoint's learned quota, as for candidates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<quota::QuotaLeft>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    Preferences,
    Region,
    Capability,
    /// The prompt estimate plus `max_tokens` exceeds the target's `context_window`.
    ContextWindow,
    Health,
    Duplicate,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan<'a> {
    pub requested_model: String,
    /// The model after routing rules.
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub strategy: Strategy,
    pub residency: String,
    pub needs: RequestNeeds,
    pub candidates: Vec<Candidate<'a>>,
    pub dropped: Vec<Dropped<'a>>,
}

impl Plan<'_> {
    /// The public models the request may be served by: the planned one and every
    /// candidate's (aliases and fallback models), each once.
    pub fn models(&self) -> Vec<&str> {
        let mut models = vec![self.model.as_str()];
        for candidate in &self.candidates {
            if !models.contains(&candidate.model) {
                models.push(candidate.model);
            }
        }
        models
    }
}

/// A session key derived from the conversation's prefix (model, system prompt,
/// first user turn), for affinity when the client sends no `x-gateway-session`:
/// every turn of one conversation shares it, so it sticks to one endpoint and the
/// provider's prompt cache stays warm. Scoped to the gateway key: another tenant
/// sending the same prompt never learns where this one was served.
pub fn session_from_prefix(key: &str, request: &crate::protocol::openai::ChatRequest) -> Option<String> {
    let first_user = request.messages.iter().find(|m| m.role == "user")?;
    let system: Vec<String> = request
        .messages
        .iter()
        .take_while(|m| m.role != "user")
        .filter_map(|m| m.rest.get("content").map(Value::to_string))
        .collect();
    let user = first_user.rest.get("content").map(Value::to_string).unwrap_or_default();
    Some(format!("prefix:{:016x}", strategy::fnv1a(&[key, &request.model, &system.join("\n"), &user])))
}

pub fn plan<'a>(input: &RouteInput<'a, '_>) -> Result<Plan<'a>, GatewayError> {
    let config = input.config;
    let (requested_name, requested) = config
        .models
        .get_key_value(input.model)
        .filter(|_| input.key.allows(input.model))
        .ok_or_else(|| GatewayError::model_not_found(input.model))?;

    // Routing rules of the requested model (first match wins, no chaining).
    let mut model_name: &'a str = requested_name;
    let mut rule = None;
    for (i, r) in requested.rules.iter().enumerate() {
        if rule_holds(input, &r.when) {
            if let Some((name, _)) = config.models.get_key_value(&r.use_model) {
                model_name = name;
                rule = Some(format!("rules[{i}] → {}", r.use_model));
                break;
            }
        }
    }

    // The model chain: the (ruled) model, then the client's fallback models.
    let mut chain: Vec<&'a str> = vec![model_name];
    for fallback in &input.preferences.models {
        let (name, _) = config
            .models
            .get_key_value(fallback)
            .filter(|_| input.key.allows(fallback))
            .ok_or_else(|| GatewayError::model_not_found(fallback).with_param("models"))?;
        if !chain.contains(&name.as_str()) {
            chain.push(name);
        }
    }

    let mut rng = Rng::new(input.seed);
    let mut candidates = Vec::new();
    let mut dropped = Vec::new();
    let strategy = config.models.get(model_name).map(|m| m.strategy).unwrap_or_default();
    for name in chain {
        let Some(model) = config.models.get(name) else {
            continue;
        };
        let mut group = Vec::new();
        let members: Vec<&'a str> =
            if model.models.is_empty() { vec![name] } else { model.models.iter().map(String::as_str).collect() };
        for member in members {
            let Some(entry) = config.models.get_key_value(member) else {
                continue;
            };
            for target in &entry.1.targets {
                let Some((provider_id, provider)) = config.providers.get_key_value(&target.provider) else {
                    continue;
                };
                let candidate = Candidate {
                    provider_id,
                    provider,
                    region: &provider.region,
                    upstream_model: &target.model,
                    model: entry.0,
                    capabilities: &target.capabilities,
                    price: target.price,
                    weight: u64::from(target.weight.unwrap_or(1)),
                    why: String::new(),
                    quota: None,
                    moved_back: None,
                    pace: Pace::of(input.health.get(provider_id.as_str())),
                };
                let seen = candidates.iter().chain(group.iter()).any(|c: &Candidate| {
                    c.provider_id == candidate.provider_id && c.upstream_model == candidate.upstream_model
                });
                match drop_reason(input, &candidate, seen) {
                    Some((reason, detail)) => dropped.push(Dropped {
                        provider_id,
                        region: &provider.region,
                        upstream_model: &target.model,
                        model: entry.0,
                        reason,
                        detail,
                        quota: input.health.get(provider_id.as_str()).and_then(|h| h.quota),
                    }),
                    None => group.push(candidate),
                }
            }
        }
        order(&mut group, model.strategy, input, &mut rng);
        candidates.extend(group);
    }

    apply_preference_order(&mut candidates, input);
    quota::move_back_short(&mut candidates, input);
    restore_if_all_unhealthy(&mut candidates, &mut dropped, input);
    let plan = Plan {
        requested_model: requested_name.clone(),
        model: model_name.to_string(),
        rule,
        strategy,
        residency: input.allowed.describe(),
        needs: input.needs,
        candidates,
        dropped,
    };
    Ok(plan)
}

impl Plan<'_> {
    /// The client's error when no candidate is left, shaped by why they were dropped.
    pub fn no_candidates_error(&self) -> GatewayError {
        let has = |reason| self.dropped.iter().any(|d| d.reason == reason);
        let details: Vec<String> = self.dropped.iter().map(|d| format!("{}: {}", d.provider_id, d.detail)).collect();
        if has(DropReason::Region) {
            return GatewayError::new(
                503,
                "server_error",
                "no_compliant_provider",
                format!(
                    "No provider allowed by the residency policy ({}) can serve model `{}`; the request was not sent anywhere else.",
                    self.residency, self.model
                ),
            )
            .with_retry_after(30);
        }
        if has(DropReason::ContextWindow) && !has(DropReason::Capability) {
            let needed = self.needs.prompt_tokens + self.needs.max_output_tokens.unwrap_or(0);
            return GatewayError::invalid_request(
                "context_length_exceeded",
                format!(
                    "The request (about {needed} tokens: the prompt estimate plus max_tokens) fits the context window of no target of model `{}`: {}.",
                    self.model,
                    details.join("; ")
                ),
            )
            .with_param("messages");
        }
        if has(DropReason::Capability) || has(DropReason::ContextWindow) {
            return GatewayError::invalid_request(
                "unsupported_capability",
                format!("No target of model `{}` can serve this request: {}.", self.model, details.join("; ")),
            );
        }
        if has(DropReason::Health) {
            return GatewayError::new(
                503,
                "server_error",
                "upstream_unavailable",
                format!("Every provider of model `{}` is unavailable.", self.model),
            )
            .with_retry_after(5);
        }
        GatewayError::invalid_request(
            "no_candidates",
            format!(
                "The request's provider preferences exclude every target of model `{}`: {}.",
                self.model,
                details.join("; ")
            ),
        )
        .with_param("provider")
    }
}

fn rule_holds(input: &RouteInput<'_, '_>, when: &crate::config::RuleCondition) -> bool {
    when.headers.iter().all(|(name, value)| (input.header)(name).as_deref() == Some(value.as_str()))
        && when.metadata.iter().all(|(name, value)| {
            input.metadata.and_then(|m| m.get(name)).and_then(Value::as_str) == Some(value.as_str())
        })
        && when.no_tools.is_none_or(|want| want != input.needs.tools)
        && when.max_prompt_tokens.is_none_or(|max| input.needs.prompt_tokens <= max)
}

fn drop_reason(input: &RouteInput<'_, '_>, c: &Candidate<'_>, duplicate: bool) -> Option<(DropReason, String)> {
    let prefs = &input.preferences.provider;
    if duplicate {
        return Some((DropReason::Duplicate, "already a candidate".into()));
    }
    if !prefs.only.is_empty() && !prefs.only.iter().any(|p| p == c.provider_id) {
        return Some((DropReason::Preferences, "not in provider.only".into()));
    }
    if prefs.ignore.iter().any(|p| p == c.provider_id) {
        return Some((DropReason::Preferences, "in provider.ignore".into()));
    }
    if let (Some(max), Some(price)) = (prefs.max_price, c.price) {
        if max.prompt.is_some_and(|m| price.input_per_mtok > m)
            || max.completion.is_some_and(|m| price.output_per_mtok > m)
        {
            return Some((DropReason::Preferences, "above provider.max_price".into()));
        }
    }
    if !input.allowed.permits(c.region) {
        return Some((DropReason::Region, format!("region {} is outside {}", c.region, input.allowed.describe())));
    }
    if let Some(gap) = capability_gap(&input.needs, c.capabilities) {
        return Some(gap);
    }
    match input.health.get(c.provider_id) {
        Some(h) if !h.available => Some((DropReason::Health, h.note.clone().unwrap_or_else(|| "unavailable".into()))),
        _ => None,
    }
}

fn capability_gap(needs: &RequestNeeds, caps: &Capabilities) -> Option<(DropReason, String)> {
    let gap = |detail: &str| Some((DropReason::Capability, detail.to_string()));
    if needs.tools && caps.tools == Some(false) {
        return gap("does not support tools");
    }
    if needs.vision && caps.vision == Some(false) {
        return gap("does not accept images");
    }
    if needs.json_output && caps.json_output == Some(false) {
        return gap("does not support JSON output");
    }
    // `max_tokens` is a ceiling (SDKs send their own defaults): it is fitted to the
    // target's output ceiling at the attempt, never a reason to drop the target.
    if let Some(window) = caps.context_window {
        let output = needs.max_output_tokens.map(|asked| caps.max_output_tokens.map_or(asked, |max| asked.min(max)));
        let total = needs.prompt_tokens + output.unwrap_or(0);
        if total > window {
            let detail = format!("context window of {window} tokens is too small for about {total}");
            return Some((DropReason::ContextWindow, detail));
        }
    }
    None
}

fn estimated_cost_usd(needs: &RequestNeeds, price: Option<Price>) -> Option<f64> {
    let price = price?;
    let output = needs.estimated_output_tokens();
    Some((needs.prompt_tokens as f64 * price.input_per_mtok + output as f64 * price.output_per_mtok) / 1e6)
}

fn latency(input: &RouteInput<'_, '_>, c: &Candidate<'_>) -> Option<f64> {
    input.health.get(c.provider_id).and_then(|h| h.ewma_latency_ms)
}

fn accuracy(input: &RouteInput<'_, '_>, c: &Candidate<'_>) -> Option<f64> {
    input.health.get(c.provider_id).and_then(|h| h.tool_call_accuracy)
}

fn order(group: &mut Vec<Candidate<'_>>, strategy: Strategy, input: &RouteInput<'_, '_>, rng: &mut Rng) {
    let permutation: Vec<usize> = match strategy {
        Strategy::Priority => (0..group.len()).collect(),
        Strategy::Weighted => strategy::weighted_order(&group.iter().map(|c| c.weight).collect::<Vec<_>>(), rng),
        Strategy::Cheapest => by_cost(group, &input.needs),
        Strategy::Fastest => strategy::p2c_order(&group.iter().map(|c| latency(input, c)).collect::<Vec<_>>(), rng),
        Strategy::ToolAccuracy if input.needs.tools => {
            strategy::by_accuracy(&group.iter().map(|c| accuracy(input, c)).collect::<Vec<_>>())
        }
        Strategy::ToolAccuracy => (0..group.len()).collect(),
    };
    let mut slots: Vec<Option<Candidate<'_>>> = group.drain(..).map(Some).collect();
    for (position, index) in permutation.into_iter().enumerate() {
        if let Some(mut c) = slots.get_mut(index).and_then(Option::take) {
            c.why = match strategy {
                Strategy::Priority => format!("priority {}", position + 1),
                Strategy::Weighted => {
                    format!("weighted draw {} (weight {})", position + 1, c.weight)
                }
                Strategy::Cheapest => match estimated_cost_usd(&input.needs, c.price) {
                    Some(cost) => format!("estimated cost ${cost:.6}"),
                    None => "no price configured".into(),
                },
                Strategy::Fastest => match latency(input, &c) {
                    Some(ms) => format!(
                        "latency EWMA {ms:.0} ms{}",
                        if position == 0 { " (power-of-two-choices pick)" } else { "" }
                    ),
                    None => "not measured yet".into(),
                },
                Strategy::ToolAccuracy => strategy::accuracy_reason(input.needs.tools, accuracy(input, &c), position),
            };
            group.push(c);
        }
    }
    let ids: Vec<String> = group.iter().map(Candidate::endpoint_id).collect();
    let sticky = match (input.previous, input.session, strategy) {
        (Some(previous), _, _) => ids.iter().position(|id| id == previous).map(|i| (i, "previous turn")),
        (None, Some(session), Strategy::Weighted | Strategy::Fastest) => {
            strategy::rendezvous(session, &ids).map(|i| (i, "x-gateway-session"))
        }
        _ => None,
    };
    if let Some((i, why)) = sticky {
        let mut first = group.remove(i);
        first.why = format!("session affinity, {why} ({})", first.why);
        group.insert(0, first);
    }
}

impl Candidate<'_> {
    /// `provider/upstream_model`: what affinity remembers.
    pub fn endpoint_id(&self) -> String {
        format!("{}/{}", self.provider_id, self.upstream_model)
    }
}

fn by_cost(group: &[Candidate<'_>], needs: &RequestNeeds) -> Vec<usize> {
    // Stable: equal or unknown costs keep their configured order; unknown goes last.
    crate::order::stable_indexes(group.len(), &mut |a, b| {
        let cost = |i: usize| group.get(i).and_then(|c| estimated_cost_usd(needs, c.price)).unwrap_or(f64::INFINITY);
        cost(a).total_cmp(&cost(b))
    })
}

/// The client's `provider.order` / `sort` / `allow_fallbacks`, applied last.
fn apply_preference_order(candidates: &mut Vec<Candidate<'_>>, input: &RouteInput<'_, '_>) {
    let prefs = &input.preferences.provider;
    match prefs.sort.as_deref() {
        Some("price") => {
            let permutation = by_cost(candidates, &input.needs);
            reorder(candidates, &permutation, "sorted by price");
        }
        Some("latency") => {
            let permutation = crate::order::stable_indexes(candidates.len(), &mut |a, b| {
                let ms = |i: usize| candidates.get(i).and_then(|c| latency(input, c)).unwrap_or(0.0);
                ms(a).total_cmp(&ms(b))
            });
            reorder(candidates, &permutation, "sorted by latency");
        }
        _ => {}
    }
    if !prefs.order.is_empty() {
        let rank = |c: &Candidate| prefs.order.iter().position(|p| p == c.provider_id).unwrap_or(usize::MAX);
        crate::order::sort_by_key(candidates, |c| rank(c));
        if prefs.allow_fallbacks == Some(false) {
            candidates.retain(|c| rank(c) != usize::MAX);
        }
    }
    if prefs.allow_fallbacks == Some(false) {
        candidates.truncate(1);
    }
}

fn reorder(candidates: &mut Vec<Candidate<'_>>, permutation: &[usize], why: &str) {
    let mut slots: Vec<Option<Candidate<'_>>> = candidates.drain(..).map(Some).collect();
    for &i in permutation {
        if let Some(mut c) = slots.get_mut(i).and_then(Option::take) {
            c.why = format!("{why}; {}", c.why);
            candidates.push(c);
        }
    }
}

/// When health rules out every otherwise-allowed candidate, trying one anyway beats
/// refusing (the breaker may be stale); never beyond the residency policy.
fn restore_if_all_unhealthy<'a>(
    candidates: &mut Vec<Candidate<'a>>,
    dropped: &mut [Dropped<'a>],
    input: &RouteInput<'a, '_>,
) {
    if !candidates.is_empty() {
        return;
    }
    let Some(d) = dropped.iter_mut().find(|d| d.reason == DropReason::Health) else {
        return;
    };
    let Some((provider_id, provider)) = input.config.providers.get_key_value(d.provider_id) else {
        return;
    };
    if !input.allowed.permits(&provider.region) {
        return;
    }
    let target = input
        .config
        .models
        .get(d.model)
        .and_then(|m| m.targets.iter().find(|t| t.provider == d.provider_id && t.model == d.upstream_model));
    if let Some(target) = target {
        candidates.push(Candidate {
            provider_id,
            provider,
            region: &provider.region,
            upstream_model: &target.model,
            model: d.model,
            capabilities: &target.capabilities,
            price: target.price,
            weight: 1,
            why: "every candidate is unhealthy: one forced attempt".into(),
            quota: None,
            moved_back: None,
            pace: Pace::of(input.health.get(provider_id.as_str())),
        });
        d.detail = format!("{} (tried anyway as the last resort)", d.detail);
    }
}

#[cfg(test)]
mod tests;
