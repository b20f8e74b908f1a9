//! Rate-limit math, pure and exact: GCRA for requests per window, the same GCRA
//! in token units for tokens per minute (reserve an estimate before the call,
//! reconcile with the real usage after), and concurrency leases. The
//! `RateLimiter` Durable Object holds one `LimiterState` per key and calls these.
//!
//! GCRA in integer form (no rounding drift, so "L of N concurrent" is exactly L):
//! time is scaled by the limit, the emission interval is then the period itself.

pub mod allotment;
pub mod budget;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A limit of `limit` cells per `period_ms`, with bursts of up to `burst` cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub limit: u64,
    pub period_ms: u64,
    pub burst: u64,
}

impl Rate {
    pub fn per_minute(limit: u64) -> Self {
        Rate { limit, period_ms: 60_000, burst: limit }
    }
}

/// The theoretical arrival time, in time scaled by the limit (signed: debt is allowed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gcra {
    pub tat: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// The request can never pass (cost above the burst): do not retry.
    pub never: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_ms: u64,
    /// On a denial: until this request could pass.
    pub retry_after_ms: u64,
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return 0;
    }
    if a <= 0 {
        0
    } else {
        (a + b - 1) / b
    }
}

impl Gcra {
    pub fn check(&mut self, rate: Rate, now_ms: u64, cost: u64) -> Decision {
        let limit = i128::from(rate.limit.max(1));
        let t = i128::from(rate.period_ms.max(1));
        let burst = i128::from(rate.burst.max(1));
        let tau = t * (burst - 1);
        let now = i128::from(now_ms) * limit;
        let n = i128::from(cost);
        let tat0 = self.tat.max(now);
        let decision = |allowed: bool, never: bool, tat: i128, retry: i128| Decision {
            allowed,
            never,
            limit: rate.limit,
            remaining: ((now + tau - tat).div_euclid(t) + 1).clamp(0, burst) as u64,
            reset_ms: ceil_div(tat - now, limit) as u64,
            retry_after_ms: retry as u64,
        };
        if n > burst {
            return decision(false, true, self.tat.max(now), 0);
        }
        if tat0 + n * t - tau - t > now {
            let retry = ceil_div(tat0 + n * t - t - tau - now, limit);
            return decision(false, false, self.tat.max(now), retry);
        }
        self.tat = tat0 + n * t;
        decision(true, false, self.tat, 0)
    }

    /// The state without consuming anything (for response headers).
    pub fn peek(&self, rate: Rate, now_ms: u64) -> Decision {
        let mut copy = *self;
        let mut d = copy.check(rate, now_ms, 0);
        d.allowed = true;
        d
    }

    /// Gives back `cells` reserved earlier (never below "full").
    pub fn refund(&mut self, rate: Rate, now_ms: u64, cells: u64) {
        let limit = i128::from(rate.limit.max(1));
        let now = i128::from(now_ms) * limit;
        self.tat = (self.tat - i128::from(cells) * i128::from(rate.period_ms.max(1))).max(now);
    }

    /// Charges `cells` beyond the reservation: later requests wait. Debt is capped
    /// at one extra window so a runaway request cannot lock a key for hours.
    pub fn charge(&mut self, rate: Rate, now_ms: u64, cells: u64) {
        let limit = i128::from(rate.limit.max(1));
        let t = i128::from(rate.period_ms.max(1));
        let now = i128::from(now_ms) * limit;
        let cap = now + 2 * i128::from(rate.burst.max(1)) * t;
        self.tat = (self.tat.max(now) + i128::from(cells) * t).min(cap);
    }
}

/// A key's limits (from the config); absent ones are not enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

const MODEL_SCOPE: &str = "model:";

/// The model a scope name is about (`Some("gpt-4o")` for `"model:gpt-4o"`).
pub fn scope_model(scope: &str) -> Option<&str> {
    scope.strip_prefix(MODEL_SCOPE)
}

/// Limits and the scope they count in within one limiter object: `""` for the
/// whole key (or team, or endpoint), `"model:gpt-4o"` for one model's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scoped {
    pub scope: String,
    pub limits: Limits,
    /// Spending cap per calendar month (UTC), in micro-dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_micro_usd: Option<u64>,
}

impl Scoped {
    pub fn whole(limits: Limits) -> Self {
        Scoped { scope: String::new(), limits, budget_micro_usd: None }
    }

