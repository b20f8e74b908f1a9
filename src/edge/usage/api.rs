//! The usage query routes: `GET /admin/usage` (aggregates, JSON or CSV),
//! `GET /admin/usage/requests` (raw records, paged) and `GET /v1/usage` (the
//! caller's own key). Parsing, SQL and aggregation are the pure core's.

use super::d1;
use crate::edge::{admin, authenticate, config_store, now_ms, respond};
use crate::error::GatewayError;
use crate::json;
use crate::usage::query::{self, UsageQuery};
use crate::usage::report::{self, Row};
use serde_json::{Map, Value};
use worker::{Context, Env, Headers, Request, Response};

fn pairs(req: &Request) -> Result<Vec<(String, String)>, GatewayError> {
    Ok(query::query_pairs(&req.inner().url()))
}

/// `GET /admin/usage` and `/admin/usage/requests`.
pub async fn admin_usage(req: Request, env: &Env, ctx: &Context, raw: bool) -> Result<Response, GatewayError> {
    admin::authorize(&req, env)?;
    let q = query::parse(&pairs(&req)?, now_ms())?;
    if raw {
        requests(env, &q).await
    } else {
        aggregate(env, ctx, &q).await
    }
}

/// `GET /v1/usage`: the same aggregate, limited to the caller's key.
pub async fn own_usage(req: Request, env: &Env, ctx: &Context) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&crate::edge::js_headers::ClientHeaders::of(&req), &config)?;
    let mut q = query::parse(&pairs(&req)?, now_ms())?;
    match key.team.as_deref().filter(|_| key.team_admin) {
        Some(team) => query::restrict(&mut q, "team", team),
        None => query::restrict(&mut q, "key", &key.name),
    }
    aggregate(env, ctx, &q).await
}

pub async fn read_rows(env: &Env, q: &UsageQuery) -> Result<Vec<Row>, GatewayError> {
    let db = d1::database(env)?;
    let rows = d1::rows(&db, &query::select_rows(q)).await?;
    rows_or_too_many(rows)
}

fn rows_or_too_many(rows: Vec<Value>) -> Result<Vec<Row>, GatewayError> {
    if rows.len() as u64 > query::MAX_ROWS {
        return Err(GatewayError::invalid_request(
            "range_too_large",
            format!("More than {} requests match; narrow the range or add filters.", query::MAX_ROWS),
        ));
    }
    Ok(rows.into_iter().filter_map(|row| serde_json::from_value(row).ok()).collect())
}

async fn aggregate(env: &Env, ctx: &Context, q: &UsageQuery) -> Result<Response, GatewayError> {
    let retention = config_store::document(env, ctx).await.map_or(30, |c| c.settings.usage_retention_days);
    let rows = if q.use_rollups(now_ms(), retention) {
        rows_or_too_many(d1::rows(&d1::database(env)?, &query::select_rollups(q)?).await?)?
    } else {
        read_rows(env, q).await?
    };
    let data = report::aggregate(q, &rows);
    if q.csv {
        let headers = Headers::new();
        let _ = headers.set("content-disposition", "attachment; filename=\"usage.csv\"");
        return Ok(respond::bytes(200, "text/csv; charset=utf-8", report::csv(q, &data).into_bytes(), headers));
    }
    respond::json(200, &json!({ "data": data }))
}

async fn requests(env: &Env, q: &UsageQuery) -> Result<Response, GatewayError> {
    let db = d1::database(env)?;
    let mut rows = d1::rows(&db, &query::select_page(q)).await?;
    let more = rows.len() as u64 > q.limit;
    rows.truncate(q.limit as usize);
    let next = match rows.last().filter(|_| more) {
        Some(last) => {
            let ts = last.get("ts").and_then(Value::as_f64).unwrap_or(0.0) as u64;
            let id = last.get("request_id").and_then(Value::as_str).unwrap_or("");
            Value::from(query::cursor(ts, id))
        }
        None => Value::Null,
    };
    let data: Vec<Map<String, Value>> =
        rows.into_iter().filter_map(|row| row.as_object().cloned()).map(report::public_record).collect();
    respond::json(200, &json!({ "data": data, "next_cursor": next }))
}
