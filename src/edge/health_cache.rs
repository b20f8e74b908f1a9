//! This isolate's view of endpoint health, read by the hot path without any I/O.
//!
//! Two sources, merged: a local breaker per endpoint, updated the moment an
//! attempt ends (so a dead endpoint is avoided within the same second), and the
//! authoritative `ProviderHealth` object's snapshot, refreshed in the background
//! every few seconds and after every report. Reports go to the objects after the
//! response (`ctx.wait_until`), batched per endpoint.

use super::durable::Report;
use super::objects::{self, PROVIDER_HEALTH};
use super::pending_reports::PendingReports;
use super::{now_ms, random_unit};
use crate::config::{BreakerPolicy, Config};
use crate::gateway::RetryBudget;
use crate::health::probe::{BeforeAttempt, ProbeClaim, ProbeClaims};
use crate::health::{Breaker, Outcome};
use crate::join::join_all;
use crate::routing::HealthSnapshot;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::{Context, Env};

/// How often an isolate re-reads the health objects.
const REFRESH_MS: u64 = 3_000;
/// A remote snapshot older than this is ignored.
const REMOTE_STALE_MS: u64 = 30_000;

#[derive(Default)]
struct Cache {
    local: HashMap<String, Breaker>,
    /// The health objects' breakers as last read, with when; judged at read time.
    remote: HashMap<String, (Breaker, u64)>,
    pending: PendingReports,
    budgets: HashMap<String, RetryBudget>,
    /// Half-open probes this isolate is claiming or sending.
    probes: ProbeClaims,
    /// A probe ended: its object should hear of it with the next flush, at once.
    probe_ended: bool,
    last_refresh_ms: u64,
    last_flush_ms: u64,
    refreshing: bool,
}

/// Reports are batched per isolate: sent at most once a second, unless one of
/// them is bad news (other isolates should hear of a failing endpoint at once).
const FLUSH_MS: u64 = 1_000;
/// Bounds a batch's size only: `FLUSH_MS` bounds the delay, and bad news goes at once.
const FLUSH_AT_PENDING: usize = 1_024;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

pub fn snapshot() -> HealthSnapshot {
    let now = now_ms();
    CACHE.with(|c| {
        let c = c.borrow();
        let mut merged: HealthSnapshot = HashMap::new();
        let fresh = |id: &String| c.remote.get(id).filter(|(_, at)| now.saturating_sub(*at) < REMOTE_STALE_MS);
        for (id, (remote, _)) in c.remote.iter().filter(|(id, _)| fresh(id).is_some()) {
            merged.insert(id.clone(), remote.snapshot(now));
        }
        for (id, breaker) in &c.local {
            let local = breaker.snapshot(now);
            let entry = merged.entry(id.clone()).or_insert_with(|| local.clone());
            // Learned quota: window by window, the newer of this isolate's and the object's.
            if let Some((remote, _)) = fresh(id) {
                entry.quota = breaker.quota.newest(&remote.quota).left(now);
            }
            entry.available &= local.available;
            if entry.note.is_none() {
                entry.note = local.note;
            }
            if entry.ewma_latency_ms.is_none() {
                entry.ewma_latency_ms = local.ewma_latency_ms;
            }
            // This isolate's own count is the freshest; the object's covers every isolate.
            entry.tool_call_accuracy = entry.tool_call_accuracy.or(local.tool_call_accuracy);
            entry.tokens_per_second = entry.tokens_per_second.or(local.tokens_per_second);
        }
        merged
    })
}

pub fn record(provider_id: &str, outcome: Outcome, policy: &BreakerPolicy) {
    let now = now_ms();
    let jitter = if outcome.uses_jitter() { random_unit() } else { 0.0 };
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let c = &mut *c;
        match c.local.get_mut(provider_id) {
            Some(breaker) => breaker.record_with(policy, outcome, now, jitter),
            None => c.local.entry(provider_id.to_string()).or_default().record_with(policy, outcome, now, jitter),
        }
        c.pending.push(provider_id, Report { outcome, jitter, policy: *policy });
        if c.probes.outcome(provider_id, &outcome) {
            // Our probe ended: the object's lease as we know it ends too (the object
            // itself hears of it with the next flush, sent at once).
            if let Some((remote, _)) = c.remote.get_mut(provider_id) {
                remote.record_with(policy, outcome, now, jitter);
            }
            c.probe_ended = true;
        }
    });
}

#[derive(Deserialize)]
struct ProbeAnswer {
    claim: ProbeClaim,
    breaker: Breaker,
}

