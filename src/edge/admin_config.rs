//! The config document through the admin API: read, replace, dry-run validate,
//! list and read kept versions, roll back. Every change is a new version
//! (`config_history`); what changes and which limiters would move is decided in
//! `config::diff`.

use super::admin::authorize;
use super::{body, config_history, config_store, log, now_ms, respond};
use crate::config::diff::{self, LimiterMove};
use crate::config::history::{self, ChangeSource, RollbackRefusal, VersionMeta, KEEP_VERSIONS};
use crate::config::{Config, ConfigIssue};
use crate::error::GatewayError;
use crate::usage::query::query_pairs;
use serde_json::json;
use worker::{Env, Method, Request, Response};

const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// `/admin/config` and everything under it.
pub async fn route(mut req: Request, env: &Env, path: &str) -> Result<Response, GatewayError> {
    authorize(&req, env)?;
    let method = req.method();
    match (path, method) {
        ("/admin/config", Method::Get) => current(env).await,
        ("/admin/config", Method::Put) => {
            let text = read_document(&mut req).await?;
            let config = match Config::from_json_in(&text, &config_store::environment(env)) {
                Ok(config) => config,
                Err(issues) => return invalid(&issues, "nothing was stored"),
            };
            let by = actor(&req);
            let stored = store(env, &config, ChangeSource::Put, None, &by, accepts_reset(&req)).await?;
            respond::json(200, &stored)
        }
        ("/admin/config/validate", Method::Post) => validate(&read_document(&mut req).await?, env).await,
        ("/admin/config/versions", Method::Get) => versions(env).await,
        ("/admin/config/rollback", Method::Post) => rollback(&mut req, env).await,
        (p, Method::Get) if p.starts_with("/admin/config/versions/") => {
            let n = p.trim_start_matches("/admin/config/versions/");
            version(env, n.parse().map_err(|_| not_kept(n))?).await
        }
        ("/admin/config", m) => Err(GatewayError::method_not_allowed(m.as_ref(), path, "GET or PUT")),
        ("/admin/config/validate" | "/admin/config/rollback", m) => {
            Err(GatewayError::method_not_allowed(m.as_ref(), path, "POST"))
        }
        (p, m) if p == "/admin/config/versions" || p.starts_with("/admin/config/versions/") => {
            Err(GatewayError::method_not_allowed(m.as_ref(), path, "GET"))
        }
        (_, m) => Err(GatewayError::route_not_found(m.as_ref(), path)),
    }
}

async fn read_document(req: &mut Request) -> Result<String, GatewayError> {
    let headers = super::js_headers::ClientHeaders::of(req);
    let body = body::read_limited(req, MAX_CONFIG_BYTES, &headers).await?;
    String::from_utf8(body).map_err(|_| GatewayError::invalid_json("the body is not UTF-8"))
}

fn actor(req: &Request) -> String {
    history::actor(req.headers().get("x-gateway-actor").ok().flatten().as_deref())
}

fn accepts_reset(req: &Request) -> bool {
    query(req, "accept_limiter_reset").is_some_and(|v| v == "true" || v == "1")
}

