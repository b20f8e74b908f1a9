use super::*;

const T0: u64 = 1_700_000_000_000;

#[test]
fn exactly_the_limit_passes_at_one_instant() {
    for limit in [1, 2, 7, 50, 1000] {
        let mut g = Gcra::default();
        let rate = Rate::per_minute(limit);
        let passed = (0..limit * 4).filter(|_| g.check(rate, T0, 1).allowed).count() as u64;
        assert_eq!(passed, limit, "limit {limit}");
    }
}

#[test]
fn first_request_leaves_limit_minus_one_and_denials_say_when() {
    let mut g = Gcra::default();
    let rate = Rate::per_minute(60);
    let first = g.check(rate, T0, 1);
    assert!(first.allowed);
    assert_eq!(first.remaining, 59);
    assert_eq!(first.reset_ms, 1_000);
    for _ in 0..59 {
        assert!(g.check(rate, T0, 1).allowed);
    }
    let denied = g.check(rate, T0, 1);
    assert!(!denied.allowed && !denied.never);
    assert_eq!(denied.remaining, 0);
    assert_eq!(denied.retry_after_ms, 1_000, "one emission interval");
    assert_eq!(denied.reset_ms, 60_000);
    // After exactly the retry delay one more passes, not two.
    assert!(g.check(rate, T0 + 1_000, 1).allowed);
    assert!(!g.check(rate, T0 + 1_000, 1).allowed);
}

#[test]
fn never_admits_more_than_burst_plus_elapsed() {
    let rate = Rate::per_minute(10);
    let mut g = Gcra::default();
    let mut admitted = 0u64;
    // One attempt every 100 ms for 2 minutes.
    for step in 0..1_200u64 {
        if g.check(rate, T0 + step * 100, 1).allowed {
            admitted += 1;
        }
        let elapsed = step * 100;
        assert!(admitted <= 10 + elapsed / 6_000 + 1, "at {elapsed} ms: {admitted}");
    }
    assert!(admitted >= 28, "{admitted}");
}

#[test]
fn cost_above_burst_can_never_pass() {
    let mut g = Gcra::default();
    let d = g.check(Rate::per_minute(100), T0, 101);
    assert!(!d.allowed && d.never);
    assert_eq!(g, Gcra::default(), "nothing consumed");
}

#[test]
fn refund_and_overrun() {
    let rate = Rate::per_minute(1_000);
    let mut g = Gcra::default();
    assert!(g.check(rate, T0, 800).allowed);
    assert_eq!(g.peek(rate, T0).remaining, 200);
    g.refund(rate, T0, 500);
    assert_eq!(g.peek(rate, T0).remaining, 700);
    g.refund(rate, T0, 10_000);
    assert_eq!(g.peek(rate, T0).remaining, 1_000, "never above full");
    g.charge(rate, T0, 5_000);
    let d = g.peek(rate, T0);
    assert_eq!(d.remaining, 0);
    assert!(d.reset_ms <= 120_000, "debt capped at one extra window: {}", d.reset_ms);
}

fn admit(id: &str, tokens: u64, limits: Limits) -> Admit {
    Admit {
        scopes: vec![Scoped::whole(limits)],
        reservation_id: id.into(),
        estimated_tokens: tokens,
        estimated_micro_usd: 0,
        lease_ms: 60_000,
        settle_first: Vec::new(),
        allot: 0,
    }
}

#[test]
fn admission_checks_all_limits_and_consumes_nothing_on_denial() {
    let limits = Limits { requests_per_minute: Some(5), tokens_per_minute: Some(1_000), max_concurrent: None };
    let mut s = LimiterState::default();
    let a = s.admit(&admit("r1", 600, limits), T0);
    assert!(a.allowed);
    assert_eq!(a.requests.unwrap().remaining, 4);
    assert_eq!(a.tokens.unwrap().remaining, 400);
    let b = s.admit(&admit("r2", 600, limits), T0);
    assert!(!b.allowed);
    assert_eq!(b.denied_by, Some(Denial::Tokens));
    assert!(b.retry_after_ms > 0);
    // The denied request used no request cell.
    assert_eq!(s.admit(&admit("r3", 100, limits), T0).requests.unwrap().remaining, 3);
}

