//! `POST /v1/chat/completions` and `POST /v1/route/explain`: authenticate, work
//! out where the request may and should go, try the candidates in order until one
//! answers, and relay the answer (streamed or whole).

use super::log::{self, Attempt, RequestLine};
use super::stream::Pump;
use super::upstream::{self, Sent};
use super::{
    affinity, authenticate, body, config_store, health_cache, limiter, location, now_ms, random_u64, random_unit,
    respond, RequestContext,
};
use crate::config::ProviderKind;
use crate::config::{Config, KeyRecord, Settings};
use crate::error::GatewayError;
use crate::gateway::{self, AttemptFailure, NextStep};
use crate::health::{tool_calls, Outcome};
use crate::inbound::anthropic::{self as inbound_anthropic, AnthropicEncoder, AnthropicRawEncoder};
use crate::limits::Admission;
use crate::limits::{Scoped, Used};
use crate::protocol::openai::{ChatRequest, CompletionProbe, Usage};
use crate::providers::openai as openai_adapter;
use crate::providers::{anthropic, bedrock, gemini, AttemptContext, StreamTranslator, UpstreamRequest};
use crate::relay::ClientEncoder;
use crate::relay::{ModelRename, OpenAiEncoder, OpenAiPassthrough, Relay};
use crate::routing::residency::{self, AllowedRegions, ClientLocation};
use crate::routing::{self, needs, preferences, Candidate, Plan, RouteInput};
use futures_util::{stream, StreamExt};
use limiter::{Ask, Capacity, Combined, Limiter, Reserved};
use serde_json::Map;
use serde_json::Value;
use std::rc::Rc;
use std::time::Duration;
use worker::{Context, Delay, Env, Headers, Request, Response, ResponseBuilder};

const MAX_SESSION_ID: usize = 256;

/// Everything routing needs from the HTTP request, read once.
struct Routing {
    location: ClientLocation,
    allowed: AllowedRegions,
    preferences: preferences::Preferences,
    session: Option<String>,
    /// The key of this conversation (from its prefix), for previous-turn affinity.
    conversation: Option<String>,
}

fn read_routing(
    req: &Request,
    config: &Config,
    key: &KeyRecord,
    request: &mut ChatRequest,
) -> Result<Routing, GatewayError> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let location = location::client_location(req);
    let narrowing = header("x-gateway-region").map(|h| residency::parse_narrowing(&h)).transpose()?;
    let allowed = residency::allowed(config, key, narrowing, &location)?;
    let preferences = preferences::take(request)?;
    let session = header("x-gateway-session").filter(|s| !s.is_empty() && s.len() <= MAX_SESSION_ID);
    let conversation = routing::session_from_prefix(request);
    Ok(Routing { location, allowed, preferences, session, conversation })
}

fn plan_route<'c>(
    req: &Request,
    config: &'c Config,
    key: &KeyRecord,
    request: &ChatRequest,
    routing: &Routing,
    health: &routing::HealthSnapshot,
) -> Result<Plan<'c>, GatewayError> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    // Only a continuing conversation sticks: a first turn is the strategy's to place.
    let continues = request.messages.iter().any(|m| m.role == "assistant");
    let previous = routing.conversation.as_deref().filter(|_| continues).and_then(affinity::previous);
    let input = RouteInput {
        config,
        key,
        model: &request.model,
        needs: needs::needs(request),
        preferences: &routing.preferences,
        header: &header,
        metadata: request.extra.get("metadata").and_then(Value::as_object),
        allowed: &routing.allowed,
        health,
        session: routing.session.as_deref(),
        previous: previous.as_deref(),
        seed: random_u64(),
    };
    routing::plan(&input)
}

