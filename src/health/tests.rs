use super::*;

const T0: u64 = 1_000_000;

fn fail(b: &mut Breaker, n: u32, now: u64) {
    for _ in 0..n {
        b.record(Outcome::Failure, now, 0.0);
    }
}

#[test]
fn fifth_consecutive_failure_opens_not_the_fourth() {
    let mut b = Breaker::default();
    fail(&mut b, 4, T0);
    assert_eq!(b.circuit, Circuit::Closed);
    assert!(b.available(T0));
    fail(&mut b, 1, T0);
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 30_000 });
    assert!(!b.available(T0 + 29_999));
    assert!(b.available(T0 + 30_000));
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let mut b = Breaker::default();
    fail(&mut b, 4, T0);
    b.record(Outcome::Success { latency_ms: 100 }, T0, 0.0);
    fail(&mut b, 4, T0);
    assert_eq!(b.circuit, Circuit::Closed);
}

#[test]
fn failure_ratio_over_twenty_requests_opens() {
    let mut b = Breaker::default();
    for i in 0..20 {
        let outcome = if i % 2 == 1 { Outcome::Failure } else { Outcome::Success { latency_ms: 50 } };
        b.record(outcome, T0 + i * 100, 0.0);
        if i < 19 {
            assert_eq!(b.circuit, Circuit::Closed, "request {i}");
        }
    }
    assert!(matches!(b.circuit, Circuit::Open { .. }), "10 of 20 failed");
}

#[test]
fn old_failures_leave_the_window() {
    let mut b = Breaker::default();
    for i in 0..19 {
        b.record(if i % 2 == 0 { Outcome::Failure } else { Outcome::Success { latency_ms: 1 } }, T0, 0.0);
    }
    // 70 s later the window is empty again.
    assert_eq!(b.window(T0 + 70_000), (0, 0));
    b.record(Outcome::Failure, T0 + 70_000, 0.0);
    assert_eq!(b.circuit, Circuit::Closed);
}

#[test]
fn half_open_admits_one_probe_and_two_successes_close() {
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    let reopen = T0 + 30_000;
    assert!(!b.take_probe(reopen - 1));
    assert!(b.take_probe(reopen));
    assert!(matches!(b.circuit, Circuit::HalfOpen { .. }));
    assert!(!b.available(reopen + 1), "one probe at a time");
    assert!(!b.take_probe(reopen + 1));
    b.record(Outcome::Success { latency_ms: 10 }, reopen + 100, 0.0);
    assert!(b.take_probe(reopen + 100), "next probe may go");
    b.record(Outcome::Success { latency_ms: 10 }, reopen + 200, 0.0);
    assert_eq!(b.circuit, Circuit::Closed);
}

#[test]
fn a_lost_probe_lease_expires() {
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    assert!(b.take_probe(T0 + 30_000));
    assert!(!b.available(T0 + 30_000 + PROBE_LEASE_MS - 1));
    assert!(b.available(T0 + 30_000 + PROBE_LEASE_MS));
}

#[test]
fn failed_probe_reopens_with_backoff_and_jitter() {
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    assert!(b.take_probe(T0 + 30_000));
    b.record(Outcome::Failure, T0 + 30_000, 1.0);
    // Second opening: 60 s, plus 10% jitter at jitter = 1.0.
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 30_000 + 66_000 });
    // Backoff is capped at 300 s.
    let mut c = Breaker { open_count: 20, ..Breaker::default() };
    c.circuit = Circuit::HalfOpen { probe_lease_until_ms: 0, successes: 0 };
    c.record(Outcome::Failure, T0, 0.0);
    assert_eq!(c.circuit, Circuit::Open { until_ms: T0 + 300_000 });
}

#[test]
fn open_count_decays_while_healthy() {
    let mut b = Breaker { open_count: 3, last_decay_ms: T0, ..Breaker::default() };
    b.record(Outcome::Success { latency_ms: 1 }, T0 + 2 * K_DECAY_MS + 1, 0.0);
    assert_eq!(b.open_count, 1);
}

