use super::residency::{allowed, parse_narrowing, satisfies, ClientLocation};
use super::*;
use crate::config::Config;
use serde_json::json;

/// Two EU endpoints (one German), two US, one Swiss; geo rules: CH → eu or ch,
/// EU countries → eu, unknown location → eu.
fn config() -> Config {
    let provider = |region: &str| json!({"kind": "openai", "base_url": format!("https://{region}.example.com/v1"), "region": region});
    let doc = json!({
        "version": 1,
        "providers": {
            "eu-1": provider("eu"), "eu-de": provider("eu-de"), "us-1": provider("us"), "us-2": provider("us"), "ch-1": provider("ch")
        },
        "models": {
            "chat": {"targets": [
                {"provider": "us-1", "model": "m", "price": {"input_per_mtok": 5.0, "output_per_mtok": 15.0}},
                {"provider": "eu-1", "model": "m", "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
                {"provider": "eu-de", "model": "m"},
                {"provider": "us-2", "model": "m", "price": {"input_per_mtok": 0.5, "output_per_mtok": 1.0}, "capabilities": {"vision": false, "context_window": 1000}}
            ]},
            "balanced": {"strategy": "weighted", "targets": [
                {"provider": "us-1", "model": "m", "weight": 3}, {"provider": "us-2", "model": "m", "weight": 1}
            ]},
            "cheap": {"strategy": "cheapest", "targets": [
                {"provider": "us-1", "model": "m", "price": {"input_per_mtok": 5.0, "output_per_mtok": 15.0}},
                {"provider": "eu-de", "model": "m"},
                {"provider": "us-2", "model": "m", "price": {"input_per_mtok": 0.5, "output_per_mtok": 1.0}}
            ]},
            "fast": {"strategy": "fastest", "targets": [{"provider": "us-1", "model": "m"}, {"provider": "us-2", "model": "m"}]},
            "mini": {"targets": [{"provider": "us-2", "model": "mini"}]},
            "smart": {"models": ["chat", "mini"]},
            "agent": {"targets": [{"provider": "us-1", "model": "frontier"}], "rules": [
                {"when": {"headers": {"x-gateway-tier": "routine"}}, "use_model": "mini"},
                {"when": {"no_tools": true, "max_prompt_tokens": 50}, "use_model": "mini"}
            ]},
            "swiss": {"targets": [{"provider": "ch-1", "model": "m"}, {"provider": "eu-1", "model": "m"}]}
        },
        "keys": {
            "0000000000000000000000000000000000000000000000000000000000000000": {"name": "any", "models": ["*"]},
            "1111111111111111111111111111111111111111111111111111111111111111": {"name": "eu tenant", "models": ["*"], "regions": ["eu"]},
            "2222222222222222222222222222222222222222222222222222222222222222": {"name": "us tenant", "models": ["*"], "regions": ["us"]}
        },
        "residency": {
            "policies": {"ch": ["ch"]},
            "geo_rules": [
                {"description": "Swiss clients", "countries": ["CH"], "allow": ["eu", "ch"]},
                {"description": "EU clients", "eu_countries": true, "allow": ["eu"]}
            ]
        }
    });
    Config::from_json(&doc.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn key(config: &Config, digit: char) -> &KeyRecord {
    config.keys.get(&digit.to_string().repeat(64)).unwrap()
}

fn loc(country: &str, continent: &str, eu: bool) -> ClientLocation {
    ClientLocation { country: Some(country.into()), continent: Some(continent.into()), is_eu_country: eu }
}

struct Case {
    key: char,
    location: ClientLocation,
    header: Option<&'static str>,
}

fn regions(config: &Config, case: &Case) -> Result<Vec<String>, String> {
    let narrowing = case.header.map(|h| parse_narrowing(h).unwrap());
    allowed(config, key(config, case.key), narrowing, &case.location)
        .map(|a| if a.is_restricted() { a.regions.into_iter().collect() } else { vec!["*".into()] })
        .map_err(|e| format!("{} {}", e.status, e.code))
}

#[test]
fn residency_table() {
    let config = config();
    let us = loc("US", "NA", false);
    let de = loc("DE", "EU", true);
    let ch = loc("CH", "EU", false);
    let none = ClientLocation::default();
    let cases: Vec<(Case, Result<Vec<&str>, &str>)> = vec![
        (Case { key: '0', location: us.clone(), header: None }, Ok(vec!["*"])),
        (Case { key: '0', location: none.clone(), header: None }, Ok(vec!["*"])),
        (Case { key: '0', location: de.clone(), header: None }, Ok(vec!["eu", "eu-de"])),
        (Case { key: '0', location: ch.clone(), header: None }, Ok(vec!["ch", "eu", "eu-de"])),
        (Case { key: '0', location: ch.clone(), header: Some("ch") }, Ok(vec!["ch"])),
        (Case { key: '0', location: us.clone(), header: Some("eu-de") }, Ok(vec!["eu-de"])),
        (Case { key: '0', location: us.clone(), header: Some("us, eu") }, Ok(vec!["eu", "eu-de", "us"])),
        (Case { key: '1', location: us.clone(), header: None }, Ok(vec!["eu", "eu-de"])),
        (Case { key: '1', location: de.clone(), header: Some("eu-de") }, Ok(vec!["eu-de"])),
        // Narrowing can never widen: a key pinned to eu asking for us is refused.
        (Case { key: '1', location: us.clone(), header: Some("us") }, Err("403 region_not_allowed")),
        // A key pinned to us, used from an EU country: the intersection is empty.
        (Case { key: '2', location: de.clone(), header: None }, Err("403 region_not_allowed")),
        (Case { key: '2', location: us.clone(), header: None }, Ok(vec!["us"])),
        (Case { key: '0', location: de.clone(), header: Some("us") }, Err("403 region_not_allowed")),
    ];
    for (i, (case, expected)) in cases.iter().enumerate() {
        let expected =
            expected.clone().map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()).map_err(String::from);
        assert_eq!(regions(&config, case), expected, "case {i}");
    }
}

#[test]
fn policy_hierarchy_and_explicit_policies() {
    let config = config();
    let r = &config.residency;
    assert!(satisfies(r, "eu", "eu"));
    assert!(satisfies(r, "eu", "eu-de"));
    assert!(!satisfies(r, "eu", "europe"));
    assert!(!satisfies(r, "eu-de", "eu"));
    assert!(satisfies(r, "ch", "ch"));
    assert!(!satisfies(r, "ch", "ch-zh"), "explicit policies list their tags exactly");
}

#[test]
fn narrowing_header_is_validated() {
    assert_eq!(parse_narrowing(" EU , eu-de ").unwrap(), vec!["eu", "eu-de"]);
    assert!(parse_narrowing("").is_err());
    assert!(parse_narrowing("eu; drop table").is_err());
}

#[test]
fn geo_rules_match_first_and_read_missing_fields_safely() {
    let config = config();
    let rules = &config.residency.geo_rules;
    use super::residency::matching_geo_rule;
    assert_eq!(
        matching_geo_rule(rules, &loc("CH", "EU", false)).unwrap().description.as_deref(),
        Some("Swiss clients")
    );
    assert_eq!(matching_geo_rule(rules, &loc("FR", "EU", true)).unwrap().description.as_deref(), Some("EU clients"));
    assert!(matching_geo_rule(rules, &loc("NO", "EU", false)).is_none(), "Norway is in Europe but not the EU");
    assert!(matching_geo_rule(rules, &ClientLocation::default()).is_none());
}

struct Route {
    key: char,
    model: &'static str,
    location: ClientLocation,
    header: Option<&'static str>,
    body: serde_json::Value,
    health: HealthSnapshot,
    session: Option<&'static str>,
    previous: Option<&'static str>,
    seed: u64,
    headers: Vec<(&'static str, &'static str)>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            key: '0',
            model: "chat",
            location: loc("US", "NA", false),
            header: None,
            body: json!({}),
            health: HealthSnapshot::new(),
            session: None,
            previous: None,
            seed: 1,
            headers: vec![],
        }
    }
}

