//! Running the pure core's SQL (`usage::store::Statement`) on the D1 `USAGE` database.

use crate::error::GatewayError;
use crate::usage::store::{SqlValue, Statement};
use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{D1Database, D1PreparedStatement, Env};

#[wasm_bindgen(inline_js = r#"
export function prepareBound(db, sql, binds) {
  return db.prepare(sql).bind(...JSON.parse(binds));
}
export async function allRows(statement) {
  return JSON.stringify((await statement.all()).results ?? []);
}
"#)]
extern "C" {
    /// A statement with its binds given as one JSON array: one call, where binding
    /// value by value costs a call (and a string conversion) per column.
    #[wasm_bindgen(js_name = prepareBound, catch)]
    fn prepare_bound(db: &JsValue, sql: &str, binds: &str) -> Result<JsValue, JsValue>;
    /// A query's rows as one JSON array, read by serde_json (no second deserializer for
    /// JS values in the wasm).
    #[wasm_bindgen(js_name = allRows)]
    fn all_rows(statement: &JsValue) -> js_sys::Promise;
}

pub const BINDING: &str = "USAGE";

pub fn database(env: &Env) -> Result<D1Database, GatewayError> {
    env.d1(BINDING).map_err(|_| {
        GatewayError::new(
            503,
            "server_error",
            "usage_store_unavailable",
            "The usage store is not configured: bind the D1 database USAGE (see the README).",
        )
    })
}

fn value(v: &SqlValue) -> JsValue {
    match v {
        SqlValue::Null => JsValue::NULL,
        // D1's integer binding is 32-bit: timestamps in milliseconds go as numbers.
        SqlValue::Int(n) => JsValue::from_f64(*n as f64),
        SqlValue::Real(x) => JsValue::from_f64(*x),
        SqlValue::Text(s) => JsValue::from_str(s),
    }
}

pub fn prepare(db: &D1Database, statement: &Statement) -> worker::Result<D1PreparedStatement> {
    if let Some(binds) = binds_json(&statement.binds) {
        let prepared = prepare_bound(db.as_ref(), &statement.sql, &binds).map_err(worker::Error::from)?;
        return Ok(prepared.unchecked_into::<worker::worker_sys::types::D1PreparedStatement>().into());
    }
    let binds: Vec<JsValue> = statement.binds.iter().map(value).collect();
    db.prepare(statement.sql.as_str()).bind(&binds)
}

/// A bind as JSON gives it to JS: the same values as [`value`].
#[derive(Serialize)]
#[serde(untagged)]
enum JsonBind<'a> {
    Null(()),
    Number(f64),
    Text(&'a str),
}

/// The binds as one JSON array; `None` when a number is not finite (JSON has no
/// NaN or infinity: those are bound value by value).
fn binds_json(binds: &[SqlValue]) -> Option<String> {
    let number = |x: f64| x.is_finite().then_some(JsonBind::Number(x));
    let values = binds
        .iter()
        .map(|v| match v {
            SqlValue::Null => Some(JsonBind::Null(())),
            SqlValue::Int(n) => number(*n as f64),
            SqlValue::Real(x) => number(*x),
            SqlValue::Text(s) => Some(JsonBind::Text(s)),
        })
        .collect::<Option<Vec<_>>>()?;
    serde_json::to_string(&values).ok()
}

/// Every row of a query, as JSON objects.
pub async fn rows(db: &D1Database, statement: &Statement) -> Result<Vec<serde_json::Value>, GatewayError> {
    let failed = |e: worker::Error| {
        super::super::log::warn("usage_query_failed", &e.to_string());
        GatewayError::new(503, "server_error", "usage_store_unavailable", "The usage store could not be read.")
    };
    let prepared = prepare(db, statement).map_err(failed)?;
    let text = JsFuture::from(all_rows(prepared.inner())).await.map_err(|e| failed(e.into()))?;
    crate::json_value::from_str(&text.as_string().unwrap_or_default())
        .map_err(|e| failed(worker::Error::SerdeJsonError(e)))
}
