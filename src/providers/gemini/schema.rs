//! JSON Schema as Gemini's JSON-Schema fields (`parametersJsonSchema`,
//! `responseJsonSchema`) take it.
//!
//! Those fields accept plain JSON Schema, so unions, `$ref`/`$defs`, bounds and
//! `additionalProperties` pass through untouched (the older `parameters` /
//! `responseSchema` fields take an OpenAPI subset and reject unknown keywords with a
//! 400, which is why they are not used). Only the `$schema` dialect marker is
//! removed: it describes the document rather than the data, and Gemini has refused
//! it. Property *names* are never touched, so a property called `$schema` survives.

use serde_json::{Map, Value};

/// Keywords whose value is one subschema.
const SUBSCHEMA: [&str; 8] =
    ["items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"];
/// Keywords whose value is an array of subschemas.
const SUBSCHEMA_LISTS: [&str; 5] = ["anyOf", "oneOf", "allOf", "prefixItems", "items"];
/// Keywords whose value maps names to subschemas.
const SUBSCHEMA_MAPS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/// A copy of `schema` ready for Gemini. Depth is already bounded by the request
/// parser (`MAX_JSON_DEPTH`), so the recursion cannot run away.
pub fn for_gemini(schema: &Value) -> Value {
    let mut schema = schema.clone();
    strip_dialect(&mut schema);
    schema
}

/// Whether a tool's parameter schema says nothing (`{}`), so the declaration can
/// omit it, as Gemini documents for functions without parameters.
pub fn is_empty(schema: &Value) -> bool {
    schema.as_object().is_some_and(Map::is_empty)
}

fn strip_dialect(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    object.remove("$schema");
    for key in SUBSCHEMA {
        if let Some(sub) = object.get_mut(key).filter(|v| v.is_object()) {
            strip_dialect(sub);
        }
    }
    for key in SUBSCHEMA_LISTS {
        if let Some(Value::Array(list)) = object.get_mut(key) {
            list.iter_mut().for_each(strip_dialect);
        }
    }
    for key in SUBSCHEMA_MAPS {
        if let Some(Value::Object(map)) = object.get_mut(key) {
            map.values_mut().for_each(strip_dialect);
        }
    }
}