pub async fn handle(mut req: Request, env: &Env, ctx: &Context, rc: &RequestContext) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&req, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes).await?;
    let original = match rc.dialect {
        Dialect::OpenAi => None,
        Dialect::Anthropic => Some(inbound_anthropic::parse_request(&body)?),
    };
    let mut request = match &original {
        None => ChatRequest::parse(&body)?,
        Some(original) => inbound_anthropic::to_canonical(original)?,
    };
    drop(body);
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let client = ClientRequest {
        dialect: rc.dialect,
        original: original.as_ref(),
        anthropic_version: header("anthropic-version"),
        anthropic_beta: header("anthropic-beta"),
    };
    let routing = read_routing(&req, &config, key, &mut request)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&req, &config, key, &request, &routing, &health)?;

    let mut line = RequestLine::new(rc, key, &request, &routing.allowed);
    line.enabled = config.settings.request_log;
    if plan.candidates.is_empty() {
        let error = plan.no_candidates_error();
        log::request(&line.finish(rc, error.status, "no_candidates"));
        return Err(error);
    }

    // Limits: the key's limiter (requests, tokens and concurrency, whole and for
    // this model, at once), the team's, and the first candidate's capacity
    // limiter, called in parallel: one round trip.
    let estimate = estimated_tokens(&plan.needs);
    let lease_ms = limiter::lease_ms(&config.settings);
    let firm = plan.needs.max_output_tokens.is_some();
    // Budgets reserve the cost at the first candidate's price; the real cost replaces it.
    let estimated_cost = plan.candidates.first().and_then(|c| c.price).map_or(0, |price| {
        let prompt = plan.needs.prompt_tokens;
        price.cost_micro_usd(prompt, estimate.saturating_sub(prompt))
    });
    let ask = Ask { reservation_id: &rc.id, tokens: estimate, micro_usd: estimated_cost, lease_ms };
    let key_reservation = limiter::reserve_for_key(env, &config, key, &plan.model, ask, firm);
    let first = plan.candidates.first().filter(|c| !c.provider.limits.is_empty());
    let capacity_reservation = async {
        match first {
            Some(c) => {
                let id = format!("{}@{}", rc.id, c.provider_id);
                let scopes = vec![Scoped::whole(c.provider.limits)];
                let ask = Ask { reservation_id: &id, micro_usd: 0, ..ask };
                limiter::reserve(env, &limiter::endpoint_name(c.provider_id), None, scopes, ask).await
            }
            None => Reserved::NotLimited,
        }
    };
    let (combined, first_capacity) = futures_util::join!(key_reservation, capacity_reservation);
    let mut settlements: limiter::Settlements;
    let admission = match combined {
        Combined::Denied { admission, by, to_cancel } => {
            cancel_reservations(ctx, to_cancel, first_capacity);
            return Ok(limited_response(&admission, &by, estimate, rc, &mut line));
        }
        Combined::Unavailable { to_cancel } => {
            cancel_reservations(ctx, to_cancel, first_capacity);
            log::request(&line.finish(rc, 503, "limiter_unavailable"));
            return Err(limiter::unavailable_error());
        }
        Combined::Admitted { admission, settlements: admitted, degraded } => {
            line.limiter_degraded |= degraded;
            settlements = admitted.into();
            admission
        }
    };
    let capacity = Capacity { first: Some(first_capacity), estimate, lease_ms };
    let scope = Scope {
        client: &client,
        conversation: routing.conversation.as_deref(),
        config: &config,
        plan: &plan,
        allowed: &routing.allowed,
        env,
        rc,
    };

    let result = attempt_all(scope, &mut request, &mut line, capacity, &mut settlements).await;
    health_cache::after_request(env, ctx, &config);
    let overhead = line.overhead_ms(rc).to_string();
    let mut response = match result {
        Ok(Served::Whole(response, usage)) => {
            let used = Used {
                tokens: Some(usage.map_or(estimate, |u| u.total_tokens)),
                micro_usd: usage.zip(line.price).map(|(u, p)| p.usage_cost_micro_usd(&u)),
            };
            ctx.wait_until(settlements.run(used));
            log::request(&line.finish(rc, 200, "complete"));
            response
        }
        Ok(Served::Stream(response, pump_settlements)) => {
            // The stream settles the reservations itself, with the usage it counted.
            pump_settlements.replace(Some(settlements));
            response
        }
        Err(error) => {
            // Nothing was generated: give the reservations back.
            ctx.wait_until(settlements.run(Used::NOTHING));
            log::request(&line.finish(rc, error.status, "error"));
            respond::error_in(rc.dialect, &error, &rc.id)
        }
    };
    let _ = response.headers_mut().set("x-gateway-overhead-ms", &overhead);
    if let Some(a) = &admission {
        limiter::headers(a, response.headers());
    }
    Ok(response)
}