#[test]
fn reconcile_refunds_overruns_and_is_idempotent() {
    let limits = Limits { requests_per_minute: None, tokens_per_minute: Some(1_000), max_concurrent: None };
    let mut s = LimiterState::default();
    assert!(s.admit(&admit("r1", 900, limits), T0).allowed);
    assert!(!s.admit(&admit("r2", 200, limits), T0).allowed);
    assert!(s.settle("r1", Used { tokens: Some(100), micro_usd: None }, &[Scoped::whole(limits)], false, T0));
    assert!(
        !s.settle("r1", Used { tokens: Some(100), micro_usd: None }, &[Scoped::whole(limits)], false, T0),
        "second settle is a no-op"
    );
    assert!(s.admit(&admit("r2", 200, limits), T0).allowed, "the refund made room");
    assert!(s.settle("r2", Used { tokens: Some(1_500), micro_usd: None }, &[Scoped::whole(limits)], false, T0));
    assert!(!s.admit(&admit("r3", 1, limits), T0).allowed, "the overrun is debt");
}

#[test]
fn a_request_without_max_tokens_is_capped_to_the_bucket_not_refused_forever() {
    let limits = Limits { requests_per_minute: None, tokens_per_minute: Some(500), max_concurrent: None };
    let mut s = LimiterState::default();
    assert!(s.admit(&admit("big", 5_000, limits), T0).allowed);
}

#[test]
fn concurrency_leases_release_on_settle_and_expire() {
    let limits = Limits { requests_per_minute: None, tokens_per_minute: None, max_concurrent: Some(2) };
    let mut s = LimiterState::default();
    assert!(s.admit(&admit("a", 1, limits), T0).allowed);
    assert!(s.admit(&admit("b", 1, limits), T0).allowed);
    let c = s.admit(&admit("c", 1, limits), T0);
    assert_eq!(c.denied_by, Some(Denial::Concurrency));
    s.settle("a", Used { tokens: None, micro_usd: None }, &[Scoped::whole(limits)], false, T0);
    assert!(s.admit(&admit("c", 1, limits), T0).allowed);
    assert_eq!(s.in_flight(), 2);
    // Lost holders: leases expire after lease_ms.
    assert!(s.admit(&admit("d", 1, limits), T0 + 60_001).allowed);
    assert_eq!(s.in_flight(), 1);
}

#[test]
fn a_retried_admission_is_not_counted_twice() {
    let limits = Limits { requests_per_minute: Some(2), tokens_per_minute: Some(1_000), max_concurrent: Some(5) };
    let mut s = LimiterState::default();
    assert!(s.admit(&admit("a", 100, limits), T0).allowed);
    let again = s.admit(&admit("a", 100, limits), T0);
    assert!(again.allowed, "the retry of an admitted request is admitted");
    assert_eq!(s.in_flight(), 1);
    assert!(s.admit(&admit("b", 100, limits), T0).allowed, "the retry did not use the second request of the minute");
    assert_eq!(s.admit(&admit("c", 100, limits), T0).denied_by, Some(Denial::Requests));
}

#[test]
fn settlements_carried_by_an_admission_free_their_slots_first() {
    let limits = Limits { requests_per_minute: None, tokens_per_minute: Some(1_000), max_concurrent: Some(1) };
    let mut s = LimiterState::default();
    assert!(s.admit(&admit("a", 900, limits), T0).allowed);
    assert_eq!(s.admit(&admit("b", 1, limits), T0).denied_by, Some(Denial::Concurrency));
    let mut next = admit("b", 900, limits);
    next.settle_first = vec![Settle {
        reservation_id: "a".into(),
        used: Used { tokens: Some(10), micro_usd: None },
        scopes: vec![Scoped::whole(limits)],
        cancel: false,
        served_model: None,
        slot: None,
    }];
    assert!(s.admit(&next, T0).allowed, "a's slot and unused tokens came back before b was checked");
    assert_eq!(s.in_flight(), 1);
}

#[test]
fn state_round_trips_through_json() {
    let mut s = LimiterState::default();
    let limits = Limits { requests_per_minute: Some(3), tokens_per_minute: Some(100), max_concurrent: Some(1) };
    s.admit(&admit("x", 10, limits), T0);
    let back: LimiterState = crate::json_value::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}

fn scoped_admit(id: &str, tokens: u64, scopes: &[Scoped]) -> Admit {
    Admit {
        scopes: scopes.to_vec(),
        reservation_id: id.into(),
        estimated_tokens: tokens,
        estimated_micro_usd: 0,
        lease_ms: 60_000,
        settle_first: Vec::new(),
        allot: 0,
    }
}

