//! Validation: serde catches shape errors (with their path), then the semantic
//! checks below catch references and values serde cannot judge.

use super::issue::ConfigIssue;
use super::{Config, Environment, SCHEMA_VERSION};
use crate::json_path;
use crate::limits::Limits;
use std::collections::BTreeMap;

fn issue(pointer: String, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue { pointer, message: message.into() }
}

/// Escapes one reference token of a JSON pointer.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub(super) fn parse_and_validate(text: &str, env: &Environment) -> Result<Config, Vec<ConfigIssue>> {
    let config: Config = match crate::json_value::from_str(text) {
        Ok(config) => config,
        Err(err) => {
            let pointer = json_path::pointer(&json_path::of_error(text.as_bytes(), &err));
            return Err(vec![issue(pointer, strip_position(&err.to_string()))]);
        }
    };
    let issues = semantic_issues(&config, env);
    if issues.is_empty() {
        let mut config = config;
        config.derive_lookups();
        Ok(config)
    } else {
        Err(issues)
    }
}

/// serde_json appends " at line L column C"; the pointer already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) if message[pos..].contains(" column ") => message[..pos].to_string(),
        _ => message.to_string(),
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// `https://host[:port]` (or http): what a browser sends in `Origin`.
fn is_origin(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

fn is_secret_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z'))
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && s.len() <= 128
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn base_url_problem(url: &str, settings_allow: bool, env: &Environment) -> Option<String> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        if !env.allow_http_providers {
            return Some(
                "must use https:// (http:// providers need the Worker var ALLOW_HTTP_PROVIDERS=\"true\", set only for local development)".into(),
            );
        }
        if !settings_allow {
            return Some("must use https:// (set settings.allow_http_providers only for local development)".into());
        }
        rest
    } else {
        return Some(format!("must be an absolute https:// URL, got {url:?}"));
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Some("has no host".into());
    }
    if host.contains('@') {
        return Some("must not contain credentials; name a secret in api_key_secret instead".into());
    }
    if url.contains('?') || url.contains('#') {
        return Some("must not contain a query string or fragment".into());
    }
    if url.ends_with('/') {
        return Some("must not end with '/'".into());
    }
    None
}