    pub fn model(model: &str, limits: Limits) -> Self {
        Scoped { scope: format!("{MODEL_SCOPE}{model}"), limits, budget_micro_usd: None }
    }

    pub fn with_budget(mut self, budget_micro_usd: Option<u64>) -> Self {
        self.budget_micro_usd = budget_micro_usd;
        self
    }

    fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.budget_micro_usd.is_none()
    }
}

/// One admission request: one request, an estimated token cost, a lease, checked
/// against every scope at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    pub scopes: Vec<Scoped>,
    pub reservation_id: String,
    pub estimated_tokens: u64,
    /// The request's estimated cost, reserved against budgets until the real cost is known.
    #[serde(default)]
    pub estimated_micro_usd: u64,
    /// When the concurrency lease expires if never released (request deadline + margin).
    pub lease_ms: u64,
    /// Earlier requests' settlements, carried by this call and applied first (one
    /// round trip instead of two; see `edge::limiter`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settle_first: Vec<Settle>,
    /// Admissions beyond this one the isolate asks to hold and admit from itself
    /// (an allotment: see `allotment`); 0 asks for none.
    #[serde(default, skip_serializing_if = "allotment::is_zero")]
    pub allot: u32,
}

/// A request's end: what it used, for which scopes, and which model served it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settle {
    pub reservation_id: String,
    #[serde(default)]
    pub used: Used,
    pub scopes: Vec<Scoped>,
    /// Another limiter refused the request: the request cell is given back too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
    /// The public model that served: other models' scopes are given back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// Admitted from an isolate's allotment: the object holds no reservation, the
    /// settlement says what was reserved (`reservation_id` is then only a label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<allotment::Slot>,
}

/// What a request really used, when it is known (`None` keeps the reservation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Used {
    pub tokens: Option<u64>,
    pub micro_usd: Option<u64>,
}

impl Used {
    pub const NOTHING: Used = Used { tokens: Some(0), micro_usd: Some(0) };
}

/// A budget's state, reported on a budget denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetStatus {
    pub limit_micro_usd: u64,
    pub spent_micro_usd: u64,
    pub resets_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    Requests,
    Tokens,
    Concurrency,
    /// The monthly spending cap is reached: no retry helps until it resets.
    Budget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<Denial>,
    /// The scope whose limit denied the request (`""` or `"model:..."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_scope: Option<String>,
    /// The denial can never pass (e.g. one request larger than the whole TPM budget).
    #[serde(default)]
    pub never: bool,
    /// The tightest request limit of the scopes (the denying one on a denial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
    pub retry_after_ms: u64,
    /// Admissions granted beyond this one, for the isolate to admit from itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allotted: Option<allotment::Allotment>,
}

impl Admission {
    /// An admission with nothing to report yet (the scopes' decisions are folded in).
    fn allowed() -> Self {
        Admission {
            allowed: true,
            denied_by: None,
            denied_scope: None,
            never: false,
            requests: None,
            tokens: None,
            budget: None,
            retry_after_ms: 0,
            allotted: None,
        }
    }

    /// A request that can never fit the tokens-per-minute limit.
    pub fn never_tokens(limit: u64) -> Self {
        Admission {
            allowed: false,
            denied_by: Some(Denial::Tokens),
            denied_scope: None,
            never: true,
            requests: None,
            tokens: Some(Decision { allowed: false, never: true, limit, remaining: 0, reset_ms: 0, retry_after_ms: 0 }),
            budget: None,
            retry_after_ms: 0,
            allotted: None,
        }
    }

    /// Folds another limiter's admission of the same request into this one: the
    /// tighter decision of each kind wins (for the `x-ratelimit-*` headers).
    pub fn tighten(&mut self, other: &Admission) {
        self.requests = tighter(self.requests, other.requests);
        self.tokens = tighter(self.tokens, other.tokens);
    }
}

/// A per-minute bucket's state without consuming anything, where the limit is set.
fn peek_per_minute(gcra: &Gcra, limit: Option<u64>, now_ms: u64) -> Option<Decision> {
    limit.map(|l| gcra.peek(Rate::per_minute(l), now_ms))
}

/// The decision with less room left (for headers, the one a client must respect).
fn tighter(a: Option<Decision>, b: Option<Decision>) -> Option<Decision> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.remaining < x.remaining { y } else { x }),
        (x, y) => x.or(y),
    }
}

/// The tokens a request reserves in a scope: its estimate, never more than the
/// whole bucket for a request that did not ask for it (0 where no TPM limit).
fn reserved_tokens(limits: &Limits, estimate: u64) -> u64 {
    limits.tokens_per_minute.map_or(0, |l| estimate.min(l.max(1)).max(1))
}

