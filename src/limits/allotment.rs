//! Quota leases ("allotments"): a limiter object grants a hot isolate a few
//! admissions beyond the one it asked for, consumed at once in the object, and the
//! isolate admits its next requests from them without a round trip. The sum of
//! what is allotted never exceeds a limit, because it is taken from the limit like
//! any admission; what an isolate does not use is given back.
//!
//! - Only far from the limit: an allotment takes at most 1/`SHARE` of what is
//!   left, so little can sit unused in one isolate while another is refused.
//! - Never with a concurrency limit (in-flight counts cannot be sliced).
//! - Each slot is sized by the request that asked; a larger request goes to the object.
//! - A slot's settlement says what the slot reserved, since the object keeps no
//!   record of it ([`Slot`]); unused slots are given back as a cancelled settlement.
//! - An allotment lasts `LIFETIME_MS`: an isolate that went quiet gives it back then.

use super::{reserved_tokens, Admission, Admit, LimiterState, Rate, Reservation, ScopeCheck, Scoped, Settle, Used};
use serde::{Deserialize, Serialize};

/// An allotment takes at most this fraction of what is left of any limit.
const SHARE: u64 = 16;
/// The most admissions one allotment holds.
pub const MAX_SLOTS: u32 = 64;
/// Fewer than this is not worth holding.
const MIN_SLOTS: u64 = 2;
/// How long an isolate may admit from an allotment before giving back the rest.
pub const LIFETIME_MS: u64 = 1_000;
/// An isolate asks for an allotment once it sent this many requests to one
/// object within a lifetime (a cold key is admitted by the object, exactly).
const HOT_REQUESTS: u32 = 4;
/// With this fraction of an allotment left, the next request asks for another
/// while the others take the rest (see [`Held::before_call`]).
const LOW_FRACTION: u32 = 4;

