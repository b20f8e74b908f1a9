//! This isolate's view of endpoint health: one breaker per provider, updated
//! after every attempt. The hot path reads it without any I/O.

use super::now_ms;
use crate::health::{Breaker, Outcome};
use crate::routing::HealthSnapshot;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static BREAKERS: RefCell<HashMap<String, Breaker>> = RefCell::new(HashMap::new());
}

pub fn snapshot() -> HealthSnapshot {
    let now = now_ms();
    BREAKERS.with(|b| {
        b.borrow()
            .iter()
            .map(|(id, breaker)| (id.clone(), breaker.snapshot(now)))
            .collect()
    })
}

pub fn record(provider_id: &str, outcome: Outcome) {
    let now = now_ms();
    let jitter = super::random_unit();
    BREAKERS.with(|b| {
        b.borrow_mut()
            .entry(provider_id.to_string())
            .or_default()
            .record(outcome, now, jitter)
    });
}

/// Marks an attempt as started (claims the half-open probe when there is one).
pub fn begin(provider_id: &str) {
    let now = now_ms();
    BREAKERS.with(|b| {
        if let Some(breaker) = b.borrow_mut().get_mut(provider_id) {
            breaker.take_probe(now);
        }
    });
}

/// Forgets everything this isolate learned (admin reset, and test isolation).
pub fn reset() {
    BREAKERS.with(|b| b.borrow_mut().clear());
}

/// Every endpoint's breaker, for `GET /admin/health`.
pub fn breakers() -> Vec<(String, Breaker)> {
    BREAKERS.with(|b| {
        let mut all: Vec<(String, Breaker)> = b
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    })
}
