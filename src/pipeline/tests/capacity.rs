//! Context-window failover and quota learned from answers, driven through the
//! attempt loop with the fake ports.

use super::*;

/// Model `ctx`: `small` (8k window), `smaller` (4k), `large` (128k), `unknown` (no
/// window configured), each on its own host.
fn context_config(order: &[&str]) -> Config {
    let provider =
        |host: &str| json!({"kind": "openai", "base_url": format!("https://{host}.example/v1"), "region": "us"});
    let window = |id: &str| match id {
        "small" => json!({"context_window": 8_192}),
        "smaller" => json!({"context_window": 4_096}),
        "large" => json!({"context_window": 128_000}),
        _ => json!({}),
    };
    let targets: Vec<Value> = order
        .iter()
        .map(|id| json!({"provider": id, "model": format!("up-{id}"), "capabilities": window(id)}))
        .collect();
    let doc = json!({
        "version": 1,
        "providers": {"small": provider("small"), "smaller": provider("smaller"), "large": provider("large"), "unknown": provider("unknown")},
        "models": {"ctx": {"targets": targets}},
        "keys": {"0000000000000000000000000000000000000000000000000000000000000000": {"name": "any", "models": ["*"]}}
    });
    Config::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn too_long() -> Scripted {
    Scripted {
        body: br#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#.to_vec(),
        ..status(400, &[])
    }
}

#[test]
fn a_prompt_too_long_fails_over_to_a_larger_context_window_only() {
    let config = context_config(&["small", "smaller", "unknown", "large"]);
    let fake = Fake::new()
        .script("small.example", vec![too_long()])
        .script("large.example", vec![ok_json(completion("up-large"))]);
    let (result, trail) = run_chat(&fake, &config, "ctx", &everywhere(&config));
    assert_eq!(result.unwrap().1, "large");
    assert_eq!(fake.hosts(), ["small.example", "large.example"], "never the smaller or the unknown window");
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["context_length_exceeded", "ok"]);
    assert!(
        fake.health.borrow().iter().all(|(_, o)| !matches!(o, Outcome::Failure)),
        "the request's size, not the endpoint's fault"
    );
}

#[test]
fn a_prompt_too_long_for_the_largest_window_is_the_clients_answer() {
    // The largest first: what follows is smaller or equal (or unknown), so the provider's error is the answer.
    let config = context_config(&["large", "small", "unknown"]);
    let fake = Fake::new().script("large.example", vec![too_long()]);
    let (result, _) = run_chat(&fake, &config, "ctx", &everywhere(&config));
    let error = result.err().unwrap();
    assert_eq!(
        (error.status, error.code.as_ref(), error.param.as_deref()),
        (400, "context_length_exceeded", Some("messages"))
    );
    assert_eq!(fake.hosts(), ["large.example"]);

    // A second overflow on the larger target: nothing larger is left, its error is the answer.
    let config = context_config(&["smaller", "small", "large"]);
    let fake = Fake::new()
        .script("smaller.example", vec![too_long()])
        .script("small.example", vec![too_long()])
        .script("large.example", vec![too_long()]);
    let (result, trail) = run_chat(&fake, &config, "ctx", &everywhere(&config));
    assert_eq!(result.err().unwrap().status, 400);
    assert_eq!(fake.hosts(), ["smaller.example", "small.example", "large.example"], "each larger than the last");
    assert_eq!(trail.attempts.len(), 3);
}

#[test]
fn an_anthropic_prompt_too_long_is_read_as_a_context_overflow() {
    let doc = json!({
        "version": 1,
        "providers": {
            "anth": {"kind": "anthropic", "base_url": "https://anthropic.example/v1", "region": "us"},
            "big": {"kind": "openai", "base_url": "https://big.example/v1", "region": "us"}
        },
        "models": {"m": {"targets": [
            {"provider": "anth", "model": "claude", "capabilities": {"context_window": 200_000}},
            {"provider": "big", "model": "gemini-ish", "capabilities": {"context_window": 1_000_000}}
        ]}},
        "keys": {"0000000000000000000000000000000000000000000000000000000000000000": {"name": "any", "models": ["*"]}}
    });
    let config = Config::from_json(&doc.to_string()).unwrap();
    let anthropic_error = Scripted {
        body: br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}"#.to_vec(),
        ..status(400, &[])
    };
    let fake = Fake::new()
        .script("anthropic.example", vec![anthropic_error])
        .script("big.example", vec![ok_json(completion("gemini-ish"))]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "big");
}

#[test]
fn quota_is_learned_from_a_successful_answers_headers() {
    let config = config(json!({}));
    let mut reply = ok_json(completion("up-a"));
    reply.headers.push(("x-ratelimit-remaining-requests", "0".into()));
    reply.headers.push(("x-ratelimit-reset-requests", "20s".into()));
    reply.headers.push(("x-ratelimit-remaining-tokens", "4000".into()));
    let fake = Fake::new().script("us.example", vec![reply]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "a");
    let health = fake.health.borrow();
    let reading = health
        .iter()
        .find_map(|(p, o)| match o {
            Outcome::Quota(reading) if p == "a" => Some(*reading),
            _ => None,
        })
        .expect("a quota reading");
    // The fake's clock: 1 000 at the start, +10 for the provider's answer.
    assert_eq!(reading.requests.map(|w| (w.remaining, w.reset_at_ms)), Some((0, Some(1_010 + 20_000))));
    assert_eq!(reading.tokens.map(|w| w.remaining), Some(4_000));
}

#[test]
fn a_429_with_only_a_reset_cools_the_endpoint_down_until_then() {
    let config = config(json!({}));
    let limited = status(429, &[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "30s")]);
    let fake = Fake::new().script("us.example", vec![limited, ok_json(completion("up-b"))]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "b", "a long reset fails over at once");
    assert!(fake.slept.borrow().is_empty());
    assert_eq!(trail.attempts[0].outcome, "rate_limited");
    let health = fake.health.borrow();
    assert!(health.iter().any(|(p, o)| p == "a" && *o == Outcome::RateLimited { retry_after_ms: Some(30_000) }));
    assert!(health.iter().all(|(_, o)| *o != Outcome::Failure), "not a failure of its health");

    // A short reset (Azure's retry-after-ms) is waited out on the same endpoint.
    let limited = status(429, &[("retry-after-ms", "800")]);
    let fake = Fake::new().script("us.example", vec![limited, ok_json(completion("up-a"))]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "a");
    assert_eq!(*fake.slept.borrow(), [1_000], "whole seconds");
}