type Routed = (Vec<String>, Vec<(String, DropReason)>);

/// Plans a route and returns the ordered `provider/upstream_model` list (or the error).
fn route(config: &Config, r: Route) -> Result<Routed, crate::error::GatewayError> {
    let mut body = json!({"model": r.model, "messages": [{"role": "user", "content": "hello"}]});
    if let (Some(obj), Some(extra)) = (body.as_object_mut(), r.body.as_object()) {
        obj.extend(extra.clone());
    }
    let mut request = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
    let preferences = preferences::take(&mut request)?;
    let key = key(config, r.key);
    let allowed = allowed(config, key, r.header.map(|h| parse_narrowing(h).unwrap()), &r.location)?;
    let headers = r.headers.clone();
    let header = move |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    let input = RouteInput {
        config,
        key,
        model: r.model,
        needs: needs::needs(&request),
        preferences: &preferences,
        header: &header,
        metadata: request.extra.get("metadata").and_then(Value::as_object),
        allowed: &allowed,
        health: &r.health,
        session: r.session,
        previous: r.previous,
        seed: r.seed,
    };
    let plan = plan(&input)?;
    if plan.candidates.is_empty() {
        return Err(plan.no_candidates_error());
    }
    Ok((
        plan.candidates.iter().map(|c| format!("{}/{}", c.provider_id, c.upstream_model)).collect(),
        plan.dropped.iter().map(|d| (d.provider_id.to_string(), d.reason)).collect(),
    ))
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

use crate::protocol::openai::ChatRequest;

#[test]
fn priority_keeps_config_order_and_region_filter_drops_with_reason() {
    let config = config();
    let (order, dropped) = route(&config, Route::default()).unwrap();
    assert_eq!(order, ids(&["us-1/m", "eu-1/m", "eu-de/m", "us-2/m"]));
    assert!(dropped.is_empty());

    let (order, dropped) = route(&config, Route { location: loc("DE", "EU", true), ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["eu-1/m", "eu-de/m"]));
    assert_eq!(dropped, vec![("us-1".into(), DropReason::Region), ("us-2".into(), DropReason::Region)]);
}

#[test]
fn an_eu_request_is_never_planned_outside_eu_even_when_eu_is_unhealthy() {
    let config = config();
    let mut health = HealthSnapshot::new();
    for id in ["eu-1", "eu-de"] {
        health.insert(
            id.into(),
            EndpointHealth {
                available: false,
                ewma_latency_ms: None,
                note: Some("circuit open".into()),
                tool_call_accuracy: None,
            },
        );
    }
    let (order, _) =
        route(&config, Route { location: loc("DE", "EU", true), health: health.clone(), ..Route::default() }).unwrap();
    // Health rules both out; one forced in-region attempt is still allowed, never a US one.
    assert_eq!(order.len(), 1);
    assert!(order[0].starts_with("eu"), "{order:?}");

    // The Swiss-only model from an EU-pinned key: only eu-1 qualifies.
    let (order, _) = route(&config, Route { key: '1', model: "swiss", ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["eu-1/m"]));
    // A model with no target in the allowed region: a clear 503, nothing sent.
    let err = route(&config, Route { key: '1', model: "fast", ..Route::default() }).unwrap_err();
    assert_eq!((err.status, err.code.as_ref()), (503, "no_compliant_provider"));
    assert!(err.message.contains("key policy [eu]"), "{}", err.message);
}

#[test]
fn capability_filter_drops_targets_that_cannot_serve() {
    let config = config();
    let image = json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]});
    let (order, dropped) = route(&config, Route { body: image, ..Route::default() }).unwrap();
    assert!(!order.contains(&"us-2/m".to_string()));
    assert_eq!(dropped, vec![("us-2".into(), DropReason::Capability)]);

    let long = json!({"messages": [{"role": "user", "content": "x".repeat(8000)}]});
    let (order, _) = route(&config, Route { body: long, ..Route::default() }).unwrap();
    assert_eq!(order.len(), 3, "us-2 has a 1000-token window");

    let only_small =
        json!({"provider": {"only": ["us-2"]}, "messages": [{"role": "user", "content": "x".repeat(8000)}]});
    let err = route(&config, Route { body: only_small, ..Route::default() }).unwrap_err();
    assert_eq!((err.status, err.code.as_ref()), (400, "unsupported_capability"));
    assert!(err.message.contains("context window"), "{}", err.message);
}

