//! Settling limiter reservations off the answer's path, coalesced per limiter
//! object (see `Pending`).

use super::objects::{self, Stub};
use crate::limits::{Scoped, Settle, Used};
use std::cell::RefCell;
use std::collections::HashMap;

/// Settlements waiting to be sent, per limiter object, in this isolate. The next
/// admission to the same object carries them (one round trip per request instead
/// of two); whatever no admission picked up within `COALESCE_MS` is sent in one
/// batch by the request that queued first. Only data crosses requests here: each
/// request sends from its own context, with its own stub (a stub is an I/O object
/// of the request that made it; another request cannot use it).
#[derive(Default)]
struct Pending {
    settles: Vec<Settle>,
    flush_armed: bool,
}

thread_local! {
    static PENDING: RefCell<HashMap<String, Pending>> = RefCell::new(HashMap::new());
}

/// Short enough that another isolate sees a finished request's slot and refund
/// almost at once; long enough to meet the next request of a busy key.
const COALESCE_MS: u32 = 2;

pub fn object_key(name: &str, jurisdiction: Option<&str>) -> String {
    format!("{}/{name}", jurisdiction.unwrap_or(""))
}

pub fn take_pending(object: &str) -> Vec<Settle> {
    PENDING.with(|p| p.borrow_mut().get_mut(object).map(|e| std::mem::take(&mut e.settles)).unwrap_or_default())
}

/// Settles a reservation after the answer (from `wait_until`, or at stream end).
pub struct Settlement {
    stub: Stub,
    object: String,
    scopes: Vec<Scoped>,
    reservation_id: String,
}

impl Settlement {
    /// A reservation held at `object` (see [`object_key`]), settled through `stub`.
    pub fn new(stub: Stub, object: String, scopes: Vec<Scoped>, reservation_id: String) -> Self {
        Settlement { stub, object, scopes, reservation_id }
    }

    pub async fn run(self, used: Used) {
        self.send(used, false, None).await
    }

    /// Settled for the model that served: other models' scopes are given back.
    pub async fn run_served(self, used: Used, served_model: &str) {
        self.send(used, false, Some(served_model)).await
    }

    /// Another limiter refused the request: give back the request cell too.
    pub async fn cancel(self) {
        self.send(Used::NOTHING, true, None).await
    }

    async fn send(self, used: Used, cancel: bool, served_model: Option<&str>) {
        let Settlement { stub, object, scopes, reservation_id } = self;
        let settle = Settle { reservation_id, used, scopes, cancel, served_model: served_model.map(str::to_string) };
        let flusher = PENDING.with(|p| {
            let mut pending = p.borrow_mut();
            let entry = pending.entry(object.clone()).or_default();
            entry.settles.push(settle);
            !std::mem::replace(&mut entry.flush_armed, true)
        });
        if !flusher {
            return;
        }
        super::timer::sleep_ms(COALESCE_MS).await;
        let batch = PENDING.with(|p| {
            let mut pending = p.borrow_mut();
            let entry = pending.get_mut(&object)?;
            entry.flush_armed = false;
            Some(std::mem::take(&mut entry.settles))
        });
        if let Some(settles) = batch.filter(|settles| !settles.is_empty()) {
            let _: Option<serde_json::Value> = objects::call(&stub, "/settle", Some(&settles)).await;
        }
    }
}

pub async fn cancel_all(settlements: Vec<Settlement>) {
    futures_util::future::join_all(settlements.into_iter().map(Settlement::cancel)).await;
}

/// Every reservation one request holds (its key's, and each endpoint's it used).
#[derive(Default)]
pub struct Settlements(Vec<Settlement>);

impl From<Vec<Settlement>> for Settlements {
    fn from(settlements: Vec<Settlement>) -> Self {
        Settlements(settlements)
    }
}

impl Settlements {
    pub fn push(&mut self, settlement: Settlement) {
        self.0.push(settlement);
    }

    /// Nothing to settle (an unlimited key): no `wait_until` task is needed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub async fn run(self, used: Used) {
        futures_util::future::join_all(self.0.into_iter().map(|s| s.run(used))).await;
    }

    /// Settled with what was used, charged to the public model that served.
    pub async fn run_served(self, used: Used, served_model: String) {
        futures_util::future::join_all(self.0.into_iter().map(|s| s.run_served(used, &served_model))).await;
    }
}
