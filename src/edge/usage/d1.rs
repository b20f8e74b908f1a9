//! Running the pure core's SQL (`usage::store::Statement`) on the D1 `USAGE` database.

use crate::error::GatewayError;
use crate::usage::store::{SqlValue, Statement};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

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
    let binds: Vec<JsValue> = statement.binds.iter().map(value).collect();
    db.prepare(statement.sql.as_str()).bind(&binds)
}

/// Every row of a query, as JSON objects.
pub async fn rows(db: &D1Database, statement: &Statement) -> Result<Vec<serde_json::Value>, GatewayError> {
    let failed = |e: worker::Error| {
        super::super::log::warn("usage_query_failed", &e.to_string());
        GatewayError::new(503, "server_error", "usage_store_unavailable", "The usage store could not be read.")
    };
    let result = prepare(db, statement).map_err(failed)?.all().await.map_err(failed)?;
    result.results::<serde_json::Value>().map_err(failed)
}
