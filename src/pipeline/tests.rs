//! The attempt loop and the chat and embeddings operations, driven by fake
//! ports: the behaviours the end-to-end suite checks in workerd, on the host.

use super::chat::{self, ChatAnswer, ChatAttempt, StreamPort, StreamWatch};
use super::embeddings::EmbeddingsAttempt;
use super::*;
use crate::config::Config;
use crate::dialects::{self, ClientDialect};
use crate::protocol::openai::EmbeddingsRequest;
use crate::relay::Relay;
use crate::routing::residency::{allowed, ClientLocation};
use crate::routing::{self, needs, preferences::Preferences, RouteInput};
use futures_executor::block_on;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

/// Providers a, b (us; b with capacity limits), e (eu), g (gemini, us) and
/// k (needs a secret). Model `m` tries a, b, e in order.
fn config(settings: Value) -> Config {
    let provider =
        |region: &str| json!({"kind": "openai", "base_url": format!("https://{region}.example/v1"), "region": region});
    let mut limited = provider("us");
    limited["limits"] = json!({"requests_per_minute": 10});
    let mut keyed = provider("us");
    keyed["api_key_secret"] = json!("K_KEY");
    let doc = json!({
        "version": 1,
        "settings": settings,
        "providers": {
            "a": provider("us"), "b": limited, "e": provider("eu"), "k": keyed,
            "g": {"kind": "gemini", "base_url": "https://gemini.example/v1beta", "region": "us"},
            "anth": {"kind": "anthropic", "base_url": "https://anthropic.example/v1", "region": "us"}
        },
        "models": {
            "m": {"targets": [{"provider": "a", "model": "up-a"}, {"provider": "b", "model": "up-b"}, {"provider": "e", "model": "up-e"}]},
            "keyed": {"targets": [{"provider": "k", "model": "up-k"}, {"provider": "a", "model": "up-a"}]},
            "emb": {"targets": [{"provider": "anth", "model": "claude"}, {"provider": "g", "model": "text-embedding-004"}, {"provider": "a", "model": "te-3"}]},
            "claude": {"targets": [{"provider": "anth", "model": "claude-up"}]},
            "fit": {"targets": [{"provider": "anth", "model": "claude-up", "capabilities": {"max_output_tokens": 8192}}]},
            "gem": {"targets": [{"provider": "g", "model": "gemini-2.5-flash"}]},
            "mixed": {"targets": [{"provider": "a", "model": "up-a"}, {"provider": "anth", "model": "claude-up"}]}
        },
        "keys": {"0000000000000000000000000000000000000000000000000000000000000000": {"name": "any", "models": ["*"]}}
    });
    Config::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn plan<'c>(config: &'c Config, model: &str, allowed: &AllowedRegions) -> Plan<'c> {
    plan_with_health(config, model, allowed, &Default::default())
}

/// A plan made with what the isolate learned of the endpoints' health.
fn plan_with_health<'c>(
    config: &'c Config,
    model: &str,
    allowed: &AllowedRegions,
    health: &routing::HealthSnapshot,
) -> Plan<'c> {
    let key = config.keys.values().next().unwrap();
    let header = |_: &str| None;
    let input = RouteInput {
        config,
        key,
        model,
        needs: needs::RequestNeeds { choices: 1, ..Default::default() },
        preferences: &Preferences::default(),
        header: &header,
        metadata: None,
        allowed,
        health,
        session: None,
        previous: None,
        seed: 1,
    };
    routing::plan(&input).unwrap()
}

fn everywhere(config: &Config) -> AllowedRegions {
    allowed(config, config.keys.values().next().unwrap(), None, &ClientLocation::default()).unwrap()
}

fn only(config: &Config, region: &str) -> AllowedRegions {
    let narrowing = crate::routing::residency::parse_narrowing(region).unwrap();
    allowed(config, config.keys.values().next().unwrap(), Some(narrowing), &ClientLocation::default()).unwrap()
}

/// A scripted provider reply.
#[derive(Clone)]
struct Scripted {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// How long the provider takes before its first byte.
    takes_ms: u64,
    /// How long the rest of its body takes after that.
    body_ms: u64,
    /// No answer at all.
    fails: Option<AttemptFailure>,
}

fn ok_json(body: Value) -> Scripted {
    Scripted {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string().into_bytes(),
        takes_ms: 10,
        body_ms: 0,
        fails: None,
    }
}

