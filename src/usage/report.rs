//! Aggregating raw usage rows into the query API's answer: per group (the
//! `group_by` dimensions) and bucket, requests, errors, tokens, cost and latency
//! percentiles; as JSON (`{"data": [...]}`) or CSV with the same column names.

use super::query::{UsageQuery, DIMENSIONS};
use super::record::is_error;
use super::time;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One raw row as `query::select_rows` reads it (numbers arrive as JSON numbers).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Row {
    pub ts: f64,
    pub team: Option<String>,
    pub project: Option<String>,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub region: Option<String>,
    pub key: Option<String>,
    pub upstream_model: Option<String>,
    pub status_class: Option<String>,
    pub kind: Option<String>,
    pub status: f64,
    pub outcome: String,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: f64,
    pub completion_tokens: f64,
    pub cached_tokens: f64,
    pub cost_usd: f64,
    pub tool_calls_valid: Option<f64>,
    /// A rollup row: the requests and errors it counts (a raw row is one request).
    pub requests: Option<f64>,
    pub errors: Option<f64>,
}

impl Row {
    pub fn dimension(&self, dim: &str) -> Option<&str> {
        match dim {
            "team" => self.team.as_deref(),
            "project" => self.project.as_deref(),
            "agent" => self.agent.as_deref(),
            "model" => self.model.as_deref(),
            "provider" => self.provider.as_deref(),
            "region" => self.region.as_deref(),
            "key" => self.key.as_deref(),
            "upstream_model" => self.upstream_model.as_deref(),
            "status_class" => self.status_class.as_deref(),
            "kind" => self.kind.as_deref(),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        is_error(self.status as u16, &self.outcome)
    }
}

/// The measures of one group, in output order.
pub const MEASURES: [&str; 9] = [
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms_p50",
    "latency_ms_p95",
    "ttft_ms_p50",
];

#[derive(Debug, Default)]
struct Group {
    requests: u64,
    errors: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
    cost_usd: f64,
    latencies: Vec<u64>,
    ttfts: Vec<u64>,
}

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values; `None` when empty.
pub fn percentile(values: &mut [u64], p: u64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p * values.len() as u64).div_ceil(100).max(1);
    values.get(rank as usize - 1).copied()
}

fn whole(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n as u64
    } else {
        0
    }
}

/// The answer's rows: one object per group and bucket, sorted by bucket then group.
pub fn aggregate(q: &UsageQuery, rows: &[Row]) -> Vec<Map<String, Value>> {
    let mut groups: BTreeMap<(Option<u64>, Vec<Option<String>>), Group> = BTreeMap::new();
    for row in rows {
        let bucket = q.granularity.map(|(width, _)| whole(row.ts) / width * width);
        let dims = q.group_by.iter().map(|d| row.dimension(d).map(str::to_string)).collect();
        let g = groups.entry((bucket, dims)).or_default();
        match row.requests {
            Some(requests) => {
                g.requests += whole(requests);
                g.errors += row.errors.map_or(0, whole);
            }
            None => {
                g.requests += 1;
                g.errors += u64::from(row.is_error());
                g.latencies.push(whole(row.latency_ms));
                g.ttfts.extend(row.ttft_ms.map(whole));
            }
        }
        g.prompt_tokens += whole(row.prompt_tokens);
        g.completion_tokens += whole(row.completion_tokens);
        g.cached_tokens += whole(row.cached_tokens);
        g.cost_usd += if row.cost_usd.is_finite() { row.cost_usd } else { 0.0 };
    }
    groups
        .into_iter()
        .map(|((bucket, dims), mut g)| {
            let mut out = Map::new();
            if let Some(bucket) = bucket {
                out.insert("bucket".into(), Value::from(time::iso(bucket)));
            }
            for (dim, value) in q.group_by.iter().zip(dims) {
                out.insert((*dim).into(), value.map_or(Value::Null, Value::from));
            }
            out.insert("requests".into(), g.requests.into());
            out.insert("errors".into(), g.errors.into());
            out.insert("prompt_tokens".into(), g.prompt_tokens.into());
            out.insert("completion_tokens".into(), g.completion_tokens.into());
            out.insert("cached_tokens".into(), g.cached_tokens.into());
            out.insert("cost_usd".into(), round_usd(g.cost_usd).into());
            let opt = |v: Option<u64>| v.map_or(Value::Null, Value::from);
            out.insert("latency_ms_p50".into(), opt(percentile(&mut g.latencies, 50)));
            out.insert("latency_ms_p95".into(), opt(percentile(&mut g.latencies, 95)));
            out.insert("ttft_ms_p50".into(), opt(percentile(&mut g.ttfts, 50)));
            out
        })
        .collect()
}

/// Dollars to 1e-9 (sums of floats otherwise print as 0.30000000000000004).
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

/// The CSV columns: the bucket (with a granularity), the dimensions, the measures.
pub fn columns(q: &UsageQuery) -> Vec<&'static str> {
    let mut out = Vec::new();
    if q.granularity.is_some() {
        out.push("bucket");
    }
    out.extend(q.group_by.iter().copied());
    out.extend(MEASURES);
    out
}

pub fn csv(q: &UsageQuery, data: &[Map<String, Value>]) -> String {
    let columns = columns(q);
    let mut out = columns.join(",");
    out.push('\n');
    for row in data {
        let cells: Vec<String> = columns.iter().map(|c| csv_cell(row.get(*c).unwrap_or(&Value::Null))).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn csv_cell(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A stored raw row as the requests API shows it: tags as an object, flags as booleans.
pub fn public_record(mut row: Map<String, Value>) -> Map<String, Value> {
    row.remove("rolled_up");
    if let Some(tags) = row.get("tags").and_then(Value::as_str) {
        let parsed = crate::json_value::from_str::<Value>(tags).unwrap_or(Value::Null);
        row.insert("tags".into(), parsed);
    }
    for flag in ["stream", "tool_calls_valid"] {
        if let Some(n) = row.get(flag).and_then(Value::as_f64) {
            row.insert(flag.into(), Value::Bool(n != 0.0));
        }
    }
    if let Some(ts) = row.get("ts").and_then(Value::as_f64) {
        row.insert("time".into(), Value::from(time::iso(whole(ts))));
    }
    row
}

/// Every dimension is a known one (for callers building group lists).
pub fn is_dimension(name: &str) -> bool {
    DIMENSIONS.contains(&name)
}
