//! `POST /v1/chat/completions` and `POST /v1/messages` (any client dialect):
//! authenticate, plan, admit against the limits, run the pipeline's attempt loop
//! on the runtime's ports, and answer (whole or streamed), log and settle.

use super::limiter::{self, Ask, Combined, Limiter, Reserved};
use super::log::{self, RequestLine};
use super::plan::{plan_route, read_routing};
use super::ports::{self, EdgePorts};
use super::stream::Pump;
use super::{affinity, authenticate, body, config_store, health_cache, respond, RequestContext};
use crate::error::GatewayError;
use crate::limits::{Admission, Scoped, Used};
use crate::pipeline::chat::{ChatAnswer, ChatAttempt};
use crate::pipeline::{self, admission, Attempts, Prereserved, Trail};
use crate::protocol::openai::Usage;
use crate::routing::Candidate;
use futures_util::{stream, StreamExt};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Context, Env, Headers, Request, Response, ResponseBuilder};

pub async fn handle(mut req: Request, env: &Env, ctx: &Context, rc: &RequestContext) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&req, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes).await?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let mut call = rc.dialect.parse(&body, &header)?;
    drop(body);
    let who = crate::usage::attribution::resolve(&header, Some(&call.request.extra), key)?;
    let routing = read_routing(&req, &config, key, &mut call.request)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&req, &config, key, &call.request, &routing, &health)?;

    let mut line = RequestLine::new(rc, key, &call.request.model, call.request.is_stream(), &routing.allowed);
    line.enabled = config.settings.request_log;
    let kind = if req.path() == "/v1/messages" { "messages" } else { "chat" };
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
    let ask = Ask { reservation_id: &rc.id, tokens: estimate, micro_usd, lease_ms };
    let key_reservation = limiter::reserve_for_key(env, &config, key, &plan.model, ask, firm);
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
            settlements = admitted.into();
            admission
        }
    };
    let prereserved = first
        .map(|c| Prereserved { provider_id: c.provider_id.to_string(), capacity: ports::capacity(first_capacity) });

    let settings = config.settings_for(&plan.model);
    let ports = EdgePorts { env, ctx, settings: &settings, request_id: &rc.id, estimated_tokens: estimate };
    let message_id = format!("msg_{}", rc.id.trim_start_matches("req_"));
    let mut operation = ChatAttempt {
        dialect: rc.dialect,
        call: &mut call,
        request_id: &rc.id,
        message_id: &message_id,
        idle_ms: settings.stream_idle_timeout_ms,
    };
    let scope =
        Attempts { plan: &plan, allowed: &routing.allowed, settings: &settings, request_started_ms: rc.started_ms };
    let mut trail = Trail::default();
    let result = pipeline::run(&ports, &mut operation, &scope, prereserved, &mut trail).await;
    line.absorb(&mut trail);
    for hold in trail.holds.drain(..) {
        settlements.push(hold);
    }
    health_cache::after_request(env, ctx, &config);
    let overhead = line.overhead_ms(rc).to_string();
    let mut response = match result {
        Ok((answer, candidate)) => {
            if let Some(conversation) = routing.conversation.as_deref() {
                affinity::remember(conversation, candidate.endpoint_id());
            }
            line.served_by(candidate);
            match respond_with(answer, candidate, &mut line, rc) {
                Served::Whole(response, usage) => {
                    let used = Used {
                        tokens: Some(usage.map_or(estimate, |u| u.total_tokens)),
                        micro_usd: usage.zip(line.price).map(|(u, p)| p.usage_cost_micro_usd(&u)),
                    };
                    ctx.wait_until(settlements.run(used));
                    log::request(&line.finish(rc, 200, "complete"));
                    response
                }
                Served::Stream(response, pump_settlements) => {
                    // The stream settles the reservations itself, with the usage it counted.
                    pump_settlements.replace(Some(settlements));
                    response
                }
            }
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
    /// Logged and settled by the stream itself when it ends; the cell takes the
    /// limiter settlement to run then.
    Stream(Response, Rc<RefCell<Option<limiter::Settlements>>>),
}

/// The client's response for an answer: the gateway's headers, and the body
/// whole or as a stream that relays the rest as it arrives.
fn respond_with(
    answer: ChatAnswer<Box<Pump>>,
    candidate: &Candidate<'_>,
    line: &mut RequestLine,
    rc: &RequestContext,
) -> Served {
    let headers = Headers::new();
    let _ = headers.set("x-gateway-provider", candidate.provider_id);
    let _ = headers.set("x-gateway-region", candidate.region);
    let _ = headers.set("x-gateway-model", candidate.model);
    let _ = headers.set("x-gateway-attempts", &line.attempts.len().to_string());
    match answer {
        ChatAnswer::Whole { body, usage, tool_calls_valid } => {
            line.account(usage);
            line.record.tool_calls_valid = tool_calls_valid;
            if let Some(cost) = line.cost_usd {
                // What this answer cost, in-band (streams: in the request log only).
                let _ = headers.set("x-gateway-cost-usd", &format!("{cost:.8}"));
            }
            Served::Whole(respond::bytes(200, "application/json", body, headers), usage)
        }
        ChatAnswer::Stream { first, stream: mut pump } => {
            let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
            let _ = headers.set("cache-control", "no-cache");
            let mut logged = line.clone();
            logged.status = 200;
            pump.set_log_line(logged, rc.started_ms);
            pump.set_usage_outbox(rc.usage.clone());
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