fn status(code: u16, headers: &[(&'static str, &str)]) -> Scripted {
    Scripted {
        status: code,
        headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        body: br#"{"error":{"message":"boom"}}"#.to_vec(),
        takes_ms: 10,
        body_ms: 0,
        fails: None,
    }
}

fn fails(failure: AttemptFailure, takes_ms: u64) -> Scripted {
    Scripted { status: 0, headers: Vec::new(), body: Vec::new(), takes_ms, body_ms: 0, fails: Some(failure) }
}

fn completion(model: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion", "created": 1, "model": model,
           "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
}

#[derive(Default)]
struct Fake {
    now: Rc<Cell<u64>>,
    secrets: HashMap<String, String>,
    /// Replies by upstream host, in order.
    script: RefCell<HashMap<String, VecDeque<Scripted>>>,
    sent: RefCell<Vec<String>>,
    sent_urls: RefCell<Vec<String>>,
    sent_bodies: RefCell<Vec<Value>>,
    health: RefCell<Vec<(String, Outcome)>>,
    retries_left: Cell<u32>,
    capacity: HashMap<String, Capacity<u32>>,
    reserved_at: RefCell<Vec<String>>,
    released: RefCell<Vec<u32>>,
    slept: RefCell<Vec<u64>>,
    /// Endpoints whose half-open probe another caller holds.
    probe_busy: HashSet<String>,
    probes_asked: RefCell<Vec<String>>,
}

impl Fake {
    fn new() -> Self {
        Self { retries_left: Cell::new(100), now: Rc::new(Cell::new(1_000)), ..Self::default() }
    }

    fn script(self, host: &str, replies: Vec<Scripted>) -> Self {
        self.script.borrow_mut().insert(host.to_string(), replies.into());
        self
    }

    fn hosts(&self) -> Vec<String> {
        self.sent.borrow().clone()
    }
}

/// The reply, and the fake's clock (its body takes time to arrive).
struct FakeReply(Scripted, Rc<Cell<u64>>);

impl Reply for FakeReply {
    fn status(&self) -> u16 {
        self.0.status
    }
    fn header(&self, name: &str) -> Option<String> {
        self.0.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }
    async fn body(&mut self, within_ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        let now = &self.1;
        if self.0.body_ms > within_ms {
            now.set(now.get() + within_ms);
            return Err(AttemptFailure::Timeout);
        }
        now.set(now.get() + self.0.body_ms);
        Ok(self.0.body.clone())
    }
}

impl Clock for Fake {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn random_unit(&self) -> f64 {
        0.5
    }
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
        self.now.set(self.now.get() + ms);
    }
}

impl Secrets for Fake {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }
}

impl HealthView for Fake {
    async fn claim_probe(&self, candidate: &Candidate<'_>) -> bool {
        self.probes_asked.borrow_mut().push(candidate.provider_id.to_string());
        !self.probe_busy.contains(candidate.provider_id)
    }
    fn begin_attempt(&self, _provider_id: &str, _first_attempt: bool) {}
    fn record(&self, provider_id: &str, outcome: Outcome) {
        self.health.borrow_mut().push((provider_id.to_string(), outcome));
    }
    fn try_retry(&self, _provider_id: &str) -> bool {
        let left = self.retries_left.get();
        self.retries_left.set(left.saturating_sub(1));
        left > 0
    }
}

impl CapacityPort for Fake {
    type Hold = u32;
    async fn reserve_capacity(&self, candidate: &Candidate<'_>) -> Capacity<u32> {
        self.reserved_at.borrow_mut().push(candidate.provider_id.to_string());
        match self.capacity.get(candidate.provider_id) {
            Some(Capacity::Denied { retry_after_ms }) => Capacity::Denied { retry_after_ms: *retry_after_ms },
            Some(Capacity::Admitted(hold)) => Capacity::Admitted(*hold),
            _ => Capacity::NotLimited,
        }
    }
    fn release(&self, hold: u32) {
        self.released.borrow_mut().push(hold);
    }
}

impl Upstream for Fake {
    type Reply = FakeReply;
    async fn send(
        &self,
        request: &UpstreamRequest,
        _reads: HeaderNames,
        first_byte_ms: u64,
    ) -> Result<FakeReply, AttemptFailure> {
        let host = request.url.split('/').nth(2).unwrap_or_default().to_string();
        self.sent.borrow_mut().push(host.clone());
        self.sent_urls.borrow_mut().push(request.url.clone());
        self.sent_bodies.borrow_mut().push(serde_json::from_slice(&request.body).unwrap_or_default());
        let reply = self.script.borrow_mut().get_mut(&host).and_then(VecDeque::pop_front);
        let reply = reply.unwrap_or_else(|| fails(AttemptFailure::Connect, 1));
        if reply.takes_ms > first_byte_ms {
            self.now.set(self.now.get() + first_byte_ms);
            return Err(AttemptFailure::Timeout);
        }
        self.now.set(self.now.get() + reply.takes_ms);
        match reply.fails {
            Some(failure) => Err(failure),
            None => Ok(FakeReply(reply, self.now.clone())),
        }
    }
}

impl StreamPort for Fake {
    type Stream = Vec<u8>;
    /// The whole body at once: the relay's output is the stream.
    async fn open_stream(
        &self,
        reply: FakeReply,
        mut relay: Relay,
        _watch: StreamWatch,
        _first_content_ms: u64,
    ) -> Result<(Vec<u8>, Vec<u8>), AttemptFailure> {
        let mut out = Vec::new();
        relay.feed(&reply.0.body, &mut out).map_err(|_| AttemptFailure::InvalidResponse("stream"))?;
        relay.end(&mut out).map_err(|_| AttemptFailure::InvalidResponse("stream"))?;
        Ok((out, Vec::new()))
    }
}

/// The answer and the provider that gave it (or the error), and the loop's trail.
type ChatRun = (Result<(ChatAnswer<Vec<u8>>, String), GatewayError>, Trail<u32>);

fn chat_call(dialect: &dyn ClientDialect, body: Value) -> dialects::ClientCall {
    dialect.parse(body.to_string().as_bytes(), &|_| None).unwrap()
}

