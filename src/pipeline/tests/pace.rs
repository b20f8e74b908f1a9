//! Whether a JSON answer is asked for as a stream upstream: only when it could
//! outlast the first-byte deadline, judged from its output bound and the endpoint's
//! learned pace.

use super::*;
use crate::protocol::openai::ChatRequest;
use crate::routing::{EndpointHealth, HealthSnapshot, Pace};

/// An endpoint that wrote 5,000 tokens a second and started within 5 ms.
const FAST: Pace = Pace { tokens_per_second: Some(5_000.0), first_token_ms: Some(5.0) };
/// A provider at a usual model's speed.
const SLOW: Pace = Pace { tokens_per_second: Some(50.0), first_token_ms: Some(400.0) };

fn request(extra: &str) -> ChatRequest {
    let body = format!(r#"{{"model":"m",{extra}"messages":[{{"role":"user","content":"hi"}}]}}"#);
    ChatRequest::parse(body.as_bytes()).unwrap()
}

#[test]
fn a_json_answer_streams_upstream_only_when_it_could_outlast_the_first_byte_deadline() {
    let unbounded = request("");
    // 16,384 tokens at 5,000/s: ~3.3 s, twice within 30 s.
    assert!(!chat::may_outlast_first_byte(&unbounded, None, FAST, 30_000), "fast: JSON");
    assert!(chat::may_outlast_first_byte(&unbounded, None, FAST, 5_000), "not twice within 5 s");
    assert!(chat::may_outlast_first_byte(&unbounded, None, SLOW, 30_000), "slow: a stream");
    assert!(chat::may_outlast_first_byte(&unbounded, None, Pace::default(), 30_000), "unknown: a stream");
    let no_speed = Pace { tokens_per_second: None, first_token_ms: Some(5.0) };
    assert!(chat::may_outlast_first_byte(&unbounded, None, no_speed, 30_000), "a latency alone says nothing of length");

    // The target's ceiling bounds an answer the request does not: 1,000 tokens at 50/s is 20.4 s.
    assert!(!chat::may_outlast_first_byte(&unbounded, Some(1_000), SLOW, 60_000));
    assert!(chat::may_outlast_first_byte(&unbounded, Some(1_000), SLOW, 30_000));
    // So does the request's own limit above the short-answer threshold: 600 tokens at 50/s is 12.4 s.
    assert!(!chat::may_outlast_first_byte(&request(r#""max_tokens":600,"#), None, SLOW, 30_000));
    assert!(chat::may_outlast_first_byte(&request(r#""max_completion_tokens":600,"#), None, SLOW, 20_000));

    // Short answers stay JSON whatever is known, and a streamed request is a stream anyway.
    let short = request(r#""max_tokens":100,"#);
    assert!(!chat::may_outlast_first_byte(&short, None, Pace::default(), 1_000));
    assert!(!chat::may_outlast_first_byte(&short, None, SLOW, 1_000));
    assert!(!chat::may_outlast_first_byte(&request(r#""stream":true,"#), None, Pace::default(), 1_000));
}

/// Model `m`'s endpoints with a learned pace (`a` and `b` share a host).
fn learned(pace: Pace) -> HealthSnapshot {
    let health = EndpointHealth {
        available: true,
        ewma_latency_ms: pace.first_token_ms,
        tokens_per_second: pace.tokens_per_second,
        ..Default::default()
    };
    ["a", "b", "e"].iter().map(|id| (id.to_string(), health.clone())).collect()
}

fn run_learned(fake: &Fake, config: &Config, health: &HealthSnapshot) -> ChatRun {
    let plan = plan_with_health(config, "m", &everywhere(config), health);
    let mut call =
        chat_call(&dialects::OpenAiChat, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    run_call(fake, config, &plan, &everywhere(config), &dialects::OpenAiChat, &mut call, None)
}

#[test]
fn a_fast_endpoint_is_asked_for_json_and_its_silence_counts_against_it() {
    let config = config(json!({"first_byte_timeout_ms": 30_000}));
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let (result, _) = run_learned(&fake, &config, &learned(FAST));
    assert_eq!(whole_body(&result.unwrap().0)["choices"][0]["message"]["content"], "hi");
    assert!(fake.sent_bodies.borrow()[0].get("stream").is_none(), "the provider's JSON path");

    // Predicted to answer within a fraction of the deadline: a silent endpoint is failing.
    let silent = Scripted { takes_ms: 40_000, ..ok_json(completion("x")) };
    let fake = Fake::new().script("us.example", vec![silent, ok_json(completion("up-b"))]);
    let (result, trail) = run_learned(&fake, &config, &learned(FAST));
    assert_eq!(result.unwrap().1, "b");
    assert_eq!(trail.attempts[0].outcome, "timeout");
    assert!(fake.health.borrow().iter().any(|(p, o)| p == "a" && *o == Outcome::Failure), "{:?}", fake.health.borrow());
}

#[test]
fn a_slow_or_unmeasured_endpoint_is_asked_for_a_stream() {
    let config = config(json!({"first_byte_timeout_ms": 30_000}));
    for health in [learned(SLOW), HealthSnapshot::new()] {
        let fake = Fake::new().script("us.example", vec![openai_stream("a long answer", 3, true)]);
        let (result, _) = run_learned(&fake, &config, &health);
        assert_eq!(whole_body(&result.unwrap().0)["choices"][0]["message"]["content"], "a long answer");
        assert_eq!(fake.sent_bodies.borrow()[0]["stream"], true);
    }
}
