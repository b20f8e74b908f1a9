//! The client's location from `request.cf`, read field by field: any of them may
//! be missing (locally, or for some traffic), and a missing field must never panic.

use crate::routing::residency::ClientLocation;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use worker::Request;

pub fn client_location(req: &Request) -> ClientLocation {
    let cf = Reflect::get(req.inner(), &JsValue::from_str("cf")).ok().filter(JsValue::is_object);
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
