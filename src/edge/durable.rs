//! Durable Objects: thin shells that load pure state, apply one decision
//! synchronously, persist it, and answer. No borrow is held across an await.
//!
//! - `RateLimiter`: one per gateway key, team or limited endpoint; exact
//!   request/token/concurrency limits, whole and per model.
//! - `ProviderHealth`: one per provider endpoint; the authoritative breaker.

use super::now_ms;
use crate::config::BreakerPolicy;
use crate::health::{Breaker, Outcome};
use crate::limits::{Admit, LimiterState, Scoped, Used};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State, Storage};

const STATE_KEY: &str = "state";

/// Loads the object's state once; later calls reuse memory (the object is single-threaded).
async fn load<T: DeserializeOwned + Default>(storage: &Storage, cell: &RefCell<Option<T>>) -> Result<()> {
    if cell.borrow().is_some() {
        return Ok(());
    }
    let stored: Option<String> = storage.get(STATE_KEY).await?;
    let value = stored.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    // Another event may have loaded it while we waited: keep theirs.
    cell.borrow_mut().get_or_insert(value);
    Ok(())
}

/// Persisted as a JSON string: i128 and maps round-trip exactly that way.
async fn persist<T: Serialize>(storage: &Storage, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(|e| worker::Error::RustError(e.to_string()))?;
    storage.put(STATE_KEY, text).await
}

fn bad_request(message: &str) -> Result<Response> {
    Ok(Response::error(message, 400)?.with_headers(worker::Headers::new()))
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> Option<T> {
    super::objects::read_json::<T>(req).await.ok()
}

#[derive(Debug, Deserialize)]
struct Settle {
    reservation_id: String,
    #[serde(default)]
    used: Used,
    scopes: Vec<Scoped>,
    #[serde(default)]
    cancel: bool,
    /// The public model that served: other models' scopes are given back.
    #[serde(default)]
    served_model: Option<String>,
}

/// One object per limit key: exact request and token limits.
#[durable_object]
pub struct RateLimiter {
    state: State,
    limiter: RefCell<Option<LimiterState>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state, limiter: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        load(&storage, &self.limiter).await?;
        let now = now_ms();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/admit") => {
                let Some(admit) = body::<Admit>(&mut req).await else {
                    return bad_request("bad admit");
                };
                let admission = self.limiter.borrow_mut().as_mut().map(|s| s.admit(&admit, now));
                if admission.as_ref().is_some_and(|a| a.allowed) {
                    self.save(&storage).await?;
                }
                Response::from_json(&admission)
            }
            (Method::Post, "/settle") => {
                let Some(settle) = body::<Settle>(&mut req).await else {
                    return bad_request("bad settle");
                };
                let changed =
                    self.limiter.borrow_mut().as_mut().is_some_and(|s| match (&settle.served_model, settle.cancel) {
                        (Some(served), false) => {
                            s.settle_served(&settle.reservation_id, settle.used, &settle.scopes, Some(served), now)
                        }
                        _ => s.settle(&settle.reservation_id, settle.used, &settle.scopes, settle.cancel, now),
                    });
                if changed {
                    self.save(&storage).await?;
                }
                Response::from_json(&serde_json::json!({"settled": changed}))
            }
            (Method::Get, _) => {
                let report = self.limiter.borrow().as_ref().map(|s| s.report(now));
                let mut body = serde_json::to_value(report).unwrap_or_default();
                body["class"] = "RateLimiter".into();
                body["ready"] = true.into();
                Response::from_json(&body)
            }
            _ => bad_request("unknown limiter operation"),
        }
    }
}

impl RateLimiter {
    async fn save(&self, storage: &Storage) -> Result<()> {
        let snapshot = self.limiter.borrow().clone();
        match snapshot {
            Some(state) => persist(storage, &state).await,
            None => Ok(()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub outcome: Outcome,
    pub jitter: f64,
    #[serde(default)]
    pub policy: BreakerPolicy,
}

/// One object per provider endpoint: the authoritative circuit breaker and
/// latency statistics, fed off the hot path.
#[durable_object]
pub struct ProviderHealth {
    state: State,
    breaker: RefCell<Option<Breaker>>,
}

impl DurableObject for ProviderHealth {
    fn new(state: State, _env: Env) -> Self {
        Self { state, breaker: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        load(&storage, &self.breaker).await?;
        let now = now_ms();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/record") => {
                let Some(reports) = body::<Vec<Report>>(&mut req).await else {
                    return bad_request("bad report");
                };
                if let Some(breaker) = self.breaker.borrow_mut().as_mut() {
                    for report in reports {
                        breaker.record_with(&report.policy, report.outcome, now, report.jitter);
                    }
                }
                self.save(&storage).await?;
                self.answer(now)
            }
            (Method::Post, "/probe") => {
                // Claims the half-open probe: only one isolate gets to try an endpoint that is recovering.
                let granted = self.breaker.borrow_mut().as_mut().is_some_and(|b| b.take_probe(now));
                self.save(&storage).await?;
                Response::from_json(&serde_json::json!({"granted": granted}))
            }
            (Method::Post, "/reset") => {
                *self.breaker.borrow_mut() = Some(Breaker::default());
                self.save(&storage).await?;
                self.answer(now)
            }
            (Method::Get, _) => self.answer(now),
            _ => bad_request("unknown health operation"),
        }
    }
}

impl ProviderHealth {
    fn answer(&self, now: u64) -> Result<Response> {
        let breaker = self.breaker.borrow().clone().unwrap_or_default();
        let (requests, failures) = breaker.window(now);
        let error_rate = (requests > 0).then(|| f64::from(failures) / f64::from(requests));
        Response::from_json(&serde_json::json!({
            "class": "ProviderHealth",
            "ready": true,
            "snapshot": breaker.snapshot(now),
            "breaker": breaker,
            "window": breaker.window(now),
            "latency_ms": {
                "p50": breaker.stats.percentile_ms(0.5),
                "p90": breaker.stats.percentile_ms(0.9),
                "p99": breaker.stats.percentile_ms(0.99),
                "ewma": breaker.ewma_latency_ms,
            },
            "error_rate": error_rate,
            "tokens_per_second": breaker.stats.ewma_tokens_per_second,
            "tool_call_validity": breaker.stats.tool_call_validity(),
            "quota": breaker.quota.left(now),
            "now_ms": now,
        }))
    }

    async fn save(&self, storage: &Storage) -> Result<()> {
        let snapshot = self.breaker.borrow().clone();
        match snapshot {
            Some(state) => persist(storage, &state).await,
            None => Ok(()),
        }
    }
}
