//! Keys made through the admin API, on the hot path without I/O: each isolate
//! keeps a copy of the `KeyRegistry` object's state, re-read in the background at
//! most every second (so a revocation or an expiry holds everywhere within about
//! two seconds, whatever the config cache TTL), and authenticates against the
//! config document with the registry's active keys added (`Config::with_keys`).

pub mod admin;
pub mod registry;

use crate::config::Config;
use crate::edge::{now_ms, objects};
use crate::keys::Registry;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{Context, Env};

pub const BINDING: &str = "KEY_REGISTRY";
const OBJECT: &str = "registry";
/// How often an isolate re-reads the registry (in the background).
const POLL_MS: u64 = 1_000;

#[derive(Default)]
struct Cache {
    registry: Option<Rc<Registry>>,
    fetched_ms: u64,
    refreshing: bool,
    merged: Option<Merged>,
}

/// The last merged config, valid for its base document and registry version until `until_ms`.
struct Merged {
    base: Rc<Config>,
    version: u64,
    until_ms: Option<u64>,
    config: Rc<Config>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

pub fn stub(env: &Env) -> Option<crate::edge::objects::Stub> {
    objects::stub(env, BINDING, OBJECT, None, None)
}

/// The registry as the object holds it now.
pub async fn fetch(env: &Env) -> Option<Registry> {
    objects::call::<(), Registry>(&stub(env)?, "/", None).await
}

/// Makes `registry` this isolate's copy (after a read or an admin change).
pub fn install(registry: Registry) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        c.registry = Some(Rc::new(registry));
        c.fetched_ms = now_ms();
    });
}

/// Gives the isolate its first copy of the registry (one object round trip); a no-op
/// once it has one (later reads poll in the background: [`with_managed_keys`]).
pub async fn read_if_missing(env: &Env) {
    if CACHE.with(|c| c.borrow().registry.is_none()) {
        install(fetch(env).await.unwrap_or_default());
    }
}

/// The config with the registry's active keys, once [`read_if_missing`] gave the
/// isolate its copy (`config_store::current` awaits both); the copy is polled in the
/// background from then on.
pub fn with_managed_keys(env: &Env, ctx: &Context, base: Rc<Config>) -> Rc<Config> {
    let now = now_ms();
    let (registry, refresh) = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let refresh = !c.refreshing && now.saturating_sub(c.fetched_ms) >= POLL_MS;
        c.refreshing |= refresh;
        (c.registry.clone().unwrap_or_default(), refresh)
    });
    if refresh {
        let env = env.clone();
        crate::edge::in_background(ctx, async move {
            if let Some(fresh) = fetch(&env).await {
                install(fresh);
            }
            CACHE.with(|c| c.borrow_mut().refreshing = false);
        });
    }
    if registry.keys.is_empty() {
        return base;
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(m) = &c.merged {
            if Rc::ptr_eq(&m.base, &base) && m.version == registry.version && m.until_ms.is_none_or(|t| now < t) {
                return m.config.clone();
            }
        }
        let config = Rc::new(base.with_keys(registry.active(now)));
        let until_ms = registry.next_change_ms(now);
        c.merged = Some(Merged { base, version: registry.version, until_ms, config: config.clone() });
        config
    })
}
