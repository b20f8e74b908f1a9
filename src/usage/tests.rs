use super::attribution::{parse_tags, resolve};
use super::query::{self, UsageQuery};
use super::report::{self, Row};
use crate::config::KeyRecord;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn body(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn headers_win_over_metadata_and_user_names_the_agent() {
    let key = KeyRecord { name: "k".into(), project: Some("default-project".into()), ..Default::default() };
    let b = body(json!({"user": "u-42", "metadata": {"project": "from-meta", "tags": "env=dev,team=x"}}));
    let h = headers(&[("x-gateway-project", "checkout"), ("x-gateway-tags", "env=prod")]);
    let who = resolve(&h, Some(&b), &key).unwrap();
    assert_eq!(who.project.as_deref(), Some("checkout"));
    assert_eq!(who.agent.as_deref(), Some("u-42"));
    assert_eq!(who.tags.get("env").map(String::as_str), Some("prod"), "the header's tag wins");
    assert_eq!(who.tags.get("team").map(String::as_str), Some("x"));

    let none = resolve(&headers(&[]), None, &key).unwrap();
    assert_eq!(none.project.as_deref(), Some("default-project"), "the key's default");
    assert_eq!(none.agent, None);
}

#[test]
fn a_fixed_key_may_add_tags_but_not_change_its_own() {
    let key = KeyRecord {
        name: "k".into(),
        project: Some("billing".into()),
        tags: BTreeMap::from([("env".into(), "prod".into())]),
        fixed_attribution: true,
        ..Default::default()
    };
    let ok = resolve(&headers(&[("x-gateway-project", "billing"), ("x-gateway-tags", "run=7")]), None, &key).unwrap();
    assert_eq!(ok.tags.len(), 2);
    let moved = resolve(&headers(&[("x-gateway-project", "other")]), None, &key).unwrap_err();
    assert_eq!((moved.status, moved.param.as_deref()), (400, Some("x-gateway-project")));
    let retag = resolve(&headers(&[("x-gateway-tags", "env=dev")]), None, &key).unwrap_err();
    assert_eq!(retag.code, "invalid_attribution");
    let agent = resolve(&headers(&[("x-gateway-agent", "bot")]), None, &key).unwrap();
    assert_eq!(agent.agent.as_deref(), Some("bot"), "the key sets no agent: the request may");
}

#[test]
fn attribution_is_bounded_with_clear_400s() {
    let key = KeyRecord::default();
    let long = "a".repeat(65);
    for (h, v) in [
        ("x-gateway-project", long.as_str()),
        ("x-gateway-agent", "has space"),
        ("x-gateway-tags", "novalue"),
        ("x-gateway-tags", "k=<script>"),
    ] {
        let e = resolve(&headers(&[(h, v)]), None, &key).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some(h)), "{h}: {v}");
        assert!(e.message.len() < 300);
    }
    let many: Vec<String> = (0..17).map(|i| format!("k{i}=v")).collect();
    assert!(parse_tags(&many.join(","), "x-gateway-tags").is_err());
    assert_eq!(parse_tags(" a=1 , ,b = 2", "x").unwrap(), vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
    let e = resolve(&headers(&[]), Some(&body(json!({"metadata": {"agent": "ü"}}))), &key).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("metadata.agent"));
    // `user` is the client's own field: one that is no valid name names no agent, and is no 400.
    for user in ["john doe", r#"{"device_id":"7ea4","session_id":"7f34"}"#, long.as_str()] {
        let who = resolve(&headers(&[]), Some(&body(json!({ "user": user }))), &key).unwrap();
        assert_eq!(who.agent, None, "{user}");
    }
}

