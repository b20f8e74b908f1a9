use super::*;
use crate::config::Environment;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "version": 1,
        "revision": "one",
        "providers": {
            "a": {"kind": "openai", "base_url": "https://a.example/v1", "region": "us"},
            "b": {"kind": "openai", "base_url": "https://b.example/v1", "region": "eu"}
        },
        "models": {
            "m1": {"targets": [{"provider": "a", "model": "x"}]},
            "m2": {"targets": [{"provider": "b", "model": "y"}]}
        },
        "keys": {
            "1111111111111111111111111111111111111111111111111111111111111111":
                {"name": "limited", "models": ["*"], "limits": {"requests_per_minute": 10}, "team": "t"},
            "2222222222222222222222222222222222222222222222222222222222222222":
                {"name": "plain", "models": ["m1"]},
            "3333333333333333333333333333333333333333333333333333333333333333":
                {"name": "mate", "models": ["*"], "regions": ["eu"], "team": "t"}
        },
        "teams": {"t": {"monthly_budget_usd": 5}}
    })
}

fn config(doc: &Value) -> Config {
    Config::from_json_in(&doc.to_string(), &Environment::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn key_mut<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    let keys = doc["keys"].as_object_mut().unwrap();
    keys.values_mut().find(|k| k["name"] == name).unwrap()
}

#[test]
fn the_same_document_changes_nothing() {
    let old = config(&base());
    let d = diff(&old, &config(&base()));
    assert!(d.is_empty(), "{d:?}");
    assert!(limiter_moves(&old, &config(&base())).is_empty());
}

#[test]
fn added_removed_and_changed_names_are_reported_per_section() {
    let mut next = base();
    next["revision"] = "two".into();
    next["providers"]["c"] = json!({"kind": "anthropic", "base_url": "https://c.example/v1", "region": "us"});
    next["providers"]["a"]["base_url"] = "https://a2.example/v1".into();
    next["models"].as_object_mut().unwrap().remove("m2");
    next["models"]["m3"] = json!({"targets": [{"provider": "c", "model": "z"}]});
    next["settings"] = json!({"first_byte_timeout_ms": 5000});
    next["residency"] = json!({"geo_rules": [{"eu_countries": true, "allow": ["eu"]}]});
    let d = diff(&config(&base()), &config(&next));
    assert_eq!(d.providers, Changes { added: vec!["c".into()], removed: vec![], changed: vec!["a".into()] });
    assert_eq!(d.models, Changes { added: vec!["m3".into()], removed: vec!["m2".into()], changed: vec![] });
    assert!(d.keys.is_empty() && d.teams.is_empty());
    assert_eq!(d.settings, vec!["first_byte_timeout_ms".to_string()]);
    assert!(d.residency_changed);
    assert_eq!(d.revision, RevisionChange { from: Some("one".into()), to: Some("two".into()) });
}

#[test]
fn keys_are_named_never_hashed_and_a_rotated_key_is_changed() {
    let mut next = base();
    let keys = next["keys"].as_object_mut().unwrap();
    let plain = keys.remove("2222222222222222222222222222222222222222222222222222222222222222").unwrap();
    keys.insert("4444444444444444444444444444444444444444444444444444444444444444".into(), plain);
    keys.insert(
        "5555555555555555555555555555555555555555555555555555555555555555".into(),
        json!({"name": "fresh", "models": ["m1"]}),
    );
    let d = diff(&config(&base()), &config(&next));
    assert_eq!(d.keys, Changes { added: vec!["fresh".into()], removed: vec![], changed: vec!["plain".into()] });
    let text = serde_json::to_string(&d).unwrap();
    assert!(!text.contains("2222") && !text.contains("4444"), "no key hashes in the diff: {text}");
}

#[test]
fn pinning_a_limited_key_to_eu_moves_its_limiter() {
    let mut next = base();
    key_mut(&mut next, "limited")["regions"] = json!(["eu"]);
    let moves = limiter_moves(&config(&base()), &config(&next));
    // The key moves, and its team (now all eu keys) too.
    assert_eq!(
        moves,
        vec![
            LimiterMove { scope: "key", name: "limited".into(), from: None, to: Some("eu") },
            LimiterMove { scope: "team", name: "t".into(), from: None, to: Some("eu") },
        ]
    );
    let message = moves_refusal(&moves);
    assert!(message.contains("key \"limited\"'s limiter would move from global to the eu jurisdiction"), "{message}");
    assert!(message.contains("accept_limiter_reset=true"), "{message}");
}

#[test]
fn a_team_membership_change_that_moves_the_team_is_a_move() {
    let mut next = base();
    // Without its only global member the team's keys are all pinned to eu.
    key_mut(&mut next, "limited").as_object_mut().unwrap().remove("team");
    let moves = limiter_moves(&config(&base()), &config(&next));
    assert_eq!(moves, vec![LimiterMove { scope: "team", name: "t".into(), from: None, to: Some("eu") }]);
}

#[test]
fn keys_without_limiter_state_move_freely() {
    let mut next = base();
    key_mut(&mut next, "plain")["regions"] = json!(["eu"]);
    assert!(limiter_moves(&config(&base()), &config(&next)).is_empty());
    // A limited key gaining limits only now has no state to lose either.
    let mut old = base();
    key_mut(&mut old, "limited").as_object_mut().unwrap().remove("limits");
    key_mut(&mut old, "limited").as_object_mut().unwrap().remove("team");
    let mut next = old.clone();
    key_mut(&mut next, "limited")["limits"] = json!({"requests_per_minute": 5});
    key_mut(&mut next, "limited")["regions"] = json!(["eu"]);
    assert!(limiter_moves(&config(&old), &config(&next)).is_empty());
}
