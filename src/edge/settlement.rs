//! Settling limiter reservations off the answer's path, coalesced per limiter
//! object (see `Pending`), and giving back what an allotment left unused.

use super::objects::{self, Stub};
use super::{allotments, objects::RATE_LIMITER};
use crate::limits::allotment::Slot;
use crate::limits::{Scoped, Settle, Used};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

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
/// A hot key's settlements (where allotments are in use): nothing waits on them
/// (such a key has no concurrency limit; a token refund arriving later only
/// errs on the safe side), so one call carries many.
const HOT_COALESCE_MS: u32 = 50;

pub fn object_key(name: &str, jurisdiction: Option<&str>) -> String {
    format!("{}/{name}", jurisdiction.unwrap_or(""))
}

pub fn take_pending(object: &str) -> Vec<Settle> {
    PENDING.with(|p| p.borrow_mut().get_mut(object).map(|e| std::mem::take(&mut e.settles)).unwrap_or_default())
}

/// Queues a settlement for the next admission or flush to carry; `true` when
/// the caller must flush (no flush was armed).
fn queue(object: &str, settle: Settle) -> bool {
    PENDING.with(|p| {
        let mut pending = p.borrow_mut();
        let entry = pending.entry(object.to_string()).or_default();
        entry.settles.push(settle);
        !std::mem::replace(&mut entry.flush_armed, true)
    })
}

/// Queues what an allotment left unused, for the next admission or flush of this
/// object to carry (the caller is about to make one, or holds a settlement).
pub fn give_back_later(object: &str, scopes: &[Scoped], unused: Slot) {
    let settle = Settle::given_back(scopes, unused);
    PENDING.with(|p| p.borrow_mut().entry(object.to_string()).or_default().settles.push(settle));
}

/// How a settlement reaches its object: the stub of the admission call, or (for
/// a request admitted from an allotment, which made no call) one made when needed.
enum Reach {
    Stub(Stub),
    Named { env: Env, name: String, jurisdiction: Option<String> },
}

impl Reach {
    fn stub(&self) -> Option<Stub> {
        match self {
            Reach::Stub(stub) => Some(stub.clone()),
            Reach::Named { env, name, jurisdiction } => {
                objects::stub(env, RATE_LIMITER, name, jurisdiction.as_deref(), None)
            }
        }
    }
}

/// Settles a reservation after the answer (from `wait_until`, or at stream end).
pub struct Settlement {
    reach: Reach,
    object: String,
    scopes: Vec<Scoped>,
    reservation_id: String,
    /// Admitted from an allotment: what the slot reserved.
    slot: Option<Slot>,
    /// This request brought an allotment: its unused rest is given back when it lapses.
    allotment_lapses_ms: Option<u64>,
}

impl Settlement {
    /// A reservation held at `object` (see [`object_key`]), settled through `stub`.
    pub fn new(stub: Stub, object: String, scopes: Vec<Scoped>, reservation_id: String) -> Self {
        Settlement { reach: Reach::Stub(stub), object, scopes, reservation_id, slot: None, allotment_lapses_ms: None }
    }

    /// A request admitted from this isolate's allotment for the object `name`.
    pub fn from_slot(
        env: &Env,
        (name, jurisdiction): (&str, Option<&str>),
        object: String,
        scopes: Vec<Scoped>,
        reservation_id: String,
        slot: Slot,
    ) -> Self {
        let reach =
            Reach::Named { env: env.clone(), name: name.to_string(), jurisdiction: jurisdiction.map(str::to_string) };
        Settlement { reach, object, scopes, reservation_id, slot: Some(slot), allotment_lapses_ms: None }
    }

    /// This request's admission brought an allotment that lapses at `lapses_ms`.
    pub fn with_allotment(mut self, lapses_ms: Option<u64>) -> Self {
        self.allotment_lapses_ms = lapses_ms;
        self
    }

    /// Admitted from this isolate's allotment (no call to the object).
    pub fn is_allotted(&self) -> bool {
        self.slot.is_some()
    }

    /// Settled for the model that served: other models' scopes are given back.
    pub async fn run_served(self, used: Used, served_model: &str) {
        self.send(used, false, Some(served_model)).await
    }

    /// Another limiter refused the request: give back the request cell too.
    pub async fn cancel(self) {
        self.send(Used::NOTHING, true, None).await
    }