#[test]
fn key_attribution_defaults_are_validated() {
    let doc = |key: Value| {
        json!({"version": 1, "providers": {"p": {"kind": "openai", "base_url": "https://x.example/v1", "region": "us"}},
            "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}}, "keys": {"a".repeat(64): key}})
        .to_string()
    };
    let ok = crate::config::Config::from_json(&doc(json!({"name": "k", "models": ["*"], "project": "p", "agent": "a",
        "tags": {"env": "prod"}, "fixed_attribution": true})));
    assert!(ok.is_ok(), "{ok:?}");
    let issues = crate::config::Config::from_json(&doc(json!({"name": "k", "models": ["*"], "project": "no spaces",
        "tags": {"e nv": "x"}})))
    .unwrap_err();
    let pointers: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
    assert!(
        pointers.iter().any(|p| p.ends_with("/project")) && pointers.iter().any(|p| p.contains("/tags/")),
        "{pointers:?}"
    );
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn queries_parse_with_clear_errors() {
    let q = query::parse(&pairs(&[("group_by", "team,agent"), ("granularity", "hour"), ("team", "a,b")]), 10_000_000)
        .unwrap();
    assert_eq!(q.group_by, vec!["team", "agent"]);
    assert_eq!(q.granularity, Some((3_600_000, "hour")));
    assert_eq!((q.from_ms, q.to_ms), (0, 10_000_001));
    let s = query::select_rows(&q);
    assert!(s.sql.contains("team IN (?, ?)"));
    assert_eq!(s.sql.matches('?').count(), s.binds.len());
    for bad in [("group_by", "colour"), ("granularity", "week"), ("from", "yesterday"), ("teem", "x"), ("limit", "0")] {
        let e = query::parse(&pairs(&[bad]), 1).unwrap_err();
        assert_eq!(e.status, 400, "{bad:?}");
    }
    let e = query::parse(&pairs(&[("from", "2026-12-02"), ("to", "2026-12-01")]), 1).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("from"));
}

#[test]
fn a_page_continues_after_its_cursor() {
    let mut q = query::parse(&pairs(&[("limit", "2"), ("cursor", "1700~req_b")]), 5_000).unwrap();
    query::restrict(&mut q, "key", "mine");
    let s = query::select_page(&q);
    assert!(s.sql.contains("ORDER BY ts DESC, request_id DESC LIMIT 3"));
    assert!(s.sql.contains("key IN (?)") && s.sql.contains("request_id < ?"));
    assert_eq!(query::cursor(1700, "req_b"), "1700~req_b");
}

fn row(team: &str, agent: &str, ts: f64, latency: f64, status: f64, cost: f64) -> Row {
    Row {
        ts,
        team: Some(team.into()),
        agent: Some(agent.into()),
        status,
        outcome: if status < 400.0 { "complete".into() } else { "error".into() },
        latency_ms: latency,
        prompt_tokens: 10.0,
        completion_tokens: 5.0,
        cost_usd: cost,
        ..Default::default()
    }
}

#[test]
fn aggregates_group_bucket_and_percentiles() {
    let q = UsageQuery { group_by: vec!["team"], granularity: Some((60_000, "minute")), ..base() };
    let mut rows: Vec<Row> = (1..=20).map(|i| row("a", "x", 1_000.0, f64::from(i) * 10.0, 200.0, 0.1)).collect();
    rows.push(row("b", "y", 61_000.0, 7.0, 502.0, 0.0));
    rows.push(Row { team: None, ..row("", "z", 1_000.0, 1.0, 200.0, 0.2) });
    let data = report::aggregate(&q, &rows);
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["team"], Value::Null, "no team sorts first");
    let a = &data[1];
    assert_eq!((a["bucket"].as_str(), a["team"].as_str()), (Some("1970-01-01T00:00:00Z"), Some("a")));
    assert_eq!(
        (a["requests"].as_u64(), a["errors"].as_u64(), a["prompt_tokens"].as_u64()),
        (Some(20), Some(0), Some(200))
    );
    assert_eq!(a["cost_usd"].as_f64(), Some(2.0), "rounded sum");
    assert_eq!((a["latency_ms_p50"].as_u64(), a["latency_ms_p95"].as_u64()), (Some(100), Some(190)));
    assert_eq!(a["ttft_ms_p50"], Value::Null);
    assert_eq!((data[2]["bucket"].as_str(), data[2]["errors"].as_u64()), (Some("1970-01-01T00:01:00Z"), Some(1)));

    let csv = report::csv(&q, &data);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("bucket,team,requests,errors,prompt_tokens,completion_tokens,cached_tokens,cost_usd,latency_ms_p50,latency_ms_p95,ttft_ms_p50"));
    assert_eq!(lines.nth(1), Some("1970-01-01T00:00:00Z,a,20,0,200,100,0,2.0,100,190,"));
}

#[test]
fn percentiles_are_nearest_rank() {
    assert_eq!(report::percentile(&mut [], 50), None);
    assert_eq!(report::percentile(&mut [5], 95), Some(5));
    assert_eq!(report::percentile(&mut [4, 1, 3, 2], 50), Some(2));
    assert_eq!(report::percentile(&mut [4, 1, 3, 2], 95), Some(4));
}