/// The request and token buckets of one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Buckets {
    requests: Gcra,
    tokens: Gcra,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reservation {
    /// Tokens reserved in each scope the request counts in (0 where no TPM limit).
    scopes: BTreeMap<String, u64>,
    /// Cost reserved against each scope's budget, in the month `month`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    costs: BTreeMap<String, u64>,
    #[serde(default)]
    month: u32,
    /// The concurrency lease (and the record) expire here.
    expires_ms: u64,
}

/// A scope's spending in one calendar month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Spend {
    month: u32,
    micro_usd: u64,
}

/// Everything one limiter object remembers; persisted after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterState {
    buckets: BTreeMap<String, Buckets>,
    reservations: BTreeMap<String, Reservation>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    spend: BTreeMap<String, Spend>,
}

/// What one scope would do with the request.
struct ScopeCheck {
    buckets: Buckets,
    rpm: Option<Decision>,
    tpm: Option<Decision>,
    reserved_tokens: u64,
    /// The month's spending including this request's estimate, where a budget applies.
    spend: Option<Spend>,
    budget: Option<BudgetStatus>,
    denied_by: Option<Denial>,
}

impl LimiterState {
    /// Requests, tokens and concurrency of every scope in one decision: nothing is
    /// consumed unless all pass.
    ///
    /// Settlements carried by the call are applied first. A reservation id already
    /// held (the call was retried after the first try got through) is admitted
    /// again without consuming anything twice.
    pub fn admit(&mut self, admit: &Admit, now_ms: u64) -> Admission {
        for settle in &admit.settle_first {
            self.apply(settle, now_ms);
        }
        self.expire(now_ms);
        if self.reservations.contains_key(&admit.reservation_id) {
            return self.readmit(admit, now_ms);
        }
        let mut passed: Vec<(&Scoped, ScopeCheck)> = Vec::new();
        for scoped in admit.scopes.iter().filter(|s| !s.is_empty()) {
            let check = self.check_scope(scoped, admit, now_ms);
            if let Some(denial) = check.denied_by {
                return self.denied(scoped, &check, denial, now_ms);
            }
            passed.push((scoped, check));
        }
        let allotted = self.allot(admit, &mut passed, now_ms);
        let mut admission = Admission::allowed();
        if allotted > 0 {
            admission.allotted = Some(allotment::Allotment { slots: allotted, month: budget::month_index(now_ms) });
        }
        let mut reserved = BTreeMap::new();
        let mut costs = BTreeMap::new();
        for (scoped, check) in passed {
            self.buckets.insert(scoped.scope.clone(), check.buckets);
            reserved.insert(scoped.scope.clone(), check.reserved_tokens);
            if let Some(spend) = check.spend {
                self.spend.insert(scoped.scope.clone(), spend);
                costs.insert(scoped.scope.clone(), admit.estimated_micro_usd);
            }
            admission.requests = tighter(admission.requests, check.rpm);
            admission.tokens = tighter(admission.tokens, check.tpm);
            admission.budget = admission.budget.or(check.budget);
        }
        let reservation = Reservation {
            scopes: reserved,
            costs,
            month: budget::month_index(now_ms),
            expires_ms: now_ms + admit.lease_ms,
        };
        self.reservations.insert(admit.reservation_id.clone(), reservation);
        admission
    }

    /// The answer to a retried admission: allowed, with the buckets as they are now.
    fn readmit(&self, admit: &Admit, now_ms: u64) -> Admission {
        let mut admission = Admission::allowed();
        for scoped in admit.scopes.iter().filter(|s| !s.is_empty()) {
            let buckets = self.buckets.get(&scoped.scope).copied().unwrap_or_default();
            let (rpm, tpm) = (scoped.limits.requests_per_minute, scoped.limits.tokens_per_minute);
            admission.requests = tighter(admission.requests, peek_per_minute(&buckets.requests, rpm, now_ms));
            admission.tokens = tighter(admission.tokens, peek_per_minute(&buckets.tokens, tpm, now_ms));
        }
        admission
    }