fn semantic_issues(config: &Config, env: &Environment) -> Vec<ConfigIssue> {
    let mut out = Vec::new();
    if config.version != SCHEMA_VERSION {
        out.push(issue(
            "/version".into(),
            format!("unsupported version {}, expected {SCHEMA_VERSION}", config.version),
        ));
    }

    let s = &config.settings;
    let ranges: [(&str, u64, u64, u64); 9] = [
        ("max_body_bytes", s.max_body_bytes as u64, 1024, 32 * 1024 * 1024),
        ("first_byte_timeout_ms", s.first_byte_timeout_ms, 100, 600_000),
        ("request_timeout_ms", s.request_timeout_ms, 100, 3_600_000),
        ("stream_idle_timeout_ms", s.stream_idle_timeout_ms, 100, 600_000),
        ("max_stream_ms", s.max_stream_ms, 1_000, 86_400_000),
        ("limiter_timeout_ms", s.limiter_timeout_ms, 100, 60_000),
        ("config_cache_ttl_ms", s.config_cache_ttl_ms, 0, 300_000),
        ("response_retention_days", s.response_retention_days, 1, 3_650),
        // A conversation's turns are rows of one Durable Object (2 MB per row at most).
        ("max_conversation_bytes", s.max_conversation_bytes, 1024, 1_900_000),
    ];
    for (i, origin) in s.cors_origins.iter().enumerate() {
        if origin != "*" && !is_origin(origin) {
            out.push(issue(
                format!("/settings/cors_origins/{i}"),
                "an origin is \"*\" or scheme://host[:port] with no path, e.g. https://app.example.com",
            ));
        }
    }
    let breaker = s.circuit_breaker;
    let ranges = [
        ranges[0],
        ranges[1],
        ranges[2],
        ranges[3],
        ranges[4],
        ranges[5],
        ranges[6],
        ranges[7],
        ranges[8],
        ("circuit_breaker/consecutive_failures", u64::from(breaker.consecutive_failures), 1, 1_000),
        ("circuit_breaker/base_open_ms", breaker.base_open_ms, 100, 3_600_000),
        ("circuit_breaker/max_open_ms", breaker.max_open_ms, breaker.base_open_ms, 3_600_000),
        ("usage_retention_days", s.usage_retention_days, 1, 3_650),
        ("tool_probe_minutes", s.tool_probe_minutes, 0, 10_080),
    ];
    for (name, value, min, max) in ranges {
        if value < min || value > max {
            out.push(issue(format!("/settings/{name}"), format!("{value} is out of range {min}..={max}")));
        }
    }

    if config.providers.is_empty() {
        out.push(issue("/providers".into(), "at least one provider is required"));
    }
    for (id, provider) in &config.providers {
        let at = format!("/providers/{}", token(id));
        if !is_id(id) {
            out.push(issue(at.clone(), "provider ids use lowercase letters, digits, '-', '_' and '.' (at most 64)"));
        }
        if let Some(problem) = base_url_problem(&provider.base_url, s.allow_http_providers, env) {
            out.push(issue(format!("{at}/base_url"), problem));
        }
        if let Some(secret) = &provider.api_key_secret {
            if !is_secret_name(secret) {
                out.push(issue(
                    format!("{at}/api_key_secret"),
                    format!("{secret:?} is not a secret name (UPPER_SNAKE_CASE); put the key in a Worker secret and name it here"),
                ));
            }
        }
        const HINTS: [&str; 9] = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"];
        if let Some(hint) = provider.location_hint.as_deref().filter(|h| !HINTS.contains(h)) {
            out.push(issue(format!("{at}/location_hint"), format!("{hint:?} is not one of {}", HINTS.join(", "))));
        }
        if !is_id(&provider.region) {
            out.push(issue(
                format!("{at}/region"),
                "region tags use lowercase letters, digits and '-', e.g. \"eu\" or \"eu-de\"",
            ));
        }
    }

    if config.models.is_empty() {
        out.push(issue("/models".into(), "at least one model is required"));
    }
    for (name, model) in &config.models {
        let at = format!("/models/{}", token(name));
        if name.is_empty() || name.len() > 256 || name == "*" {
            out.push(issue(at.clone(), "model names are 1 to 256 characters and not \"*\""));
        }
        match (model.targets.is_empty(), model.models.is_empty()) {
            (true, true) => out.push(issue(
                format!("{at}/targets"),
                "at least one target (or, for an alias, a list of models) is required",
            )),
            (false, false) => {
                out.push(issue(format!("{at}/models"), "a model has either targets or, as an alias, models; not both"))
            }
            _ => {}
        }
        for (i, member) in model.models.iter().enumerate() {
            match config.models.get(member) {
                None => out.push(issue(format!("{at}/models/{i}"), format!("unknown model {member:?}"))),
                Some(m) if !m.models.is_empty() => out.push(issue(
                    format!("{at}/models/{i}"),
                    format!("{member:?} is itself an alias; aliases do not nest"),
                )),
                Some(_) => {}
            }
        }
        for (i, target) in model.targets.iter().enumerate() {
            if !config.providers.contains_key(&target.provider) {
                out.push(issue(
                    format!("{at}/targets/{i}/provider"),
                    format!("unknown provider {:?}", target.provider),
                ));
            }
            if target.model.is_empty() {
                out.push(issue(format!("{at}/targets/{i}/model"), "must not be empty"));
            }
            if let Some(price) = target.price {
                for (field, value) in [
                    ("input_per_mtok", price.input_per_mtok),
                    ("output_per_mtok", price.output_per_mtok),
                    ("cached_input_per_mtok", price.cached_input_per_mtok.unwrap_or(0.0)),
                    ("cache_write_per_mtok", price.cache_write_per_mtok.unwrap_or(0.0)),
                ] {
                    if !value.is_finite() || value < 0.0 {
                        out.push(issue(format!("{at}/targets/{i}/price/{field}"), "must be a non-negative number"));
                    }
                }
            }
        }
        for (field, value, max) in [
            ("first_byte_ms", model.timeouts.first_byte_ms, 600_000),
            ("request_ms", model.timeouts.request_ms, 3_600_000),
            ("stream_idle_ms", model.timeouts.stream_idle_ms, 600_000),
        ] {
            if value.is_some_and(|v| !(100..=max).contains(&v)) {
                out.push(issue(format!("{at}/timeouts/{field}"), format!("out of range 100..={max}")));
            }
        }
        for (i, rule) in model.rules.iter().enumerate() {
            if !config.models.contains_key(&rule.use_model) {
                out.push(issue(format!("{at}/rules/{i}/use_model"), format!("unknown model {:?}", rule.use_model)));
            }
            if rule.when.headers.keys().any(|h| h.bytes().any(|b| b.is_ascii_uppercase())) {
                out.push(issue(format!("{at}/rules/{i}/when/headers"), "header names are matched in lowercase"));
            }
        }
    }

    for (name, tags) in &config.residency.policies {
        let at = format!("/residency/policies/{}", token(name));
        if !is_id(name) {
            out.push(issue(at.clone(), "policy names use lowercase letters, digits and '-'"));
        }
        if tags.is_empty() {
            out.push(issue(at.clone(), "a policy needs at least one region tag"));
        }
    }
    const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];
    for (i, rule) in config.residency.geo_rules.iter().enumerate() {
        let at = format!("/residency/geo_rules/{i}");
        if rule.countries.is_empty() && rule.continents.is_empty() && !rule.eu_countries && !rule.unknown_location {
            out.push(issue(at.clone(), "a geo rule needs countries, continents, eu_countries or unknown_location"));
        }
        for (j, country) in rule.countries.iter().enumerate() {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                out.push(issue(
                    format!("{at}/countries/{j}"),
                    format!("{country:?} is not an ISO 3166-1 alpha-2 code like \"DE\""),
                ));
            }
        }
        for (j, continent) in rule.continents.iter().enumerate() {
            if !CONTINENTS.contains(&continent.as_str()) {
                out.push(issue(
                    format!("{at}/continents/{j}"),
                    format!("{continent:?} is not one of {}", CONTINENTS.join(", ")),
                ));
            }
        }
        if rule.allow.is_empty() {
            out.push(issue(format!("{at}/allow"), "name at least one policy (region) these requests may be served in"));
        }
        for (j, policy) in rule.allow.iter().enumerate() {
            if !is_id(policy) {
                out.push(issue(format!("{at}/allow/{j}"), "policy names use lowercase letters, digits and '-'"));
            }
        }
    }

    for (hash, key) in &config.keys {
        let at = format!("/keys/{}", token(hash));
        if !is_sha256_hex(hash) {
            out.push(issue(at.clone(), "keys are indexed by the lowercase hex SHA-256 of the gateway key (64 characters), never the key itself"));
        }
        if key.name.is_empty() {
            out.push(issue(format!("{at}/name"), "must not be empty"));
        }
        check_limits(config, &at, &key.limits, &key.model_limits, &mut out);
        check_budget(&at, key.monthly_budget_usd, &mut out);
        super::attribution::check_key(&at, key, &mut out);
        if let Some(team) = &key.team {
            if !config.teams.contains_key(team) {
                out.push(issue(format!("{at}/team"), format!("unknown team {team:?}")));
            }
        }
        if config.keys.values().filter(|other| other.name == key.name).count() > 1 {
            out.push(issue(
                format!("{at}/name"),
                format!("{:?} is used by another key; names identify keys in limits and logs", key.name),
            ));
        }
        for (i, policy) in key.regions.iter().enumerate() {
            if !is_id(policy) {
                out.push(issue(format!("{at}/regions/{i}"), "policy names use lowercase letters, digits and '-'"));
            }
        }
        for (i, model) in key.models.iter().enumerate() {
            if model != "*" && !config.models.contains_key(model) {
                out.push(issue(format!("{at}/models/{i}"), format!("unknown model {model:?}")));
            }
        }
    }
    for (name, team) in &config.teams {
        let at = format!("/teams/{}", token(name));
        if !is_id(name) {
            out.push(issue(at.clone(), "team names use lowercase letters, digits, '-', '_' and '.'"));
        }
        check_limits(config, &at, &team.limits, &team.model_limits, &mut out);
        check_budget(&at, team.monthly_budget_usd, &mut out);
    }
    for (id, provider) in &config.providers {
        check_limit_values(&format!("/providers/{}/limits", token(id)), &provider.limits, &mut out);
    }
    out
}

