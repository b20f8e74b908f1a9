//! Internally tagged enums read through one flat struct (`kind`/`op`/... plus every
//! variant's fields as options) instead of serde's tagged derive, which buffers each
//! object first and costs wasm size per enum: the checks every such reader makes.

/// A field the tag's variant needs.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}`"))
}

/// The refusal of a tag no variant has.
pub fn unknown(tag: &str, value: &str, expected: &str) -> String {
    format!("unknown {tag} `{value}`, expected {expected}")
}
