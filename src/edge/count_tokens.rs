//! `POST /v1/messages/count_tokens` (Anthropic's; Claude Code asks it every turn to
//! manage its context): routed like a Messages request (the key's models, residency,
//! session, health) and counted by the first candidate whose provider counts. Free:
//! not admitted against the key's limits or budget, no usage record, and no health
//! outcome (see `pipeline::count_tokens`).

use super::plan::{plan_route, read_routing};
use super::ports::EdgePorts;
use super::{authenticate, body, config_store, health_cache, log, respond, RequestContext};
use crate::dialects::AnthropicMessages;
use crate::error::GatewayError;
use crate::pipeline::count_tokens::{CountTokensAttempt, Unrecorded};
use crate::pipeline::{self, Attempts, Trail};
use worker::{Context, Env, Request, Response};

pub async fn handle(mut req: Request, env: &Env, ctx: &Context, rc: &RequestContext) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let header = |name: &str| rc.headers.get(name);
    let mut call = AnthropicMessages.parse_count(&body, &header)?;
    drop(body);
    let routing = read_routing(&req, &rc.headers, &config, key, &mut call.request)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&rc.headers, &config, key, &call.request, &routing, &health)?;
    if plan.candidates.is_empty() {
        return Err(plan.no_candidates_error());
    }
    let settings = config.settings_for(&plan.model);
    let ports = EdgePorts { env, ctx, settings: &settings, request_id: &rc.id, estimated_tokens: 0 };
    let mut operation = CountTokensAttempt {
        dialect: &AnthropicMessages,
        call: &call,
        request_id: &rc.id,
        idle_ms: settings.stream_idle_timeout_ms,
    };
    let scope =
        Attempts { plan: &plan, allowed: &routing.allowed, settings: &settings, request_started_ms: rc.started_ms };
    let mut trail = Trail::default();
    let result = pipeline::run(&Unrecorded(&ports), &mut operation, &scope, None, &mut trail).await;
    if config.settings.request_log {
        let served = result.as_ref().ok();
        log::emit(&serde_json::json!({
            "event": "count_tokens", "request_id": rc.id, "key": key.name, "team": key.team,
            "model": call.request.model, "provider": served.map(|(_, c)| c.provider_id),
            "region": served.map(|(_, c)| c.region), "attempts": trail.attempts,
            "status": result.as_ref().map_or_else(|e| e.status, |_| 200), "input_tokens": served.map(|(n, _)| n),
        }));
    }
    let (input_tokens, candidate) = result?;
    let headers = respond::served_headers(candidate, trail.attempts.len());
    let answer = serde_json::to_vec(&crate::json!({ "input_tokens": input_tokens }))
        .map_err(|e| GatewayError::internal(e.to_string()))?;
    Ok(respond::bytes(200, "application/json", answer, headers))
}