/// A key's or team's limits: positive values, and model limits only for known models.
fn check_limits(
    config: &Config,
    at: &str,
    limits: &Limits,
    model_limits: &BTreeMap<String, Limits>,
    out: &mut Vec<ConfigIssue>,
) {
    check_limit_values(&format!("{at}/limits"), limits, out);
    for (model, limits) in model_limits {
        let here = format!("{at}/model_limits/{}", token(model));
        if !config.models.contains_key(model) {
            out.push(issue(here.clone(), format!("unknown model {model:?}")));
        }
        check_limit_values(&here, limits, out);
    }
}

fn check_budget(at: &str, budget: Option<f64>, out: &mut Vec<ConfigIssue>) {
    if budget.is_some_and(|usd| !(usd > 0.0 && usd < 1e9)) {
        out.push(issue(format!("{at}/monthly_budget_usd"), "must be a positive amount of US dollars"));
    }
}

fn check_limit_values(at: &str, limits: &Limits, out: &mut Vec<ConfigIssue>) {
    for (field, value) in [
        ("requests_per_minute", limits.requests_per_minute),
        ("tokens_per_minute", limits.tokens_per_minute),
        ("max_concurrent", limits.max_concurrent.map(u64::from)),
    ] {
        if value == Some(0) {
            out.push(issue(format!("{at}/{field}"), "must be at least 1 (omit it for no limit)"));
        }
    }
}
