//! `POST /v1/embeddings`: routed like chat (residency, key allow-lists, health,
//! strategy), admitted against the key's and team's limits, and run through the
//! same attempt loop (deadlines, retries, failover, endpoint capacity, health).

use super::limiter::{self, Combined};
use super::ports::EdgePorts;
use super::{authenticate, body, config_store, health_cache, location, log, random_u64, respond};
use crate::error::GatewayError;
use crate::limits::Used;
use crate::pipeline::embeddings::EmbeddingsAttempt;
use crate::pipeline::{self, admission, Attempts, Trail};
use crate::protocol::openai::{EmbeddingsRequest, Usage};
use crate::routing::needs::RequestNeeds;
use crate::routing::{self, preferences::Preferences, residency, RouteInput};
use worker::{Context, Env, Request, Response};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rc: &super::RequestContext,
) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let request = EmbeddingsRequest::parse(&body)?;
    let header = |name: &str| rc.headers.get(name);
    let who = crate::usage::attribution::resolve(&header, Some(&request.extra), key)?;
    let mut record = crate::usage::UsageRecord::start(&rc.id, rc.started_ms, "embeddings", key, who);
    record.model = request.model.clone();
    let narrowing = header("x-gateway-region").map(|h| residency::parse_narrowing(&h)).transpose()?;
    let allowed = residency::allowed(&config, key, narrowing, &location::for_residency(&req, &config))?;
    let health = health_cache::snapshot();
    let preferences = Preferences::default();
    let estimate = request.estimated_tokens();
    let input = RouteInput {
        config: &config,
        key,
        model: &request.model,
        // Embeddings produce no output: the input is the whole estimate.
        needs: RequestNeeds { prompt_tokens: estimate, choices: 1, max_output_tokens: Some(0), ..Default::default() },
        preferences: &preferences,
        header: &header,
        metadata: None,
        allowed: &allowed,
        health: &health,
        session: None,
        previous: None,
        seed: random_u64(),
    };
    let plan = routing::plan(&input)?;
    if plan.candidates.is_empty() {
        return Err(plan.no_candidates_error());
    }

    let lease_ms = limiter::lease_ms(&config.settings);
    let micro_usd = admission::estimated_cost_micro_usd(&plan);
    let deadline_ms = config.settings.limiter_timeout_ms;
    let ask = limiter::Ask { reservation_id: &rc.id, tokens: estimate, micro_usd, lease_ms, deadline_ms };
    let (admission, mut settlements) =
        match limiter::reserve_for_key(env, &config, key, &plan.models(), ask, false).await {
            Combined::Denied { admission, by, to_cancel } => {
                super::in_background(ctx, limiter::cancel_all(to_cancel));
                let response = respond::error(&limiter::denial_error(&admission, &by, estimate));
                limiter::headers(&admission, response.headers());
                return Ok(response);
            }
            Combined::Unavailable { to_cancel } => {
                super::in_background(ctx, limiter::cancel_all(to_cancel));
                return Err(limiter::unavailable_error());
            }
            Combined::Admitted { admission, settlements, .. } => (admission, limiter::Settlements::from(settlements)),
        };

    let settings = config.settings_for(&plan.model);
    let ports = EdgePorts { env, ctx, settings: &settings, request_id: &rc.id, estimated_tokens: estimate };
    let mut operation =
        EmbeddingsAttempt { request: &request, request_id: &rc.id, idle_ms: settings.stream_idle_timeout_ms };
    let scope = Attempts { plan: &plan, allowed: &allowed, settings: &settings, request_started_ms: rc.started_ms };
    let mut trail = Trail::default();
    let result = pipeline::run(&ports, &mut operation, &scope, None, &mut trail).await;
    for hold in trail.holds.drain(..) {
        settlements.push(hold);
    }
    health_cache::after_request(env, ctx, &config);
    let (answer, candidate) = match result {
        Ok(served) => served,
        Err(error) => {
            settlements.settle_now(ctx, Used::NOTHING, None);
            record.attempts = trail.attempts.len() as u32;
            record.finish(error.status, "error", super::now_ms().saturating_sub(rc.started_ms));
            rc.usage.push(record);
            return Err(error);
        }
    };
    record.attempts = trail.attempts.len() as u32;
    record.served_model = Some(candidate.model.to_string());
    record.provider = Some(candidate.provider_id.to_string());
    record.upstream_model = Some(candidate.upstream_model.to_string());
    record.region = Some(candidate.region.to_string());
    let usage = answer.tokens.map(|t| Usage { prompt_tokens: t, total_tokens: t, ..Usage::default() });
    record.account(usage.as_ref(), candidate.price.as_ref());
    record.finish(200, "complete", super::now_ms().saturating_sub(rc.started_ms));
    rc.usage.push(record);
    let tokens = answer.tokens.unwrap_or(estimate);
    let used = Used { tokens: Some(tokens), micro_usd: candidate.price.map(|price| price.cost_micro_usd(tokens, 0)) };
    settlements.settle_now(ctx, used, Some(candidate.model));
    if config.settings.request_log {
        let cost_usd = answer.tokens.zip(candidate.price).map(|(t, price)| price.cost_usd(t, 0));
        log::emit(&serde_json::json!({
            "event": "embeddings", "request_id": rc.id, "key": key.name, "team": key.team,
            "model": request.model, "provider": candidate.provider_id, "region": candidate.region,
            "attempts": trail.attempts, "status": 200, "prompt_tokens": answer.tokens, "cost_usd": cost_usd,
            "quota_moved_back": plan.quota_moved_back(),
        }));
    }
    let headers = respond::served_headers(candidate, trail.attempts.len());
    let response = respond::bytes(200, "application/json", answer.body, headers);
    if let Some(admission) = &admission {
        limiter::headers(admission, response.headers());
    }
    Ok(response)
}