pub fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Granted with an admission: `slots` more admissions, reserved in `month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allotment {
    pub slots: u32,
    pub month: u32,
}

/// What one allotted admission reserved (or `count` unused ones, given back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub tokens: u64,
    #[serde(default)]
    pub micro_usd: u64,
    #[serde(default)]
    pub month: u32,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Slot {
    /// The reservation the slot stands for, as the object would have recorded it.
    pub(super) fn reservation(&self, scopes: &[Scoped]) -> Reservation {
        let live = scopes.iter().filter(|s| !s.is_empty());
        Reservation {
            scopes: live.clone().map(|s| (s.scope.clone(), reserved_tokens(&s.limits, self.tokens))).collect(),
            costs: live.filter(|s| s.budget_micro_usd.is_some()).map(|s| (s.scope.clone(), self.micro_usd)).collect(),
            month: self.month,
            expires_ms: 0,
        }
    }
}

impl Settle {
    /// Gives back `unused` slots of an allotment for `scopes`.
    pub fn given_back(scopes: &[Scoped], unused: Slot) -> Settle {
        Settle {
            reservation_id: "allotment".into(),
            used: Used::NOTHING,
            scopes: scopes.to_vec(),
            cancel: true,
            served_model: None,
            slot: Some(unused),
        }
    }

    /// Safe to send twice: a reservation's settlement is applied once (by its id);
    /// a slot's has no record to make it so.
    pub fn is_idempotent(&self) -> bool {
        self.slot.is_none()
    }
}

impl Admit {
    /// Safe to send twice: a retried admission is recognised by its id, but an
    /// allotment it asked for, or a slot's settlement it carries, would count twice.
    pub fn is_idempotent(&self) -> bool {
        self.allot == 0 && self.settle_first.iter().all(Settle::is_idempotent)
    }
}

impl LimiterState {
    /// How many admissions beyond this one to allot; takes them from every scope's
    /// checked state (all or none).
    pub(super) fn allot(&self, admit: &Admit, passed: &mut [(&Scoped, ScopeCheck)], now_ms: u64) -> u32 {
        if admit.allot == 0 || passed.is_empty() {
            return 0;
        }
        let mut n = u64::from(admit.allot.min(MAX_SLOTS));
        for (scoped, check) in passed.iter() {
            if scoped.limits.max_concurrent.is_some() {
                return 0;
            }
            if let Some(d) = check.rpm {
                n = n.min(d.remaining / SHARE);
            }
            if let Some(d) = check.tpm {
                n = n.min(d.remaining / SHARE / check.reserved_tokens.max(1));
            }
            if let (Some(limit), Some(spend), true) =
                (scoped.budget_micro_usd, check.spend, admit.estimated_micro_usd > 0)
            {
                n = n.min(limit.saturating_sub(spend.micro_usd) / SHARE / admit.estimated_micro_usd);
            }
        }
        if n < MIN_SLOTS {
            return 0;
        }
        let mut taken = Vec::with_capacity(passed.len());
        for (scoped, check) in passed.iter() {
            let mut buckets = check.buckets;
            let rpm = scoped.limits.requests_per_minute.map(|l| buckets.requests.check(Rate::per_minute(l), now_ms, n));
            let tokens = n * check.reserved_tokens;
            let tpm =
                scoped.limits.tokens_per_minute.map(|l| buckets.tokens.check(Rate::per_minute(l), now_ms, tokens));
            if rpm.is_some_and(|d| !d.allowed) || tpm.is_some_and(|d| !d.allowed) {
                return 0;
            }
            taken.push((buckets, rpm, tpm));
        }
        for ((_, check), (buckets, rpm, tpm)) in passed.iter_mut().zip(taken) {
            check.buckets = buckets;
            check.rpm = rpm.or(check.rpm);
            check.tpm = tpm.or(check.tpm);
            if let Some(spend) = &mut check.spend {
                spend.micro_usd = spend.micro_usd.saturating_add(n * admit.estimated_micro_usd);
            }
        }
        n as u32
    }
}

/// An admission's `remaining` counts, with `slots` held by this isolate counted as left.
fn with_held(admission: &mut Admission, slots: u32, slot: &Slot) {
    let held = u64::from(slots);
    if let Some(d) = &mut admission.requests {
        d.remaining = (d.remaining + held).min(d.limit);
    }
    if let Some(d) = &mut admission.tokens {
        d.remaining = (d.remaining + held * slot.tokens).min(d.limit);
    }
}

/// What an isolate can do for a request before calling the limiter object.
#[derive(Debug)]
pub struct BeforeCall {
    /// Admitted from the allotment: no call is needed.
    pub admitted: Option<(Admission, Slot)>,
    /// What a lapsed allotment left unused, to give back.
    pub lapsed: Option<Slot>,
    /// Admissions to ask for with the call (0: none).
    pub ask: u32,
}

/// What the object's answer (or its absence) means for what the isolate holds.
#[derive(Debug, Default)]
pub struct AfterCall {
    /// Refused, but an allotment that came meanwhile covers the request (the
    /// object counted that room as taken).
    pub admitted_instead: Option<(Admission, Slot)>,
    /// What the allotment this answer replaced left unused, to give back.
    pub replaced: Option<Slot>,
    /// The answer brought an allotment, which lapses then.
    pub lapses_ms: Option<u64>,
}

/// What an isolate holds for one limiter object and one set of scopes.
#[derive(Debug, Clone, Default)]
pub struct Held {
    allotment: Option<Allotted>,
    /// Requests counted in the current and the previous lifetime-long window.
    window_start_ms: u64,
    this_window: u32,
    last_window: u32,
    /// An ask for an allotment is on its way (since then): one at a time, so a
    /// burst does not bring many small allotments that replace each other.
    asking_since_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Allotted {
    granted: u32,
    slots_left: u32,
    slot: Slot,
    expires_ms: u64,
    /// The admission that brought it, for the `x-ratelimit-*` headers.
    admission: Admission,
}

impl Held {
    /// One request to the object: counted, a lapsed allotment given back, admitted
    /// from the current one if it covers the request, or else how many to ask for.
    pub fn before_call(&mut self, tokens: u64, micro_usd: u64, now_ms: u64) -> BeforeCall {
        self.note_request(now_ms);
        let lapsed = self.expire(now_ms);
        // Running low: this request asks for the next allotment while the others
        // take the rest of this one. Asking only once it ran out would send every
        // request of a busy key to the object until the answer came back.
        if self.running_low() {
            let ask = self.ask(now_ms);
            if ask > 0 {
                return BeforeCall { admitted: None, lapsed, ask };
            }
        }
        let admitted = self.take(tokens, micro_usd, now_ms);
        let ask = if admitted.is_none() { self.ask(now_ms) } else { 0 };
        BeforeCall { admitted, lapsed, ask }
    }

    /// The object's answer to a call that asked for `asked` more admissions: an
    /// allotment it brought is held (`answer`'s headers then count it as left); a
    /// refusal is admitted from an allotment another request brought meanwhile.
    pub fn after_call(
        &mut self,
        answer: Option<&mut Admission>,
        asked: u32,
        tokens: u64,
        micro_usd: u64,
        now_ms: u64,
    ) -> AfterCall {
        let mut after = AfterCall::default();
        match answer {
            Some(admission) if admission.allowed && admission.allotted.is_some() => {
                after.replaced = self.install(admission, tokens, micro_usd, now_ms);
                after.lapses_ms = self.expires_ms();
            }
            Some(refusal) if !refusal.allowed => after.admitted_instead = self.take(tokens, micro_usd, now_ms),
            _ => {}
        }
        if asked > 0 {
            self.answered();
        }
        after
    }

    fn running_low(&self) -> bool {
        self.allotment.as_ref().is_some_and(|a| a.slots_left > 0 && a.slots_left <= a.granted / LOW_FRACTION)
    }

    /// Counts one request to the object (how hot the key is in this isolate).
    pub fn note_request(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.window_start_ms);
        if elapsed >= LIFETIME_MS {
            self.last_window = if elapsed < 2 * LIFETIME_MS { self.this_window } else { 0 };
            self.this_window = 0;
            self.window_start_ms = now_ms;
        }
        self.this_window = self.this_window.saturating_add(1);
    }

    /// How many admissions to ask for beyond the next one: about what this isolate
    /// sent lately, none while the key is cold or another ask is on its way. An
    /// ask is marked until [`Held::answered`] (or a lifetime, if its caller vanished).
    pub fn ask(&mut self, now_ms: u64) -> u32 {
        if self.asking_since_ms.is_some_and(|since| now_ms.saturating_sub(since) < LIFETIME_MS) {
            return 0;
        }
        let recent = self.this_window.max(self.last_window);
        if recent < HOT_REQUESTS {
            return 0;
        }
        self.asking_since_ms = Some(now_ms);
        recent.saturating_mul(2).min(MAX_SLOTS)
    }

    /// The object answered an ask (with an allotment or not).
    pub fn answered(&mut self) {
        self.asking_since_ms = None;
    }

    /// Admits one request from the allotment, if it holds one large enough.
    pub fn take(&mut self, tokens: u64, micro_usd: u64, now_ms: u64) -> Option<(Admission, Slot)> {
        let held = self.allotment.as_mut().filter(|a| a.slots_left > 0 && a.expires_ms > now_ms)?;
        if tokens > held.slot.tokens || micro_usd > held.slot.micro_usd {
            return None;
        }
        held.slots_left -= 1;
        // What is left includes what this isolate still holds.
        let mut admission = held.admission.clone();
        with_held(&mut admission, held.slots_left, &held.slot);
        Some((admission, held.slot))
    }

    /// Holds what an admission allotted; the unused rest of the previous allotment
    /// is returned, to give back.
    ///
    /// The object counts the slots as taken; this isolate counts them as left, so
    /// `admission` (the asking request's) and the headers of the requests admitted
    /// from the slots count down from what the object had left before.
    pub fn install(&mut self, admission: &mut Admission, tokens: u64, micro_usd: u64, now_ms: u64) -> Option<Slot> {
        let allotment = admission.allotted.take()?;
        self.asking_since_ms = None;
        let previous = self.give_back();
        // The previous allotment's rest (an ask ahead replaces one not yet used up)
        // is given back after this answer: left again, as the headers count it.
        if let Some(back) = &previous {
            with_held(admission, back.count, back);
        }
        let slot = Slot { tokens, micro_usd, month: allotment.month, count: 1 };
        self.allotment = Some(Allotted {
            granted: allotment.slots,
            slots_left: allotment.slots,
            slot,
            expires_ms: now_ms + LIFETIME_MS,
            admission: admission.clone(),
        });
        with_held(admission, allotment.slots, &slot);
        previous
    }

    /// When the allotment lapses (given back by then).
    pub fn expires_ms(&self) -> Option<u64> {
        self.allotment.as_ref().map(|a| a.expires_ms)
    }

    /// The unused rest of an allotment that has lapsed, to give back.
    pub fn expire(&mut self, now_ms: u64) -> Option<Slot> {
        if self.allotment.as_ref().is_some_and(|a| a.expires_ms <= now_ms) {
            self.give_back()
        } else {
            None
        }
    }

    fn give_back(&mut self) -> Option<Slot> {
        let held = self.allotment.take()?;
        (held.slots_left > 0).then_some(Slot { count: held.slots_left, ..held.slot })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Denial, Limits, Settle, Used};
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn ask(id: &str, scopes: &[Scoped], tokens: u64, micro_usd: u64, allot: u32) -> Admit {
        Admit {
            scopes: scopes.to_vec(),
            reservation_id: id.into(),
            estimated_tokens: tokens,
            estimated_micro_usd: micro_usd,
            lease_ms: 60_000,
            settle_first: Vec::new(),
            allot,
        }
    }

    fn settle(scopes: &[Scoped], slot: Slot, used: Used, cancel: bool) -> Settle {
        Settle {
            reservation_id: "slot".into(),
            used,
            scopes: scopes.to_vec(),
            cancel,
            served_model: None,
            slot: Some(slot),
        }
    }

    fn rpm(limit: u64) -> Vec<Scoped> {
        vec![Scoped::whole(Limits { requests_per_minute: Some(limit), ..Limits::default() })]
    }

    #[test]
    fn an_allotment_is_taken_from_the_limit_and_never_exceeds_it() {
        let scopes = rpm(1_000);
        let mut s = LimiterState::default();
        let a = s.admit(&ask("a", &scopes, 10, 0, 64), T0);
        let slots = a.allotted.unwrap().slots;
        assert_eq!(slots, 62, "at most 1/16 of the 999 left");
        assert_eq!(a.requests.unwrap().remaining, 999 - 62);
        // The object admits exactly what is left beyond the allotment.
        let mut admitted = 0;
        for i in 0..2_000 {
            if s.admit(&ask(&format!("r{i}"), &scopes, 10, 0, 0), T0).allowed {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 1_000 - 1 - 62);
    }

    #[test]
    fn no_allotment_near_the_limit_with_concurrency_or_for_a_cold_ask() {
        let mut s = LimiterState::default();
        assert_eq!(s.admit(&ask("a", &rpm(30), 1, 0, 64), T0).allotted, None, "29 left: 1/16 is under two");
        assert_eq!(s.admit(&ask("b", &rpm(10_000), 1, 0, 0), T0).allotted, None, "not asked");
        let concurrent = vec![Scoped::whole(Limits { max_concurrent: Some(1_000), ..Limits::default() })];
        assert_eq!(s.admit(&ask("c", &concurrent, 1, 0, 64), T0).allotted, None);
    }

    #[test]
    fn tokens_and_budget_bound_the_allotment_and_unused_slots_come_back() {
        let limits = Limits { tokens_per_minute: Some(16_000), ..Limits::default() };
        let scopes = vec![Scoped::whole(limits).with_budget(Some(1_000_000))];
        let mut s = LimiterState::default();
        let a = s.admit(&ask("a", &scopes, 100, 1_000, 64), T0);
        // Tokens: 15_900 left / 16 / 100 = 9; budget: 999_000 / 16 / 1_000 = 62.
        assert_eq!(a.allotted.unwrap().slots, 9);
        assert_eq!(a.tokens.unwrap().remaining, 15_900 - 900);
        assert_eq!(s.report(T0).spent_usd_this_month["all"], 0.01);
        // One slot used: 40 tokens, 300 micro-dollars; eight given back.
        let month = a.allotted.unwrap().month;
        let slot = Slot { tokens: 100, micro_usd: 1_000, month, count: 1 };
        s.apply(&settle(&scopes, slot, Used { tokens: Some(40), micro_usd: Some(300) }, false), T0);
        s.apply(&settle(&scopes, Slot { count: 8, ..slot }, Used::NOTHING, true), T0);
        assert_eq!(s.report(T0).spent_usd_this_month["all"], 0.0013, "the request's estimate and the slot's actual");
        let next = s.admit(&ask("b", &scopes, 100, 0, 0), T0);
        assert_eq!(next.tokens.unwrap().remaining, 16_000 - 100 - 40 - 100);
    }

    #[test]
    fn a_denied_admission_allots_nothing() {
        let scopes = rpm(1);
        let mut s = LimiterState::default();
        assert!(s.admit(&ask("a", &scopes, 1, 0, 0), T0).allowed);
        let b = s.admit(&ask("b", &scopes, 1, 0, 64), T0);
        assert_eq!((b.allowed, b.denied_by, b.allotted), (false, Some(Denial::Requests), None));
    }

    #[test]
    fn an_isolate_asks_once_hot_admits_from_what_it_holds_and_gives_back_the_rest() {
        let mut held = Held::default();
        for i in 0..3 {
            held.note_request(T0 + i);
        }
        assert_eq!(held.ask(T0 + 3), 0, "cold");
        held.note_request(T0 + 3);
        assert!(held.take(10, 0, T0).is_none(), "nothing held yet");
        let wanted = held.ask(T0 + 3);
        assert_eq!(wanted, 8);
        assert_eq!(held.ask(T0 + 4), 0, "one ask at a time");
        held.answered();
        assert_eq!(held.ask(T0 + 4), 8);

        let mut s = LimiterState::default();
        let granted = s.admit(&ask("a", &rpm(10_000), 10, 5, wanted), T0);
        assert_eq!(granted.requests.unwrap().remaining, 9_999 - 8);
        let month = granted.allotted.unwrap().month;
        let mut mine = granted.clone();
        assert_eq!(held.install(&mut mine, 10, 5, T0), None);
        assert_eq!(mine.requests.unwrap().remaining, 9_999, "the asking request counts what it brought as left");
        assert_eq!(held.ask(T0 + 1), 8, "installing ends the ask");
        let (admission, slot) = held.take(10, 5, T0 + 1).unwrap();
        assert_eq!(slot, Slot { tokens: 10, micro_usd: 5, month, count: 1 });
        assert_eq!(admission.requests.unwrap().remaining, 9_998, "each slot taken counts down");
        assert!(held.take(11, 5, T0 + 1).is_none(), "a larger request goes to the object");
        assert!(held.take(10, 6, T0 + 1).is_none());
        assert_eq!(held.expire(T0 + 999), None, "still live");
        let back = held.expire(T0 + LIFETIME_MS).unwrap();
        assert_eq!(back.count, 7);
        assert!(held.take(10, 5, T0 + LIFETIME_MS).is_none());
        // A new allotment replaces an old one, whose rest is given back.
        held.install(&mut granted.clone(), 10, 5, T0 + 2_000);
        held.take(10, 5, T0 + 2_000).unwrap();
        assert_eq!(held.install(&mut granted.clone(), 10, 5, T0 + 2_001).unwrap().count, 7);
        // Quiet for two lifetimes: cold again.
        held.note_request(T0 + 10_000);
        held.answered();
        assert_eq!(held.ask(T0 + 10_000), 0);
    }

    /// An isolate that sent four requests to a 10,000 rpm limit and was allotted
    /// eight slots at `T0 + 4`; the limiter state that allotted them.
    fn hot_with_eight_slots() -> (Held, LimiterState) {
        let mut held = Held::default();
        let mut s = LimiterState::default();
        let hot = (0..4).map(|i| held.before_call(1, 0, T0 + i)).last().unwrap();
        assert_eq!(hot.ask, 8);
        let mut granted = s.admit(&ask("a", &rpm(10_000), 1, 0, hot.ask), T0 + 4);
        let after = held.after_call(Some(&mut granted), hot.ask, 1, 0, T0 + 4);
        assert_eq!(after.lapses_ms, Some(T0 + 4 + LIFETIME_MS));
        (held, s)
    }

    #[test]
    fn one_ask_at_a_time_even_when_an_allotment_lapses_meanwhile() {
        let (mut held, mut s) = hot_with_eight_slots();
        for i in 0..6 {
            assert!(held.before_call(1, 0, T0 + 5 + i).admitted.is_some());
        }
        // Two of eight left: the next request asks for more while the others take
        // the rest, then go to the object without asking while that ask is on its way.
        let asking = held.before_call(1, 0, T0 + 11);
        assert!(asking.admitted.is_none() && asking.ask > 0);
        let taken = held.before_call(1, 0, T0 + 12);
        assert!(taken.admitted.is_some() && taken.ask == 0);
        assert_eq!(taken.admitted.unwrap().0.requests.unwrap().remaining, 9_999 - 7, "eight served, one slot left");
        assert!(held.before_call(1, 0, T0 + 13).admitted.is_some());
        let used_up = held.before_call(1, 0, T0 + 20);
        assert!(used_up.admitted.is_none() && used_up.ask == 0);
        // One that comes after the allotment lapsed gives back nothing and does not ask again.
        let later = held.before_call(1, 0, T0 + 4 + LIFETIME_MS);
        assert_eq!((later.lapsed, later.ask), (None, 0));
        // The ask is refused and nothing is held: a refusal, and the ask is answered.
        let mut refused = s.admit(&ask("b", &rpm(1), 1, 0, 0), T0 + 21);
        refused.allowed = false;
        assert!(held.after_call(Some(&mut refused), asking.ask, 1, 0, T0 + 21).admitted_instead.is_none());
        assert!(held.before_call(1, 0, T0 + 22).ask > 0, "answered: the next may ask");
    }

    #[test]
    fn an_ask_ahead_counts_the_rest_it_replaces_as_left() {
        let (mut held, mut s) = hot_with_eight_slots();
        for i in 0..6 {
            assert!(held.before_call(1, 0, T0 + 5 + i).admitted.is_some());
        }
        let asking = held.before_call(1, 0, T0 + 11);
        assert!(asking.admitted.is_none() && asking.ask > 0);
        let taken = held.before_call(1, 0, T0 + 12).admitted.unwrap();
        assert_eq!(taken.0.requests.unwrap().remaining, 9_999 - 7, "eight requests served, one slot left");
        // The object's answer counts the old allotment's last slot as taken; it is
        // given back after the answer, so the headers count it as left.
        // (At the first admission's time: the limit refills one every 6 ms.)
        let mut ahead = s.admit(&ask("ahead", &rpm(10_000), 1, 0, asking.ask), T0 + 4);
        let allotted = u64::from(ahead.allotted.unwrap().slots);
        assert_eq!(ahead.requests.unwrap().remaining, 9_999 - 8 - 1 - allotted);
        let after = held.after_call(Some(&mut ahead), asking.ask, 1, 0, T0 + 13);
        assert_eq!(after.replaced.map(|back| back.count), Some(1));
        assert_eq!(ahead.requests.unwrap().remaining, 9_999 - 8, "nine requests served");
        let next = held.before_call(1, 0, T0 + 14).admitted.unwrap();
        assert_eq!(next.0.requests.unwrap().remaining, 9_999 - 9);
    }

    #[test]
    fn an_ask_ahead_that_is_refused_takes_what_is_left() {
        let (mut held, mut s) = hot_with_eight_slots();
        while held.before_call(1, 0, T0 + 5).admitted.is_some() {}
        // The request that asked ahead was refused (another isolate took the rest
        // of the limit): a slot this isolate still holds admits it.
        let mut refused = s.admit(&ask("b", &rpm(1), 1, 0, 0), T0 + 6);
        refused.allowed = false;
        let after = held.after_call(Some(&mut refused), 8, 1, 0, T0 + 6);
        assert!(after.admitted_instead.is_some());
    }

    #[test]
    fn a_slot_served_by_one_model_gives_the_others_back() {
        let limits = Limits { requests_per_minute: Some(1_000), ..Limits::default() };
        let scopes = vec![Scoped::model("big", limits), Scoped::model("small", limits)];
        let mut s = LimiterState::default();
        let a = s.admit(&ask("a", &scopes, 1, 0, 64), T0);
        let slots = u64::from(a.allotted.unwrap().slots);
        let slot = Slot { tokens: 1, micro_usd: 0, month: a.allotted.unwrap().month, count: 1 };
        let mut used = settle(&scopes, slot, Used { tokens: Some(1), micro_usd: None }, false);
        used.served_model = Some("small".into());
        s.apply(&used, T0);
        let next = s.admit(&ask("b", &scopes, 1, 0, 0), T0);
        // "big" got the slot's cell back; "small" keeps it. Headers show the tighter.
        assert_eq!(next.requests.unwrap().remaining, 1_000 - 2 - slots);
        let big_only = s.admit(&ask("c", &scopes[..1], 1, 0, 0), T0);
        assert_eq!(big_only.requests.unwrap().remaining, 1_000 - 3 - slots + 1);
    }
}