#[test]
fn stored_rows_read_back_as_records() {
    let row = json!({"request_id": "r", "ts": 86_400_000.0, "tags": "{\"env\":\"prod\"}", "stream": 1, "tool_calls_valid": null, "rolled_up": 1});
    let out = report::public_record(row.as_object().unwrap().clone());
    assert_eq!(out["tags"]["env"], "prod");
    assert_eq!(out["stream"], true);
    assert_eq!(out["time"], "1970-01-02T00:00:00Z");
    assert!(!out.contains_key("rolled_up"));
}

fn base() -> UsageQuery {
    query::parse(&[], 1_000_000).unwrap()
}

#[test]
fn long_ranges_read_the_rollups_which_keep_fewer_dimensions() {
    let day = 86_400_000;
    let q = query::parse(&pairs(&[("from", "0"), ("group_by", "team")]), 40 * day).unwrap();
    assert!(q.use_rollups(40 * day, 30), "the range starts before the raw retention");
    assert!(!query::parse(&pairs(&[("from", "0")]), 20 * day).unwrap().use_rollups(20 * day, 30));
    assert!(query::parse(&pairs(&[("source", "rollup")]), day).unwrap().use_rollups(day, 30));
    let s = query::select_rollups(&q).unwrap();
    assert!(s.sql.contains("FROM usage_minutes") && s.sql.contains("NULLIF(team, '') AS team"));
    assert_eq!(s.sql.matches('?').count(), s.binds.len());
    let by_upstream = query::parse(&pairs(&[("group_by", "upstream_model")]), day).unwrap();
    assert_eq!(query::select_rollups(&by_upstream).unwrap_err().status, 400);

    let rollup = |team: &str, requests: f64, errors: f64| Row {
        team: Some(team.into()),
        requests: Some(requests),
        errors: Some(errors),
        prompt_tokens: 100.0,
        cost_usd: 0.5,
        ..Default::default()
    };
    let data = report::aggregate(&q, &[rollup("a", 3.0, 1.0), rollup("a", 2.0, 0.0)]);
    assert_eq!((data[0]["requests"].as_u64(), data[0]["errors"].as_u64()), (Some(5), Some(1)));
    assert_eq!((data[0]["prompt_tokens"].as_u64(), data[0]["cost_usd"].as_f64()), (Some(200), Some(1.0)));
    assert_eq!(data[0]["latency_ms_p50"], Value::Null, "no percentiles from rollups");
}

#[test]
fn query_strings_decode_by_hand() {
    let got = query::query_pairs(
        "https://gw/admin/usage?group_by=team%2Cagent&from=2026-12-01T10%3A00%3A00Z&agent=a+b&flag&x=%zz#frag",
    );
    assert_eq!(
        got,
        pairs(&[
            ("group_by", "team,agent"),
            ("from", "2026-12-01T10:00:00Z"),
            ("agent", "a b"),
            ("flag", ""),
            ("x", "%zz")
        ])
    );
    assert!(query::query_pairs("https://gw/admin/usage").is_empty());
}

#[test]
fn records_travel_many_to_a_message_and_come_back_whole() {
    use crate::usage::record::{pack_lines, unpack_lines};
    use crate::usage::UsageRecord;
    let record = |id: &str| UsageRecord { request_id: id.into(), model: "m\nx".into(), ..UsageRecord::default() };
    let lines: Vec<String> = ["a", "b", "c"].iter().map(|id| serde_json::to_string(&record(id)).unwrap()).collect();
    let one = lines[0].len();
    // Two fit in a message, the third starts the next.
    let messages = pack_lines(&lines, one * 2 + 1);
    assert_eq!(messages.len(), 2);
    let back: Vec<UsageRecord> = messages.iter().flat_map(|m| unpack_lines(m)).map(Result::unwrap).collect();
    assert_eq!(back, vec![record("a"), record("b"), record("c")], "newlines inside values stay escaped");
    // A record longer than the budget still goes, alone.
    assert_eq!(pack_lines(&lines, 10).len(), 3);
    // A message from an earlier deploy (one record) reads the same; junk lines are errors.
    assert_eq!(unpack_lines(&lines[1]).map(Result::unwrap).collect::<Vec<_>>(), vec![record("b")]);
    assert_eq!(unpack_lines("{not json}\n").filter(Result::is_err).count(), 1);
}