#[test]
fn rate_limits_cool_down_without_tripping() {
    let mut b = Breaker::default();
    for _ in 0..10 {
        b.record(Outcome::RateLimited { retry_after_ms: Some(2_000) }, T0, 0.0);
    }
    assert_eq!(b.circuit, Circuit::Closed);
    assert!(!b.available(T0 + 1_999));
    assert!(b.available(T0 + 2_000));
    // Without Retry-After: 5 s, doubling, capped at 60 s.
    let mut c = Breaker::default();
    c.record(Outcome::RateLimited { retry_after_ms: None }, T0, 0.0);
    assert_eq!(c.cooldown_until_ms, T0 + 5_000);
    c.record(Outcome::RateLimited { retry_after_ms: None }, T0, 0.0);
    assert_eq!(c.cooldown_until_ms, T0 + 10_000);
    for _ in 0..10 {
        c.record(Outcome::RateLimited { retry_after_ms: None }, T0, 0.0);
    }
    assert_eq!(c.cooldown_until_ms, T0 + 60_000);
    assert!(c.snapshot(T0).note.unwrap().contains("rate limited"));
}

#[test]
fn auth_failures_open_for_five_minutes_and_never_shorten() {
    let mut b = Breaker::default();
    b.record(Outcome::AuthFailure, T0, 0.0);
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 300_000 });
    b.record(Outcome::AuthFailure, T0 - 1000, 0.0);
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 300_000 });
}

#[test]
fn ewma_moves_toward_recent_latency() {
    let mut b = Breaker::default();
    b.record(Outcome::Success { latency_ms: 100 }, T0, 0.0);
    assert_eq!(b.ewma_latency_ms, Some(100.0));
    for i in 1..=20 {
        b.record(Outcome::Success { latency_ms: 1000 }, T0 + i * 1000, 0.0);
    }
    let ewma = b.ewma_latency_ms.unwrap();
    assert!(ewma > 900.0 && ewma <= 1000.0, "{ewma}");
    let snapshot = b.snapshot(T0);
    assert!(snapshot.available);
}

#[test]
fn state_round_trips_through_json_for_persistence() {
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    b.record(Outcome::RateLimited { retry_after_ms: Some(10) }, T0, 0.0);
    let text = serde_json::to_string(&b).unwrap();
    let back: Breaker = crate::json_value::from_str(&text).unwrap();
    assert_eq!(back, b);
}

#[test]
fn policy_tunes_threshold_and_open_time() {
    let policy = BreakerPolicy { consecutive_failures: 2, base_open_ms: 1_000, max_open_ms: 1_500 };
    let mut b = Breaker::default();
    b.record_with(&policy, Outcome::Failure, T0, 0.0);
    assert_eq!(b.circuit, Circuit::Closed);
    b.record_with(&policy, Outcome::Failure, T0, 0.0);
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 1_000 });
    assert!(b.take_probe(T0 + 1_000));
    b.record_with(&policy, Outcome::Failure, T0 + 1_000, 0.0);
    assert_eq!(b.circuit, Circuit::Open { until_ms: T0 + 1_000 + 1_500 }, "capped");
}

#[test]
fn outcomes_after_the_open_period_count_as_probes_without_a_claim() {
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    let later = T0 + 30_000;
    b.record(Outcome::Success { latency_ms: 5 }, later, 0.0);
    b.record(Outcome::Success { latency_ms: 5 }, later, 0.0);
    assert_eq!(b.circuit, Circuit::Closed);
    let mut c = Breaker::default();
    fail(&mut c, 5, T0);
    c.record(Outcome::Failure, later, 0.0);
    assert_eq!(c.circuit, Circuit::Open { until_ms: later + 60_000 }, "a failed implicit probe backs off");
}

