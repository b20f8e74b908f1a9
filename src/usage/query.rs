//! `GET /admin/usage`, `/admin/usage/requests` and `/v1/usage`: the query string
//! read into a [`UsageQuery`], and the SQL that fetches its raw rows (bound
//! values only; column names come from a fixed list).

use super::store::{SqlValue, Statement, STATUS_CLASS_SQL};
use super::time;
use crate::error::GatewayError;

/// What a query may group and filter by, named as in `group_by`.
pub const DIMENSIONS: [&str; 10] =
    ["team", "project", "agent", "model", "provider", "region", "key", "upstream_model", "status_class", "kind"];

/// The default range when `from` is not given.
pub const DEFAULT_RANGE_MS: u64 = 86_400_000;
/// Rows one aggregate query reads at most; a wider range must be narrowed.
pub const MAX_ROWS: u64 = 50_000;
pub const MAX_PAGE: u64 = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    pub from_ms: u64,
    pub to_ms: u64,
    pub group_by: Vec<&'static str>,
    /// Dimension and the values it may take (any of them).
    pub filters: Vec<(&'static str, Vec<String>)>,
    /// Bucket width and its name (`minute`, `hour`, `day`).
    pub granularity: Option<(u64, &'static str)>,
    pub csv: bool,
    /// Page size and position (`/admin/usage/requests`).
    pub limit: u64,
    pub cursor: Option<(u64, String)>,
    /// Read the per-minute rollups instead of raw records (`source=rollup`; no percentiles).
    pub rollups: Option<bool>,
}

/// Dimensions the per-minute rollups keep.
pub const ROLLUP_DIMENSIONS: [&str; 8] =
    ["team", "project", "agent", "model", "provider", "region", "key", "status_class"];

fn invalid(param: &'static str, message: String) -> GatewayError {
    GatewayError::invalid_request("invalid_value", message).with_param(param)
}

fn dimension(name: &str) -> Option<&'static str> {
    DIMENSIONS.iter().copied().find(|d| *d == name)
}

/// Reads the query string's pairs. Unknown parameters are refused, so a typo is not a silent "everything".
pub fn parse(pairs: &[(String, String)], now_ms: u64) -> Result<UsageQuery, GatewayError> {
    let mut q = UsageQuery {
        from_ms: 0,
        to_ms: now_ms.saturating_add(1),
        group_by: Vec::new(),
        filters: Vec::new(),
        granularity: None,
        csv: false,
        limit: 100,
        cursor: None,
        rollups: None,
    };
    let mut from = None;
    for (name, value) in pairs {
        let when = |param| {
            time::parse(value).ok_or_else(|| {
                invalid(
                    param,
                    format!(
                        "{param}: {value:?} is not a UTC time (2026-12-01, 2026-12-01T10:00:00Z or Unix milliseconds)"
                    ),
                )
            })
        };
        match name.as_str() {
            "from" => from = Some(when("from")?),
            "to" => q.to_ms = when("to")?,
            "group_by" => {
                for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let dim = dimension(item).ok_or_else(|| {
                        invalid(
                            "group_by",
                            format!("group_by: unknown dimension {item:?}; use {}", DIMENSIONS.join(", ")),
                        )
                    })?;
                    if !q.group_by.contains(&dim) {
                        q.group_by.push(dim);
                    }
                }
            }
            "granularity" => {
                q.granularity = Some(match value.as_str() {
                    "minute" => (60_000, "minute"),
                    "hour" => (3_600_000, "hour"),
                    "day" => (86_400_000, "day"),
                    _ => {
                        return Err(invalid("granularity", format!("granularity: {value:?}; use minute, hour or day")))
                    }
                })
            }
            "format" => {
                q.csv = match value.as_str() {
                    "csv" => true,
                    "json" => false,
                    _ => return Err(invalid("format", format!("format: {value:?}; use json or csv"))),
                }
            }
            "limit" => {
                q.limit = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid("limit", format!("limit: 1 to {MAX_PAGE}")))?
            }
            "source" => {
                q.rollups = match value.as_str() {
                    "raw" => Some(false),
                    "rollup" => Some(true),
                    _ => return Err(invalid("source", format!("source: {value:?}; use raw or rollup"))),
                }
            }
            "cursor" => {
                q.cursor =
                    Some(parse_cursor(value).ok_or_else(|| invalid("cursor", "cursor: not one this API gave".into()))?)
            }
            other => {
                let dim = dimension(other).ok_or_else(|| {
                    invalid("query", format!("unknown parameter {other:?}; filters are {}", DIMENSIONS.join(", ")))
                })?;
                let values: Vec<String> =
                    value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
                if values.is_empty() || values.len() > 50 {
                    return Err(invalid("query", format!("{other}: 1 to 50 comma-separated values")));
                }
                q.filters.retain(|(d, _)| *d != dim);
                q.filters.push((dim, values));
            }
        }
    }
    q.from_ms = from.unwrap_or_else(|| q.to_ms.saturating_sub(DEFAULT_RANGE_MS));
    if q.from_ms >= q.to_ms {
        return Err(invalid("from", "from must be before to".into()));
    }
    Ok(q)
}