/// Runs a chat request for `model` through the loop; the hosts tried and the result.
fn run_chat(fake: &Fake, config: &Config, model: &str, allowed: &AllowedRegions) -> ChatRun {
    let plan = plan(config, model, &everywhere(config));
    let mut call =
        chat_call(&dialects::OpenAiChat, json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    run_call(fake, config, &plan, allowed, &dialects::OpenAiChat, &mut call, None)
}

fn run_call(
    fake: &Fake,
    config: &Config,
    plan: &Plan<'_>,
    allowed: &AllowedRegions,
    dialect: &'static dyn ClientDialect,
    call: &mut dialects::ClientCall,
    prereserved: Option<Prereserved<u32>>,
) -> ChatRun {
    let mut operation = ChatAttempt::new(dialect, call, "req_1", "msg_1", 30_000);
    let scope = Attempts { plan, allowed, settings: &config.settings, request_started_ms: fake.now_ms() };
    let mut trail = Trail::default();
    let result = block_on(run(fake, &mut operation, &scope, prereserved, &mut trail));
    (result.map(|(answer, candidate)| (answer, candidate.provider_id.to_string())), trail)
}

fn whole_body(answer: &ChatAnswer<Vec<u8>>) -> Value {
    match answer {
        ChatAnswer::Whole { body, .. } => serde_json::from_slice(body).unwrap(),
        ChatAnswer::Stream { .. } => panic!("expected a whole answer"),
    }
}

#[test]
fn the_primary_answers_with_the_public_model_name() {
    let config = config(json!({}));
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    let (answer, provider) = result.unwrap();
    assert_eq!(provider, "a");
    assert_eq!(whole_body(&answer)["model"], "m");
    assert_eq!(fake.sent_bodies.borrow()[0]["model"], "up-a", "the provider gets its own model name");
    assert_eq!(trail.attempts.len(), 1);
    assert!(matches!(fake.health.borrow().last(), Some((p, Outcome::Success { .. })) if p == "a"));
}

#[test]
fn a_500_is_retried_once_on_the_same_endpoint_after_a_jittered_wait() {
    let config = config(json!({}));
    let fake = Fake::new().script("us.example", vec![status(500, &[]), ok_json(completion("up-a"))]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "a");
    assert_eq!(fake.hosts(), ["us.example", "us.example"]);
    assert_eq!(*fake.slept.borrow(), [50], "U(0, 100 ms) with the fake's 0.5");
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["server_error", "ok"]);
}

