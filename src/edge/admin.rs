//! Admin API (bearer `ADMIN_TOKEN` secret): authorization, health and limits;
//! the config document is `admin_config.rs`.

use super::{config_store, respond};
use crate::auth;
use crate::error::GatewayError;
use worker::{Env, Method, Request, Response};

pub fn authorize(req: &Request, env: &Env) -> Result<(), GatewayError> {
    let expected = super::secret(env, "ADMIN_TOKEN").filter(|s| !s.is_empty()).ok_or_else(|| {
        GatewayError::new(
            403,
            "permission_error",
            "admin_disabled",
            "The admin API is disabled: set the ADMIN_TOKEN secret to enable it.",
        )
    })?;
    if !auth::admin_token_usable(&expected) {
        // Never authorize with a guessable token, whatever is presented.
        return Err(GatewayError::new(
            503,
            "server_error",
            "admin_token_too_short",
            format!(
                "The admin API is disabled: the ADMIN_TOKEN secret is shorter than {} characters. \
                 Set a longer one, e.g. `openssl rand -hex 32 | npx wrangler secret put ADMIN_TOKEN`.",
                auth::MIN_ADMIN_TOKEN_CHARS
            ),
        )
        .final_answer());
    }
    let authorization = req.headers().get("authorization").ok().flatten();
    let presented = auth::presented_key(authorization.as_deref(), None).unwrap_or("");
    if auth::secrets_equal(presented, &expected) {
        Ok(())
    } else {
        Err(GatewayError::new(401, "invalid_request_error", "invalid_admin_token", "Invalid admin token."))
    }
}

/// `GET /admin/health`: every endpoint's authoritative state (circuit, error
/// window, cooldown, latency EWMA) from its `ProviderHealth` object;
/// `DELETE /admin/health` forgets it all.
pub async fn health(req: Request, env: &Env, ctx: &worker::Context) -> Result<Response, GatewayError> {
    authorize(&req, env)?;
    let config = config_store::current(env, ctx).await?;
    if req.method() == Method::Delete {
        super::health_cache::reset(env, &config).await;
        return respond::json(200, &serde_json::json!({"reset": true}));
    }
    let endpoints: Vec<serde_json::Value> = super::health_cache::read_all(env, &config)
        .await
        .into_iter()
        .map(|(id, state)| {
            let provider = config.providers.get(&id);
            serde_json::json!({
                "provider": id,
                "region": provider.map(|p| p.region.as_str()),
                "state": state,
            })
        })
        .collect();
    respond::json(200, &serde_json::json!({"endpoints": endpoints}))
}

/// `GET /admin/limits`: every key and team with limits or a budget, as configured,
/// with what its limiter holds now (requests in flight, this month's spending).
pub async fn limits(req: Request, env: &Env, ctx: &worker::Context) -> Result<Response, GatewayError> {
    use super::limiter;
    use crate::limits::LimiterReport;
    authorize(&req, env)?;
    let config = config_store::current(env, ctx).await?;
    let report = |name: String, jurisdiction: Option<&'static str>| async move {
        let stub = super::objects::stub(env, super::objects::RATE_LIMITER, &name, jurisdiction, None)?;
        super::objects::call::<(), LimiterReport>(&stub, "/report", None).await
    };
    let keys: Vec<_> = config
        .keys
        .values()
        .filter(|k| !k.limits.is_empty() || !k.model_limits.is_empty() || k.monthly_budget_usd.is_some())
        .collect();
    let teams: Vec<_> = config.teams.iter().collect();
    let key_reports =
        futures_util::future::join_all(keys.iter().map(|k| report(limiter::key_name(k), k.jurisdiction())));
    let team_reports = futures_util::future::join_all(
        teams.iter().map(|(name, _)| report(limiter::team_name(name), config.team_jurisdiction(name))),
    );
    let (key_reports, team_reports) = futures_util::join!(key_reports, team_reports);
    let entry = |configured: serde_json::Value, now: Option<LimiterReport>| {
        let mut entry = configured;
        entry["now"] = serde_json::to_value(now).unwrap_or_default();
        entry
    };
    let mut out_keys = serde_json::Map::new();
    for (key, now) in keys.iter().zip(key_reports) {
        let configured = serde_json::json!({
            "team": key.team, "limits": key.limits, "model_limits": key.model_limits,
            "monthly_budget_usd": key.monthly_budget_usd,
        });
        out_keys.insert(key.name.clone(), entry(configured, now));
    }
    let mut out_teams = serde_json::Map::new();
    for ((name, team), now) in teams.iter().zip(team_reports) {
        out_teams.insert((*name).clone(), entry(serde_json::to_value(team).unwrap_or_default(), now));
    }
    respond::json(200, &serde_json::json!({"keys": out_keys, "teams": out_teams}))
}