#[test]
fn cheapest_orders_by_estimated_cost_with_unpriced_last() {
    let config = config();
    let (order, _) = route(&config, Route { model: "cheap", ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["us-2/m", "us-1/m", "eu-de/m"]));
}

#[test]
fn weighted_spreads_load_by_weight() {
    let config = config();
    let mut first_us1 = 0;
    for seed in 0..4000 {
        let (order, _) = route(&config, Route { model: "balanced", seed, ..Route::default() }).unwrap();
        assert_eq!(order.len(), 2);
        if order[0] == "us-1/m" {
            first_us1 += 1;
        }
    }
    assert!((2_850..=3_150).contains(&first_us1), "{first_us1} of 4000, expected ~3000");
}

#[test]
fn fastest_prefers_lower_latency_and_sessions_stick() {
    let config = config();
    let mut health = HealthSnapshot::new();
    health.insert(
        "us-1".into(),
        EndpointHealth { available: true, ewma_latency_ms: Some(900.0), note: None, tool_call_accuracy: None },
    );
    health.insert(
        "us-2".into(),
        EndpointHealth { available: true, ewma_latency_ms: Some(80.0), note: None, tool_call_accuracy: None },
    );
    for seed in 0..50 {
        let (order, _) =
            route(&config, Route { model: "fast", health: health.clone(), seed, ..Route::default() }).unwrap();
        assert_eq!(order, ids(&["us-2/m", "us-1/m"]));
    }
    // Affinity: the same session always lands on the same endpoint, whatever the seed.
    let sticky = |seed| {
        route(&config, Route { model: "balanced", session: Some("conv-42"), seed, ..Route::default() }).unwrap().0[0]
            .clone()
    };
    let first = sticky(0);
    assert!((1..50).all(|seed| sticky(seed) == first));
    // ...but never onto an endpoint that is unhealthy.
    let stuck = first.split('/').next().unwrap().to_string();
    let mut sick = HealthSnapshot::new();
    sick.insert(
        stuck.clone(),
        EndpointHealth { available: false, ewma_latency_ms: None, note: None, tool_call_accuracy: None },
    );
    let (order, _) =
        route(&config, Route { model: "balanced", session: Some("conv-42"), health: sick, ..Route::default() })
            .unwrap();
    assert!(!order[0].starts_with(&stuck));
}

