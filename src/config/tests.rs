use super::*;

const DEFAULT: &str = include_str!("../../config/default.json");

/// Parses for local development (mock providers on http://), as `scripts/dev` runs.
fn dev(doc: &str) -> Result<Config, Vec<ConfigIssue>> {
    Config::from_json_in(doc, &Environment::DEVELOPMENT)
}

fn issues_of(doc: &str) -> Vec<String> {
    match dev(doc) {
        Ok(_) => vec![],
        Err(issues) => issues.iter().map(ToString::to_string).collect(),
    }
}

fn with_default(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = crate::json_value::from_str(DEFAULT).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn built_in_default_config_is_valid() {
    let config = dev(DEFAULT).expect("default config must validate");
    assert!(config.models.contains_key("gpt-4o-mini"));
    assert!(config.settings.allow_http_providers);
}

#[test]
fn shipped_examples_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let doc = std::fs::read_to_string(&path).unwrap();
        if let Err(issues) = dev(&doc) {
            panic!("{} is invalid: {issues:?}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 2, "the examples were read");
}

#[test]
fn unknown_provider_is_reported_with_its_pointer() {
    let doc = with_default(|v| v["models"]["gpt-4o-mini"]["targets"][1]["provider"] = "opnai".into());
    assert_eq!(issues_of(&doc), vec![r#"/models/gpt-4o-mini/targets/1/provider: unknown provider "opnai""#]);
}

#[test]
fn shape_errors_carry_pointer_without_line_noise() {
    let doc = with_default(|v| v["providers"]["mock-us"]["kind"] = "opnai".into());
    let issues = issues_of(&doc);
    assert_eq!(issues.len(), 1);
    assert!(issues[0].starts_with("/providers/mock-us/kind: unknown variant `opnai`"), "{issues:?}");
    assert!(!issues[0].contains("line"), "{issues:?}");

    let doc = with_default(|v| v["models"]["gpt-4o"]["targets"][0]["modle"] = "x".into());
    let issues = issues_of(&doc);
    assert!(issues[0].starts_with("/models/gpt-4o/targets/0/modle: unknown field `modle`"), "{issues:?}");
}

#[test]
fn pointer_tokens_are_escaped() {
    let doc = with_default(|v| {
        v["models"]["org/model~x"] = serde_json::json!({"targets": [{"provider": "nope", "model": "m"}]});
    });
    assert_eq!(issues_of(&doc), vec![r#"/models/org~1model~0x/targets/0/provider: unknown provider "nope""#]);
}

#[test]
fn http_base_url_needs_the_dev_flag() {
    let doc = with_default(|v| v["settings"]["allow_http_providers"] = false.into());
    let issues = issues_of(&doc);
    let config = dev(DEFAULT).unwrap();
    assert_eq!(issues.len(), config.providers.len(), "one per http:// provider");
    assert!(issues.iter().all(|i| i.contains("/base_url: must use https://")), "{issues:?}");
}

#[test]
fn http_base_url_is_refused_in_production_whatever_the_document_says() {
    let issues = match Config::from_json(DEFAULT) {
        Ok(_) => panic!("http:// providers must be refused without ALLOW_HTTP_PROVIDERS"),
        Err(issues) => issues,
    };
    let config = dev(DEFAULT).unwrap();
    assert!(config.settings.allow_http_providers, "the document asks for http");
    assert_eq!(issues.len(), config.providers.len(), "one per http:// provider");
    assert!(issues.iter().all(|i| i.message.contains("ALLOW_HTTP_PROVIDERS")), "{issues:?}");
}

#[test]
fn base_url_with_credentials_or_query_is_refused() {
    let doc = with_default(|v| v["providers"]["mock-us"]["base_url"] = "https://user:pw@api.example.com/v1".into());
    assert!(issues_of(&doc)[0].contains("must not contain credentials"));
    let doc = with_default(|v| v["providers"]["mock-us"]["base_url"] = "https://api.example.com/v1?key=x".into());
    assert!(issues_of(&doc)[0].contains("query string"));
    let doc = with_default(|v| v["providers"]["mock-us"]["base_url"] = "ftp://x".into());
    assert!(issues_of(&doc)[0].contains("absolute https://"));
}

#[test]
fn secret_must_be_a_name_not_a_key() {
    let doc = with_default(|v| v["providers"]["mock-us"]["api_key_secret"] = "sk-live-123".into());
    let issues = issues_of(&doc);
    assert!(issues[0].starts_with("/providers/mock-us/api_key_secret:"), "{issues:?}");
    assert!(!issues[0].contains("sk-live-123") || issues[0].contains("is not a secret name"));
}

#[test]
fn keys_must_be_hashes_and_name_known_models() {
    let doc = with_default(|v| {
        v["keys"]["gw_plaintext"] = serde_json::json!({"name": "oops", "models": ["gpt-5"]});
    });
    let issues = issues_of(&doc);
    assert!(issues.iter().any(|i| i.starts_with("/keys/gw_plaintext: keys are indexed by the lowercase hex SHA-256")));
    assert!(issues.iter().any(|i| i == r#"/keys/gw_plaintext/models/0: unknown model "gpt-5""#));
}

#[test]
fn settings_out_of_range_and_version_are_reported() {
    let doc = with_default(|v| {
        v["version"] = 2.into();
        v["settings"]["first_byte_timeout_ms"] = 1.into();
    });
    let issues = issues_of(&doc);
    assert!(issues.contains(&"/version: unsupported version 2, expected 1".to_string()));
    assert!(issues.iter().any(|i| i.starts_with("/settings/first_byte_timeout_ms: 1 is out of range")));
}

#[test]
fn malformed_json_is_an_issue_not_a_panic() {
    let issues = issues_of("{\"version\": 1, ");
    assert_eq!(issues.len(), 1);
    let issues = issues_of("[]");
    assert_eq!(issues.len(), 1);
    let issues = issues_of("");
    assert_eq!(issues.len(), 1);
}

#[test]
fn keys_see_only_their_models() {
    let config = dev(DEFAULT).unwrap();
    let limited = config.key_by_hash(&crate::auth::sha256_hex("gw_dev_limited_key")).unwrap();
    assert!(!limited.allows("gpt-4o"));
    assert!(limited.allows("gpt-4o-mini"));
    assert_eq!(config.models_for(limited).collect::<Vec<_>>(), vec!["gpt-4o-mini"]);
    let full = config.key_by_hash(&crate::auth::sha256_hex("gw_dev_local_key")).unwrap();
    assert_eq!(config.models_for(full).count(), config.models.len());
    assert!(config.key_by_hash(&crate::auth::sha256_hex("gw_nobody")).is_none());
}

#[test]
fn models_can_override_deadlines() {
    let doc = with_default(|v| {
        v["models"]["gpt-4o"]["timeouts"] = serde_json::json!({"first_byte_ms": 90000, "request_ms": 1200000})
    });
    let config = dev(&doc).unwrap();
    let slow = config.settings_for("gpt-4o");
    assert_eq!((slow.first_byte_timeout_ms, slow.request_timeout_ms), (90_000, 1_200_000));
    assert_eq!(slow.stream_idle_timeout_ms, config.settings.stream_idle_timeout_ms);
    assert_eq!(config.settings_for("gpt-4o-mini"), config.settings);
    let bad = with_default(|v| v["models"]["gpt-4o"]["timeouts"] = serde_json::json!({"first_byte_ms": 1}));
    assert!(issues_of(&bad)[0].starts_with("/models/gpt-4o/timeouts/first_byte_ms"));
}

#[test]
fn teams_and_model_limits_are_checked() {
    let hash = "0".repeat(64);
    let doc = with_default(|v| {
        v["teams"] = serde_json::json!({
            "research": {"limits": {"requests_per_minute": 0}, "model_limits": {"gpt-5": {"tokens_per_minute": 10}}},
            "Bad Team": {}
        });
        v["keys"][&hash] = serde_json::json!({
            "name": "k", "models": ["*"], "team": "ops",
            "model_limits": {"gpt-4o": {"max_concurrent": 0}}
        });
    });
    let issues = issues_of(&doc);
    for expected in [
        "/teams/research/limits/requests_per_minute: must be at least 1 (omit it for no limit)",
        r#"/teams/research/model_limits/gpt-5: unknown model "gpt-5""#,
        "/teams/Bad Team: team names use lowercase letters, digits, '-', '_' and '.'",
        &format!(r#"/keys/{hash}/team: unknown team "ops""#),
        &format!("/keys/{hash}/model_limits/gpt-4o/max_concurrent: must be at least 1 (omit it for no limit)"),
    ] {
        assert!(issues.iter().any(|i| i == expected), "missing {expected:?} in {issues:#?}");
    }
}

#[test]
fn limit_scopes_hold_the_whole_key_and_the_model() {
    let key: KeyRecord = serde_json::from_value(serde_json::json!({
        "name": "k", "models": ["*"],
        "limits": {"requests_per_minute": 100},
        "model_limits": {"gpt-4o": {"tokens_per_minute": 5000}}
    }))
    .unwrap();
    let scopes = key.limit_scopes("gpt-4o");
    assert_eq!(scopes.len(), 2);
    assert_eq!(scopes[0].scope, "");
    assert_eq!(crate::limits::scope_model(&scopes[1].scope), Some("gpt-4o"));
    assert_eq!(key.limit_scopes("gpt-4o-mini").len(), 1);
    let unlimited: KeyRecord = serde_json::from_value(serde_json::json!({"name": "u", "models": ["*"]})).unwrap();
    assert!(unlimited.limit_scopes("gpt-4o").is_empty());
}

#[test]
fn price_turns_usage_into_dollars() {
    let price = Price::new(2.5, 10.0);
    assert!((price.cost_usd(1_000_000, 0) - 2.5).abs() < 1e-12);
    assert!((price.cost_usd(1_200, 300) - 0.006).abs() < 1e-12);
    assert_eq!(price.cost_usd(0, 0), 0.0);
    assert_eq!(price.cost_micro_usd(1_200, 300), 6_000);
    let cents = Price::new(0.0, 100_000.0);
    assert_eq!(cents.cost_micro_usd(7, 2), 200_000, "no float drift: five of these are exactly $1");
    assert_eq!(Price::new(0.15, 0.6).cost_micro_usd(1, 1), 1, "rounded up");
}

#[test]
fn cache_reads_and_writes_are_priced_as_such() {
    // Anthropic-style prices: reads at a tenth, writes at 1.25x the input price.
    let price = Price { cached_input_per_mtok: Some(0.3), cache_write_per_mtok: Some(3.75), ..Price::new(3.0, 15.0) };
    let usage: crate::protocol::openai::Usage = serde_json::from_value(serde_json::json!({
        "prompt_tokens": 10_000, "completion_tokens": 100, "total_tokens": 10_100,
        "prompt_tokens_details": {"cached_tokens": 8_000, "cache_creation_tokens": 1_000}
    }))
    .unwrap();
    // 1,000 plain x 3 + 8,000 read x 0.3 + 1,000 written x 3.75 + 100 out x 15 = 10,650 micro-dollars.
    assert_eq!(price.usage_cost_micro_usd(&usage), 10_650);
    assert!((price.usage_cost_usd(&usage) - 0.01065).abs() < 1e-12);
    // Without cache prices every prompt token costs the input price.
    assert_eq!(Price::new(3.0, 15.0).usage_cost_micro_usd(&usage), 31_500);
    // Details larger than the prompt (a confused provider) never go negative.
    let odd: crate::protocol::openai::Usage = serde_json::from_value(serde_json::json!({
        "prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 50, "cache_creation_tokens": 50}
    }))
    .unwrap();
    assert_eq!(price.usage_cost_micro_usd(&odd), 3);
}

#[test]
fn limiter_jurisdictions_follow_the_keys_pins() {
    let key = |name: &str, team: &str, regions: &[&str]| serde_json::json!({"name": name, "models": ["*"], "team": team, "regions": regions});
    let doc = with_default(|v| {
        v["teams"] = serde_json::json!({"eu-team": {}, "mixed": {}});
        v["keys"] = serde_json::json!({
            "a".repeat(64): key("a", "eu-team", &["eu"]),
            "b".repeat(64): key("b", "eu-team", &["eu-de"]),
            "c".repeat(64): key("c", "mixed", &["eu"]),
            "d".repeat(64): key("d", "mixed", &[]),
        });
    });
    let config = dev(&doc).expect("valid");
    assert_eq!(config.team_jurisdiction("eu-team"), Some("eu"));
    assert_eq!(config.team_jurisdiction("mixed"), None, "one unpinned key keeps the team's object global");
    let pinned = |regions: &[&str]| {
        let k: KeyRecord =
            serde_json::from_value(serde_json::json!({"name": "k", "models": ["*"], "regions": regions})).unwrap();
        k.jurisdiction()
    };
    assert_eq!(pinned(&["eu", "eu-fr"]), Some("eu"));
    assert_eq!(pinned(&["eu", "us"]), None);
    assert_eq!(pinned(&["europe"]), None, "a prefix is not a parent region");
    assert_eq!(pinned(&[]), None);
}

#[test]
fn cors_origins_are_origins() {
    let doc = with_default(|v| {
        v["settings"]["cors_origins"] = serde_json::json!([
            "https://app.example.com",
            "http://localhost:5173",
            "*",
            "https://app.example.com/",
            "app.example.com"
        ]);
    });
    assert_eq!(
        issues_of(&doc),
        vec![
            r#"/settings/cors_origins/3: an origin is "*" or scheme://host[:port] with no path, e.g. https://app.example.com"#,
            r#"/settings/cors_origins/4: an origin is "*" or scheme://host[:port] with no path, e.g. https://app.example.com"#,
        ]
    );
}