#[test]
fn a_model_scope_limits_its_model_and_a_denial_there_consumes_nothing_elsewhere() {
    let whole = Scoped::whole(Limits { requests_per_minute: Some(10), ..Limits::default() });
    let model = Scoped::model("gpt-4o", Limits { requests_per_minute: Some(2), ..Limits::default() });
    let mut s = LimiterState::default();
    assert!(s.admit(&scoped_admit("a", 1, &[whole.clone(), model.clone()]), T0).allowed);
    let b = s.admit(&scoped_admit("b", 1, &[whole.clone(), model.clone()]), T0);
    assert!(b.allowed);
    assert_eq!(b.requests.unwrap().remaining, 0, "the tighter (model) scope is reported");
    let c = s.admit(&scoped_admit("c", 1, &[whole.clone(), model.clone()]), T0);
    assert!(!c.allowed);
    assert_eq!(c.denied_by, Some(Denial::Requests));
    assert_eq!(c.denied_scope.as_deref(), Some("model:gpt-4o"));
    assert_eq!(c.requests.unwrap().limit, 2);
    // Other models still have the rest of the whole key's budget: 10 - 2 = 8.
    let others: usize = (0..20)
        .filter(|i| s.admit(&scoped_admit(&format!("o{i}"), 1, std::slice::from_ref(&whole)), T0).allowed)
        .count();
    assert_eq!(others, 8);
}

#[test]
fn concurrency_is_counted_per_scope() {
    let whole = Scoped::whole(Limits { max_concurrent: Some(3), ..Limits::default() });
    let model = Scoped::model("big", Limits { max_concurrent: Some(1), ..Limits::default() });
    let mut s = LimiterState::default();
    assert!(s.admit(&scoped_admit("a", 1, &[whole.clone(), model.clone()]), T0).allowed);
    let b = s.admit(&scoped_admit("b", 1, &[whole.clone(), model.clone()]), T0);
    assert_eq!((b.denied_by, b.denied_scope.as_deref()), (Some(Denial::Concurrency), Some("model:big")));
    assert!(s.admit(&scoped_admit("c", 1, std::slice::from_ref(&whole)), T0).allowed);
    assert!(s.admit(&scoped_admit("d", 1, std::slice::from_ref(&whole)), T0).allowed);
    let e = s.admit(&scoped_admit("e", 1, std::slice::from_ref(&whole)), T0);
    assert_eq!((e.denied_by, e.denied_scope.as_deref()), (Some(Denial::Concurrency), Some("")));
    assert!(s.settle("a", Used { tokens: None, micro_usd: None }, &[whole.clone(), model.clone()], false, T0));
    assert!(s.admit(&scoped_admit("b", 1, &[whole, model]), T0).allowed);
}

#[test]
fn cancel_gives_back_the_request_cell_and_the_tokens() {
    let limits = Limits { requests_per_minute: Some(2), tokens_per_minute: Some(100), max_concurrent: None };
    let scopes = [Scoped::whole(limits)];
    let mut s = LimiterState::default();
    assert!(s.admit(&scoped_admit("a", 60, &scopes), T0).allowed);
    assert!(s.settle("a", Used { tokens: Some(0), micro_usd: None }, &scopes, true, T0));
    let again = s.admit(&scoped_admit("b", 60, &scopes), T0);
    assert!(again.allowed);
    assert_eq!(again.requests.unwrap().remaining, 1, "the cancelled request did not count");
    assert_eq!(again.tokens.unwrap().remaining, 40);
}

#[test]
fn tighten_keeps_the_decision_with_less_room() {
    let decision =
        |limit, remaining| Decision { allowed: true, never: false, limit, remaining, reset_ms: 0, retry_after_ms: 0 };
    let mut key = Admission {
        allowed: true,
        denied_by: None,
        denied_scope: None,
        never: false,
        requests: Some(decision(100, 90)),
        tokens: None,
        budget: None,
        retry_after_ms: 0,
        allotted: None,
    };
    let team = Admission { requests: Some(decision(20, 3)), tokens: Some(decision(1_000, 500)), ..key.clone() };
    key.tighten(&team);
    assert_eq!(key.requests.unwrap().limit, 20);
    assert_eq!(key.tokens.unwrap().limit, 1_000);
}

fn costly(id: &str, micro_usd: u64, scopes: &[Scoped]) -> Admit {
    Admit {
        scopes: scopes.to_vec(),
        reservation_id: id.into(),
        estimated_tokens: 1,
        estimated_micro_usd: micro_usd,
        lease_ms: 60_000,
        settle_first: Vec::new(),
        allot: 0,
    }
}

// 2026-11-30T12:00Z; December starts 12 h later.
const NOV_30: u64 = 1_796_040_000_000;
const DEC_1: u64 = 1_796_083_200_000;

