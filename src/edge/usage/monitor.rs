//! `GET /admin/monitor`: live figures per endpoint, the usage store's recent window
//! (latency and TTFT percentiles, errors by class, tool-call accuracy per upstream
//! model) next to the `ProviderHealth` object's state (circuit, error window,
//! latency histogram, tool-call validity).

use super::api::read_rows;
use crate::edge::{admin, config_store, health_cache, now_ms, respond};
use crate::error::GatewayError;
use crate::usage::{monitor, query};
use serde_json::{json, Value};
use worker::{Context, Env, Request, Response};

/// The window when the query names no `from`: the last 15 minutes.
const WINDOW_MS: u64 = 15 * 60_000;

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Result<Response, GatewayError> {
    admin::authorize(&req, env)?;
    let config = config_store::current(env, ctx).await?;
    let mut pairs = query::query_pairs(&req.inner().url());
    if !pairs.iter().any(|(k, _)| k == "from") {
        pairs.push(("from".into(), now_ms().saturating_sub(WINDOW_MS).to_string()));
    }
    let q = query::parse(&pairs, now_ms())?;
    let (rows, health) = futures_util::join!(read_rows(env, &q), health_cache::read_all(env, &config));
    let mut served = monitor::by_endpoint(&rows?);
    let endpoints: Vec<Value> = health
        .into_iter()
        .map(|(id, state)| {
            let state = state.unwrap_or(Value::Null);
            json!({
                "provider": id,
                "region": config.providers.get(&id).map(|p| p.region.as_str()),
                "circuit": state["breaker"]["circuit"]["state"],
                "health": {
                    "available": state["snapshot"]["available"],
                    "error_rate": state["error_rate"],
                    "latency_ms": state["latency_ms"],
                    "tool_call_validity": state["tool_call_validity"],
                },
                "models": served.remove(&id).unwrap_or_default(),
            })
        })
        .collect();
    respond::json(
        200,
        &json!({"from": crate::usage::time::iso(q.from_ms), "to": crate::usage::time::iso(q.to_ms), "endpoints": endpoints}),
    )
}
