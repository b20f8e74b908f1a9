//! `POST /v1/chat/completions` and `POST /v1/messages` (any client dialect):
//! authenticate, plan, admit against the limits, run the pipeline's attempt loop
//! on the runtime's ports, and answer (whole or streamed), log and settle.

use super::end_signal::EndSignal;
use super::limiter::{self, Ask, Combined, Limiter, Reserved};
use super::log::{self, RequestLine};
use super::plan::{plan_route, read_routing};
use super::ports::{self, EdgePorts};
use super::stream::{Keep, Kept, Pump};
use super::{affinity, authenticate, body, config_store, health_cache, respond, RequestContext};
use crate::config::{Config, KeyRecord};
use crate::dialects::{ClientCall, Read};
use crate::error::GatewayError;
use crate::limits::{Admission, Scoped, Used};
use crate::pipeline::chat::{fitted_max_tokens, ChatAnswer, ChatAttempt};
use crate::pipeline::{self, admission, Attempts, Prereserved, Trail};
use crate::protocol::openai::Usage;
use crate::routing::Candidate;
use std::rc::Rc;
use worker::{Context, Env, Headers, Request, Response};

pub async fn handle(mut req: Request, env: &Env, ctx: &Context, rc: &RequestContext) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let header = |name: &str| rc.headers.get(name);
    let read = rc.dialect.read(&body, &header)?;
    drop(body);
    let (call, stateful) = match read {
        Read::Call(call) => (call, Stateful::default()),
        Read::Threaded(turn) => super::threads::completed(env, key, &config, turn, &header).await?,
    };
    serve(&req, env, ctx, rc, &config, key, call, stateful).await
}

/// What a stateful dialect (stored Responses) adds to serving a call.
#[derive(Default)]
pub struct Stateful {
    /// The regions a continued conversation is held to.
    pub conversation_regions: Option<Vec<String>>,
    /// Stores what the dialect kept of a completed answer.
    pub keep: Option<Keep>,
}

/// Serves a parsed call: plan, admit, run the attempt loop, answer, log and settle.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    req: &Request,
    env: &Env,
    ctx: &Context,
    rc: &RequestContext,
    config: &Rc<Config>,
    key: &KeyRecord,
    mut call: ClientCall,
    stateful: Stateful,
) -> Result<Response, GatewayError> {
    let config = config.clone();
    let header = |name: &str| rc.headers.get(name);
    let who = crate::usage::attribution::resolve(&header, Some(&call.request.extra), key)?;
    let held_to = stateful.conversation_regions.as_deref();
    let routing = read_routing(req, &rc.headers, &config, key, &mut call.request, held_to)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&rc.headers, &config, key, &call.request, &routing, &health)?;

    let mut line = RequestLine::new(rc, key, &call.request.model, call.request.is_stream(), &routing.allowed);
    line.enabled = config.settings.request_log;
    line.planned(&plan);
    let kind = match req.path().as_str() {
        "/v1/messages" => "messages",
        "/v1/responses" => "responses",
        _ => "chat",
    };
    line.record = crate::usage::UsageRecord::start(&rc.id, rc.started_ms, kind, key, who);
    if plan.candidates.is_empty() {
        let error = plan.no_candidates_error();
        log::request(&line.finish(rc, error.status, "no_candidates"));
        return Err(error);
    }

    // Limits: the key's limiter (requests, tokens and concurrency, whole and for
    // this model, at once), the team's, and the first candidate's capacity
    // limiter, called in parallel: one round trip.
    let estimate = admission::estimated_tokens(&plan);
    let lease_ms = limiter::lease_ms(&config.settings);
    let firm = plan.needs.max_output_tokens.is_some();
    let micro_usd = admission::estimated_cost_micro_usd(&plan);
    let deadline_ms = config.settings.limiter_timeout_ms;
    let ask = Ask { reservation_id: &rc.id, tokens: estimate, micro_usd, lease_ms, deadline_ms };
    // Every model the plan may be served by (an alias, a fallback): each one's limit holds.
    let models = plan.models();
    let key_reservation = limiter::reserve_for_key(env, &config, key, &models, ask, firm);
    let first = plan.candidates.first().filter(|c| !c.provider.limits.is_empty());
    let capacity_reservation = async {
        match first {
            Some(c) => {
                let id = limiter::endpoint_reservation_id(&rc.id, c.provider_id);
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
            line.admitted_from_allotment = admitted.iter().any(limiter::Settlement::is_allotted);
            settlements = admitted.into();
            admission
        }
    };
    let prereserved = first
        .map(|c| Prereserved { provider_id: c.provider_id.to_string(), capacity: ports::capacity(first_capacity) });

    let settings = config.settings_for(&plan.model);
    let ports = EdgePorts { env, ctx, settings: &settings, request_id: &rc.id, estimated_tokens: estimate };
    let message_id = format!("msg_{}", rc.id.trim_start_matches("req_"));
    let mut operation = ChatAttempt::new(rc.dialect, &mut call, &rc.id, &message_id, settings.stream_idle_timeout_ms);
    operation.estimated_input_tokens = plan.needs.prompt_tokens;
    let scope =
        Attempts { plan: &plan, allowed: &routing.allowed, settings: &settings, request_started_ms: rc.started_ms };
    let mut trail = Trail::default();
    let result = pipeline::run(&ports, &mut operation, &scope, prereserved, &mut trail).await;
    line.absorb(&mut trail);
    for hold in trail.holds.drain(..) {
        settlements.push(hold);
    }
    health_cache::after_request(env, ctx, &config);
    // The gateway's own headers on any answer: set with the answer's others in one call.
    let mut extra_headers = vec![("x-gateway-overhead-ms", line.overhead_ms(rc).to_string())];
    if let Some(a) = &admission {
        extra_headers.extend(limiter::header_pairs(a));
    }
    match result {
        Ok((answer, candidate)) => {
            let fitted = fitted_max_tokens(plan.needs.max_output_tokens, candidate.capabilities.max_output_tokens);
            if let Some(fitted) = fitted {
                // The client asked for more output than the target can give: it got the target's ceiling.
                extra_headers.push(("x-gateway-max-tokens-fitted", fitted.to_string()));
            }
            if let Some(conversation) = routing.conversation.as_deref() {
                affinity::remember(conversation, candidate.endpoint_id());
            }
            line.served_by(candidate);
            let served_model = candidate.model.to_string();
            // A conversation started under a residency policy stays under it.
            let regions = routing.allowed.is_restricted().then(|| routing.allowed.regions.iter().cloned().collect());
            let keep = stateful.keep.map(|keep| (keep, regions));
            // A stream's prompt estimate (to charge a cut stream) and its latest end.
            let ends_by = rc.started_ms + settings.request_timeout_ms + settings.max_stream_ms;
            let bounds = (plan.needs.prompt_tokens, ends_by);
            Ok(match respond_with(answer, candidate, &mut line, rc, keep, ctx, bounds, extra_headers) {
                Served::Whole(response, usage) => {
                    let used = Used {
                        tokens: Some(usage.map_or(estimate, |u| u.total_tokens)),
                        micro_usd: usage.zip(line.price).map(|(u, p)| p.usage_cost_micro_usd(&u)),
                    };
                    settlements.settle_now(ctx, used, Some(&served_model));
                    log::request(&line.finish(rc, 200, "complete"));
                    response
                }
                Served::Stream(response, end) => {
                    // Settled with what the stream used when it ends, or when the client
                    // leaves: inside `wait_until`, which outlives the client.
                    if !settlements.is_empty() {
                        super::in_background(ctx, async move {
                            settlements.run_served(end.wait().await, served_model).await
                        });
                    }
                    response
                }
            })
        }
        Err(error) => {
            // Nothing was generated: give the reservations back.
            settlements.settle_now(ctx, Used::NOTHING, None);
            log::request(&line.finish(rc, error.status, "error"));
            let response = respond::error_in(rc.dialect, &error, &rc.id);
            for (name, value) in &extra_headers {
                let _ = response.headers().set(name, value);
            }
            Ok(response)
        }
    }
}

