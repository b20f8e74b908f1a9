//! Probe coordination: when an endpoint's open period ends, exactly one caller —
//! across every isolate — sends the half-open trial request. The endpoint's health
//! object grants a probe lease ([`Breaker::claim_probe`]); an isolate asks it only
//! when its own view says the endpoint is due for a probe ([`ProbeClaims`]), so a
//! healthy endpoint never costs a call. Pure: the time comes in as an argument.

use super::{Breaker, Circuit, Outcome, PROBE_LEASE_MS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The health object's answer to "may I send the probe?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "probe", rename_all = "snake_case", try_from = "super::wire::ProbeClaimWire")]
pub enum ProbeClaim {
    /// The circuit is closed: no probe is needed, anyone may send.
    NotNeeded,
    /// The caller holds the lease until then (or until its outcome is reported).
    Granted { lease_until_ms: u64 },
    /// Another caller's probe is in flight (or the endpoint is still open or
    /// cooling down): treat it as unavailable until then.
    Busy { until_ms: u64 },
}

impl Breaker {
    /// Is the endpoint waiting for a probe: open with its period over, or half-open
    /// with no probe in flight?
    pub fn probe_due(&self, now_ms: u64) -> bool {
        match self.circuit {
            Circuit::Closed => false,
            Circuit::Open { until_ms } => now_ms >= until_ms,
            Circuit::HalfOpen { probe_lease_until_ms, .. } => now_ms >= probe_lease_until_ms,
        }
    }

    /// Grants the probe lease to one caller (the health object's decision). A lease
    /// ends with the probe's reported outcome or after [`PROBE_LEASE_MS`].
    pub fn claim_probe(&mut self, now_ms: u64) -> ProbeClaim {
        if self.circuit == Circuit::Closed && now_ms >= self.cooldown_until_ms {
            return ProbeClaim::NotNeeded;
        }
        if self.take_probe(now_ms) {
            return ProbeClaim::Granted { lease_until_ms: now_ms + PROBE_LEASE_MS };
        }
        ProbeClaim::Busy { until_ms: self.unavailable_until(now_ms) }
    }

    /// When the endpoint may next be tried (`now_ms` when it may be now).
    pub fn unavailable_until(&self, now_ms: u64) -> u64 {
        let circuit = match self.circuit {
            Circuit::Closed => now_ms,
            Circuit::Open { until_ms } => until_ms,
            Circuit::HalfOpen { probe_lease_until_ms, .. } => probe_lease_until_ms,
        };
        circuit.max(self.cooldown_until_ms).max(now_ms)
    }
}

/// What an isolate does before its first attempt at an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeAttempt {
    /// Not a probe (the endpoint is not recovering): send, no call.
    Go,
    /// A probe is due: ask the health object for the lease first.
    Ask,
    /// This isolate is already claiming or sending the probe: skip the endpoint.
    Busy,
}

/// The probes this isolate is claiming or sending, by endpoint, with when its hold
/// ends (the object's lease, or [`PROBE_LEASE_MS`] while it is asked).
#[derive(Debug, Default)]
pub struct ProbeClaims {
    held: HashMap<String, u64>,
}

impl ProbeClaims {
    /// Decides, from this isolate's breaker and the object's last known state, whether
    /// an attempt at `id` is a probe that needs the object's lease. `Ask` marks the
    /// claim as in progress, so concurrent requests here do not ask again.
    pub fn before_attempt(
        &mut self,
        id: &str,
        local: Option<&Breaker>,
        remote: Option<&Breaker>,
        now_ms: u64,
    ) -> BeforeAttempt {
        if self.held.get(id).is_some_and(|&until| now_ms < until) {
            return BeforeAttempt::Busy;
        }
        let due = [local, remote].into_iter().flatten().any(|b| b.probe_due(now_ms));
        if !due {
            self.held.remove(id);
            return BeforeAttempt::Go;
        }
        self.held.insert(id.to_string(), now_ms + PROBE_LEASE_MS);
        BeforeAttempt::Ask
    }

