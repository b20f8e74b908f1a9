//! Reaching Durable Objects: stubs by name, in the right jurisdiction or near
//! the right place, and JSON calls to them.

use futures_util::future::{select, Either};
use js_sys::{Function, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Delay, Env, ObjectNamespace, Request, Stub};

pub const RATE_LIMITER: &str = "RATE_LIMITER";
pub const PROVIDER_HEALTH: &str = "PROVIDER_HEALTH";
pub const RESPONSE_STORE: &str = "RESPONSE_STORE";

/// The namespace restricted to a jurisdiction (`eu`, `fedramp`), so objects holding
/// a residency-bound tenant's data are created and stored there.
fn namespace_in(env: &Env, binding: &str, jurisdiction: Option<&str>) -> Option<ObjectNamespace> {
    let raw = Reflect::get(env, &JsValue::from_str(binding)).ok().filter(|v| !v.is_undefined())?;
    if let Some(jurisdiction) = jurisdiction {
        let method =
            Reflect::get(&raw, &JsValue::from_str("jurisdiction")).ok().and_then(|m| m.dyn_into::<Function>().ok());
        if let Some(restricted) = method.and_then(|m| m.call1(&raw, &JsValue::from_str(jurisdiction)).ok()) {
            return Some(restricted.unchecked_into());
        }
        super::log::warn("jurisdiction_unavailable", jurisdiction);
    }
    Some(raw.unchecked_into())
}

pub fn stub(
    env: &Env,
    binding: &str,
    name: &str,
    jurisdiction: Option<&str>,
    location_hint: Option<&str>,
) -> Option<Stub> {
    let namespace = namespace_in(env, binding, jurisdiction)?;
    match location_hint {
        Some(hint) => namespace.get_by_name_with_location_hint(name, hint).ok(),
        None => namespace.get_by_name(name).ok(),
    }
}

/// The longest a Durable Object call may take unless its caller says otherwise: a
/// slow object must not stall the requests that need it (callers fail open or closed).
const CALL_DEADLINE_MS: u64 = 3_000;

/// POSTs (or GETs, with no body) JSON to an object and reads JSON back, within the
/// default deadline (see [`call_within`]).
pub async fn call<B: Serialize, R: DeserializeOwned>(stub: &Stub, path: &str, body: Option<&B>) -> Option<R> {
    call_within(stub, path, body, CALL_DEADLINE_MS).await
}

/// A call within `deadline_ms`, retried once when the runtime marks the failure
/// retryable. `None` when it failed: the caller decides whether that fails open
/// or closed.
pub async fn call_within<B: Serialize, R: DeserializeOwned>(
    stub: &Stub,
    path: &str,
    body: Option<&B>,
    deadline_ms: u64,
) -> Option<R> {
    let text = match body {
        Some(body) => Some(serde_json::to_string(body).ok()?),
        None => None,
    };
    for attempt in 0..2 {
        // web_sys's RequestInit, not worker's: its conversion carries the whole `cf`
        // options object (image resizing and more) into the wasm for nothing.
        let init = web_sys::RequestInit::new();
        match &text {
            Some(text) => {
                let headers = web_sys::Headers::new().ok()?;
                headers.set("content-type", "application/json").ok()?;
                init.set_method("POST");
                init.set_headers(&headers);
                init.set_body(&JsValue::from_str(text));
            }
            None => init.set_method("GET"),
        }
        let request =
            Request::from(web_sys::Request::new_with_str_and_init(&format!("https://object{path}"), &init).ok()?);
        let sending = Box::pin(stub.fetch_with_request(request));
        let deadline = Delay::from(Duration::from_millis(deadline_ms));
        match select(sending, deadline).await {
            Either::Left((Ok(mut response), _)) => {
                if response.status_code() != 200 {
                    return None;
                }
                return response.json::<R>().await.ok();
            }
            Either::Left((Err(error), _)) if attempt == 0 && retryable(&error) => continue,
            Either::Left((Err(_), _)) => return None,
            Either::Right(_) => {
                super::log::warn("durable_object_deadline", path);
                return None;
            }
        }
    }
    None
}

/// A Durable Object's request body (JSON sent by `call`), read as text and parsed by
/// serde_json: `Request::json` would parse in JS and convert through serde_wasm_bindgen,
/// a second deserializer per type in the wasm (and numbers through f64).
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> worker::Result<T> {
    Ok(serde_json::from_str(&req.text().await?)?)
}

/// Durable Object errors carry `retryable: true` when trying again may succeed.
fn retryable(error: &worker::Error) -> bool {
    Reflect::get(&error.to_js_value(), &JsValue::from_str("retryable")).ok().and_then(|v| v.as_bool()) == Some(true)
}