/// The request was refused before it ran: give back what the other limiters reserved.
fn cancel_reservations(ctx: &Context, mut to_cancel: Vec<limiter::Settlement>, first_capacity: Reserved) {
    if let Reserved::Admitted(_, settlement) = first_capacity {
        to_cancel.push(settlement);
    }
    ctx.wait_until(limiter::cancel_all(to_cancel));
}

/// Prompt estimate plus the output the request may produce.
fn estimated_tokens(needs: &needs::RequestNeeds) -> u64 {
    const DEFAULT_OUTPUT_RESERVATION: u64 = 1_024;
    needs.prompt_tokens + needs.choices * needs.max_output_tokens.unwrap_or(DEFAULT_OUTPUT_RESERVATION)
}

fn limited_response(
    admission: &Admission,
    by: &Limiter,
    estimate: u64,
    rc: &RequestContext,
    line: &mut RequestLine,
) -> Response {
    let error = limiter::denial_error(admission, by, estimate);
    log::request(&line.clone().finish(rc, 429, "rate_limited"));
    let response = respond::error_in(rc.dialect, &error, &rc.id);
    limiter::headers(admission, response.headers());
    response
}

/// `POST /v1/route/explain`: the plan for a chat request, without sending it.
pub async fn explain(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, GatewayError> {
    let config: Rc<Config> = config_store::current(env, ctx).await?;
    // The key itself, or the admin: as the key named in `x-gateway-explain-as`, or as
    // an unrestricted key when none is named.
    let admin_view: KeyRecord;
    let key = match authenticate(&req, &config) {
        Ok(key) => key,
        Err(error) => {
            if super::admin::authorize(&req, env).is_err() {
                return Err(error);
            }
            let named = req.headers().get("x-gateway-explain-as").ok().flatten();
            admin_view = match named {
                Some(name) => config.keys.values().find(|k| k.name == name).cloned().ok_or_else(|| {
                    GatewayError::new(
                        404,
                        "invalid_request_error",
                        "key_not_found",
                        format!("No key is named {name:?}."),
                    )
                })?,
                None => KeyRecord {
                    name: "admin".into(),
                    models: vec!["*".into()],
                    regions: Vec::new(),
                    limits: Default::default(),
                    model_limits: Default::default(),
                    team: None,
                    monthly_budget_usd: None,
                },
            };
            &admin_view
        }
    };
    let body = body::read_limited(&mut req, config.settings.max_body_bytes).await?;
    let mut request = ChatRequest::parse(&body)?;
    let routing = read_routing(&req, &config, key, &mut request)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&req, &config, key, &request, &routing, &health)?;
    let mut answer = serde_json::to_value(&plan).map_err(|e| GatewayError::internal(e.to_string()))?;
    answer["location"] = serde_json::to_value(&routing.location).unwrap_or_default();
    answer["allowed_regions"] = serde_json::to_value(&routing.allowed).unwrap_or_default();
    if plan.candidates.is_empty() {
        answer["error"] = serde_json::from_str(&plan.no_candidates_error().to_json()).unwrap_or_default();
    }
    respond::json(200, &answer)
}

enum Served {
    Whole(Response, Option<Usage>),
    /// Logged and settled by the stream itself when it ends; the cell takes the
    /// limiter settlement to run then.
    Stream(Response, Rc<std::cell::RefCell<Option<limiter::Settlements>>>),
}

/// What the attempt loop reads but never changes.
struct Scope<'s, 'c> {
    client: &'s ClientRequest<'s>,
    conversation: Option<&'s str>,
    config: &'s Config,
    plan: &'s Plan<'c>,
    allowed: &'s AllowedRegions,
    env: &'s Env,
    rc: &'s RequestContext,
}

