//! The only code that touches the Workers runtime: the fetch entry point and the
//! thin adapters (KV, fetch, streams, Durable Objects) around the pure core.

mod admin;
mod admin_config;
mod affinity;
mod allotments;
mod auth_throttle;
mod body;
mod chat;
mod client_stream;
mod config_history;
mod config_store;
mod count_tokens;
mod dashboard;
mod durable;
mod embeddings;
mod end_signal;
mod explain;
mod health_cache;
mod js_headers;
mod keys;
mod kv;
mod limiter;
mod location;
mod log;
mod microtasks;
mod objects;
mod pending_reports;
mod plan;
mod ports;
mod probe;
mod respond;
mod response_store;
mod responses;
mod settlement;
mod stream;
mod threads;
mod timer;
mod tool_probe;
mod upstream;
mod usage;

use crate::auth;
use crate::config::{Config, KeyRecord};
use crate::cors;
use crate::dialects::{self, ClientDialect};
use crate::error::GatewayError;
use std::rc::Rc;
use worker::{event, Context, Env, Method, Request, Response, Result};

/// What every handler knows about the request it serves.
pub struct RequestContext {
    pub id: String,
    pub started_ms: u64,
    /// The API the client called: errors and answers take its shape.
    pub dialect: &'static dyn ClientDialect,
    /// The request's usage records, sent to the usage Queue after the answer.
    pub usage: usage::Outbox,
    /// Aborts when the client disconnects (`enable_request_signal`): streams settle then.
    pub client_signal: Option<web_sys::AbortSignal>,
    /// The client's headers, read in one call.
    pub headers: js_headers::ClientHeaders,
}

/// A panic traps the wasm instance (the runtime then starts a fresh one): its
/// message is logged first, or the trap says only "unreachable". The futures'
/// task queue is scheduled through promises (see `microtasks`).
#[event(start)]
fn start() {
    microtasks::schedule_through_promises();
    std::panic::set_hook(Box::new(|info| {
        worker::console_error!("panic: {info}");
    }));
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    location::defer_cf(&req);
    let client_signal = Some(req.signal());
    let req = Request::from(req);
    let dialect = dialects::errors_for_path(&req.path());
    let rc = RequestContext {
        id: new_request_id(),
        started_ms: now_ms(),
        dialect,
        usage: usage::Outbox::new(),
        client_signal,
        headers: js_headers::ClientHeaders::of(&req),
    };
    // Only browsers send `Origin`: server-side clients never pay for CORS.
    let origin = rc.headers.get("origin");
    let cors_origin = match &origin {
        Some(origin) => allowed_origin(&env, &ctx, origin).await,
        None => None,
    };
    if let (Some(allowed), Method::Options) = (&cors_origin, req.method()) {
        let requested = rc.headers.get("access-control-request-headers");
        return Ok(respond::into_js(preflight(allowed, requested.as_deref())));
    }
    // The caller's headers for failed-authentication throttling: the same JS object
    // (`worker::Headers`'s `clone` would copy every header into a new one).
    let headers = worker::Headers(req.headers().0.clone());
    let routed = match auth_throttle::known_block(&headers) {
        Some(blocked) => Err(blocked),
        None => route(req, &env, &ctx, &rc).await,
    };
    let response = match routed {
        Ok(response) => response,
        Err(error) => {
            let error = auth_throttle::after_failure(&env, &ctx, &headers, error).await;
            respond::error_in(rc.dialect, &error, &rc.id)
        }
    };
    let mut response = response;
    // Our own responses only, so the headers are mutable.
    let headers = response.headers_mut();
    let _ = headers.set("x-request-id", &rc.id);
    if let Some(allowed) = &cors_origin {
        let _ = headers.set("access-control-allow-origin", allowed);
        let _ = headers.set("access-control-expose-headers", cors::EXPOSED_HEADERS);
        let _ = headers.append("vary", "Origin");
    }
    usage::dispatch(&env, &ctx, rc.usage);
    Ok(respond::into_js(response))
}

/// The `Access-Control-Allow-Origin` value for a browser's origin, if the config allows it.
async fn allowed_origin(env: &Env, ctx: &Context, origin: &str) -> Option<String> {
    let config = config_store::current(env, ctx).await.ok()?;
    cors::allow_origin(&config.settings.cors_origins, Some(origin)).map(str::to_string)
}

/// A CORS preflight: answered without authentication (browsers send none).
fn preflight(allowed_origin: &str, requested_headers: Option<&str>) -> Response {
    let headers = worker::Headers::new();
    let _ = headers.set("access-control-allow-origin", allowed_origin);
    let _ = headers.set("access-control-allow-methods", cors::ALLOWED_METHODS);
    if let Some(requested) = cors::allow_headers(requested_headers) {
        let _ = headers.set("access-control-allow-headers", requested);
    }
    let _ = headers.set("access-control-max-age", "600");
    let _ = headers.set("vary", "Origin");
    worker::ResponseBuilder::new().with_status(204).with_headers(headers).empty()
}

