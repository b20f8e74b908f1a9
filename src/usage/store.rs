//! The SQL the usage store runs on D1 (`migrations/0001_usage.sql`), built here so
//! the edge only binds and runs it. Inserts are idempotent (`INSERT OR IGNORE` on
//! the request id), and rollups are made from raw rows not yet rolled up, in the
//! same transaction that marks them: a redelivered batch never counts twice.

use super::record::UsageRecord;

/// A value to bind. Integers are bound as reals on D1 (its integer binding is 32-bit).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, binds: Vec<SqlValue>) -> Self {
        Statement { sql: sql.into(), binds }
    }
}

const INSERT_COLUMNS: [&str; 26] = [
    "request_id",
    "ts",
    "kind",
    "key",
    "team",
    "project",
    "agent",
    "tags",
    "model",
    "served_model",
    "provider",
    "upstream_model",
    "region",
    "stream",
    "status",
    "outcome",
    "attempts",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "tool_calls_valid",
];

fn text(v: &Option<String>) -> SqlValue {
    v.as_ref().map_or(SqlValue::Null, |s| SqlValue::Text(s.clone()))
}

fn int(v: u64) -> SqlValue {
    SqlValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// The raw row of a record; a second insert of the same request id changes nothing.
pub fn insert(r: &UsageRecord) -> Statement {
    let placeholders = vec!["?"; INSERT_COLUMNS.len()].join(", ");
    let sql = format!("INSERT OR IGNORE INTO usage_requests ({}) VALUES ({placeholders})", INSERT_COLUMNS.join(", "));
    Statement::new(sql, row(r))
}

/// Records per [`insert_all`] statement: its one bind (the rows' JSON) stays well under
/// D1's 2 MB for a value, whatever a consumer batch of packed messages holds.
pub const ROWS_PER_INSERT: usize = 500;

/// The raw rows of many records in one statement (one bind: the rows as a JSON array
/// of arrays, read back with `json_each`), each as [`insert`] would: a consumer's
/// batch is one statement to prepare, bind and run, not one per record.
pub fn insert_all(records: &[UsageRecord]) -> Statement {
    let columns = (0..INSERT_COLUMNS.len()).map(|i| format!("json_extract(value, '$[{i}]')")).collect::<Vec<_>>();
    let sql = format!(
        "INSERT OR IGNORE INTO usage_requests ({}) SELECT {} FROM json_each(?)",
        INSERT_COLUMNS.join(", "),
        columns.join(", ")
    );
    let json = |v: SqlValue| match v {
        SqlValue::Null => serde_json::Value::Null,
        SqlValue::Int(n) => n.into(),
        SqlValue::Real(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
        SqlValue::Text(s) => s.into(),
    };
    let rows: Vec<serde_json::Value> =
        records.iter().map(|r| row(r).into_iter().map(json).collect::<Vec<_>>().into()).collect();
    Statement::new(sql, vec![SqlValue::Text(serde_json::Value::from(rows).to_string())])
}

/// A record's values, in `INSERT_COLUMNS`' order.
fn row(r: &UsageRecord) -> Vec<SqlValue> {
    let tags = if r.tags.is_empty() { None } else { serde_json::to_string(&r.tags).ok() };
    vec![
        SqlValue::Text(r.request_id.clone()),
        int(r.ts_ms),
        SqlValue::Text(r.kind.clone()),
        SqlValue::Text(r.key.clone()),
        text(&r.team),
        text(&r.project),
        text(&r.agent),
        text(&tags),
        SqlValue::Text(r.model.clone()),
        text(&r.served_model),
        text(&r.provider),
        text(&r.upstream_model),
        text(&r.region),
        int(u64::from(r.stream)),
        int(u64::from(r.status)),
        SqlValue::Text(r.outcome.clone()),
        int(u64::from(r.attempts)),
        int(r.latency_ms),
        r.ttft_ms.map_or(SqlValue::Null, int),
        int(r.prompt_tokens),
        int(r.completion_tokens),
        int(r.cached_tokens),
        int(r.cache_write_tokens),
        int(r.reasoning_tokens),
        SqlValue::Real(if r.cost_usd.is_finite() { r.cost_usd } else { 0.0 }),
        r.tool_calls_valid.map_or(SqlValue::Null, |v| int(u64::from(v))),
    ]
}

/// The status class as SQL (same rule as `record::status_class`).
pub const STATUS_CLASS_SQL: &str = "CASE WHEN status < 400 AND outcome NOT IN ('complete', 'client_gone') \
     THEN 'stream_error' ELSE (status / 100) || 'xx' END";

/// Adds every raw row not yet rolled up to its minute's rollup, then marks them.
/// Run in the same batch (one transaction) as the inserts.
pub fn rollup() -> Vec<Statement> {
    let dims = "key, team, project, agent, model, provider, region, status_class";
    let sum = |c: &str| format!("{c} = {c} + excluded.{c}");
    let sums = [
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms_sum",
        "ttft_ms_sum",
        "ttft_count",
        "tool_calls_checked",
        "tool_calls_valid",
    ];
    let updates: Vec<String> = sums.iter().map(|c| sum(c)).collect();
    let insert = format!(
        "INSERT INTO usage_minutes (minute, {dims}, {sums}) \
         SELECT (ts / 60000) * 60000, key, COALESCE(team, ''), COALESCE(project, ''), COALESCE(agent, ''), \
         COALESCE(served_model, model), COALESCE(provider, ''), COALESCE(region, ''), {class}, \
         COUNT(*), SUM(CASE WHEN status >= 400 OR outcome NOT IN ('complete', 'client_gone') THEN 1 ELSE 0 END), \
         SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cache_write_tokens), \
         SUM(reasoning_tokens), SUM(cost_usd), SUM(latency_ms), COALESCE(SUM(ttft_ms), 0), COUNT(ttft_ms), \
         COUNT(tool_calls_valid), COALESCE(SUM(tool_calls_valid), 0) \
         FROM usage_requests WHERE rolled_up = 0 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 \
         ON CONFLICT (minute, {dims}) DO UPDATE SET {updates}",
        sums = sums.join(", "),
        class = STATUS_CLASS_SQL,
        updates = updates.join(", "),
    );
    vec![
        Statement::new(insert, Vec::new()),
        Statement::new("UPDATE usage_requests SET rolled_up = 1 WHERE rolled_up = 0", Vec::new()),
    ]
}

/// Deletes raw rows older than the retention (their rollups stay).
pub fn expire(now_ms: u64, retention_days: u64) -> Statement {
    let horizon = now_ms.saturating_sub(retention_days.saturating_mul(86_400_000));
    Statement::new("DELETE FROM usage_requests WHERE ts < ? AND rolled_up = 1", vec![int(horizon)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_binds_every_column_once_and_ignores_duplicates() {
        let record = UsageRecord { request_id: "req_1".into(), ttft_ms: Some(5), ..Default::default() };
        let s = insert(&record);
        assert!(s.sql.starts_with("INSERT OR IGNORE INTO usage_requests"));
        assert_eq!(s.sql.matches('?').count(), s.binds.len());
        assert_eq!(s.binds[0], SqlValue::Text("req_1".into()));
        assert_eq!(s.binds[7], SqlValue::Null, "no tags: NULL");
        assert!(s.binds.len() < 100, "D1 binds at most 100 values per statement");
    }

    #[test]
    fn many_inserts_are_one_statement_with_the_rows_as_one_json_bind() {
        let first = UsageRecord { request_id: "req_1".into(), ttft_ms: Some(5), cost_usd: 0.25, ..Default::default() };
        let second = UsageRecord {
            request_id: "req_2".into(),
            tags: [("team".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        let s = insert_all(&[first.clone(), second.clone()]);
        assert!(s.sql.starts_with("INSERT OR IGNORE INTO usage_requests") && s.sql.ends_with("FROM json_each(?)"));
        assert_eq!(s.sql.matches("json_extract").count(), INSERT_COLUMNS.len());
        let [SqlValue::Text(rows)] = &s.binds[..] else { panic!("{:?}", s.binds) };
        let rows: Vec<Vec<serde_json::Value>> = crate::json_value::from_str(rows).unwrap();
        let expect = |r: &UsageRecord| {
            insert(r).binds.into_iter().map(|v| match v {
                SqlValue::Null => serde_json::Value::Null,
                SqlValue::Int(n) => n.into(),
                SqlValue::Real(x) => x.into(),
                SqlValue::Text(t) => t.into(),
            })
        };
        assert_eq!(rows, vec![expect(&first).collect::<Vec<_>>(), expect(&second).collect::<Vec<_>>()]);
        assert_eq!(rows[1][7], serde_json::json!("{\"team\":\"a\"}"), "tags as their JSON text");
    }

    #[test]
    fn rollups_read_only_rows_not_rolled_up_and_mark_them() {
        let [add, mark] = rollup().try_into().unwrap();
        assert!(add.sql.contains("WHERE rolled_up = 0") && add.sql.contains("ON CONFLICT"));
        assert!(mark.sql.contains("SET rolled_up = 1"));
        assert_eq!(expire(10 * 86_400_000, 7).binds, vec![SqlValue::Int(3 * 86_400_000)]);
    }
}