async fn attempt_all(
    scope: Scope<'_, '_>,
    request: &mut ChatRequest,
    line: &mut RequestLine,
    mut capacity: Capacity,
    settlements: &mut limiter::Settlements,
) -> Result<Served, GatewayError> {
    let Scope { client, conversation, config, plan, allowed, env, rc } = scope;
    let model_settings = config.settings_for(&plan.model);
    let settings = &model_settings;
    let deadline = rc.started_ms + settings.request_timeout_ms;
    let mut failures: Vec<(&str, AttemptFailure)> = Vec::new();
    let mut secrets: Vec<String> = Vec::new();

    for candidate in &plan.candidates {
        // Defense in depth: the plan never holds an endpoint outside the allowed
        // regions, and this check makes sure no code path can send it there.
        if !allowed.permits(candidate.region) {
            log::warn("residency_violation_prevented", candidate.provider_id);
            continue;
        }
        let api_key = match &candidate.provider.api_key_secret {
            Some(name) => match env.secret(name) {
                Ok(value) => Some(value.to_string()),
                Err(_) => {
                    line.attempt(candidate, "missing_secret", now_ms());
                    failures.push((candidate.provider_id, AttemptFailure::MissingSecret));
                    continue;
                }
            },
            None => None,
        };
        if let Some(key) = &api_key {
            secrets.push(key.clone());
        }
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();

        // The endpoint's own capacity (RPM/TPM from the config): spread bursts to the
        // next endpoint before the provider starts answering 429.
        match capacity.reserve(env, candidate, &rc.id).await {
            Reserved::Denied(a) => {
                line.attempt(candidate, "over_capacity", now_ms());
                let retry_after_s = Some(a.retry_after_ms.div_ceil(1000).max(1));
                failures.push((
                    candidate.provider_id,
                    AttemptFailure::Status { status: 429, retry_after_s, message: None, code: None, param: None },
                ));
                continue;
            }
            Reserved::Admitted(_, settlement) => settlements.push(settlement),
            Reserved::Unreachable => line.limiter_degraded = true,
            Reserved::NotLimited => {}
        }

        let mut attempts_here = 0;
        loop {
            let left = deadline.saturating_sub(now_ms());
            if left == 0 {
                break;
            }
            attempts_here += 1;
            let started = now_ms();
            health_cache::begin(candidate.provider_id, attempts_here == 1);
            let first_byte_ms = settings.first_byte_timeout_ms.min(left);
            let outcome =
                attempt_one(candidate, request, client, api_key.as_deref(), first_byte_ms, settings, rc).await;
            line.upstream_ms += now_ms().saturating_sub(started);
            let failure = match outcome {
                Ok(answer) => {
                    let latency = now_ms().saturating_sub(started);
                    health_cache::record(
                        candidate.provider_id,
                        Outcome::Success { latency_ms: latency },
                        &settings.circuit_breaker,
                    );
                    line.attempt(candidate, "ok", started);
                    line.provider = Some(candidate.provider_id.to_string());
                    line.region = Some(candidate.region.to_string());
                    line.served_model = Some(candidate.model.to_string());
                    line.price = candidate.price;
                    if let Some(conversation) = conversation {
                        affinity::remember(conversation, candidate.endpoint_id());
                    }
                    return Ok(answer.into_response(candidate, line, rc));
                }
                Err(failure) => failure,
            };
            line.attempt(candidate, outcome_name(&failure), started);
            if let Some(outcome) = health_outcome(&failure) {
                health_cache::record(candidate.provider_id, outcome, &settings.circuit_breaker);
            }
            let left = deadline.saturating_sub(now_ms());
            match gateway::next_step(
                &failure,
                attempts_here,
                true,
                left,
                settings.first_byte_timeout_ms,
                random_unit(),
                &secret_refs,
            ) {
                NextStep::Answer(error) => return Err(error),
                NextStep::RetrySameAfter { wait_ms } if health_cache::try_retry(candidate.provider_id) => {
                    if wait_ms > 0 {
                        Delay::from(Duration::from_millis(wait_ms)).await;
                    }
                }
                _ => {
                    failures.push((candidate.provider_id, failure));
                    break;
                }
            }
        }
    }
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    if failures.is_empty() {
        return Err(GatewayError::new(
            504,
            "server_error",
            "upstream_timeout",
            "The request deadline passed before any provider could be tried.",
        ));
    }
    let mut error = gateway::exhausted(&plan.model, &failures, &secret_refs);
    if allowed.is_restricted() && error.status >= 500 {
        // Say plainly that nothing outside the policy was tried.
        error.status = 503;
        error.code = "no_compliant_provider".into();
        error.retry_after_s = error.retry_after_s.or(Some(5));
        error.message = format!(
            "{} Only providers allowed by the residency policy ({}) were tried.",
            error.message,
            allowed.describe()
        );
    }
    Err(error)
}