    /// The object's answer (`None`: it could not answer in time). True when the
    /// attempt may go. Without an answer, this isolate still sends only one probe at
    /// a time (its own hold stays until the outcome or the lease's end).
    pub fn answered(&mut self, id: &str, claim: Option<ProbeClaim>, now_ms: u64) -> bool {
        match claim {
            Some(ProbeClaim::Granted { lease_until_ms }) => {
                self.held.insert(id.to_string(), lease_until_ms);
                true
            }
            Some(ProbeClaim::NotNeeded) => {
                self.held.remove(id);
                true
            }
            Some(ProbeClaim::Busy { .. }) => {
                self.held.remove(id);
                false
            }
            None => {
                self.held.insert(id.to_string(), now_ms + PROBE_LEASE_MS);
                true
            }
        }
    }

    /// An attempt's outcome: true when it was this isolate's probe ending (the hold
    /// is released, and the object should hear of it at once). Statistics that ride
    /// along (quota, the end of a stream) do not end a probe.
    pub fn outcome(&mut self, id: &str, outcome: &Outcome) -> bool {
        let ends = matches!(
            outcome,
            Outcome::Success { .. } | Outcome::Failure | Outcome::AuthFailure | Outcome::RateLimited { .. }
        );
        ends && self.held.remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000;

    fn opened_at(now: u64) -> Breaker {
        let mut b = Breaker::default();
        for _ in 0..5 {
            b.record(Outcome::Failure, now, 0.0);
        }
        b
    }

    #[test]
    fn a_closed_endpoint_needs_no_probe_and_no_lease() {
        let mut b = Breaker::default();
        assert!(!b.probe_due(T0));
        assert_eq!(b.claim_probe(T0), ProbeClaim::NotNeeded);
        assert_eq!(b.circuit, Circuit::Closed);
    }

    #[test]
    fn the_object_grants_one_lease_and_tells_the_others_until_when() {
        let mut b = opened_at(T0);
        let reopen = T0 + 30_000;
        assert!(!b.probe_due(reopen - 1));
        assert_eq!(b.claim_probe(reopen - 1), ProbeClaim::Busy { until_ms: reopen });
        assert!(b.probe_due(reopen));
        assert_eq!(b.claim_probe(reopen), ProbeClaim::Granted { lease_until_ms: reopen + PROBE_LEASE_MS });
        for later in [reopen, reopen + 1, reopen + PROBE_LEASE_MS - 1] {
            assert_eq!(b.claim_probe(later), ProbeClaim::Busy { until_ms: reopen + PROBE_LEASE_MS }, "at {later}");
        }
        assert!(!b.probe_due(reopen + 1));
    }

    #[test]
    fn an_unreported_lease_expires_and_the_next_caller_gets_it() {
        let mut b = opened_at(T0);
        let reopen = T0 + 30_000;
        assert!(matches!(b.claim_probe(reopen), ProbeClaim::Granted { .. }));
        let expired = reopen + PROBE_LEASE_MS;
        assert!(b.probe_due(expired));
        assert_eq!(b.claim_probe(expired), ProbeClaim::Granted { lease_until_ms: expired + PROBE_LEASE_MS });
    }

    #[test]
    fn a_reported_success_frees_the_lease_at_once_and_two_close_the_circuit() {
        let mut b = opened_at(T0);
        let reopen = T0 + 30_000;
        assert!(matches!(b.claim_probe(reopen), ProbeClaim::Granted { .. }));
        b.record(Outcome::Success { latency_ms: 5 }, reopen + 100, 0.0);
        assert_eq!(b.claim_probe(reopen + 100), ProbeClaim::Granted { lease_until_ms: reopen + 100 + PROBE_LEASE_MS });
        b.record(Outcome::Success { latency_ms: 5 }, reopen + 200, 0.0);
        assert_eq!(b.circuit, Circuit::Closed);
        assert_eq!(b.claim_probe(reopen + 200), ProbeClaim::NotNeeded);
    }

    #[test]
    fn a_reported_failure_reopens_and_busy_names_the_new_end() {
        let mut b = opened_at(T0);
        let reopen = T0 + 30_000;
        assert!(matches!(b.claim_probe(reopen), ProbeClaim::Granted { .. }));
        b.record(Outcome::Failure, reopen + 50, 0.0);
        // Second opening in a row: 60 s.
        assert_eq!(b.claim_probe(reopen + 60), ProbeClaim::Busy { until_ms: reopen + 50 + 60_000 });
    }

    #[test]
    fn a_cooling_endpoint_is_busy_until_its_cooldown_ends() {
        let mut b = Breaker::default();
        b.record(Outcome::RateLimited { retry_after_ms: Some(2_000) }, T0, 0.0);
        assert_eq!(b.claim_probe(T0 + 1), ProbeClaim::Busy { until_ms: T0 + 2_000 });
        assert_eq!(b.claim_probe(T0 + 2_000), ProbeClaim::NotNeeded);
    }

    #[test]
    fn an_isolate_asks_only_for_endpoints_due_a_probe() {
        let mut claims = ProbeClaims::default();
        let healthy = Breaker::default();
        assert_eq!(claims.before_attempt("a", Some(&healthy), Some(&healthy), T0), BeforeAttempt::Go);
        assert_eq!(claims.before_attempt("a", None, None, T0), BeforeAttempt::Go);
        // Open elsewhere (only the object knows) and its period is over: ask.
        let open = opened_at(T0 - 30_000);
        assert_eq!(claims.before_attempt("a", Some(&healthy), Some(&open), T0), BeforeAttempt::Ask);
        // Open here, still in its period: not due (the plan dropped it or keeps it as a last resort).
        let mut claims = ProbeClaims::default();
        assert_eq!(claims.before_attempt("b", Some(&opened_at(T0)), None, T0), BeforeAttempt::Go);
    }

    #[test]
    fn concurrent_requests_in_one_isolate_ask_once() {
        let mut claims = ProbeClaims::default();
        let open = opened_at(T0 - 30_000);
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0), BeforeAttempt::Ask);
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 1), BeforeAttempt::Busy);
        assert!(claims.answered("a", Some(ProbeClaim::Granted { lease_until_ms: T0 + PROBE_LEASE_MS }), T0 + 2));
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 3), BeforeAttempt::Busy);
        // Quota readings ride along with the answer; they do not end the probe.
        assert!(!claims.outcome("a", &Outcome::Quota(Default::default())));
        assert!(claims.outcome("a", &Outcome::Success { latency_ms: 3 }));
        assert!(!claims.outcome("a", &Outcome::Success { latency_ms: 3 }), "released once");
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 4), BeforeAttempt::Ask);
    }

    #[test]
    fn a_busy_answer_skips_and_the_next_request_asks_again_later() {
        let mut claims = ProbeClaims::default();
        let open = opened_at(T0 - 30_000);
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0), BeforeAttempt::Ask);
        assert!(!claims.answered("a", Some(ProbeClaim::Busy { until_ms: T0 + 9_000 }), T0));
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 1), BeforeAttempt::Ask);
    }

    #[test]
    fn without_an_answer_the_isolate_sends_one_probe_at_a_time_until_the_lease_would_end() {
        let mut claims = ProbeClaims::default();
        let open = opened_at(T0 - 30_000);
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0), BeforeAttempt::Ask);
        assert!(claims.answered("a", None, T0 + 10), "falls back to this isolate's own probe");
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 11), BeforeAttempt::Busy);
        assert_eq!(claims.before_attempt("a", Some(&open), None, T0 + 10 + PROBE_LEASE_MS), BeforeAttempt::Ask);
    }
}
