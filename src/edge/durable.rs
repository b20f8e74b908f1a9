//! Durable Objects: thin shells that load pure state, apply one decision
//! synchronously, persist it, and answer. No borrow is held across an await.
//!
//! - `RateLimiter`: one per gateway key, team or limited endpoint; exact
//!   request/token/concurrency limits, whole and per model.
//! - `ProviderHealth`: one per provider endpoint; the authoritative breaker.

use super::now_ms;
use crate::config::BreakerPolicy;
use crate::health::probe::ProbeClaim;
use crate::health::{Breaker, Outcome};
use crate::limits::{Admit, LimiterState, Settle};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, SqlCursor, SqlStorageValue, State, Storage,
};

const STATE_KEY: &str = "state";

/// Loads the object's state once; later calls reuse memory (the object is single-threaded).
async fn load<T: DeserializeOwned + Default>(storage: &Storage, cell: &RefCell<Option<T>>) -> Result<()> {
    if cell.borrow().is_some() {
        return Ok(());
    }
    let stored: Option<String> = storage.get(STATE_KEY).await?;
    let value = stored.and_then(|text| crate::json_value::from_str(&text).ok()).unwrap_or_default();
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

/// Read as text and parsed in Rust: `Request::json` goes through a JS object tree.
pub async fn body<T: DeserializeOwned>(req: &mut Request) -> Option<T> {
    crate::json_value::from_str(&req.text().await.ok()?).ok()
}

/// One object per limit key: exact request and token limits.
#[durable_object(fetch)]
pub struct RateLimiter {
    state: State,
    limiter: Rc<RefCell<Option<LimiterState>>>,
    /// A write of the state is scheduled (see `WRITE_BEHIND_MS`).
    write_pending: Rc<Cell<bool>>,
    /// Tests only: answers admissions this late, to prove the callers' deadline.
    debug_delay_ms: u32,
}

impl DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            limiter: Rc::new(RefCell::new(None)),
            write_pending: Rc::new(Cell::new(false)),
            debug_delay_ms: debug_delay_ms(&env),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if self.limiter.borrow().is_none() {
            let loaded = self.load(&storage).await?;
            self.limiter.borrow_mut().get_or_insert(loaded);
        }
        let now = now_ms();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/admit") => {
                let Some(admit) = body::<Admit>(&mut req).await else {
                    return bad_request("bad admit");
                };
                if self.debug_delay_ms > 0 {
                    super::timer::sleep_ms(self.debug_delay_ms).await;
                }
                let admission = self.limiter.borrow_mut().as_mut().map(|s| s.admit(&admit, now));
                if admission.as_ref().is_some_and(|a| a.allowed) || !admit.settle_first.is_empty() {
                    self.save(&storage)?;
                }
                Response::from_json(&admission)
            }
            (Method::Post, "/settle") => {
                // A batch: every settlement this isolate collected for the object.
                let Some(settles) = body::<Vec<Settle>>(&mut req).await else {
                    return bad_request("bad settle");
                };
                let changed = self
                    .limiter
                    .borrow_mut()
                    .as_mut()
                    .is_some_and(|s| settles.iter().fold(false, |changed, settle| s.apply(settle, now) | changed));
                if changed {
                    self.save(&storage)?;
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

/// `DEBUG_LIMITER_DELAY_MS` (a test hook: see `config_store::test_hook`).
fn debug_delay_ms(env: &Env) -> u32 {
    super::config_store::test_hook(env, "DEBUG_LIMITER_DELAY_MS").and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// The limiter's state is one SQLite row. The object answers from memory (it is
/// the only writer) and writes the row at most this long after a change, once for
/// all the changes in between: a write per admission cost more than the admission
/// itself. An object that crashes loses at most this much of its counts.
const WRITE_BEHIND_MS: u32 = 10;

/// The limiter's state is one SQLite row.
const LIMITER_TABLE: &str = "CREATE TABLE IF NOT EXISTS limiter (k TEXT PRIMARY KEY, v TEXT NOT NULL)";

/// The first row's one text column (`None` without a row). The objects' SQL reads select
/// one text column: read as the cursor's raw values, not deserialized (serde_wasm_bindgen).
pub(super) fn first_text(cursor: SqlCursor) -> Result<Option<String>> {
    let Some(row) = cursor.raw().next() else {
        return Ok(None);
    };
    match row?.into_iter().next() {
        Some(SqlStorageValue::String(text)) => Ok(Some(text)),
        _ => Err(worker::Error::RustError("a stored row has no text column".into())),
    }
}

impl RateLimiter {
    /// The stored state: the SQLite row, or the key-value entry objects wrote before.
    async fn load(&self, storage: &Storage) -> Result<LimiterState> {
        let sql = storage.sql();
        sql.exec(LIMITER_TABLE, None)?;
        let text = match first_text(sql.exec("SELECT v FROM limiter WHERE k = 'state'", None)?)? {
            Some(text) => Some(text),
            None => storage.get::<String>(STATE_KEY).await?,
        };
        Ok(text.and_then(|text| crate::json_value::from_str(&text).ok()).unwrap_or_default())
    }

    fn save(&self, storage: &Storage) -> Result<()> {
        if self.write_pending.replace(true) {
            return Ok(());
        }
        let (limiter, pending, sql) = (self.limiter.clone(), self.write_pending.clone(), storage.sql());
        wasm_bindgen_futures::spawn_local(async move {
            super::timer::sleep_ms(WRITE_BEHIND_MS).await;
            pending.set(false);
            let text = limiter.borrow().as_ref().and_then(|state| serde_json::to_string(state).ok());
            if let Some(text) = text {
                if sql.exec("INSERT OR REPLACE INTO limiter (k, v) VALUES ('state', ?)", vec![text.into()]).is_err() {
                    super::log::warn("limiter_write_failed", "");
                }
            }
        });
        Ok(())
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
#[durable_object(fetch)]
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
                // Grants the half-open probe lease to one caller across every isolate,
                // after applying the caller's unsent reports of this endpoint.
                let reports = body::<Vec<Report>>(&mut req).await.unwrap_or_default();
                let answer = self.breaker.borrow_mut().as_mut().map(|breaker| {
                    for report in reports {
                        breaker.record_with(&report.policy, report.outcome, now, report.jitter);
                    }
                    let claim = breaker.claim_probe(now);
                    let granted = !matches!(claim, ProbeClaim::Busy { .. });
                    serde_json::json!({"claim": claim, "granted": granted, "breaker": breaker})
                });
                self.save(&storage).await?;
                Response::from_json(&answer)
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
