//! Rate-limit math, pure and exact: GCRA for requests per window, the same GCRA
//! in token units for tokens per minute (reserve an estimate before the call,
//! reconcile with the real usage after), and concurrency leases. The
//! `RateLimiter` Durable Object holds one `LimiterState` per key and calls these.
//!
//! GCRA in integer form (no rounding drift, so "L of N concurrent" is exactly L):
//! time is scaled by the limit, the emission interval is then the period itself.

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

/// One admission request: one request, an estimated token cost, a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    pub limits: Limits,
    pub reservation_id: String,
    pub estimated_tokens: u64,
    /// When the concurrency lease expires if never released (request deadline + margin).
    pub lease_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    Requests,
    Tokens,
    Concurrency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<Denial>,
    /// The denial can never pass (e.g. one request larger than the whole TPM budget).
    #[serde(default)]
    pub never: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Decision>,
    pub retry_after_ms: u64,
}

impl Admission {
    /// A request that can never fit the tokens-per-minute limit.
    pub fn never_tokens(limit: u64) -> Self {
        Admission {
            allowed: false,
            denied_by: Some(Denial::Tokens),
            never: true,
            requests: None,
            tokens: Some(Decision { allowed: false, never: true, limit, remaining: 0, reset_ms: 0, retry_after_ms: 0 }),
            retry_after_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Reservation {
    tokens: u64,
    /// The concurrency lease (and the record) expire here.
    expires_ms: u64,
}

/// Everything one key's limiter remembers; persisted after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterState {
    requests: Gcra,
    tokens: Gcra,
    reservations: BTreeMap<String, Reservation>,
}

impl LimiterState {
    /// Requests, tokens and concurrency in one decision: nothing is consumed unless all pass.
    pub fn admit(&mut self, admit: &Admit, now_ms: u64) -> Admission {
        self.expire(now_ms);
        let limits = admit.limits;
        let mut requests = self.requests;
        let mut tokens = self.tokens;
        let rpm = limits.requests_per_minute.map(|l| requests.check(Rate::per_minute(l), now_ms, 1));
        let tpm = limits.tokens_per_minute.map(|l| {
            // Never reserve more than the whole bucket for a request that did not ask for it.
            tokens.check(Rate::per_minute(l), now_ms, admit.estimated_tokens.min(l.max(1)).max(1))
        });
        let live = self.reservations.len() as u64;
        let over_concurrency = limits.max_concurrent.is_some_and(|max| live >= u64::from(max));

        let denied_by = if rpm.is_some_and(|d| !d.allowed) {
            Some(Denial::Requests)
        } else if tpm.is_some_and(|d| !d.allowed) {
            Some(Denial::Tokens)
        } else if over_concurrency {
            Some(Denial::Concurrency)
        } else {
            None
        };
        let retry_after_ms = match denied_by {
            Some(Denial::Requests) => rpm.map_or(0, |d| d.retry_after_ms),
            Some(Denial::Tokens) => tpm.map_or(0, |d| d.retry_after_ms),
            Some(Denial::Concurrency) => 1_000,
            None => 0,
        };
        let allowed = denied_by.is_none();
        if allowed {
            self.requests = requests;
            self.tokens = tokens;
            let reserved = limits.tokens_per_minute.map_or(0, |l| admit.estimated_tokens.min(l.max(1)).max(1));
            self.reservations.insert(
                admit.reservation_id.clone(),
                Reservation { tokens: reserved, expires_ms: now_ms + admit.lease_ms },
            );
        }
        let peek = |gcra: &Gcra, limit: Option<u64>| limit.map(|l| gcra.peek(Rate::per_minute(l), now_ms));
        Admission {
            allowed,
            denied_by,
            never: tpm.is_some_and(|d| d.never) && denied_by == Some(Denial::Tokens),
            requests: if allowed {
                rpm
            } else {
                peek(&self.requests, limits.requests_per_minute).map(|mut d| {
                    d.allowed = false;
                    d.retry_after_ms = rpm.map_or(0, |r| r.retry_after_ms);
                    d
                })
            },
            tokens: if allowed { tpm } else { peek(&self.tokens, limits.tokens_per_minute) },
            retry_after_ms,
        }
    }

    /// The real usage is known (or the request ended): settle the token reservation
    /// and release the concurrency lease. Idempotent: a second call does nothing.
    pub fn settle(&mut self, reservation_id: &str, actual_tokens: Option<u64>, limits: Limits, now_ms: u64) -> bool {
        let Some(reservation) = self.reservations.remove(reservation_id) else {
            return false;
        };
        if let (Some(limit), Some(actual)) = (limits.tokens_per_minute, actual_tokens) {
            let rate = Rate::per_minute(limit);
            if actual < reservation.tokens {
                self.tokens.refund(rate, now_ms, reservation.tokens - actual);
            } else if actual > reservation.tokens {
                self.tokens.charge(rate, now_ms, actual - reservation.tokens);
            }
        }
        true
    }

    /// Leases whose holder vanished (isolate killed) expire; their tokens stay charged.
    fn expire(&mut self, now_ms: u64) {
        self.reservations.retain(|_, r| r.expires_ms > now_ms);
    }

    pub fn in_flight(&self) -> usize {
        self.reservations.len()
    }
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