#[test]
fn stats_track_percentiles_throughput_and_tool_call_validity() {
    let mut b = Breaker::default();
    for latency in [10, 20, 30, 40, 90, 90, 150, 300, 700, 5_000] {
        b.record(Outcome::Success { latency_ms: latency }, T0, 0.0);
    }
    assert_eq!(b.stats.percentile_ms(0.5), Some(100));
    assert_eq!(b.stats.percentile_ms(0.9), Some(800));
    assert_eq!(b.stats.percentile_ms(0.99), Some(6_400));
    b.record(Outcome::Finished { duration_ms: 2_000, output_tokens: Some(100), tool_calls_valid: Some(true) }, T0, 0.0);
    b.record(Outcome::Finished { duration_ms: 1_000, output_tokens: None, tool_calls_valid: Some(false) }, T0, 0.0);
    assert_eq!(b.stats.ewma_tokens_per_second, Some(50.0));
    assert_eq!(b.stats.tool_call_validity(), Some(0.5));
    assert_eq!(b.circuit, Circuit::Closed);
    assert_eq!(Breaker::default().stats.percentile_ms(0.5), None);
}

#[test]
fn learned_quota_is_statistics_only_and_shows_until_its_reset() {
    use crate::providers::quota::{QuotaReading, Window};
    let mut b = Breaker::default();
    fail(&mut b, 5, T0);
    let reading = QuotaReading {
        requests: Some(Window { remaining: 0, reset_at_ms: Some(T0 + 60_000) }),
        at_ms: T0,
        ..QuotaReading::default()
    };
    let outcome = Outcome::Quota(reading);
    assert!(outcome.is_bad_news(), "a window run dry is shared at once");
    b.record(outcome, T0 + 40_000, 0.0);
    assert!(matches!(b.circuit, Circuit::Open { .. }), "a reading is not a probe's outcome");
    assert_eq!(b.total_failures, 5);
    let snapshot = b.snapshot(T0 + 45_000);
    assert_eq!(snapshot.quota.and_then(|q| q.requests).map(|l| (l.remaining, l.reset_in_ms)), Some((0, 15_000)));
    assert_eq!(b.snapshot(T0 + 60_000).quota, None, "forgotten at its reset");
    // Room left is no news worth a flush.
    let roomy = QuotaReading { requests: Some(Window { remaining: 9, reset_at_ms: None }), ..reading };
    assert!(!Outcome::Quota(roomy).is_bad_news());
    // Old stored state (without quota) still loads.
    let old: Breaker = crate::json_value::from_str(r#"{"circuit":{"state":"closed"},"buckets":[{"start_ms":0,"successes":0,"failures":0},{"start_ms":0,"successes":0,"failures":0},{"start_ms":0,"successes":0,"failures":0},{"start_ms":0,"successes":0,"failures":0},{"start_ms":0,"successes":0,"failures":0},{"start_ms":0,"successes":0,"failures":0}],"consecutive_failures":0,"open_count":0,"last_decay_ms":0,"cooldown_until_ms":0,"last_cooldown_ms":0,"ewma_latency_ms":null,"last_sample_ms":0,"total_successes":0,"total_failures":0,"total_rate_limited":0}"#).unwrap();
    assert_eq!(old.quota, quota::Quota::default());
    // And a report with a quota reading round-trips as JSON (the batches to the health object).
    let json = serde_json::to_string(&Outcome::Quota(reading)).unwrap();
    assert_eq!(crate::json_value::from_str::<Outcome>(&json).unwrap(), Outcome::Quota(reading));
}

#[test]
fn only_openings_and_cooldowns_read_the_jitter() {
    let outcomes = [
        Outcome::Success { latency_ms: 40 },
        Outcome::Finished { duration_ms: 900, output_tokens: Some(90), tool_calls_valid: Some(true) },
        Outcome::AuthFailure,
        Outcome::Failure,
        Outcome::RateLimited { retry_after_ms: None },
    ];
    for outcome in outcomes {
        // Five failures in a row open the circuit: the next outcome then shows any jitter.
        let record = |jitter: f64| {
            let mut breaker = Breaker::default();
            for at in 0..5 {
                breaker.record(Outcome::Failure, 1_000 + at, 0.5);
            }
            breaker.record(outcome, 400_000, jitter);
            breaker
        };
        assert_eq!(record(0.0) != record(1.0), outcome.uses_jitter(), "{outcome:?}");
    }
}