fn health_outcome(failure: &AttemptFailure) -> Option<Outcome> {
    match failure {
        AttemptFailure::MissingSecret | AttemptFailure::Unservable(_) => None,
        AttemptFailure::Status { status: 429, retry_after_s, .. } => {
            Some(Outcome::RateLimited { retry_after_ms: retry_after_s.map(|s| s * 1000) })
        }
        AttemptFailure::Status { status: 401 | 403, .. } => Some(Outcome::AuthFailure),
        AttemptFailure::Status { status, .. } if (400..500).contains(status) && *status != 404 && *status != 408 => {
            None
        }
        _ => Some(Outcome::Failure),
    }
}

fn outcome_name(failure: &AttemptFailure) -> &'static str {
    match failure {
        AttemptFailure::MissingSecret => "missing_secret",
        AttemptFailure::Connect => "connect_error",
        AttemptFailure::Timeout => "timeout",
        AttemptFailure::Status { status: 429, .. } => "rate_limited",
        AttemptFailure::Status { status: 400..=499, .. } => "client_error",
        AttemptFailure::Status { .. } => "server_error",
        AttemptFailure::InvalidResponse(_) => "invalid_response",
        AttemptFailure::StreamError(_) => "stream_error",
        AttemptFailure::Unservable(_) => "unservable",
    }
}

/// A provider's answer, checked and ready to relay.
enum Answer {
    Whole { body: Vec<u8>, usage: Option<Usage> },
    Stream { first: Vec<u8>, pump: Box<Pump> },
}

/// A provider's safety refusal is the client's answer (a 400, never failed over);
/// anything else unreadable is a broken answer.
pub fn refusal_or_invalid(reason: &str) -> AttemptFailure {
    match reason.strip_prefix("content_filter: ") {
        Some(detail) => AttemptFailure::Status {
            status: 400,
            retry_after_s: None,
            message: Some(format!("The provider refused the request: {detail}.")),
            code: Some("content_filter".into()),
            param: None,
        },
        None => AttemptFailure::InvalidResponse("the answer could not be read"),
    }
}

/// Which API the client called, which decides the shape of everything it gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

/// The client's request as the attempt loop needs it.
pub struct ClientRequest<'r> {
    pub dialect: Dialect,
    /// The Anthropic body as the client sent it (relayed natively to Anthropic targets).
    pub original: Option<&'r Map<String, Value>>,
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
}

/// Builds the upstream request for this candidate's provider kind.
fn upstream_request(
    ctx: &AttemptContext<'_>,
    candidate: &Candidate<'_>,
    request: &mut ChatRequest,
    client: &ClientRequest<'_>,
) -> Result<(UpstreamRequest, bool), GatewayError> {
    match candidate.provider.kind {
        ProviderKind::Openai | ProviderKind::AzureOpenai => Ok((
            openai_adapter::chat_request(candidate.provider, candidate.upstream_model, request, ctx.api_key)?,
            false,
        )),
        ProviderKind::Anthropic => match client.original {
            // Anthropic to Anthropic: the client's own body, no lossy round trip.
            Some(original) => Ok((
                anthropic::native_request(
                    ctx,
                    original,
                    client.anthropic_version.as_deref(),
                    client.anthropic_beta.as_deref(),
                )?,
                true,
            )),
            None => {
                let default_max = candidate.capabilities.max_output_tokens.unwrap_or(anthropic::DEFAULT_MAX_TOKENS);
                Ok((anthropic::chat_request(ctx, request, default_max)?, false))
            }
        },
        ProviderKind::Gemini => Ok((gemini::chat_request(ctx, request)?, false)),
        ProviderKind::Bedrock => {
            let default_max = candidate.capabilities.max_output_tokens.unwrap_or(anthropic::DEFAULT_MAX_TOKENS);
            Ok((bedrock::chat_request(ctx, request, default_max)?, false))
        }
    }
}