fn query(req: &Request, name: &str) -> Option<String> {
    query_pairs(&req.inner().url()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// 400 `invalid_config` with every problem and its JSON pointer in `issues`.
fn invalid(issues: &[ConfigIssue], outcome: &str) -> Result<Response, GatewayError> {
    let first = issues.first().map(ToString::to_string).unwrap_or_default();
    let s = if issues.len() == 1 { "" } else { "s" };
    let message = format!("The config document is invalid ({} problem{s}); {outcome}. First: {first}", issues.len());
    let error = GatewayError::invalid_request("invalid_config", message);
    let mut body: serde_json::Value = crate::json_value::from_str(&error.to_json()).unwrap_or_default();
    body["issues"] = serde_json::to_value(issues).unwrap_or_default();
    respond::json(400, &body)
}

fn not_kept(n: &str) -> GatewayError {
    GatewayError::new(404, "invalid_request_error", "version_not_found", format!("No config version {n:?} is kept."))
}

async fn current(env: &Env) -> Result<Response, GatewayError> {
    let (text, meta) = config_store::read_current(env).await?;
    let text = text.ok_or_else(|| {
        GatewayError::new(404, "invalid_request_error", "config_not_found", "No config document is stored yet.")
    })?;
    let headers = worker::Headers::new();
    if let Some(meta) = meta {
        let _ = headers.set("x-gateway-config-version", &meta.version.to_string());
    }
    Ok(respond::bytes(200, "application/json", text.into_bytes(), headers))
}

/// The current config, if one is stored and still valid here.
async fn current_config(env: &Env) -> Result<(Option<String>, Option<u64>, Option<Config>), GatewayError> {
    let (text, meta) = config_store::read_current(env).await?;
    let config = text.as_deref().and_then(|t| Config::from_json_in(t, &config_store::environment(env)).ok());
    Ok((text, meta.map(|m| m.version), config))
}

/// Stores `config` as a new version and makes it current, unless it would move a
/// limiter to another jurisdiction and the caller did not accept that.
async fn store(
    env: &Env,
    config: &Config,
    source: ChangeSource,
    restores: Option<u64>,
    by: &str,
    accept_reset: bool,
) -> Result<serde_json::Value, GatewayError> {
    let (current_text, current_version, old) = current_config(env).await?;
    let moves = old.as_ref().map(|old| diff::limiter_moves(old, config)).unwrap_or_default();
    if !moves.is_empty() && !accept_reset {
        return Err(refused(&moves));
    }
    let mut kept = config_history::list(env).await?;
    let now = now_ms();
    if let (Some(text), true) = (&current_text, kept.is_empty()) {
        // The document stored before versions were kept becomes version 1.
        let revision = old.as_ref().and_then(|c| c.revision.as_deref());
        let initial = VersionMeta::new(1, now, "unknown", revision, ChangeSource::Initial, text.len());
        config_history::record_initial(env, text, &initial).await?;
        kept.push(initial);
    }
    let text = serde_json::to_string(config).map_err(|e| GatewayError::internal(e.to_string()))?;
    let mut meta =
        VersionMeta::new(history::next_version(&kept), now, by, config.revision.as_deref(), source, text.len());
    meta.restores = restores;
    config_history::commit(env, &text, &meta, &kept).await?;
    log::emit(&json!({
        "event": "config_change", "version": meta.version, "source": meta.source, "restores": restores,
        "by": meta.by, "revision": meta.revision, "previous_version": current_version,
        "limiter_resets_accepted": moves.iter().map(LimiterMove::describe).collect::<Vec<_>>(),
    }));
    let changes = old.as_ref().map(|old| diff::diff(old, config));
    config_store::install(config.clone());
    Ok(json!({
        "stored": true,
        "version": meta.version,
        "revision": config.revision,
        "providers": config.providers.len(),
        "models": config.models.len(),
        "keys": config.keys.len(),
        "changes": changes,
        "limiter_resets": moves,
    }))
}

fn refused(moves: &[LimiterMove]) -> GatewayError {
    GatewayError::new(409, "invalid_request_error", "limiter_reset_refused", diff::moves_refusal(moves))
        .with_param("accept_limiter_reset")
        .final_answer()
}

/// `POST /admin/config/validate`: whether the document is valid here and what it
/// would change; nothing is stored.
async fn validate(text: &str, env: &Env) -> Result<Response, GatewayError> {
    let (_, current_version, old) = current_config(env).await?;
    let report = match Config::from_json_in(text, &config_store::environment(env)) {
        Err(issues) => json!({"valid": false, "issues": issues, "current_version": current_version}),
        Ok(config) => {
            let moves = old.as_ref().map(|old| diff::limiter_moves(old, &config)).unwrap_or_default();
            let refusal = (!moves.is_empty()).then(|| diff::moves_refusal(&moves));
            json!({
                "valid": true,
                "issues": [],
                "current_version": current_version,
                "changes": old.as_ref().map(|old| diff::diff(old, &config)),
                "limiter_resets": moves,
                "needs_accept_limiter_reset": refusal.is_some(),
                "warning": refusal,
            })
        }
    };
    respond::json(200, &report)
}

async fn versions(env: &Env) -> Result<Response, GatewayError> {
    let (_, meta) = config_store::read_current(env).await?;
    let current = meta.map(|m| m.version);
    let kept = config_history::list(env).await?;
    let listed: Vec<_> = kept.iter().rev().map(|v| v.listing(current)).collect();
    respond::json(200, &json!({"current_version": current, "keep": KEEP_VERSIONS, "versions": listed}))
}

async fn version(env: &Env, n: u64) -> Result<Response, GatewayError> {
    let text = config_history::read(env, n).await?.ok_or_else(|| not_kept(&n.to_string()))?;
    let headers = worker::Headers::new();
    let _ = headers.set("x-gateway-config-version", &n.to_string());
    Ok(respond::bytes(200, "application/json", text.into_bytes(), headers))
}

/// `POST /admin/config/rollback` (optionally `{"version": n}` or `?version=n`):
/// stores an earlier version again, as a new version, after the same checks as a PUT.
async fn rollback(req: &mut Request, env: &Env) -> Result<Response, GatewayError> {
    let headers = super::js_headers::ClientHeaders::of(req);
    let body = body::read_limited(req, 4096, &headers).await?;
    let named = match query(req, "version") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| not_kept(&v))?),
        None if body.iter().all(u8::is_ascii_whitespace) => None,
        None => {
            let value: serde_json::Value = serde_json::from_slice(&body).map_err(GatewayError::invalid_json)?;
            match &value["version"] {
                serde_json::Value::Null => None,
                v => Some(v.as_u64().ok_or_else(|| {
                    GatewayError::invalid_request("invalid_type", "`version` must be a version number.")
                        .with_param("version")
                })?),
            }
        }
    };
    let (_, meta) = config_store::read_current(env).await?;
    let kept = config_history::list(env).await?;
    let target = history::rollback_target(&kept, meta.map(|m| m.version), named).map_err(|refusal| {
        let (status, code) = match refusal {
            RollbackRefusal::NotKept(_) => (404, "version_not_found"),
            RollbackRefusal::NoPrevious => (409, "no_previous_version"),
            RollbackRefusal::AlreadyCurrent(_) => (409, "version_is_current"),
        };
        GatewayError::new(status, "invalid_request_error", code, refusal.message()).final_answer()
    })?;
    let text = config_history::read(env, target).await?.ok_or_else(|| not_kept(&target.to_string()))?;
    let config = match Config::from_json_in(&text, &config_store::environment(env)) {
        Ok(config) => config,
        Err(issues) => return invalid(&issues, &format!("version {target} is not valid here; nothing changed")),
    };
    let by = actor(req);
    let mut stored = store(env, &config, ChangeSource::Rollback, Some(target), &by, accepts_reset(req)).await?;
    stored["restores"] = target.into();
    respond::json(200, &stored)
}
