//! `/admin/keys`: create (the plaintext is shown once; only its hash is kept),
//! list, change, rotate with a grace period, and delete keys. Changes go to the
//! `KeyRegistry` object and take effect in this isolate at once, elsewhere
//! within the registry's poll interval.

use super::registry::Applied;
use crate::auth;
use crate::edge::{admin, body, config_store, now_ms, objects, respond};
use crate::error::GatewayError;
use crate::json;
use crate::keys::{self, ManagedKey, Op, Registry};
use serde_json::{Map, Value};
use worker::{Context, Env, Method, Request, Response};

const MAX_BODY: usize = 64 * 1024;

/// `bytes` random bytes as hex, from the platform's CSPRNG (never a fallback: these are secrets).
fn hex(bytes: usize) -> Result<String, GatewayError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| GatewayError::internal("no randomness for a new key"))?;
    Ok(crate::hex::encode(&buf))
}

fn unavailable() -> GatewayError {
    GatewayError::new(503, "server_error", "key_registry_unavailable", "The key registry could not be reached.")
}

async fn apply(env: &Env, op: &Op) -> Result<Registry, GatewayError> {
    let stub = super::stub(env).ok_or_else(unavailable)?;
    let applied: Applied = objects::call(&stub, "/apply", Some(op)).await.ok_or_else(unavailable)?;
    super::install(applied.registry.clone());
    match applied.error {
        None => Ok(applied.registry),
        Some((status, code, message)) => Err(GatewayError::new(status, "invalid_request_error", code, message)),
    }
}

async fn json_body(req: &mut Request) -> Result<Map<String, Value>, GatewayError> {
    let headers = crate::edge::js_headers::ClientHeaders::of(req);
    let bytes = body::read_limited(req, MAX_BODY, &headers).await?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GatewayError::invalid_json("the body must be a JSON object")),
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::new(404, "invalid_request_error", "key_not_found", format!("No managed key has the id {id:?}."))
}

pub async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, GatewayError> {
    admin::authorize(&req, env)?;
    let path = req.path();
    let rest = path.trim_start_matches("/admin/keys").trim_start_matches('/');
    let (id, action) = match rest.split_once('/') {
        Some((id, action)) => (id.to_string(), action.to_string()),
        None => (rest.to_string(), String::new()),
    };
    let now = now_ms();
    let registry = super::fetch(env).await.ok_or_else(unavailable)?;
    match (req.method(), id.is_empty(), action.as_str()) {
        (Method::Get, true, "") => {
            let document = config_store::document(env, ctx).await?;
            let mut out: Vec<Value> = registry.keys.values().map(|k| keys::public_view(k, now)).collect();
            for record in document.keys.values() {
                let mut view = serde_json::to_value(record).unwrap_or_default();
                view["source"] = Value::from("config");
                out.push(view);
            }
            respond::json(200, &json!({ "data": out }))
        }
        (Method::Post, true, "") => {
            let mut body = json_body(&mut req).await?;
            let lifecycle = keys::take_lifecycle(&mut body)?;
            let record = keys::record_from(None, body)?;
            keys::check(&record, &*config_store::document(env, ctx).await?, &registry, None)?;
            let plaintext = format!("gw_{}", hex(24)?);
            let key = ManagedKey {
                id: format!("key_{}", hex(8)?),
                record,
                hash: auth::sha256_hex(&plaintext),
                previous: Vec::new(),
                created_ms: now,
                expires_at_ms: lifecycle.expires_at_ms.flatten(),
                disabled: lifecycle.disabled.unwrap_or(false),
            };
            let registry = apply(env, &Op::Create { key: key.clone() }).await?;
            let mut view = keys::public_view(registry.keys.get(&key.id).unwrap_or(&key), now);
            view["key"] = Value::from(plaintext);
            respond::json(201, &view)
        }
        (Method::Get, false, "") => {
            let key = registry.keys.get(&id).ok_or_else(|| not_found(&id))?;
            respond::json(200, &keys::public_view(key, now))
        }
        (Method::Patch, false, "") => {
            let existing = registry.keys.get(&id).ok_or_else(|| not_found(&id))?;
            let mut body = json_body(&mut req).await?;
            let lifecycle = keys::take_lifecycle(&mut body)?;
            let record = keys::record_from(Some(&existing.record), body)?;
            keys::check(&record, &*config_store::document(env, ctx).await?, &registry, Some(&id))?;
            let op = Op::Update {
                id: id.clone(),
                record,
                expires_at_ms: lifecycle.expires_at_ms.unwrap_or(existing.expires_at_ms),
                disabled: lifecycle.disabled.unwrap_or(existing.disabled),
            };
            let registry = apply(env, &op).await?;
            respond::json(200, &registry.keys.get(&id).map(|k| keys::public_view(k, now)))
        }
        (Method::Post, false, "rotate") => {
            let body = json_body(&mut req).await?;
            let grace_s = match body.get("grace_seconds") {
                None => 0,
                Some(v) => v.as_u64().filter(|s| s * 1000 <= keys::MAX_GRACE_MS).ok_or_else(|| {
                    GatewayError::invalid_request("invalid_value", "grace_seconds: 0 to 2592000 (30 days)")
                        .with_param("grace_seconds")
                })?,
            };
            let plaintext = format!("gw_{}", hex(24)?);
            let op = Op::Rotate { id: id.clone(), hash: auth::sha256_hex(&plaintext), grace_ms: grace_s * 1000 };
            let registry = apply(env, &op).await?;
            let mut view = registry.keys.get(&id).map(|k| keys::public_view(k, now)).unwrap_or_default();
            view["key"] = Value::from(plaintext);
            respond::json(200, &view)
        }
        (Method::Delete, false, "") => {
            apply(env, &Op::Delete { id: id.clone() }).await?;
            respond::json(200, &json!({"id": id, "deleted": true}))
        }
        (m, _, _) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET, POST, PATCH or DELETE")),
    }
}