async fn attempt_one(
    candidate: &Candidate<'_>,
    request: &mut ChatRequest,
    client: &ClientRequest<'_>,
    api_key: Option<&str>,
    first_byte_ms: u64,
    settings: &Settings,
    rc: &RequestContext,
) -> Result<Answer, AttemptFailure> {
    let idle_ms = settings.stream_idle_timeout_ms;
    let ctx = AttemptContext {
        provider: candidate.provider,
        upstream_model: candidate.upstream_model,
        public_model: candidate.model,
        api_key,
        now_ms: now_ms(),
        request_id: &rc.id,
    };
    let (up, native) = upstream_request(&ctx, candidate, request, client).map_err(AttemptFailure::Unservable)?;
    let started = now_ms();
    let mut sent: Sent = upstream::send(&up, first_byte_ms).await?;
    let status = sent.status();
    if !(200..300).contains(&status) {
        return Err(sent.failure(first_byte_ms).await);
    }
    let content_type = sent.content_type();
    let left = first_byte_ms.saturating_sub(now_ms().saturating_sub(started)).max(1);
    let message_id = format!("msg_{}", rc.id.trim_start_matches("req_"));
    if up.stream {
        let expected = match candidate.provider.kind {
            ProviderKind::Bedrock => "application/vnd.amazon.eventstream",
            _ => "text/event-stream",
        };
        if !content_type.starts_with(expected) {
            return Err(AttemptFailure::InvalidResponse(
                "a stream was asked for but the answer is not an event stream",
            ));
        }
        let body = sent.stream().ok_or(AttemptFailure::InvalidResponse("the answer has no body"))?;
        let translator: Box<dyn StreamTranslator> = match (candidate.provider.kind, native) {
            (ProviderKind::Anthropic, true) => Box::new(anthropic::stream_translator(&ctx).keep_raw()),
            (ProviderKind::Anthropic, false) => Box::new(anthropic::stream_translator(&ctx)),
            (ProviderKind::Gemini, _) => Box::new(gemini::stream_translator(&ctx, true)),
            (ProviderKind::Bedrock, _) => Box::new(bedrock::stream_translator(&ctx)),
            _ => Box::new(OpenAiPassthrough::renaming(candidate.upstream_model, candidate.model)),
        };
        let (encoder, wants_usage): (Box<dyn ClientEncoder>, bool) = match (client.dialect, native) {
            (Dialect::OpenAi, _) => (Box::new(OpenAiEncoder), request.wants_stream_usage()),
            (Dialect::Anthropic, true) => (Box::new(AnthropicRawEncoder), true),
            (Dialect::Anthropic, false) => (Box::new(AnthropicEncoder::new(candidate.model, &message_id)), true),
        };
        let relay = Relay::new(translator, encoder, wants_usage);
        let mut pump = Pump::new(body, sent.abort, relay, idle_ms);
        pump.set_breaker_policy(settings.circuit_breaker);
        if let Some(tools) = request.extra.get("tools").filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
            pump.check_tool_calls(tools.clone());
        }
        let first = pump.until_committed(left).await?;
        return Ok(Answer::Stream { first, pump: Box::new(pump) });
    }

    if !content_type.contains("json") {
        return Err(AttemptFailure::InvalidResponse("the answer is not JSON"));
    }
    // The whole body is the "first byte" of a non-streamed answer, but it may
    // take as long as the model needs: bound it by the idle timeout instead.
    let raw = sent.read_body(idle_ms.max(left)).await?;
    let invalid = |_| AttemptFailure::InvalidResponse("the answer is not a chat completion");
    // The canonical completion, when it is needed (translation, accounting, validity).
    let canonical: Option<Value> = match (candidate.provider.kind, client.dialect) {
        (ProviderKind::Anthropic, _) => Some(
            anthropic::chat_response(&ctx, &raw)
                .map_err(|_| AttemptFailure::InvalidResponse("the answer is not a message"))?,
        ),
        (ProviderKind::Gemini, _) => {
            Some(gemini::chat_response(&ctx, &raw).map_err(|reason| refusal_or_invalid(&reason))?)
        }
        (ProviderKind::Bedrock, _) => Some(
            bedrock::chat_response(&ctx, &raw)
                .map_err(|_| AttemptFailure::InvalidResponse("the answer is not a message"))?,
        ),
        (_, Dialect::Anthropic) => Some(serde_json::from_slice(&raw).map_err(invalid)?),
        (_, Dialect::OpenAi) => None,
    };
    let usage: Option<Usage> = match &canonical {
        Some(c) => c.get("usage").and_then(|u| serde_json::from_value(u.clone()).ok()),
        None => serde_json::from_slice::<CompletionProbe>(&raw).map_err(invalid)?.usage,
    };
    // Tool-call validity costs a full parse, so only when tools were offered.
    let tool_calls_valid = request.extra.get("tools").and_then(|tools| {
        let parsed;
        let completion = match &canonical {
            Some(c) => c,
            None => {
                parsed = serde_json::from_slice::<Value>(&raw).ok()?;
                &parsed
            }
        };
        tool_calls::all_valid(Some(tools), &tool_calls::from_completion(completion))
    });
    let finished = Outcome::Finished {
        duration_ms: now_ms().saturating_sub(started),
        output_tokens: usage.map(|u| u.completion_tokens),
        tool_calls_valid,
    };
    health_cache::record(candidate.provider_id, finished, &settings.circuit_breaker);
    let body = match (client.dialect, native, canonical) {
        (_, true, _) => raw,
        (Dialect::OpenAi, false, None) => match ModelRename::new(candidate.upstream_model, candidate.model) {
            Some(rename) => rename.apply_bytes(raw),
            None => raw,
        },
        (Dialect::OpenAi, false, Some(c)) => {
            serde_json::to_vec(&c).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?
        }
        (Dialect::Anthropic, false, c) => {
            let message =
                inbound_anthropic::from_canonical_response(&c.unwrap_or_default(), candidate.model, &message_id);
            serde_json::to_vec(&message).map_err(|_| AttemptFailure::InvalidResponse("encoding"))?
        }
    };
    Ok(Answer::Whole { body, usage })
}

