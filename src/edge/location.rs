//! The client's location from `request.cf`, read field by field: any of them may
//! be missing (locally, or for some traffic), and a missing field must never panic.

use crate::config::Config;
use crate::routing::residency::ClientLocation;
use js_sys::Reflect;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Request;

#[wasm_bindgen(inline_js = r#"
export function hideCf(request) {
  try {
    Object.defineProperty(request, "cf", { value: undefined, configurable: true });
  } catch {}
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = hideCf)]
    fn hide_cf(request: &web_sys::Request);
}

/// Hides `request.cf` from the worker crate's request conversion, which reads it
/// for every request: the runtime builds the object on first read, which cost more
/// than routing. [`client_location`] reads it through the prototype's getter when
/// the config's geo rules (or the explain route) need it. One call (an own property
/// made from Rust took six: the descriptor, its fields and their names).
pub fn defer_cf(req: &web_sys::Request) {
    hide_cf(req);
}

/// The client's location where residency needs it (geo rules), else unknown.
pub fn for_residency(req: &Request, config: &Config) -> ClientLocation {
    if config.residency.geo_rules.is_empty() {
        return ClientLocation::default();
    }
    client_location(req)
}

pub fn client_location(req: &Request) -> ClientLocation {
    let request: &JsValue = req.inner();
    let prototype = js_sys::Object::get_prototype_of(request);
    let descriptor = js_sys::Object::get_own_property_descriptor(&prototype, &JsValue::from_str("cf"));
    let getter =
        Reflect::get(&descriptor, &JsValue::from_str("get")).ok().and_then(|g| g.dyn_into::<js_sys::Function>().ok());
    let cf = getter
        .and_then(|get| get.call0(request).ok())
        .filter(JsValue::is_object)
        .or_else(|| Reflect::get(request, &JsValue::from_str("cf")).ok().filter(JsValue::is_object));
    let field = |name: &str| {
        cf.as_ref()
            .and_then(|cf| Reflect::get(cf, &JsValue::from_str(name)).ok())
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty() && s.len() <= 8)
    };
    ClientLocation {
        country: field("country").map(|c| c.to_ascii_uppercase()),
        continent: field("continent").map(|c| c.to_ascii_uppercase()),
        is_eu_country: field("isEUCountry").as_deref() == Some("1"),
    }
}