    /// One settlement, whichever kind: `true` when it changed anything.
    pub fn apply(&mut self, settle: &Settle, now_ms: u64) -> bool {
        let (reservation, count) = match &settle.slot {
            Some(slot) => (slot.reservation(&settle.scopes), u64::from(slot.count.max(1))),
            None => match self.reservations.remove(&settle.reservation_id) {
                Some(reservation) => (reservation, 1),
                None => return false,
            },
        };
        let served = settle.served_model.as_deref().filter(|_| !settle.cancel);
        self.settle_reserved(reservation, count, settle.used, &settle.scopes, settle.cancel, served, now_ms);
        true
    }

    fn check_scope(&self, scoped: &Scoped, admit: &Admit, now_ms: u64) -> ScopeCheck {
        let estimated_tokens = admit.estimated_tokens;
        let limits = scoped.limits;
        let mut buckets = self.buckets.get(&scoped.scope).copied().unwrap_or_default();
        let rpm = limits.requests_per_minute.map(|l| buckets.requests.check(Rate::per_minute(l), now_ms, 1));
        let reserved_tokens = reserved_tokens(&limits, estimated_tokens);
        let tpm = limits.tokens_per_minute.map(|l| buckets.tokens.check(Rate::per_minute(l), now_ms, reserved_tokens));
        let live = self.reservations.values().filter(|r| r.scopes.contains_key(&scoped.scope)).count() as u64;
        // Spending this month, with this request's estimate reserved (so concurrent
        // requests cannot all take the last dollar).
        let month = budget::month_index(now_ms);
        let spent = self.spend.get(&scoped.scope).filter(|s| s.month == month).map_or(0, |s| s.micro_usd);
        let budget = scoped.budget_micro_usd.map(|limit| BudgetStatus {
            limit_micro_usd: limit,
            spent_micro_usd: spent,
            resets_at_ms: budget::next_month_start_ms(now_ms),
        });
        let over_budget = scoped
            .budget_micro_usd
            .is_some_and(|limit| spent >= limit || spent.saturating_add(admit.estimated_micro_usd) > limit);
        let denied_by = if over_budget {
            Some(Denial::Budget)
        } else if rpm.is_some_and(|d| !d.allowed) {
            Some(Denial::Requests)
        } else if tpm.is_some_and(|d| !d.allowed) {
            Some(Denial::Tokens)
        } else if limits.max_concurrent.is_some_and(|max| live >= u64::from(max)) {
            Some(Denial::Concurrency)
        } else {
            None
        };
        let spend = scoped
            .budget_micro_usd
            .map(|_| Spend { month, micro_usd: spent.saturating_add(admit.estimated_micro_usd) });
        ScopeCheck { buckets, rpm, tpm, reserved_tokens, spend, budget, denied_by }
    }

    fn denied(&self, scoped: &Scoped, check: &ScopeCheck, denial: Denial, now_ms: u64) -> Admission {
        let limits = scoped.limits;
        let current = self.buckets.get(&scoped.scope).copied().unwrap_or_default();
        let retry_after_ms = match denial {
            Denial::Requests => check.rpm.map_or(0, |d| d.retry_after_ms),
            Denial::Tokens => check.tpm.map_or(0, |d| d.retry_after_ms),
            Denial::Concurrency => 1_000,
            Denial::Budget => check.budget.map_or(0, |b| b.resets_at_ms.saturating_sub(now_ms)),
        };
        let peek = |gcra: &Gcra, limit: Option<u64>| peek_per_minute(gcra, limit, now_ms);
        Admission {
            allowed: false,
            denied_by: Some(denial),
            denied_scope: Some(scoped.scope.clone()),
            never: denial == Denial::Budget || (denial == Denial::Tokens && check.tpm.is_some_and(|d| d.never)),
            requests: peek(&current.requests, limits.requests_per_minute).map(|mut d| {
                d.allowed = false;
                d.retry_after_ms = check.rpm.map_or(0, |r| r.retry_after_ms);
                d
            }),
            tokens: peek(&current.tokens, limits.tokens_per_minute),
            budget: check.budget,
            retry_after_ms,
            allotted: None,
        }
    }

    /// The real usage is known (or the request ended): settle the token and cost
    /// reservations of every scope and release the concurrency lease. `cancel` also
    /// gives the request cell back (another limiter refused the request, so it never
    /// ran). Idempotent: a second call does nothing.
    pub fn settle(&mut self, reservation_id: &str, used: Used, scopes: &[Scoped], cancel: bool, now_ms: u64) -> bool {
        let Some(reservation) = self.reservations.remove(reservation_id) else {
            return false;
        };
        self.settle_reserved(reservation, 1, used, scopes, cancel, None, now_ms);
        true
    }

