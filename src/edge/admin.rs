//! Admin API: read and replace the routing config (bearer `ADMIN_TOKEN` secret).

use super::{body, config_store, respond};
use crate::auth;
use crate::config::Config;
use crate::error::GatewayError;
use worker::{Env, Method, Request, Response};

const MAX_CONFIG_BYTES: usize = 1024 * 1024;

pub fn authorize(req: &Request, env: &Env) -> Result<(), GatewayError> {
    let expected =
        env.secret("ADMIN_TOKEN").map(|s| s.to_string()).ok().filter(|s| !s.is_empty()).ok_or_else(|| {
            GatewayError::new(
                403,
                "permission_error",
                "admin_disabled",
                "The admin API is disabled: set the ADMIN_TOKEN secret to enable it.",
            )
        })?;
    let authorization = req.headers().get("authorization").ok().flatten();
    let presented = auth::presented_key(authorization.as_deref(), None).unwrap_or("");
    if auth::secrets_equal(presented, &expected) {
        Ok(())
    } else {
        Err(GatewayError::new(401, "invalid_request_error", "invalid_admin_token", "Invalid admin token."))
    }
}

pub async fn config(mut req: Request, env: &Env) -> Result<Response, GatewayError> {
    authorize(&req, env)?;
    if req.method() == Method::Get {
        let text = config_store::read_raw(env).await?.ok_or_else(|| {
            GatewayError::new(404, "invalid_request_error", "config_not_found", "No config document is stored yet.")
        })?;
        return Ok(respond::bytes(200, "application/json", text.into_bytes(), worker::Headers::new()));
    }

    let body = body::read_limited(&mut req, MAX_CONFIG_BYTES).await?;
    let text = std::str::from_utf8(&body).map_err(|_| GatewayError::invalid_json("the body is not UTF-8"))?;
    let config = match Config::from_json(text) {
        Ok(config) => config,
        Err(issues) => {
            let error = GatewayError::invalid_request(
                "invalid_config",
                format!(
                    "The config document is invalid ({} problem{}); nothing was stored. First: {}",
                    issues.len(),
                    if issues.len() == 1 { "" } else { "s" },
                    issues.first().map(ToString::to_string).unwrap_or_default()
                ),
            );
            let mut body: serde_json::Value = serde_json::from_str(&error.to_json()).unwrap_or_default();
            body["issues"] = serde_json::to_value(&issues).unwrap_or_default();
            return respond::json(400, &body);
        }
    };
    let stored = serde_json::to_string(&config).map_err(|e| GatewayError::internal(e.to_string()))?;
    let kv = env
        .kv(config_store::KV_BINDING)
        .map_err(|_| GatewayError::config_unavailable("the ROUTING KV namespace is not bound"))?;
    kv.put(config_store::CONFIG_KEY, stored)
        .map_err(|_| GatewayError::internal("could not prepare the KV write"))?
        .execute()
        .await
        .map_err(|_| {
            GatewayError::new(
                503,
                "server_error",
                "config_write_failed",
                "The config could not be written to KV; nothing changed.",
            )
        })?;
    let summary = serde_json::json!({
        "stored": true,
        "revision": config.revision,
        "providers": config.providers.len(),
        "models": config.models.len(),
        "keys": config.keys.len(),
    });
    config_store::install(config);
    respond::json(200, &summary)
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