#[test]
fn without_retry_budget_a_500_fails_over_at_once() {
    let config = config(json!({}));
    let fake = Fake::new().script("us.example", vec![status(500, &[]), ok_json(completion("up-b"))]);
    fake.retries_left.set(0);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    // a and b share the host in this config: the second reply is b's.
    assert_eq!(result.unwrap().1, "b");
    assert!(fake.slept.borrow().is_empty(), "no wait without a retry");
    assert_eq!(trail.attempts.iter().map(|a| a.provider.as_str()).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn failover_follows_the_plan_order_and_the_error_lists_every_attempt() {
    let config = config(json!({}));
    let fake = Fake::new()
        .script("us.example", vec![status(503, &[]), status(401, &[])])
        .script("eu.example", vec![status(503, &[])]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    let error = result.err().unwrap();
    assert_eq!((error.status, error.code.as_ref()), (502, "upstream_error"));
    assert!(error.message.contains("a: HTTP 503") && error.message.contains("e: HTTP 503"), "{}", error.message);
    assert_eq!(trail.attempts.iter().map(|a| a.provider.as_str()).collect::<Vec<_>>(), ["a", "b", "e"]);
    let health = fake.health.borrow();
    assert!(health.iter().any(|(p, o)| p == "b" && *o == Outcome::AuthFailure));
}

#[test]
fn a_providers_400_is_the_clients_answer_and_not_failed_over() {
    let config = config(json!({}));
    let fake = Fake::new().script("us.example", vec![status(400, &[])]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.err().unwrap().status, 400);
    assert_eq!(fake.hosts().len(), 1);
    assert!(fake.health.borrow().is_empty(), "the request's mistake says nothing about the endpoint");
}

#[test]
fn a_short_retry_after_is_waited_out_and_a_long_one_fails_over() {
    let config = config(json!({}));
    let fake =
        Fake::new().script("us.example", vec![status(429, &[("retry-after", "1")]), ok_json(completion("up-a"))]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "a");
    assert_eq!(*fake.slept.borrow(), [1_000]);

    let fake = Fake::new()
        .script("us.example", vec![status(429, &[("retry-after", "30")]), status(429, &[("retry-after", "20")])])
        .script("eu.example", vec![status(429, &[("retry-after", "9")])]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    let error = result.err().unwrap();
    assert_eq!((error.status, error.retry_after_s), (429, Some(9)), "every target limited: the soonest reset");
    assert!(fake.slept.borrow().is_empty());
    assert!(fake.health.borrow().iter().all(|(_, o)| matches!(o, Outcome::RateLimited { .. } | Outcome::Quota(_))));
}

#[test]
fn a_silent_endpoint_times_out_at_the_first_byte_deadline_and_fails_over() {
    let config = config(json!({"first_byte_timeout_ms": 1_000}));
    let fake = Fake::new()
        .script("us.example", vec![Scripted { takes_ms: 5_000, ..ok_json(completion("x")) }])
        .script("eu.example", vec![ok_json(completion("up-e"))]);
    // Only a (the slow one) and e: b is over capacity.
    let mut fake = fake;
    fake.capacity.insert("b".into(), Capacity::Denied { retry_after_ms: 2_500 });
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "e");
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["timeout", "over_capacity", "ok"], "a timeout is never retried on the same endpoint");
    assert_eq!(trail.attempts[0].ms, 1_000);
}

#[test]
fn no_attempt_starts_past_the_request_deadline() {
    let config = config(json!({"first_byte_timeout_ms": 1_000, "request_timeout_ms": 1_500}));
    let slow = Scripted { takes_ms: 5_000, ..ok_json(completion("x")) };
    let fake = Fake::new().script("us.example", vec![slow.clone(), slow]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    // a times out after 1 s; b gets only the 0.5 s left and times out too; e is never tried.
    assert_eq!(result.err().unwrap().status, 504);
    assert_eq!(fake.hosts(), ["us.example", "us.example"]);
    assert_eq!(trail.attempts[1].ms, 500);
}

#[test]
fn the_residency_guard_refuses_candidates_outside_the_allowed_regions_on_every_attempt() {
    let config = config(json!({}));
    // A plan made for everywhere (a misconfigured plan), run for a request restricted to eu.
    let fake = Fake::new()
        .script("us.example", vec![ok_json(completion("up-a"))])
        .script("eu.example", vec![status(500, &[]), status(500, &[])]);
    let eu = only(&config, "eu");
    let (result, trail) = run_chat(&fake, &config, "m", &eu);
    assert!(fake.hosts().iter().all(|h| h == "eu.example"), "sent: {:?}", fake.hosts());
    assert_eq!(trail.residency_blocked, ["a", "b"]);
    let error = result.err().unwrap();
    assert_eq!((error.status, error.code.as_ref()), (503, "no_compliant_provider"));
}

#[test]
fn capacity_is_reserved_for_the_endpoint_actually_tried() {
    let config = config(json!({}));
    let plan = plan(&config, "keyed", &everywhere(&config));
    // k is first but its secret is missing: the reservation made for k up front
    // must not be handed to a.
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let mut call =
        chat_call(&dialects::OpenAiChat, json!({"model": "keyed", "messages": [{"role": "user", "content": "hi"}]}));
    let prereserved = Prereserved { provider_id: "k".into(), capacity: Capacity::Admitted(7) };
    let (result, trail) =
        run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, Some(prereserved));
    assert_eq!(result.unwrap().1, "a");
    assert_eq!(*fake.released.borrow(), [7], "k's reservation is given back");
    assert_eq!(*fake.reserved_at.borrow(), ["a"], "a's own capacity is asked");
    assert!(trail.holds.is_empty());
    assert_eq!(trail.attempts[0].outcome, "missing_secret");
}

#[test]
fn an_endpoint_whose_probe_another_caller_holds_is_skipped_for_the_next() {
    let config = config(json!({}));
    let mut fake = Fake::new().script("us.example", vec![ok_json(completion("up-b"))]);
    fake.probe_busy.insert("a".into());
    let mut call =
        chat_call(&dialects::OpenAiChat, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let plan = plan(&config, "m", &everywhere(&config));
    let prereserved = Prereserved { provider_id: "a".into(), capacity: Capacity::Admitted(4) };
    let (result, trail) =
        run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, Some(prereserved));
    assert_eq!(result.unwrap().1, "b");
    assert_eq!(fake.hosts(), ["us.example"], "one request sent, to b");
    let outcomes: Vec<(&str, &str)> =
        trail.attempts.iter().map(|a| (a.provider.as_str(), a.outcome.as_str())).collect();
    assert_eq!(outcomes, [("a", "probe_in_flight"), ("b", "ok")]);
    assert_eq!(*fake.released.borrow(), [4], "a's capacity reservation is given back");
    assert!(fake.health.borrow().iter().all(|(p, _)| p != "a"), "a skipped is no outcome of a");
}

#[test]
fn the_last_candidate_is_tried_even_while_another_caller_probes_it() {
    let config = config(json!({}));
    let mut fake = Fake::new().script("eu.example", vec![ok_json(completion("up-e"))]);
    fake.probe_busy.insert("e".into());
    let (result, _) = run_chat(&fake, &config, "m", &only(&config, "eu"));
    assert_eq!(result.unwrap().1, "e", "the plan keeps one endpoint rather than refusing");
    assert!(fake.probes_asked.borrow().is_empty(), "nothing to skip to: the object is not asked");
}

#[test]
fn a_prereservation_for_the_first_endpoint_is_used_there() {
    let mut config = config(json!({}));
    config.settings.first_byte_timeout_ms = 10_000;
    let plan = plan(&config, "m", &everywhere(&config));
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let mut call =
        chat_call(&dialects::OpenAiChat, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let prereserved = Prereserved { provider_id: "a".into(), capacity: Capacity::Admitted(3) };
    let (_, trail) =
        run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, Some(prereserved));
    assert_eq!(trail.holds, [3]);
    assert!(fake.reserved_at.borrow().is_empty() && fake.released.borrow().is_empty());
}

#[test]
fn provider_keys_are_scrubbed_from_errors() {
    let mut config = config(json!({}));
    config.settings.first_byte_timeout_ms = 10_000;
    let mut fake = Fake::new().script(
        "us.example",
        vec![Scripted { body: br#"{"error":{"message":"bad key sk-secret-value-123"}}"#.to_vec(), ..status(400, &[]) }],
    );
    fake.secrets.insert("K_KEY".into(), "sk-secret-value-123".into());
    let (result, _) = run_chat(&fake, &config, "keyed", &everywhere(&config));
    let error = result.err().unwrap();
    assert!(!error.message.contains("sk-secret-value-123"), "{}", error.message);
}

#[test]
fn an_anthropic_client_is_answered_in_anthropics_shape_from_an_openai_target() {
    let config = config(json!({}));
    let plan = plan(&config, "m", &everywhere(&config));
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let dialect = &dialects::AnthropicMessages;
    let mut call =
        chat_call(dialect, json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}));
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), dialect, &mut call, None);
    let body = whole_body(&result.unwrap().0);
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "hi");
    assert_eq!(body["stop_reason"], "end_turn");
}