#[test]
fn a_budget_reserves_the_estimate_so_racing_requests_cannot_overspend() {
    let scopes = [Scoped::whole(Limits::default()).with_budget(Some(1_000_000))]; // $1
    let mut s = LimiterState::default();
    // Ten concurrent requests estimated at $0.30 each: exactly three fit.
    let admitted = (0..10).filter(|i| s.admit(&costly(&format!("r{i}"), 300_000, &scopes), NOV_30).allowed).count();
    assert_eq!(admitted, 3);
    let denied = s.admit(&costly("late", 300_000, &scopes), NOV_30);
    assert_eq!(denied.denied_by, Some(Denial::Budget));
    assert!(denied.never, "no retry helps before the reset");
    let status = denied.budget.unwrap();
    assert_eq!((status.limit_micro_usd, status.spent_micro_usd), (1_000_000, 900_000));
    assert_eq!(status.resets_at_ms, DEC_1);
    assert_eq!(denied.retry_after_ms, DEC_1 - NOV_30);
    // The real costs were lower: settling makes room again.
    for i in 0..3 {
        assert!(s.settle(
            &format!("r{i}"),
            Used { tokens: Some(10), micro_usd: Some(100_000) },
            &scopes,
            false,
            NOV_30
        ));
    }
    assert!(s.admit(&costly("next", 300_000, &scopes), NOV_30).allowed, "spent $0.30, so $0.30 more fits");
}

#[test]
fn a_spent_budget_refuses_even_unpriced_requests_and_resets_next_month() {
    let scopes = [Scoped::whole(Limits::default()).with_budget(Some(500))];
    let mut s = LimiterState::default();
    assert!(s.admit(&costly("a", 0, &scopes), NOV_30).allowed);
    s.settle("a", Used { tokens: Some(10), micro_usd: Some(800) }, &scopes, false, NOV_30);
    assert_eq!(s.admit(&costly("b", 0, &scopes), NOV_30).denied_by, Some(Denial::Budget));
    assert!(s.admit(&costly("c", 0, &scopes), DEC_1).allowed, "a new month, a new budget");
    // A reservation from November settled in December does not touch December's spend.
    let mut t = LimiterState::default();
    assert!(t.admit(&costly("nov", 400, &scopes), NOV_30).allowed);
    t.settle("nov", Used { tokens: Some(1), micro_usd: Some(450) }, &scopes, false, DEC_1);
    assert_eq!(t.admit(&costly("dec", 0, &scopes), DEC_1).budget.unwrap().spent_micro_usd, 0);
}

#[test]
fn the_report_shows_this_months_spending() {
    let scopes = [Scoped::whole(Limits::default()).with_budget(Some(10_000_000))];
    let mut s = LimiterState::default();
    assert!(s.admit(&costly("a", 250_000, &scopes), NOV_30).allowed);
    let report = s.report(NOV_30);
    assert_eq!(report.in_flight, 1);
    assert_eq!(report.spent_usd_this_month.get("all"), Some(&0.25));
    assert!(s.report(DEC_1).spent_usd_this_month.is_empty());
}

#[test]
fn cancelled_and_lost_reservations_of_a_budget() {
    let scopes = [Scoped::whole(Limits::default()).with_budget(Some(1_000))];
    let mut s = LimiterState::default();
    assert!(s.admit(&costly("x", 600, &scopes), NOV_30).allowed);
    s.settle("x", Used::NOTHING, &scopes, true, NOV_30);
    assert!(s.admit(&costly("y", 600, &scopes), NOV_30).allowed, "a cancelled request costs nothing");
    // A holder that vanished keeps its estimate charged (never under-charge).
    let later = s.admit(&costly("z", 600, &scopes), NOV_30 + 120_000);
    assert_eq!(later.denied_by, Some(Denial::Budget));
}

#[test]
fn openai_durations() {
    assert_eq!(openai_duration(20), "20ms");
    assert_eq!(openai_duration(1_000), "1s");
    assert_eq!(openai_duration(1_001), "2s");
    assert_eq!(openai_duration(360_000), "6m0s");
    assert_eq!(openai_duration(3_723_000), "1h2m3s");
}

#[test]
fn only_the_model_that_served_is_charged_when_an_alias_could_use_several() {
    let one_a_minute = Limits { requests_per_minute: Some(1), ..Limits::default() };
    let big = Scoped::model("big", one_a_minute);
    let small = Scoped::model("small", one_a_minute);
    let scopes = [big.clone(), small.clone()];
    let mut s = LimiterState::default();
    // An alias over both models: both limits are checked, the small one served it.
    assert!(s.admit(&scoped_admit("a", 1, &scopes), T0).allowed);
    assert!(s.settle_served("a", Used { tokens: Some(1), micro_usd: None }, &scopes, Some("small"), T0));
    assert!(s.admit(&scoped_admit("b", 1, std::slice::from_ref(&big)), T0).allowed, "big was given back");
    assert!(!s.admit(&scoped_admit("c", 1, std::slice::from_ref(&small)), T0).allowed, "small was charged");
}