impl Answer {
    fn into_response(self, candidate: &Candidate<'_>, line: &mut RequestLine, rc: &RequestContext) -> Served {
        let headers = Headers::new();
        let _ = headers.set("x-gateway-provider", candidate.provider_id);
        let _ = headers.set("x-gateway-region", candidate.region);
        let _ = headers.set("x-gateway-model", candidate.model);
        let _ = headers.set("x-gateway-attempts", &line.attempts.len().to_string());
        match self {
            Answer::Whole { body, usage } => {
                line.account(usage);
                if let Some(cost) = line.cost_usd {
                    // What this answer cost, in-band (streams: in the request log only).
                    let _ = headers.set("x-gateway-cost-usd", &format!("{cost:.8}"));
                }
                Served::Whole(respond::bytes(200, "application/json", body, headers), usage)
            }
            Answer::Stream { first, mut pump } => {
                let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
                let _ = headers.set("cache-control", "no-cache");
                let mut logged = line.clone();
                logged.status = 200;
                pump.set_log_line(logged, rc.started_ms);
                let settlement = pump.settlements_cell();
                let rest = stream::unfold(pump, |mut pump| async move {
                    pump.next_chunk().await.map(|chunk| (Ok::<Vec<u8>, worker::Error>(chunk), pump))
                });
                let body = stream::once(async move { Ok::<Vec<u8>, worker::Error>(first) }).chain(rest);
                let response = ResponseBuilder::new().with_status(200).with_headers(headers).from_stream(body);
                let response =
                    response.unwrap_or_else(|_| respond::error(&GatewayError::internal("could not start the stream")));
                Served::Stream(response, settlement)
            }
        }
    }
}

impl RequestLine {
    fn new(rc: &RequestContext, key: &KeyRecord, request: &ChatRequest, allowed: &AllowedRegions) -> Self {
        RequestLine {
            event: "chat",
            request_id: rc.id.clone(),
            key: key.name.clone(),
            team: key.team.clone(),
            model: request.model.clone(),
            served_model: None,
            stream: request.is_stream(),
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
        }
    }

    /// Time spent in the gateway itself: everything but waiting on providers.
    fn overhead_ms(&self, rc: &RequestContext) -> u64 {
        now_ms().saturating_sub(rc.started_ms).saturating_sub(self.upstream_ms)
    }

    fn attempt(&mut self, candidate: &Candidate<'_>, outcome: &str, started: u64) {
        self.attempts.push(Attempt {
            provider: candidate.provider_id.to_string(),
            region: candidate.region.to_string(),
            outcome: outcome.to_string(),
            ms: now_ms().saturating_sub(started),
        });
    }

    fn finish(mut self, rc: &RequestContext, status: u16, outcome: &'static str) -> Self {
        self.status = status;
        self.outcome = outcome;
        self.duration_ms = now_ms().saturating_sub(rc.started_ms);
        self
    }
}
