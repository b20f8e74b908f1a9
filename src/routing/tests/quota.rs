//! Learned quota in the plan: endpoints short of it go last, never dropped.

use super::*;
use crate::routing::quota::{Left, QuotaLeft};

fn learned(requests: Option<u64>, tokens: Option<u64>) -> EndpointHealth {
    let left = |remaining| Left { remaining, reset_in_ms: 18_000 };
    EndpointHealth {
        available: true,
        quota: Some(QuotaLeft { requests: requests.map(left), tokens: tokens.map(left), ..Default::default() }),
        ..Default::default()
    }
}

#[test]
fn an_endpoint_short_of_learned_quota_goes_behind_the_ones_with_room() {
    let config = config();
    let mut health = HealthSnapshot::new();
    health.insert("us-1".into(), learned(Some(0), None));
    health.insert("eu-1".into(), learned(Some(40), Some(100_000)));
    let plan = plan_of(&config, Route { health: health.clone(), ..Route::default() }).unwrap();
    let order: Vec<&str> = plan.candidates.iter().map(|c| c.provider_id).collect();
    assert_eq!(order, ["eu-1", "eu-de", "us-2", "us-1"], "moved back, not dropped: the last resort");
    let last = plan.candidates.last().unwrap();
    let why = last.moved_back.as_deref().unwrap();
    assert!(why.contains("0 requests left") && why.contains("18000 ms"), "{why}");
    assert_eq!(plan.candidates[0].quota.unwrap().requests.unwrap().remaining, 40, "explain shows what is learned");
    assert!(plan.candidates[0].moved_back.is_none());

    // Tokens: the prompt estimate plus max_tokens must fit what is left.
    let mut health = HealthSnapshot::new();
    health.insert("us-1".into(), learned(Some(10), Some(500)));
    let small = json!({"max_tokens": 100});
    let (order, _) = route(&config, Route { health: health.clone(), body: small, ..Route::default() }).unwrap();
    assert_eq!(order[0], "us-1/m", "a small request fits 500 tokens");
    let (order, _) =
        route(&config, Route { health: health.clone(), body: json!({"max_tokens": 600}), ..Route::default() }).unwrap();
    assert_eq!(order.last().unwrap(), "us-1/m", "600 output tokens do not");
    // Without max_tokens, the default output estimate counts.
    health.insert("us-1".into(), learned(None, Some(1_000)));
    let (order, _) = route(&config, Route { health, ..Route::default() }).unwrap();
    assert_eq!(order.last().unwrap(), "us-1/m");
}

#[test]
fn every_endpoint_short_of_quota_keeps_its_order() {
    let config = config();
    let health: HealthSnapshot =
        ["us-1", "eu-1", "eu-de", "us-2"].iter().map(|id| (id.to_string(), learned(Some(0), None))).collect();
    let (order, dropped) = route(&config, Route { health, ..Route::default() }).unwrap();
    assert_eq!(order, ids(&["us-1/m", "eu-1/m", "eu-de/m", "us-2/m"]));
    assert!(dropped.is_empty());
}
