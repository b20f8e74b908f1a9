//! Live monitoring from the usage store: per endpoint and upstream model, over a
//! recent window, latency and time-to-first-token percentiles, errors by class,
//! and tool-call accuracy (the share of checked answers whose tool calls were valid:
//! a declared tool's name, arguments that parse as JSON and carry the schema's
//! required fields).

use super::report::{percentile, Row};
use crate::json;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Default)]
struct Served {
    requests: u64,
    errors: BTreeMap<String, u64>,
    latencies: Vec<u64>,
    ttfts: Vec<u64>,
    tool_calls_checked: u64,
    tool_calls_valid: u64,
}

fn whole(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n as u64
    } else {
        0
    }
}

/// Share of `part` in `all`, to four decimals; `None` when nothing was counted.
pub fn share(part: u64, all: u64) -> Option<f64> {
    (all > 0).then(|| (part as f64 / all as f64 * 10_000.0).round() / 10_000.0)
}

/// Per provider id, its upstream models' figures (rows no provider served are left out).
pub fn by_endpoint(rows: &[Row]) -> BTreeMap<String, Vec<Map<String, Value>>> {
    let mut groups: BTreeMap<(String, String), Served> = BTreeMap::new();
    for row in rows {
        let Some(provider) = row.provider.clone() else { continue };
        let model = row.upstream_model.clone().unwrap_or_default();
        let s = groups.entry((provider, model)).or_default();
        s.requests += 1;
        if row.is_error() {
            let class = row.status_class.clone().unwrap_or_else(|| "other".into());
            *s.errors.entry(class).or_default() += 1;
        }
        s.latencies.push(whole(row.latency_ms));
        s.ttfts.extend(row.ttft_ms.map(whole));
        if let Some(valid) = row.tool_calls_valid {
            s.tool_calls_checked += 1;
            s.tool_calls_valid += u64::from(valid != 0.0);
        }
    }
    let mut out: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    for ((provider, model), mut s) in groups {
        let errors: u64 = s.errors.values().sum();
        let figures = json!({
            "upstream_model": model,
            "requests": s.requests,
            "errors": errors,
            "error_rate": share(errors, s.requests),
            "errors_by_class": serde_json::to_value(&s.errors).unwrap_or_default(),
            "latency_ms_p50": percentile(&mut s.latencies, 50),
            "latency_ms_p95": percentile(&mut s.latencies, 95),
            "ttft_ms_p50": percentile(&mut s.ttfts, 50),
            "ttft_ms_p95": percentile(&mut s.ttfts, 95),
            "tool_calls_checked": s.tool_calls_checked,
            "tool_call_accuracy": share(s.tool_calls_valid, s.tool_calls_checked),
        });
        if let Value::Object(map) = figures {
            out.entry(provider).or_default().push(map);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(provider: &str, model: &str, status: f64, outcome: &str, valid: Option<bool>) -> Row {
        Row {
            provider: Some(provider.into()),
            upstream_model: Some(model.into()),
            status,
            outcome: outcome.into(),
            status_class: Some(super::super::record::status_class(status as u16, outcome)),
            latency_ms: 100.0,
            tool_calls_valid: valid.map(|v| f64::from(u8::from(v))),
            ..Row::default()
        }
    }

    #[test]
    fn accuracy_and_errors_per_provider_and_model() {
        let rows = vec![
            row("a", "m1", 200.0, "complete", Some(true)),
            row("a", "m1", 200.0, "complete", Some(false)),
            row("a", "m1", 200.0, "complete", Some(true)),
            row("a", "m1", 200.0, "complete", None),
            row("a", "m2", 502.0, "error", None),
            row("b", "m1", 200.0, "interrupted", None),
            Row { provider: None, ..row("x", "y", 429.0, "rate_limited", None) },
        ];
        let out = by_endpoint(&rows);
        assert_eq!(out.keys().collect::<Vec<_>>(), ["a", "b"]);
        let m1 = &out["a"][0];
        assert_eq!((m1["requests"].as_u64(), m1["tool_calls_checked"].as_u64()), (Some(4), Some(3)));
        assert_eq!(m1["tool_call_accuracy"].as_f64(), Some(0.6667));
        assert_eq!(out["a"][1]["errors_by_class"]["5xx"], 1);
        assert_eq!(out["b"][0]["errors_by_class"]["stream_error"], 1);
        assert_eq!(out["b"][0]["error_rate"].as_f64(), Some(1.0));
        assert_eq!(m1["tool_call_accuracy"], share(2, 3).map_or(Value::Null, Value::from));
    }
}
