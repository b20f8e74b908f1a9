//! Reaching Durable Objects: stubs by name, in the right jurisdiction or near
//! the right place, and JSON calls to them.

use js_sys::{Function, Object, Promise, Reflect};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;
use worker::worker_sys::DurableObjectNamespace;
use worker::Env;

pub const RATE_LIMITER: &str = "RATE_LIMITER";
pub const PROVIDER_HEALTH: &str = "PROVIDER_HEALTH";
pub const RESPONSE_STORE: &str = "RESPONSE_STORE";

/// The namespace restricted to a jurisdiction (`eu`, `fedramp`), so objects holding
/// a residency-bound tenant's data are created and stored there.
fn namespace_in(env: &Env, binding: &str, jurisdiction: Option<&str>) -> Option<JsValue> {
    let raw = super::binding(env, binding)?;
    if let Some(jurisdiction) = jurisdiction {
        let method =
            Reflect::get(&raw, &JsValue::from_str("jurisdiction")).ok().and_then(|m| m.dyn_into::<Function>().ok());
        if let Some(restricted) = method.and_then(|m| m.call1(&raw, &JsValue::from_str(jurisdiction)).ok()) {
            return Some(restricted);
        }
        super::log::warn("jurisdiction_unavailable", jurisdiction);
    }
    Some(raw)
}

/// A Durable Object stub, called with the runtime's own `fetch` (a string body
/// in, `text()` out): `super::objects::Stub` builds a `worker::Request` with headers and
/// reads the answer through a wasm stream reader, which cost more than the call.
#[derive(Clone)]
pub struct Stub(ObjectStub);

#[wasm_bindgen]
extern "C" {
    #[derive(Clone)]
    type ObjectStub;
    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch_with_init(this: &ObjectStub, url: &str, init: &web_sys::RequestInit) -> Result<Promise, JsValue>;
}

pub fn stub(
    env: &Env,
    binding: &str,
    name: &str,
    jurisdiction: Option<&str>,
    location_hint: Option<&str>,
) -> Option<Stub> {
    let namespace: DurableObjectNamespace = namespace_in(env, binding, jurisdiction)?.unchecked_into();
    let stub = match location_hint {
        Some(hint) => {
            let options = Object::new();
            Reflect::set(&options, &JsValue::from_str("locationHint"), &JsValue::from_str(hint)).ok()?;
            namespace.get_by_name_with_options(name, &options).ok()?
        }
        None => namespace.get_by_name(name).ok()?,
    };
    Some(Stub(stub.unchecked_into()))
}

/// The longest a Durable Object call may take unless its caller says otherwise: a
/// slow object must not stall the requests that need it (callers fail open or closed).
pub const CALL_DEADLINE_MS: u64 = 3_000;

/// POSTs (or GETs, with no body) JSON to an object and reads JSON back, within the
/// default deadline (see [`call_within`]).
pub async fn call<B: Serialize, R: DeserializeOwned>(stub: &Stub, path: &str, body: Option<&B>) -> Option<R> {
    call_within(stub, path, body, CALL_DEADLINE_MS).await
}

/// A call within `deadline_ms` (the runtime's `AbortSignal.timeout`, no timer of
/// ours), retried once when the runtime marks the failure retryable. `None` when
/// it failed: the caller decides whether that fails open or closed.
pub async fn call_within<B: Serialize, R: DeserializeOwned>(
    stub: &Stub,
    path: &str,
    body: Option<&B>,
    deadline_ms: u64,
) -> Option<R> {
    call_once_or_retry(stub, path, body, deadline_ms, true).await
}

/// A call retried (once, when the runtime marks the failure retryable) only if
/// `retry`: a call that is not idempotent must not be applied twice.
pub async fn call_once_or_retry<B: Serialize, R: DeserializeOwned>(
    stub: &Stub,
    path: &str,
    body: Option<&B>,
    deadline_ms: u64,
    retry: bool,
) -> Option<R> {
    let text = match body {
        Some(body) => Some(serde_json::to_string(body).ok()?),
        None => None,
    };
    // One copy of the call for every body and answer type: a boxed future is not
    // inlined into each caller.
    let call: futures_util::future::LocalBoxFuture<'_, Option<String>> =
        Box::pin(call_text(stub, path, text, deadline_ms, retry));
    crate::json_value::from_str(&call.await?).ok()
}

/// The call itself, JSON text in and out.
async fn call_text(stub: &Stub, path: &str, body: Option<String>, deadline_ms: u64, retry: bool) -> Option<String> {
    let text = body.map(|body| JsValue::from_str(&body));
    let url = format!("https://object{path}");
    for attempt in 0..2 {
        let init = web_sys::RequestInit::new();
        match &text {
            Some(text) => {
                init.set_method("POST");
                init.set_body(text);
            }
            None => init.set_method("GET"),
        }
        let signal = AbortSignal::timeout_with_u32(u32::try_from(deadline_ms).unwrap_or(u32::MAX));
        init.set_signal(Some(&signal));
        let answered = match stub.0.fetch_with_init(&url, &init) {
            Ok(promise) => JsFuture::from(promise).await,
            Err(error) => Err(error),
        };
        let error = match answered {
            Ok(response) => {
                let response: web_sys::Response = response.unchecked_into();
                if response.status() != 200 {
                    return None;
                }
                let text = JsFuture::from(response.text().ok()?).await;
                return match text {
                    Ok(text) => text.as_string(),
                    Err(_) if signal.aborted() => deadline_passed(path),
                    Err(_) => None,
                };
            }
            Err(error) => error,
        };
        if signal.aborted() {
            return deadline_passed(path);
        }
        if !(retry && attempt == 0 && retryable(&error)) {
            return None;
        }
    }
    None
}

fn deadline_passed<R>(path: &str) -> Option<R> {
    super::log::warn("durable_object_deadline", path);
    None
}

/// Durable Object errors carry `retryable: true` when trying again may succeed.
fn retryable(error: &JsValue) -> bool {
    Reflect::get(error, &JsValue::from_str("retryable")).ok().and_then(|v| v.as_bool()) == Some(true)
}
