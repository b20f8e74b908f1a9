//! Failed-authentication throttling per client address (`cf-connecting-ip`).
//!
//! A wrong gateway key or admin token is counted in the address's `AuthThrottle`
//! object (on the failure path only); once the object blocks the address, its
//! answer is `429` with `Retry-After`, and this isolate remembers the block so the
//! address's next requests are refused before any key is checked. A valid key
//! never waits on the object: the isolate check is a map lookup, skipped when the
//! isolate knows of no block. The policy is `crate::auth_throttle`.

use super::{config_store, now_ms, objects};
use crate::auth;
use crate::auth_throttle::{self, FailureState};
use crate::config::Settings;
use crate::error::GatewayError;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{durable_object, Context, DurableObject, Env, Headers, Method, Request, Response, Result, State};

pub const AUTH_THROTTLE: &str = "AUTH_THROTTLE";
/// At most this many blocked addresses are remembered per isolate.
const MAX_REMEMBERED: usize = 10_000;

thread_local! {
    /// Blocked subjects and when their block ends (isolate clock).
    static BLOCKED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

fn subject(headers: &Headers) -> String {
    auth_throttle::subject(headers.get("cf-connecting-ip").ok().flatten().as_deref())
}

fn throttled(retry_after_s: u64) -> GatewayError {
    GatewayError::new(
        429,
        "rate_limit_error",
        "too_many_failed_auth_attempts",
        format!("Too many failed authentication attempts from this address; retry in {retry_after_s} s."),
    )
    .with_retry_after(retry_after_s)
}

/// Before routing: the block this isolate knows for the caller's address, if any.
pub fn known_block(headers: &Headers) -> Option<GatewayError> {
    if BLOCKED.with(|b| b.borrow().is_empty()) {
        return None;
    }
    let subject = subject(headers);
    let now = now_ms();
    let until = BLOCKED.with(|b| {
        let mut blocked = b.borrow_mut();
        blocked.retain(|_, until| *until > now);
        blocked.get(&subject).copied()
    })?;
    Some(throttled(auth_throttle::retry_after_s(until, now)))
}

/// After a handler answered: a wrong presented credential is counted, and answered
/// with 429 once the address is blocked. Every other answer passes unchanged, and
/// so does this one when the object cannot be reached or does not answer within
/// `settings.limiter_timeout_ms` (fail open: it stays a 401).
pub async fn after_failure(env: &Env, ctx: &Context, headers: &Headers, error: GatewayError) -> GatewayError {
    if error.status != 401 {
        return error;
    }
    let header = |name: &str| headers.get(name).ok().flatten();
    let (authorization, x_api_key) = (header("authorization"), header("x-api-key"));
    let presented = auth::presented_key(authorization.as_deref(), x_api_key.as_deref()).is_some();
    if !auth_throttle::counts_as_guess(error.status, &error.code, presented) {
        return error;
    }
    let subject = subject(headers);
    // Objects are named by a digest: no address in an object name.
    let name = format!("authfail:{}", &auth::sha256_hex(&subject)[..32]);
    let Some(stub) = objects::stub(env, AUTH_THROTTLE, &name, None, None) else { return error };
    let deadline_ms = match config_store::document(env, ctx).await {
        Ok(config) => config.settings.limiter_timeout_ms,
        Err(_) => Settings::default().limiter_timeout_ms,
    };
    let answer = objects::call_within::<(), FailAnswer>(&stub, "/fail", Some(&()), deadline_ms).await;
    let Some(answer) = answer else { return error };
    let Some(retry_after_s) = answer.retry_after_s else { return error };
    let until = now_ms().saturating_add(retry_after_s.saturating_mul(1000));
    BLOCKED.with(|b| {
        let mut blocked = b.borrow_mut();
        if blocked.len() < MAX_REMEMBERED || blocked.contains_key(&subject) {
            blocked.insert(subject, until);
        }
    });
    throttled(retry_after_s)
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FailAnswer {
    /// Set when the address is blocked: seconds until it may try again.
    retry_after_s: Option<u64>,
}

const STATE_KEY: &str = "state";

/// One object per client address (by digest): its recent failed attempts.
// Only the entry points it has: each one exported is a future and its glue in the wasm.
#[durable_object(alarm)]
pub struct AuthThrottle {
    state: State,
    failures: RefCell<Option<FailureState>>,
    /// Test hook (`AUTH_THROTTLE_FAULT=hang`, see `config_store::test_hook`): the
    /// object never answers in time, as an overloaded one would.
    hang: bool,
}

impl DurableObject for AuthThrottle {
    fn new(state: State, env: Env) -> Self {
        let hang = super::config_store::test_hook(&env, "AUTH_THROTTLE_FAULT").is_some_and(|v| v == "hang");
        Self { state, failures: RefCell::new(None), hang }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if (req.method(), req.path().as_str()) != (Method::Post, "/fail") {
            return Response::error("not found", 404);
        }
        if self.hang {
            super::timer::sleep_ms(30_000).await;
        }
        let storage = self.state.storage();
        if self.failures.borrow().is_none() {
            let stored: Option<String> = storage.get(STATE_KEY).await?;
            let loaded = stored.and_then(|text| crate::json_value::from_str(&text).ok()).unwrap_or_default();
            self.failures.borrow_mut().get_or_insert(loaded);
        }
        let now = now_ms();
        let (blocked_until, text) = {
            let mut failures = self.failures.borrow_mut();
            let state = failures.get_or_insert_with(FailureState::default);
            (state.record_failure(now), serde_json::to_string(&*state).unwrap_or_default())
        };
        storage.put(STATE_KEY, text).await?;
        // Forget the address once it has been quiet for the longest block.
        let forget_after = (auth_throttle::MAX_BLOCK_MS + auth_throttle::WINDOW_MS) as i64;
        storage.set_alarm(forget_after).await?;
        Response::from_json(&FailAnswer { retry_after_s: blocked_until.map(|u| auth_throttle::retry_after_s(u, now)) })
    }

    async fn alarm(&self) -> Result<Response> {
        let now = now_ms();
        let quiet = self.failures.borrow().as_ref().is_none_or(|s| {
            now.saturating_sub(s.window_start_ms.max(s.blocked_until_ms)) >= auth_throttle::MAX_BLOCK_MS
        });
        if quiet {
            self.state.storage().delete_all().await?;
            *self.failures.borrow_mut() = None;
        }
        Response::ok("")
    }
}
