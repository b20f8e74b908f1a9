//! Token counts, free and routed like the request they count (the key's models,
//! residency, session, health): `POST /v1/messages/count_tokens` (Anthropic's; Claude
//! Code asks it every turn to manage its context) and `POST /v1/responses/input_tokens`
//! (OpenAI's, see `responses::input_tokens`). Counted by the first candidate whose
//! provider counts. Not admitted against the key's limits or budget, no usage record,
//! and no health outcome (see `pipeline::count_tokens`).

use super::plan::{plan_route, read_routing};
use super::ports::EdgePorts;
use super::{authenticate, body, config_store, health_cache, log, respond, RequestContext};
use crate::config::{Config, KeyRecord};
use crate::dialects::{AnthropicMessages, ClientCall, ClientDialect};
use crate::error::GatewayError;
use crate::pipeline::count_tokens::{CountTokensAttempt, Unrecorded};
use crate::pipeline::{self, Attempts, Trail};
use serde_json::Value;
use worker::{Context, Env, Request, Response};

/// `POST /v1/messages/count_tokens`: `{"input_tokens": n}`.
pub async fn messages(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rc: &RequestContext,
) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let header = |name: &str| rc.headers.get(name);
    let call = AnthropicMessages.parse_count(&body, &header)?;
    drop(body);
    let counted = Counted::of(&req, env, ctx, rc, &config, key, &AnthropicMessages, call, None).await?;
    counted.answer(|input_tokens| crate::json!({ "input_tokens": input_tokens }))
}

/// A count, and the target that made it.
pub struct Counted {
    input_tokens: u64,
    headers: worker::Headers,
}

impl Counted {
    /// Counts `call`'s input through the attempt loop, held to `conversation_regions`
    /// when it continues a stored conversation.
    #[allow(clippy::too_many_arguments)]
    pub async fn of(
        req: &Request,
        env: &Env,
        ctx: &Context,
        rc: &RequestContext,
        config: &Config,
        key: &KeyRecord,
        dialect: &dyn ClientDialect,
        mut call: ClientCall,
        conversation_regions: Option<Vec<String>>,
    ) -> Result<Counted, GatewayError> {
        let routing = read_routing(req, &rc.headers, config, key, &mut call.request, conversation_regions.as_deref())?;
        let health = health_cache::snapshot();
        let plan = plan_route(&rc.headers, config, key, &call.request, &routing, &health)?;
        if plan.candidates.is_empty() {
            return Err(plan.no_candidates_error());
        }
        let settings = config.settings_for(&plan.model);
        let ports = EdgePorts { env, ctx, settings: &settings, request_id: &rc.id, estimated_tokens: 0 };
        let mut operation =
            CountTokensAttempt { dialect, call: &call, request_id: &rc.id, idle_ms: settings.stream_idle_timeout_ms };
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
        Ok(Counted { input_tokens, headers: respond::served_headers(candidate, trail.attempts.len()) })
    }

    /// The count in the client's shape (`shape` writes it), with the gateway's headers naming the target.
    pub fn answer(self, shape: impl FnOnce(u64) -> Value) -> Result<Response, GatewayError> {
        let body = serde_json::to_vec(&shape(self.input_tokens)).map_err(|e| GatewayError::internal(e.to_string()))?;
        Ok(respond::bytes(200, "application/json", body, self.headers))
    }
}