    /// Queued, then waited for (inside a task that outlives the answer).
    async fn send(self, used: Used, cancel: bool, served_model: Option<&str>) {
        if let Some(rest) = self.queue_now(used, cancel, served_model) {
            rest.run().await;
        }
    }

    /// Queues the settlement at once (no task for that: most requests of a busy key
    /// only add to a batch another request flushes); what is left to wait for comes
    /// back: the flush this settlement armed, or the lapse of the allotment it brought.
    fn queue_now(self, used: Used, cancel: bool, served_model: Option<&str>) -> Option<Later> {
        let Settlement { reach, object, scopes, reservation_id, slot, allotment_lapses_ms } = self;
        let hot = slot.is_some() || allotment_lapses_ms.is_some();
        let settle = Settle {
            reservation_id,
            used,
            scopes: scopes.clone(),
            cancel,
            served_model: served_model.map(str::to_string),
            slot,
        };
        let flush_after_ms = queue(&object, settle).then_some(if hot { HOT_COALESCE_MS } else { COALESCE_MS });
        (flush_after_ms.is_some() || allotment_lapses_ms.is_some()).then_some(Later {
            reach,
            object,
            scopes,
            flush_after_ms,
            allotment_lapses_ms,
        })
    }
}

/// What a queued settlement still waits for (see `Settlement::queue_now`).
struct Later {
    reach: Reach,
    object: String,
    scopes: Vec<Scoped>,
    flush_after_ms: Option<u32>,
    allotment_lapses_ms: Option<u64>,
}

impl Later {
    async fn run(self) {
        let Later { reach, object, scopes, flush_after_ms, allotment_lapses_ms } = self;
        if let Some(delay_ms) = flush_after_ms {
            flush(&reach, &object, delay_ms).await;
        }
        // The request that brought an allotment gives back its unused rest when it
        // lapses, in case no later request of this isolate does it first.
        if let Some(lapses_ms) = allotment_lapses_ms {
            let wait = lapses_ms.saturating_sub(super::now_ms()).saturating_add(1);
            super::timer::sleep_ms(u32::try_from(wait).unwrap_or(u32::MAX)).await;
            let unused = allotments::with(&object, &scopes, |held| held.expire(super::now_ms()));
            if let Some(unused) = unused {
                if queue(&object, Settle::given_back(&scopes, unused)) {
                    flush(&reach, &object, 0).await;
                }
            }
        }
    }
}

/// Sends what is queued for `object` after `delay_ms`, in one batch.
async fn flush(reach: &Reach, object: &str, delay_ms: u32) {
    if delay_ms > 0 {
        super::timer::sleep_ms(delay_ms).await;
    }
    let batch = PENDING.with(|p| {
        let mut pending = p.borrow_mut();
        let entry = pending.get_mut(object)?;
        entry.flush_armed = false;
        Some(std::mem::take(&mut entry.settles))
    });
    let Some(settles) = batch.filter(|settles| !settles.is_empty()) else { return };
    let Some(stub) = reach.stub() else { return };
    let retry = settles.iter().all(Settle::is_idempotent);
    let _: Option<serde_json::Value> =
        objects::call_once_or_retry(&stub, "/settle", Some(&settles), objects::CALL_DEADLINE_MS, retry).await;
}

pub async fn cancel_all(settlements: Vec<Settlement>) {
    crate::join::join_all(settlements.into_iter().map(Settlement::cancel)).await;
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

    /// Settled with what was used, charged to the public model that served.
    pub async fn run_served(self, used: Used, served_model: String) {
        crate::join::join_all(self.0.into_iter().map(|s| s.run_served(used, &served_model))).await;
    }

    /// Settled now, where what was used is known when the answer is returned (a whole
    /// answer, an error): queued at once, and only what is left to wait for (a flush
    /// to arm, an allotment's lapse) goes to `wait_until`. A busy key's request then
    /// starts no task of its own, which costs more than the queuing.
    pub fn settle_now(self, ctx: &worker::Context, used: Used, served_model: Option<&str>) {
        let rest: Vec<Later> = self.0.into_iter().filter_map(|s| s.queue_now(used, false, served_model)).collect();
        if !rest.is_empty() {
            super::in_background(ctx, async move {
                crate::join::join_all(rest.into_iter().map(Later::run)).await;
            });
        }
    }
}