async fn route(
    req: Request,
    env: &Env,
    ctx: &Context,
    rc: &RequestContext,
) -> std::result::Result<Response, GatewayError> {
    let method = req.method();
    let path = req.path();
    match (path.as_str(), method) {
        ("/v1/responses", Method::Post) => responses::create(req, env, ctx, rc).await,
        ("/v1/messages/count_tokens", Method::Post) => count_tokens::messages(req, env, ctx, rc).await,
        ("/v1/responses/input_tokens", Method::Post) => responses::input_tokens(req, env, ctx, rc).await,
        ("/v1/responses/input_tokens", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "POST")),
        ("/v1/messages/count_tokens", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "POST")),
        (p, Method::Post) if dialects::for_path(p).is_some() => chat::handle(req, env, ctx, rc).await,
        (p, m) if dialects::for_path(p).is_some() => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "POST")),
        (p, _) if p.starts_with("/v1/responses/") => responses::by_id(req, env, ctx, &path).await,
        ("/v1/route/explain", Method::Post) => explain::explain(req, env, ctx).await,
        ("/v1/route/explain", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "POST")),
        ("/v1/embeddings", Method::Post) => embeddings::handle(req, env, ctx, rc).await,
        ("/v1/embeddings", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "POST")),
        ("/v1/models", Method::Get) => models(&req, env, ctx).await,
        ("/v1/models", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET")),
        (p, _) if p == "/admin/config" || p.starts_with("/admin/config/") => admin_config::route(req, env, p).await,
        ("/admin/health", Method::Get | Method::Delete) => admin::health(req, env, ctx).await,
        ("/admin/health", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET or DELETE")),
        ("/admin/limits", Method::Get) => admin::limits(req, env, ctx).await,
        ("/admin/limits", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET")),
        ("/admin/usage", Method::Get) => usage::api::admin_usage(req, env, ctx, false).await,
        ("/admin/usage/requests", Method::Get) => usage::api::admin_usage(req, env, ctx, true).await,
        ("/v1/usage", Method::Get) => usage::api::own_usage(req, env, ctx).await,
        ("/admin/monitor", Method::Get) => usage::monitor::handle(req, env, ctx).await,
        (p, _) if p == "/admin/keys" || p.starts_with("/admin/keys/") => keys::admin::handle(req, env, ctx).await,
        ("/admin" | "/admin/", Method::Get) => dashboard::handle(&req, env),
        ("/admin/usage" | "/admin/usage/requests" | "/v1/usage" | "/admin/monitor", m) => {
            Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET"))
        }
        ("/admin/config", m) => Err(GatewayError::method_not_allowed(m.as_ref(), &path, "GET or PUT")),
        ("/" | "/healthz", Method::Get) => {
            respond::json(200, &crate::json!({"status": "ok", "service": "edge-ai-gateway"}))
        }
        (_, m) => Err(GatewayError::route_not_found(m.as_ref(), &path)),
    }
}

/// Authenticates the gateway key against the current config.
pub fn authenticate<'a>(
    headers: &js_headers::ClientHeaders,
    config: &'a Config,
) -> std::result::Result<&'a KeyRecord, GatewayError> {
    let authorization = headers.get("authorization");
    let x_api_key = headers.get("x-api-key");
    let presented = auth::presented_key(authorization.as_deref(), x_api_key.as_deref())
        .ok_or_else(GatewayError::invalid_api_key)?;
    config.key_by_hash(&auth::sha256_hex(presented)).ok_or_else(GatewayError::invalid_api_key)
}

async fn models(req: &Request, env: &Env, ctx: &Context) -> std::result::Result<Response, GatewayError> {
    let config: Rc<Config> = config_store::current(env, ctx).await?;
    let key = authenticate(&js_headers::ClientHeaders::of(req), &config)?;
    let data: Vec<serde_json::Value> = config
        .models_for(key)
        .map(|id| crate::json!({"id": id, "object": "model", "created": 0, "owned_by": "edge-ai-gateway"}))
        .collect();
    respond::json(200, &crate::json!({"object": "list", "data": data}))
}

/// `ctx.wait_until` through one boxed future type: every future type handed to it
/// directly gets its own copy of worker's and wasm-bindgen's spawning glue.
pub fn in_background(ctx: &Context, task: impl std::future::Future<Output = ()> + 'static) {
    let task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> = Box::pin(task);
    ctx.wait_until(task);
}

/// A binding's JS object (`None` when absent), read without `worker`'s check of its
/// constructor's name, which costs two more calls and a string on every lookup.
pub fn binding(env: &Env, name: &str) -> Option<wasm_bindgen::JsValue> {
    js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name)).ok().filter(|b| !b.is_undefined() && !b.is_null())
}

/// A secret's (or a text variable's) value.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    binding(env, name)?.as_string()
}

pub fn now_ms() -> u64 {
    // `Date.now()`: one call, where `worker::Date::now()` makes a Date object and reads it.
    js_sys::Date::now() as u64
}

/// Random bytes drawn from the runtime a block at a time: a request takes ~20 (its id,
/// a routing seed, jitter), and each draw is a call into JS. Nothing secret is made
/// from these (gateway keys draw their own).
const RANDOM_POOL_BYTES: usize = 256;

thread_local! {
    static RANDOM_POOL: std::cell::RefCell<(Vec<u8>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let drawn = RANDOM_POOL.with(|pool| {
        let (block, used) = &mut *pool.borrow_mut();
        if block.len() < *used + N {
            block.resize(RANDOM_POOL_BYTES.max(N), 0);
            if getrandom::fill(block).is_err() {
                block.clear();
                return false;
            }
            *used = 0;
        }
        bytes.copy_from_slice(&block[*used..*used + N]);
        *used += N;
        true
    });
    if !drawn {
        // Only load spreading, jitter and request ids depend on this; the clock is a usable fallback.
        let now = now_ms().to_le_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = now.get(i % 8).copied().unwrap_or(0) ^ (i as u8);
        }
    }
    bytes
}

/// A random seed for load balancing (passed into pure routing code).
pub fn random_u64() -> u64 {
    u64::from_le_bytes(random_bytes::<8>())
}

/// A random number in [0, 1) for jitter.
pub fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn new_request_id() -> String {
    let mut id = String::from("req_");
    crate::hex::push(&mut id, &random_bytes::<12>());
    id
}
