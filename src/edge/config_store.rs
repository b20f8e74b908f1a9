//! The routing config from KV, cached in isolate memory.
//!
//! A fresh copy is served from memory; a stale one is still served while one
//! background read refreshes it (so the hot path never waits on KV once warm).
//! A document that fails validation never replaces the last good one.

use super::{log, now_ms};
use crate::config::history::CurrentMeta;
use crate::config::{Config, Environment};
use crate::error::GatewayError;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Context, Env};

pub const KV_BINDING: &str = "ROUTING";
pub const CONFIG_KEY: &str = "config";

struct Cached {
    config: Rc<Config>,
    loaded_ms: u64,
    refreshing: bool,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// The config with the key registry's keys: what requests authenticate against.
/// A new isolate reads the document (KV) and the registry (its object) at once: one
/// round trip's wait on its first request, not two in a row.
pub fn current<'a>(
    env: &'a Env,
    ctx: &'a Context,
) -> futures_util::future::LocalBoxFuture<'a, Result<Rc<Config>, GatewayError>> {
    // Boxed: every handler awaits it, and a boxed future is one copy, not one inlined into each.
    Box::pin(async move {
        let (document, ()) = futures_util::join!(document(env, ctx), super::keys::read_if_missing(env));
        Ok(super::keys::with_managed_keys(env, ctx, document?))
    })
}

/// The stored document alone (cached in the isolate).
pub async fn document(env: &Env, ctx: &Context) -> Result<Rc<Config>, GatewayError> {
    let now = now_ms();
    let cached = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache.as_mut()?;
        let stale = now.saturating_sub(entry.loaded_ms) > entry.config.settings.config_cache_ttl_ms;
        let refresh = stale && !entry.refreshing;
        if refresh {
            entry.refreshing = true;
        }
        Some((entry.config.clone(), refresh))
    });
    match cached {
        Some((config, refresh)) => {
            if refresh {
                let env = env.clone();
                crate::edge::in_background(ctx, async move {
                    if let Err(error) = reload(&env).await {
                        log::warn("config_refresh_failed", &error.message);
                    }
                    CACHE.with(|cache| {
                        if let Some(entry) = cache.borrow_mut().as_mut() {
                            entry.refreshing = false;
                        }
                    });
                });
            }
            Ok(config)
        }
        None => reload(env).await,
    }
}

/// Reads KV and, if the document is valid, makes it the isolate's config.
async fn reload(env: &Env) -> Result<Rc<Config>, GatewayError> {
    let text = read_raw(env).await?;
    let Some(text) = text else {
        return Err(GatewayError::config_unavailable("no config document is stored; PUT one to /admin/config"));
    };
    match Config::from_json_in(&text, &environment(env)) {
        Ok(config) => Ok(install(config)),
        Err(issues) => {
            let first = issues.first().map(ToString::to_string).unwrap_or_default();
            log::warn("config_invalid", &first);
            // Keep serving the last good document if this isolate has one.
            CACHE
                .with(|cache| cache.borrow().as_ref().map(|entry| entry.config.clone()))
                .ok_or_else(|| GatewayError::config_unavailable("the stored config document is invalid"))
        }
    }
}

/// What the deployment allows, from Worker vars (never from the document).
pub fn environment(env: &Env) -> Environment {
    let var = |name: &str| env.var(name).map(|v| v.to_string()).unwrap_or_default();
    Environment { allow_http_providers: var("ALLOW_HTTP_PROVIDERS").trim().eq_ignore_ascii_case("true") }
}

/// A test-only variable (a fault or a delay to inject), honoured only where local
/// http providers are allowed (tests and `scripts/dev`), never in a deployment.
pub fn test_hook(env: &Env, name: &str) -> Option<String> {
    environment(env).allow_http_providers.then(|| env.var(name).ok().map(|v| v.to_string())).flatten()
}

pub fn not_bound() -> GatewayError {
    GatewayError::config_unavailable("the ROUTING KV namespace is not bound")
}

fn unreadable() -> GatewayError {
    GatewayError::config_unavailable("the ROUTING KV namespace could not be read")
}

pub async fn read_raw(env: &Env) -> Result<Option<String>, GatewayError> {
    super::kv::get_text(&super::kv::namespace(env)?, CONFIG_KEY).await.map_err(|()| unreadable())
}

/// The stored document and which version it is (none before versions were kept).
pub async fn read_current(env: &Env) -> Result<(Option<String>, Option<CurrentMeta>), GatewayError> {
    let namespace = super::kv::namespace(env)?;
    let (text, meta) = super::kv::get_with_metadata(&namespace, CONFIG_KEY).await.map_err(|()| unreadable())?;
    Ok((text, meta.and_then(|m| crate::json_value::from_str(&m).ok())))
}

/// Makes `config` this isolate's current config (after a KV read or an admin write).
pub fn install(config: Config) -> Rc<Config> {
    let config = Rc::new(config);
    CACHE.with(|cache| {
        *cache.borrow_mut() = Some(Cached { config: config.clone(), loaded_ms: now_ms(), refreshing: false });
    });
    config
}

/// The stored config read straight from KV (the scheduled handler has no request to cache for).
pub async fn load_fresh(env: &Env) -> Result<Rc<Config>, GatewayError> {
    reload(env).await
}