/// The decoded `name=value` pairs of a URL's query string (`+` is a space). Read by
/// hand: the `url` crate would add its Unicode tables to the Worker for this alone.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// `%XX` escapes decoded (and `+` as a space, as forms send it).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Keeps only rows where `dim` is `value`, whatever the query asked (a tenant's own key).
pub fn restrict(q: &mut UsageQuery, dim: &'static str, value: &str) {
    q.filters.retain(|(d, _)| *d != dim);
    q.filters.push((dim, vec![value.to_string()]));
}

/// The SQL expression of a dimension.
pub fn column(dim: &str) -> &'static str {
    match dim {
        "model" => "COALESCE(served_model, model)",
        "status_class" => STATUS_CLASS_SQL,
        other => dimension(other).unwrap_or("NULL"),
    }
}

fn conditions(q: &UsageQuery, binds: &mut Vec<SqlValue>) -> String {
    let mut parts = vec!["ts >= ?".to_string(), "ts < ?".to_string()];
    binds.push(SqlValue::Int(q.from_ms as i64));
    binds.push(SqlValue::Int(q.to_ms.min(i64::MAX as u64) as i64));
    for (dim, values) in &q.filters {
        parts.push(format!("{} IN ({})", column(dim), vec!["?"; values.len()].join(", ")));
        binds.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
    }
    parts.join(" AND ")
}

/// The rows an aggregate reads: one more than `MAX_ROWS`, to tell a range too wide.
pub fn select_rows(q: &UsageQuery) -> Statement {
    let mut binds = Vec::new();
    let conditions = conditions(q, &mut binds);
    let dims: Vec<String> = DIMENSIONS.iter().map(|d| format!("{} AS {d}", column(d))).collect();
    let sql = format!(
        "SELECT ts, {}, status, outcome, latency_ms, ttft_ms, prompt_tokens, completion_tokens, cached_tokens, \
         cost_usd, tool_calls_valid FROM usage_requests WHERE {conditions} LIMIT {}",
        dims.join(", "),
        MAX_ROWS + 1
    );
    Statement::new(sql, binds)
}

impl UsageQuery {
    /// Whether to read rollups: as asked, else when the range starts before raw records are kept.
    pub fn use_rollups(&self, now_ms: u64, retention_days: u64) -> bool {
        self.rollups.unwrap_or_else(|| self.from_ms < now_ms.saturating_sub(retention_days.saturating_mul(86_400_000)))
    }
}

/// The per-minute rollups in range, as rows carrying their counts. Rollups keep
/// `ROLLUP_DIMENSIONS` only, so grouping or filtering by another is refused.
pub fn select_rollups(q: &UsageQuery) -> Result<Statement, GatewayError> {
    let dims = q.group_by.iter().chain(q.filters.iter().map(|(d, _)| d));
    if let Some(dim) = dims.into_iter().find(|d| !ROLLUP_DIMENSIONS.contains(d)) {
        return Err(invalid(
            "group_by",
            format!("{dim} is not kept in the per-minute rollups; use a range within the raw retention"),
        ));
    }
    let mut binds = vec![SqlValue::Int(q.from_ms as i64), SqlValue::Int(q.to_ms.min(i64::MAX as u64) as i64)];
    let mut conditions = "minute >= ? AND minute < ?".to_string();
    for (dim, values) in &q.filters {
        conditions.push_str(&format!(" AND {dim} IN ({})", vec!["?"; values.len()].join(", ")));
        binds.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
    }
    let dims: Vec<String> = ROLLUP_DIMENSIONS.iter().map(|d| format!("NULLIF({d}, '') AS {d}")).collect();
    let sql = format!(
        "SELECT minute AS ts, {}, requests, errors, prompt_tokens, completion_tokens, cached_tokens, cost_usd \
         FROM usage_minutes WHERE {conditions} LIMIT {}",
        dims.join(", "),
        MAX_ROWS + 1
    );
    Ok(Statement::new(sql, binds))
}

/// One page of raw records, newest first, after the cursor.
pub fn select_page(q: &UsageQuery) -> Statement {
    let mut binds = Vec::new();
    let mut conditions = conditions(q, &mut binds);
    if let Some((ts, id)) = &q.cursor {
        conditions.push_str(" AND (ts < ? OR (ts = ? AND request_id < ?))");
        binds.extend([SqlValue::Int(*ts as i64), SqlValue::Int(*ts as i64), SqlValue::Text(id.clone())]);
    }
    let sql = format!(
        "SELECT * FROM usage_requests WHERE {conditions} ORDER BY ts DESC, request_id DESC LIMIT {}",
        q.limit + 1
    );
    Statement::new(sql, binds)
}

pub fn cursor(ts: u64, request_id: &str) -> String {
    format!("{ts}~{request_id}")
}

fn parse_cursor(text: &str) -> Option<(u64, String)> {
    let (ts, id) = text.split_once('~')?;
    Some((ts.parse().ok()?, id.to_string()).clone()).filter(|(_, id)| !id.is_empty() && id.len() <= 64)
}