    /// Settles for the model that served the request: the scopes of the other
    /// models it might have failed over to (reserved so their limits were checked)
    /// get their request cell and tokens back, so only the served model is charged.
    pub fn settle_served(
        &mut self,
        reservation_id: &str,
        used: Used,
        scopes: &[Scoped],
        served_model: Option<&str>,
        now_ms: u64,
    ) -> bool {
        let Some(reservation) = self.reservations.remove(reservation_id) else {
            return false;
        };
        self.settle_reserved(reservation, 1, used, scopes, false, served_model, now_ms);
        true
    }

    /// Settles `count` requests that each reserved `reservation` (more than one
    /// only for an allotment's unused slots, given back with `cancel`).
    #[allow(clippy::too_many_arguments)]
    fn settle_reserved(
        &mut self,
        mut reservation: Reservation,
        count: u64,
        used: Used,
        scopes: &[Scoped],
        cancel: bool,
        served_model: Option<&str>,
        now_ms: u64,
    ) {
        if let Some(served) = served_model {
            let others: Vec<String> = reservation
                .scopes
                .keys()
                .filter(|scope| scope_model(scope).is_some_and(|model| model != served))
                .cloned()
                .collect();
            for scope in others {
                let reserved = reservation.scopes.remove(&scope).unwrap_or(0) * count;
                let (Some(scoped), Some(buckets)) =
                    (scopes.iter().find(|s| s.scope == scope), self.buckets.get_mut(&scope))
                else {
                    continue;
                };
                if let Some(limit) = scoped.limits.tokens_per_minute {
                    buckets.tokens.refund(Rate::per_minute(limit), now_ms, reserved);
                }
                if let Some(limit) = scoped.limits.requests_per_minute {
                    buckets.requests.refund(Rate::per_minute(limit), now_ms, count);
                }
            }
        }
        for (scope, reserved) in reservation.scopes {
            let reserved = reserved * count;
            let (Some(scoped), Some(buckets)) =
                (scopes.iter().find(|s| s.scope == scope), self.buckets.get_mut(&scope))
            else {
                continue;
            };
            let limits = scoped.limits;
            if let (Some(limit), Some(actual)) = (limits.tokens_per_minute, used.tokens) {
                let rate = Rate::per_minute(limit);
                if actual < reserved {
                    buckets.tokens.refund(rate, now_ms, reserved - actual);
                } else if actual > reserved {
                    buckets.tokens.charge(rate, now_ms, actual - reserved);
                }
            }
            if let (true, Some(limit)) = (cancel, limits.requests_per_minute) {
                buckets.requests.refund(Rate::per_minute(limit), now_ms, count);
            }
        }
        // The real cost replaces the estimate, in the month it was reserved in.
        if let Some(actual) = used.micro_usd {
            for (scope, reserved) in reservation.costs {
                if let Some(spend) = self.spend.get_mut(&scope).filter(|s| s.month == reservation.month) {
                    spend.micro_usd = spend.micro_usd.saturating_sub(reserved * count).saturating_add(actual);
                }
            }
        }
    }

    /// Leases whose holder vanished (isolate killed) expire; their tokens stay charged.
    fn expire(&mut self, now_ms: u64) {
        self.reservations.retain(|_, r| r.expires_ms > now_ms);
    }

    pub fn in_flight(&self) -> usize {
        self.reservations.len()
    }

    /// What an operator sees: leases held and this month's spending per scope
    /// (`"all"` for the whole key or team).
    pub fn report(&self, now_ms: u64) -> LimiterReport {
        let month = budget::month_index(now_ms);
        let spent_usd_this_month = self
            .spend
            .iter()
            .filter(|(_, spend)| spend.month == month)
            .map(|(scope, spend)| {
                let name = if scope.is_empty() { "all".to_string() } else { scope.clone() };
                (name, spend.micro_usd as f64 / 1e6)
            })
            .collect();
        LimiterReport { in_flight: self.in_flight(), spent_usd_this_month }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimiterReport {
    pub in_flight: usize,
    /// Spent or reserved this calendar month (UTC), per scope.
    pub spent_usd_this_month: BTreeMap<String, f64>,
}

/// OpenAI's duration format for `x-ratelimit-reset-*`: `20ms`, `1s`, `6m0s`, `1h2m3s`.
pub fn openai_duration(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let total_s = ms.div_ceil(1_000);
    let (h, m, s) = (total_s / 3600, (total_s % 3600) / 60, total_s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests;