#[test]
fn an_anthropic_client_is_relayed_natively_to_an_anthropic_target() {
    let config = config(json!({}));
    let plan = plan(&config, "claude", &everywhere(&config));
    let message = json!({"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-up",
        "content": [{"type": "text", "text": "native"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 2, "output_tokens": 1}});
    let fake = Fake::new().script("anthropic.example", vec![ok_json(message.clone())]);
    let dialect = &dialects::AnthropicMessages;
    let body = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "cache_marker_kept": {"x": 1}});
    let mut call = chat_call(dialect, body);
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), dialect, &mut call, None);
    let (answer, _) = result.unwrap();
    let mut expected = message;
    expected["model"] = json!("claude");
    assert_eq!(whole_body(&answer), expected, "the provider's own answer under the public model name");
    let sent = &fake.sent_bodies.borrow()[0];
    assert_eq!(sent["model"], "claude-up");
    assert_eq!(sent["cache_marker_kept"], json!({"x": 1}), "the client's body, untouched but for the model");
    let ChatAnswer::Whole { usage, .. } = answer else { panic!() };
    assert_eq!(usage.unwrap().total_tokens, 3);
}

#[test]
fn a_stream_is_relayed_through_the_stream_port() {
    let config = config(json!({}));
    let plan = plan(&config, "m", &everywhere(&config));
    let events = concat!(
        "data: {\"id\":\"c\",\"model\":\"up-a\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"up-a\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    );
    let reply = Scripted {
        headers: vec![("content-type", "text/event-stream".into())],
        body: events.as_bytes().to_vec(),
        ..ok_json(json!({}))
    };
    let html = Scripted { headers: vec![("content-type", "text/html".into())], ..ok_json(json!({})) };
    let fake = Fake::new().script("us.example", vec![html, reply]);
    let mut call = chat_call(
        &dialects::OpenAiChat,
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let (result, trail) = run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    let ChatAnswer::Stream { first, .. } = result.unwrap().0 else { panic!("a stream") };
    let text = String::from_utf8(first).unwrap();
    assert!(text.contains("\"model\":\"m\"") && text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(trail.attempts[0].outcome, "invalid_response", "a stream that is not an event stream");
    assert_eq!(fake.sent_bodies.borrow()[1]["stream_options"]["include_usage"], true, "usage is always asked for");
}

#[test]
fn embeddings_fail_over_past_kinds_without_embeddings_and_record_health_like_chat() {
    let config = config(json!({}));
    let plan = plan(&config, "emb", &everywhere(&config));
    let fake = Fake::new().script("gemini.example", vec![status(503, &[])]).script(
        "us.example",
        vec![ok_json(json!({"object": "list", "data": [], "usage": {"prompt_tokens": 2, "total_tokens": 2}}))],
    );
    let request = EmbeddingsRequest::parse(br#"{"model":"emb","input":"hi"}"#).unwrap();
    let mut operation = EmbeddingsAttempt { request: &request, request_id: "req_1", idle_ms: 1_000 };
    let allowed = everywhere(&config);
    let scope = Attempts { plan: &plan, allowed: &allowed, settings: &config.settings, request_started_ms: 1_000 };
    let mut trail = Trail::default();
    let (answer, candidate) = block_on(run(&fake, &mut operation, &scope, None, &mut trail)).ok().unwrap();
    assert_eq!((candidate.provider_id, answer.tokens), ("a", Some(2)));
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["unservable", "server_error", "ok"]);
    assert!(fake.health.borrow().iter().any(|(p, o)| p == "g" && *o == Outcome::Failure));
    assert_eq!(fake.hosts(), ["gemini.example", "us.example"], "nothing is sent to a kind without embeddings");
}

#[test]
fn embeddings_on_a_model_without_embedding_targets_are_a_clear_400() {
    let config = config(json!({}));
    let plan = plan(&config, "claude", &everywhere(&config));
    let fake = Fake::new();
    let request = EmbeddingsRequest::parse(br#"{"model":"claude","input":"hi"}"#).unwrap();
    let mut operation = EmbeddingsAttempt { request: &request, request_id: "req_1", idle_ms: 1_000 };
    let allowed = everywhere(&config);
    let scope = Attempts { plan: &plan, allowed: &allowed, settings: &config.settings, request_started_ms: 1_000 };
    let mut trail = Trail::default();
    let error = block_on(run(&fake, &mut operation, &scope, None, &mut trail)).err().unwrap();
    assert_eq!((error.status, error.code.as_ref()), (400, "unsupported_model"));
}

/// Counts the input tokens of an Anthropic `count_tokens` body for `model`.
fn run_count(fake: &Fake, config: &Config, model: &str) -> (Result<(u64, String), GatewayError>, Trail<()>) {
    use super::count_tokens::{CountTokensAttempt, Unrecorded};
    let plan = plan(config, model, &everywhere(config));
    let body = json!({"model": model, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]});
    let call = dialects::AnthropicMessages.parse_count(body.to_string().as_bytes(), &|_| None).unwrap();
    let mut operation =
        CountTokensAttempt { dialect: &dialects::AnthropicMessages, call: &call, request_id: "req_1", idle_ms: 1_000 };
    let allowed = everywhere(config);
    let scope = Attempts { plan: &plan, allowed: &allowed, settings: &config.settings, request_started_ms: 1_000 };
    let mut trail = Trail::default();
    let result = block_on(run(&Unrecorded(fake), &mut operation, &scope, None, &mut trail));
    (result.map(|(tokens, candidate)| (tokens, candidate.provider_id.to_string())), trail)
}

#[test]
fn token_counts_go_to_the_first_target_that_counts_with_the_clients_own_body() {
    let config = config(json!({}));
    // The OpenAI-kind target first: an OpenAI-compatible API without OpenAI's count answers 404.
    let fake = Fake::new()
        .script("us.example", vec![status(404, &[])])
        .script("anthropic.example", vec![ok_json(json!({"input_tokens": 14}))]);
    let (result, trail) = run_count(&fake, &config, "mixed");
    assert_eq!(result.unwrap(), (14, "anth".to_string()));
    assert_eq!(fake.hosts(), ["us.example", "anthropic.example"]);
    assert_eq!(fake.sent_urls.borrow()[0], "https://us.example/v1/responses/input_tokens");
    assert_eq!(fake.sent_urls.borrow()[1], "https://anthropic.example/v1/messages/count_tokens");
    let sent = &fake.sent_bodies.borrow()[1];
    assert_eq!((sent["model"].as_str(), sent["system"].as_str()), (Some("claude-up"), Some("be brief")));
    assert!(sent.get("max_tokens").is_none());
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["unservable", "ok"]);
    assert!(fake.reserved_at.borrow().is_empty(), "a count reserves no endpoint capacity");
}

#[test]
fn a_failed_count_is_the_callers_answer_and_never_the_endpoints_health() {
    let config = config(json!({}));
    let fake = Fake::new().script("anthropic.example", vec![status(529, &[]), ok_json(json!({"input_tokens": 3}))]);
    let (result, _) = run_count(&fake, &config, "claude");
    let error = result.unwrap_err();
    assert_eq!(error.status, 503);
    assert_eq!(fake.hosts().len(), 1, "no retry budget is spent on a count");
    assert!(fake.health.borrow().is_empty(), "a count's failure is not the endpoint's health");
    assert!(fake.probes_asked.borrow().is_empty(), "nor does it take a recovering endpoint's probe");

    let fake = Fake::new().script("anthropic.example", vec![ok_json(json!({"tokens": 3}))]);
    assert_eq!(run_count(&fake, &config, "claude").0.unwrap_err().status, 502, "an answer without a count");
}

#[test]
fn an_openai_target_counts_with_openais_input_token_count() {
    let config = config(json!({}));
    let fake =
        Fake::new().script("us.example", vec![ok_json(json!({"object": "response.input_tokens", "input_tokens": 9}))]);
    let (result, _) = run_count(&fake, &config, "mixed");
    assert_eq!(result.unwrap(), (9, "a".to_string()));
    assert_eq!(fake.sent_urls.borrow()[0], "https://us.example/v1/responses/input_tokens");
    assert_eq!(
        fake.sent_bodies.borrow()[0],
        json!({"model": "up-a", "input": [{"type": "message", "role": "system", "content": "be brief"},
            {"type": "message", "role": "user", "content": "hi"}]})
    );
}

#[test]
fn a_model_whose_targets_cannot_count_is_a_clear_400() {
    let config = config(json!({}));
    // Its targets a and b are both on us.example, e on eu.example.
    let fake = Fake::new()
        .script("us.example", vec![status(404, &[]), status(404, &[])])
        .script("eu.example", vec![status(404, &[])]);
    let error = run_count(&fake, &config, "m").0.unwrap_err();
    assert_eq!((error.status, error.code.as_ref(), error.param.as_deref()), (400, "unsupported_model", Some("model")));
    assert!(error.message.contains("counts tokens"), "{}", error.message);
    assert_eq!(fake.hosts().len(), 3, "every target was asked");
    assert!(fake.health.borrow().is_empty(), "an endpoint without a count is not unhealthy");
}

#[test]
fn a_budget_reserves_at_the_dearest_candidate_the_plan_may_fail_over_to() {
    let doc = json!({
        "version": 1,
        "providers": {
            "a": {"kind": "openai", "base_url": "https://a.example/v1", "region": "us"},
            "b": {"kind": "openai", "base_url": "https://b.example/v1", "region": "us"}
        },
        "models": {"m": {"targets": [
            {"provider": "a", "model": "x"},
            {"provider": "b", "model": "y", "price": {"input_per_mtok": 10.0, "output_per_mtok": 30.0}}
        ]}},
        "keys": {"0000000000000000000000000000000000000000000000000000000000000000": {"name": "any", "models": ["*"]}}
    });
    let config = Config::from_json(&doc.to_string()).unwrap();
    let mut plan = plan(&config, "m", &everywhere(&config));
    plan.needs.prompt_tokens = 1_000;
    plan.needs.max_output_tokens = Some(100);
    assert_eq!(admission::estimated_tokens(&plan), 1_100);
    // The unpriced primary does not make the request free: $10/M × 1000 + $30/M × 100.
    assert_eq!(admission::estimated_cost_micro_usd(&plan), 13_000);
}

/// Context-window failover and learned quota.
mod capacity;
/// JSON or a stream upstream, from the endpoint's learned pace.
mod pace;

#[test]
fn max_tokens_above_a_targets_ceiling_is_fitted_to_it_not_refused() {
    let config = config(json!({}));
    let plan = plan(&config, "fit", &everywhere(&config));
    assert_eq!(plan.candidates.len(), 1, "the target is kept");
    let message = json!({"id": "m", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}});
    // Natively (the Anthropic SDK sends 128000 for a Claude Sonnet name) and translated.
    let fake = Fake::new().script("anthropic.example", vec![ok_json(message.clone()), ok_json(message)]);
    let dialect = &dialects::AnthropicMessages;
    let mut call = chat_call(
        dialect,
        json!({"model": "fit", "max_tokens": 128000, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), dialect, &mut call, None);
    assert!(result.is_ok());
    let mut call = chat_call(
        &dialects::OpenAiChat,
        json!({"model": "fit", "max_tokens": 128000, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    assert!(result.is_ok());
    let sent = fake.sent_bodies.borrow();
    assert_eq!((sent[0]["max_tokens"].as_u64(), sent[1]["max_tokens"].as_u64()), (Some(8192), Some(8192)));
    assert_eq!(call.request.extra["max_tokens"], 128000, "the client's request is left as it was for other targets");
    assert_eq!(chat::fitted_max_tokens(Some(128000), Some(8192)), Some(8192));
    assert_eq!(chat::fitted_max_tokens(Some(100), Some(8192)), None);
}

#[test]
fn a_403_about_a_resource_the_request_names_is_the_callers_answer_and_spares_the_endpoint() {
    let config = config(json!({}));
    let plan = plan(&config, "m", &everywhere(&config));
    let fake = Fake::new().script("us.example", vec![status(403, &[])]);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://files.example/private.png"}}]}]});
    let mut call = chat_call(&dialects::OpenAiChat, body);
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    let error = result.err().unwrap();
    assert_eq!((error.status, error.code.as_ref()), (400, "upstream_resource_denied"));
    assert_eq!(fake.hosts().len(), 1, "not failed over: every target would fetch the same URL");
    assert!(fake.health.borrow().is_empty(), "the shared endpoint's health is untouched");

    // Without such a resource, a 403 is about the gateway's key: the endpoint's problem.
    let fake = Fake::new().script("us.example", vec![status(403, &[]), ok_json(completion("up-b"))]);
    let (result, _) = run_chat(&fake, &config, "m", &everywhere(&config));
    assert_eq!(result.unwrap().1, "b");
    assert!(fake.health.borrow().iter().any(|(p, o)| p == "a" && *o == Outcome::AuthFailure));
}

/// An OpenAI stream saying `text` in `pieces` events, its finish and usage (`finish`: whether it
/// ends properly).
fn openai_stream(text: &str, pieces: usize, finish: bool) -> Scripted {
    let mut events = String::new();
    let mut push = |payload: Value| events.push_str(&format!("data: {payload}\n\n"));
    let chunk = |delta: Value, reason: Value| {
        json!({"id": "c9", "object": "chat.completion.chunk", "created": 1, "model": "up-a",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason}]})
    };
    push(chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    let size = text.len().div_ceil(pieces.max(1)).max(1);
    for piece in text.as_bytes().chunks(size) {
        push(chunk(json!({"content": String::from_utf8_lossy(piece)}), Value::Null));
    }
    if finish {
        push(chunk(json!({}), json!("stop")));
        push(json!({"id": "c9", "object": "chat.completion.chunk", "created": 1, "model": "up-a", "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}}));
        events.push_str("data: [DONE]\n\n");
    }
    Scripted {
        headers: vec![("content-type", "text/event-stream; charset=utf-8".into())],
        body: events.into_bytes(),
        ..ok_json(json!({}))
    }
}

#[test]
fn a_long_json_generation_is_streamed_upstream_and_answered_whole_past_the_first_byte_deadline() {
    let config = config(json!({"first_byte_timeout_ms": 1_000}));
    // The first event comes at once, the whole answer after 5 s (five first-byte deadlines).
    let long = Scripted { takes_ms: 50, body_ms: 5_000, ..openai_stream("a long answer", 4, true) };
    let fake = Fake::new().script("us.example", vec![long]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    let (answer, provider) = result.unwrap();
    assert_eq!(provider, "a");
    let sent = &fake.sent_bodies.borrow()[0];
    assert_eq!((sent["stream"].as_bool(), sent["stream_options"]["include_usage"].as_bool()), (Some(true), Some(true)));
    let body = whole_body(&answer);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "m", "the public model name");
    assert_eq!(body["choices"][0]["message"]["content"], "a long answer");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 10);
    let ChatAnswer::Whole { usage, .. } = answer else { panic!() };
    assert_eq!(usage.unwrap().completion_tokens, 7, "usage reaches accounting");
    assert_eq!(trail.attempts[0].ms, 5_050);
    assert!(!fake.health.borrow().iter().any(|(_, o)| *o == Outcome::Failure), "{:?}", fake.health.borrow());

    // Longer than the request's whole deadline: a timeout, but the answer's length, not a dead endpoint.
    let short_deadline = self::config(json!({"first_byte_timeout_ms": 1_000, "request_timeout_ms": 3_000}));
    let longer = Scripted { takes_ms: 50, body_ms: 5_000, ..openai_stream("a long answer", 4, true) };
    let fake = Fake::new().script("us.example", vec![longer]);
    let (result, trail) = run_chat(&fake, &short_deadline, "m", &everywhere(&short_deadline));
    assert_eq!(result.err().unwrap().status, 504);
    assert_eq!((trail.attempts[0].outcome.as_str(), trail.attempts[0].ms), ("timeout", 3_000));
    assert!(!fake.health.borrow().iter().any(|(_, o)| *o == Outcome::Failure), "{:?}", fake.health.borrow());
}

#[test]
fn a_json_request_streamed_upstream_still_fails_over_when_no_headers_come_in_time_and_that_counts() {
    let config = config(json!({"first_byte_timeout_ms": 1_000}));
    let silent = Scripted { takes_ms: 5_000, ..openai_stream("never", 1, true) };
    let fake = Fake::new().script("us.example", vec![silent, openai_stream("from b", 2, true)]);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    let (answer, provider) = result.unwrap();
    assert_eq!(provider, "b", "failed over");
    assert_eq!(whole_body(&answer)["choices"][0]["message"]["content"], "from b");
    assert_eq!((trail.attempts[0].outcome.as_str(), trail.attempts[0].ms), ("timeout", 1_000));
    // A stream's headers come at once whatever the answer's length: silence is the endpoint's.
    assert!(fake.health.borrow().iter().any(|(p, o)| p == "a" && *o == Outcome::Failure));
}

#[test]
fn a_stream_assembled_for_json_that_is_cut_or_carries_an_error_is_a_failure_never_a_partial_answer() {
    let config = config(json!({}));
    let cut = openai_stream("half an ans", 3, false);
    let mut error = openai_stream("x", 1, false);
    error.body.extend_from_slice(b"data: {\"error\":{\"message\":\"overloaded\",\"code\":\"overloaded\"}}\n\n");
    let fake =
        Fake::new().script("us.example", vec![cut, error]).script("eu.example", vec![openai_stream("whole", 1, true)]);
    fake.retries_left.set(0);
    let (result, trail) = run_chat(&fake, &config, "m", &everywhere(&config));
    let (answer, provider) = result.unwrap();
    assert_eq!(
        (provider.as_str(), whole_body(&answer)["choices"][0]["message"]["content"].as_str()),
        ("e", Some("whole"))
    );
    let outcomes: Vec<&str> = trail.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["invalid_response", "stream_error", "ok"]);
}

#[test]
fn short_answers_and_native_relays_stay_json_and_a_native_timeout_spares_the_endpoint() {
    let config = config(json!({"first_byte_timeout_ms": 1_000}));
    let fake = Fake::new().script("us.example", vec![ok_json(completion("up-a"))]);
    let plan_m = plan(&config, "m", &everywhere(&config));
    let mut call = chat_call(
        &dialects::OpenAiChat,
        json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let (result, _) = run_call(&fake, &config, &plan_m, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    assert_eq!(result.unwrap().1, "a");
    assert!(fake.sent_bodies.borrow()[0].get("stream").is_none(), "a short answer shows liveness by itself");

    // The Anthropic client's own body relayed natively stays as the client sent it.
    let plan_c = plan(&config, "claude", &everywhere(&config));
    let slow = Scripted { takes_ms: 5_000, ..ok_json(json!({})) };
    let fake = Fake::new().script("anthropic.example", vec![slow]);
    let dialect = &dialects::AnthropicMessages;
    let mut call = chat_call(
        dialect,
        json!({"model": "claude", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let (result, _) = run_call(&fake, &config, &plan_c, &everywhere(&config), dialect, &mut call, None);
    assert!(result.is_err());
    assert!(fake.sent_bodies.borrow()[0].get("stream").is_none());
    assert!(!fake.health.borrow().iter().any(|(_, o)| *o == Outcome::Failure), "{:?}", fake.health.borrow());
    let short = chat::request_traits(
        &crate::protocol::openai::ChatRequest::parse(
            br#"{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap(),
    );
    assert!(!short.slow_first_byte_expected, "a short answer's silence is the endpoint's");
}

#[test]
fn an_anthropic_target_streams_for_a_json_client_and_its_answer_is_assembled() {
    let config = config(json!({}));
    let plan = plan(&config, "claude", &everywhere(&config));
    let events = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let reply = Scripted {
        headers: vec![("content-type", "text/event-stream".into())],
        body: events.as_bytes().to_vec(),
        ..ok_json(json!({}))
    };
    let fake = Fake::new().script("anthropic.example", vec![reply]);
    // Through the Responses dialect: the assembled answer is what it shapes and stores.
    let dialect = &dialects::OpenAiResponses;
    let mut call = chat_call(dialect, json!({"model": "claude", "input": "hi"}));
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), dialect, &mut call, None);
    let (answer, _) = result.unwrap();
    assert_eq!(fake.sent_bodies.borrow()[0]["stream"], true);
    let ChatAnswer::Whole { body, usage, kept, .. } = answer else { panic!("a whole answer") };
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["output"][0]["content"][0]["text"], "Hello", "{body}");
    assert_eq!(usage.unwrap().total_tokens, 7);
    assert!(kept.is_some(), "stored like any whole answer");
}

#[test]
fn a_request_a_kind_cannot_stream_keeps_the_json_path() {
    // Gemini streams one candidate: n = 2 is asked for as JSON, and its timeouts stay the caller's.
    let config = config(json!({}));
    let plan = plan(&config, "gem", &everywhere(&config));
    let candidate = |text: &str, index: u64| json!({"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": index});
    let reply = ok_json(json!({"candidates": [candidate("a", 0), candidate("b", 1)],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2, "totalTokenCount": 4}}));
    let long = |n: u64| json!({"model": "gem", "n": n, "messages": [{"role": "user", "content": "hi"}]});
    let fake = Fake::new().script("gemini.example", vec![reply, openai_stream("unused", 1, true)]);
    let mut call = chat_call(&dialects::OpenAiChat, long(2));
    let (result, _) = run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    let body = whole_body(&result.unwrap().0);
    assert_eq!(body["choices"].as_array().unwrap().len(), 2);
    assert!(fake.sent_urls.borrow()[0].ends_with(":generateContent"), "{:?}", fake.sent_urls.borrow());
    assert!(call.request.stream.is_none(), "the client's request is left as it was");
    let mut call = chat_call(&dialects::OpenAiChat, long(1));
    let _ = run_call(&fake, &config, &plan, &everywhere(&config), &dialects::OpenAiChat, &mut call, None);
    assert!(fake.sent_urls.borrow()[1].ends_with(":streamGenerateContent?alt=sse"), "{:?}", fake.sent_urls.borrow());
}

#[test]
fn a_whole_body_may_take_the_longer_of_its_floor_and_the_first_byte_time_left() {
    let whole = |at_least_ms, until_ms| WholeBody { at_least_ms, until_ms, content_type: None };
    assert_eq!(whole(30_000, 60_000).within_ms(10_000), 50_000);
    assert_eq!(whole(30_000, 10_000).within_ms(2_000), 30_000);
    assert_eq!(whole(0, 100).within_ms(500), 1, "never zero");
}
