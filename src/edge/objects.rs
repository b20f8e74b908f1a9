//! Reaching Durable Objects: stubs by name, in the right jurisdiction or near
//! the right place, and JSON calls to them.

use js_sys::{Function, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use worker::{Env, Headers, Method, ObjectNamespace, Request, RequestInit, Stub};

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

/// POSTs (or GETs, with no body) JSON to an object and reads JSON back.
pub async fn call<B: Serialize, R: DeserializeOwned>(stub: &Stub, path: &str, body: Option<&B>) -> Option<R> {
    let mut init = RequestInit::new();
    match body {
        Some(body) => {
            let text = serde_json::to_string(body).ok()?;
            let headers = Headers::new();
            headers.set("content-type", "application/json").ok()?;
            init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from_str(&text)));
        }
        None => {
            init.with_method(Method::Get);
        }
    }
    let request = Request::new_with_init(&format!("https://object{path}"), &init).ok()?;
    let mut response = stub.fetch_with_request(request).await.ok()?;
    if response.status_code() != 200 {
        return None;
    }
    response.json::<R>().await.ok()
}