#[test]
fn aliases_pool_models_and_rules_pick_cheaper_models() {
    let config = config();
    let (order, _) = route(&config, Route { model: "smart", ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["us-1/m", "eu-1/m", "eu-de/m", "us-2/m", "us-2/mini"]));

    let tools = json!({"tools": [{"type": "function", "function": {"name": "f"}}], "messages": [{"role": "user", "content": "x".repeat(1000)}]});
    let (order, _) = route(&config, Route { model: "agent", body: tools.clone(), ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["us-1/frontier"]), "judgment call: frontier model");
    let (order, _) = route(
        &config,
        Route { model: "agent", body: tools, headers: vec![("x-gateway-tier", "routine")], ..Route::default() },
    )
    .unwrap();
    assert_eq!(order, ids(&["us-2/mini"]), "routine tier header");
    let (order, _) = route(&config, Route { model: "agent", ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["us-2/mini"]), "short prompt without tools");
}

#[test]
fn body_preferences_order_filter_and_fall_back() {
    let config = config();
    let prefs = |p: serde_json::Value| Route { body: json!({"provider": p}), ..Route::default() };
    assert_eq!(
        route(&config, prefs(json!({"order": ["eu-de", "us-2"]}))).unwrap().0,
        ids(&["eu-de/m", "us-2/m", "us-1/m", "eu-1/m"])
    );
    assert_eq!(
        route(&config, prefs(json!({"order": ["eu-de"], "allow_fallbacks": false}))).unwrap().0,
        ids(&["eu-de/m"])
    );
    assert_eq!(route(&config, prefs(json!({"ignore": ["us-1", "eu-1"]}))).unwrap().0, ids(&["eu-de/m", "us-2/m"]));
    assert_eq!(
        route(&config, prefs(json!({"sort": "price"}))).unwrap().0,
        ids(&["us-2/m", "eu-1/m", "us-1/m", "eu-de/m"])
    );
    assert_eq!(
        route(&config, prefs(json!({"max_price": {"prompt": 2.0}}))).unwrap().0,
        ids(&["eu-1/m", "eu-de/m", "us-2/m"])
    );
    let err = route(&config, prefs(json!({"only": ["nobody"]}))).unwrap_err();
    assert_eq!(err.code, "no_candidates");
    let err = route(&config, prefs(json!({"sort": "vibes"}))).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("provider.sort"));

    let (order, _) =
        route(&config, Route { model: "cheap", body: json!({"models": ["mini"]}), ..Route::default() }).unwrap();
    assert_eq!(
        order,
        ids(&["us-2/m", "us-1/m", "eu-de/m", "us-2/mini"]),
        "fallback models come after the model's own targets"
    );
    let err = route(&config, Route { body: json!({"models": ["nope"]}), ..Route::default() }).unwrap_err();
    assert_eq!((err.status, err.param.as_deref()), (404, Some("models")));
}