/// The request was refused before it ran: give back what the other limiters reserved.
fn cancel_reservations(ctx: &Context, mut to_cancel: Vec<limiter::Settlement>, first_capacity: Reserved) {
    if let Reserved::Admitted(_, settlement) = first_capacity {
        to_cancel.push(settlement);
    }
    super::in_background(ctx, limiter::cancel_all(to_cancel));
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

enum Served {
    Whole(Response, Option<Usage>),
    /// Logged by the stream itself when it ends; the signal says what it used.
    Stream(Response, EndSignal),
}

/// The client's response for an answer: the gateway's headers (with `extra`), and
/// the body whole or as a stream that relays the rest as it arrives.
#[allow(clippy::too_many_arguments)]
fn respond_with(
    answer: ChatAnswer<Box<Pump>>,
    candidate: &Candidate<'_>,
    line: &mut RequestLine,
    rc: &RequestContext,
    keep: Option<(Keep, Option<Vec<String>>)>,
    ctx: &Context,
    bounds: (u64, u64),
    extra: Vec<(&'static str, String)>,
) -> Served {
    let attempts = line.attempts.len().to_string();
    let mut pairs = vec![
        ("x-gateway-provider", candidate.provider_id),
        ("x-gateway-region", candidate.region),
        ("x-gateway-model", candidate.model),
        ("x-gateway-attempts", attempts.as_str()),
    ];
    pairs.extend(extra.iter().map(|(name, value)| (*name, value.as_str())));
    let headers_with = |more: &[(&'static str, &str)]| {
        let all: Vec<(&str, &str)> = pairs.iter().chain(more).copied().collect();
        super::js_headers::build(&all).map_or_else(Headers::new, |(built, _)| Headers(built))
    };
    match answer {
        ChatAnswer::Whole { body, usage, kept, tool_calls_valid } => {
            if let (Some((keep, regions)), Some(answer)) = (keep, kept) {
                super::in_background(ctx, keep(Kept { answer, regions }));
            }
            line.account(usage);
            line.record.tool_calls_valid = tool_calls_valid;
            // What this answer cost, in-band (streams: in the request log only).
            let cost = line.cost_usd.map(|cost| format!("{cost:.8}"));
            let mut more = vec![("content-type", "application/json")];
            more.extend(cost.as_deref().map(|cost| ("x-gateway-cost-usd", cost)));
            Served::Whole(respond::with_headers(200, body, headers_with(&more)), usage)
        }
        ChatAnswer::Stream { first, stream: mut pump } => {
            let headers =
                headers_with(&[("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]);
            let mut logged = line.clone();
            logged.status = 200;
            pump.set_log_line(logged, rc.started_ms);
            if let Some((keep, regions)) = keep {
                pump.keep_with(keep, regions);
            }
            let end = pump.end_signal();
            pump.bound(bounds.0, bounds.1);
            pump.set_usage_outbox(rc.usage.clone());
            let response = super::client_stream::body(first, pump, rc.client_signal.clone())
                .map(|body| worker::ResponseBuilder::new().with_status(200).with_headers(headers).stream(body))
                .unwrap_or_else(|| respond::error(&GatewayError::internal("could not start the stream")));
            Served::Stream(response, end)
        }
    }
}