/// Before the first attempt at an endpoint: false when another caller holds its
/// half-open probe. The endpoint's health object is asked (within `deadline_ms`)
/// only when this isolate's view says a probe is due; this isolate's unsent
/// reports of the endpoint go with the question, so the object decides on them.
/// If the object cannot answer, this isolate still sends one probe at a time.
pub async fn claim_probe(env: &Env, provider_id: &str, location_hint: Option<&str>, deadline_ms: u64) -> bool {
    let now = now_ms();
    let (step, reports) = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let c = &mut *c;
        let remote = c.remote.get(provider_id).filter(|(_, at)| now.saturating_sub(*at) < REMOTE_STALE_MS);
        let step = c.probes.before_attempt(provider_id, c.local.get(provider_id), remote.map(|(b, _)| b), now);
        let reports = match step {
            BeforeAttempt::Ask => c.pending.take(provider_id),
            _ => Vec::new(),
        };
        (step, reports)
    });
    match step {
        BeforeAttempt::Go => return true,
        BeforeAttempt::Busy => return false,
        BeforeAttempt::Ask => {}
    }
    let stub = objects::stub(env, PROVIDER_HEALTH, &format!("endpoint:{provider_id}"), None, location_hint);
    let answer = match stub {
        Some(stub) => objects::call_within::<_, ProbeAnswer>(&stub, "/probe", Some(&reports), deadline_ms).await,
        None => None,
    };
    let now = now_ms();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let c = &mut *c;
        let claim = match answer {
            Some(ProbeAnswer { claim, breaker }) => {
                c.remote.insert(provider_id.to_string(), (breaker, now));
                Some(claim)
            }
            None => {
                // Not delivered (as far as we know): they go with the next flush.
                c.pending.put_back(provider_id, reports);
                None
            }
        };
        c.probes.answered(provider_id, claim, now)
    })
}

/// Marks an attempt as started (claims the local half-open probe when there is one).
pub fn begin(provider_id: &str, first_attempt: bool) {
    let now = now_ms();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(breaker) = c.local.get_mut(provider_id) {
            breaker.take_probe(now);
        }
        if first_attempt {
            c.budgets.entry(provider_id.to_string()).or_default().record_first_attempt(now);
        }
    });
}

/// Takes one same-endpoint retry from the endpoint's budget.
pub fn try_retry(provider_id: &str) -> bool {
    let now = now_ms();
    CACHE.with(|c| c.borrow_mut().budgets.entry(provider_id.to_string()).or_default().try_retry(now))
}

#[derive(Deserialize)]
struct Answer {
    breaker: Breaker,
}

fn stub(env: &Env, config: &Config, provider_id: &str) -> Option<super::objects::Stub> {
    let hint = config.providers.get(provider_id).and_then(|p| p.location_hint.as_deref());
    objects::stub(env, PROVIDER_HEALTH, &format!("endpoint:{provider_id}"), None, hint)
}

fn store_remote(provider_id: String, health: Breaker) {
    let now = now_ms();
    CACHE.with(|c| {
        c.borrow_mut().remote.insert(provider_id, (health, now));
    });
}

/// After a request: send pending reports, and refresh the snapshot if it is due.
/// Runs in `ctx.wait_until`, never on the hot path.
pub fn after_request(env: &Env, ctx: &Context, config: &Rc<Config>) {
    let now = now_ms();
    let (reports, refresh) = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let bad_news = c.pending.has_bad_news() || c.probe_ended;
        let due = now.saturating_sub(c.last_flush_ms) >= FLUSH_MS || c.pending.len() >= FLUSH_AT_PENDING || bad_news;
        let reports: Vec<(String, Vec<Report>)> = if due {
            c.last_flush_ms = now;
            c.probe_ended = false;
            c.pending.drain()
        } else {
            Vec::new()
        };
        let refresh = !c.refreshing && now.saturating_sub(c.last_refresh_ms) >= REFRESH_MS;
        if refresh {
            c.refreshing = true;
            c.last_refresh_ms = now;
        }
        (reports, refresh)
    });
    if reports.is_empty() && !refresh {
        return;
    }
    let env = env.clone();
    let config = config.clone();
    crate::edge::in_background(ctx, async move {
        let reported: Vec<String> = reports.iter().map(|(id, _)| id.clone()).collect();
        let sends = reports.into_iter().map(|(id, batch)| {
            let stub = stub(&env, &config, &id);
            async move {
                if let Some(stub) = stub {
                    if let Some(answer) = objects::call::<_, Answer>(&stub, "/record", Some(&batch)).await {
                        store_remote(id, answer.breaker);
                    }
                }
            }
        });
        join_all(sends).await;
        if refresh {
            let reads = config.providers.keys().filter(|id| !reported.contains(id)).map(|id| {
                let stub = stub(&env, &config, id);
                let id = id.clone();
                async move {
                    if let Some(stub) = stub {
                        if let Some(answer) = objects::call::<(), Answer>(&stub, "/", None).await {
                            store_remote(id, answer.breaker);
                        }
                    }
                }
            });
            join_all(reads).await;
            CACHE.with(|c| c.borrow_mut().refreshing = false);
        }
    });
}

/// Every endpoint's authoritative state, for `GET /admin/health`.
pub async fn read_all(env: &Env, config: &Config) -> Vec<(String, Option<serde_json::Value>)> {
    let reads = config.providers.keys().map(|id| {
        let stub = stub(env, config, id);
        async move {
            let state = match stub {
                Some(stub) => objects::call::<(), serde_json::Value>(&stub, "/", None).await,
                None => None,
            };
            (id.clone(), state)
        }
    });
    join_all(reads).await
}

/// Forgets everything: this isolate's view and the objects' state (admin reset).
pub async fn reset(env: &Env, config: &Config) {
    CACHE.with(|c| *c.borrow_mut() = Cache::default());
    let resets = config.providers.keys().map(|id| {
        let stub = stub(env, config, id);
        async move {
            if let Some(stub) = stub {
                let _: Option<serde_json::Value> = objects::call(&stub, "/reset", Some(&())).await;
            }
        }
    });
    join_all(resets).await;
}