#[test]
fn preferences_are_removed_before_forwarding() {
    let mut request = ChatRequest::parse(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "models": ["a"], "provider": {"order": ["p"]}, "temperature": 1})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let prefs = preferences::take(&mut request).unwrap();
    assert_eq!(prefs.models, vec!["a"]);
    assert!(!request.extra.contains_key("models") && !request.extra.contains_key("provider"));
    assert!(request.extra.contains_key("temperature"));
}

#[test]
fn unknown_and_forbidden_models_look_alike() {
    let config = config();
    assert_eq!(route(&config, Route { model: "ghost", ..Route::default() }).unwrap_err().code, "model_not_found");
}

#[test]
fn conversation_prefix_gives_a_stable_session_key() {
    let turn = |extra: Value| {
        let mut messages = vec![
            json!({"role": "system", "content": "You are terse."}),
            json!({"role": "user", "content": "Plan a trip"}),
        ];
        if let Value::Array(more) = extra {
            messages.extend(more);
        }
        ChatRequest::parse(json!({"model": "balanced", "messages": messages}).to_string().as_bytes()).unwrap()
    };
    let first = session_from_prefix(&turn(json!([]))).unwrap();
    let later = session_from_prefix(&turn(
        json!([{"role": "assistant", "content": "Where to?"}, {"role": "user", "content": "Rome"}]),
    ))
    .unwrap();
    assert_eq!(first, later, "later turns keep the session");
    let other = ChatRequest::parse(
        json!({"model": "balanced", "messages": [{"role": "user", "content": "Something else"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_ne!(session_from_prefix(&other).unwrap(), first);
    let no_user = ChatRequest::parse(
        json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}).to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(session_from_prefix(&no_user), None);
}

#[test]
fn the_previous_turns_endpoint_goes_first_while_it_is_a_candidate() {
    let config = config();
    let (order, _) = route(&config, Route { previous: Some("eu-de/m"), ..Route::default() }).unwrap();
    assert_eq!(order[0], "eu-de/m");
    // Not allowed any more (a German client now, and eu-de is in the EU: still first).
    let (order, _) =
        route(&config, Route { previous: Some("us-1/m"), location: loc("DE", "EU", true), ..Route::default() })
            .unwrap();
    assert_eq!(order, ids(&["eu-1/m", "eu-de/m"]), "affinity never overrides residency");
}
