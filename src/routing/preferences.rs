//! Per-request routing preferences in the body, the way agents send them
//! (OpenRouter's shape): `models` (fallback models) and `provider` (order, only,
//! ignore, allow_fallbacks, sort, max_price). Removed before forwarding, so no
//! provider ever sees them.

use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    pub models: Vec<String>,
    pub provider: ProviderPreferences,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPreferences {
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    pub only: Vec<String>,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub allow_fallbacks: Option<bool>,
    /// `price` or `latency`.
    #[serde(default)]
    pub sort: Option<String>,
    /// USD per million tokens.
    #[serde(default)]
    pub max_price: Option<MaxPrice>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrice {
    #[serde(default)]
    pub prompt: Option<f64>,
    #[serde(default)]
    pub completion: Option<f64>,
}

/// Takes the preferences out of the request (so they are never forwarded).
pub fn take(request: &mut ChatRequest) -> Result<Preferences, GatewayError> {
    let models = match request.extra.remove("models") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(value) => serde_json::from_value::<Vec<String>>(value).map_err(|_| {
            GatewayError::invalid_request("invalid_type", "'models' must be a list of model names.")
                .with_param("models")
        })?,
    };
    let provider = match request.extra.remove("provider") {
        None | Some(serde_json::Value::Null) => ProviderPreferences::default(),
        Some(value) => serde_json::from_value::<ProviderPreferences>(value).map_err(|e| {
            GatewayError::invalid_request("invalid_value", format!("Invalid 'provider' preferences: {e}."))
                .with_param("provider")
        })?,
    };
    if let Some(sort) = provider.sort.as_deref().filter(|s| !matches!(*s, "price" | "latency")) {
        return Err(GatewayError::invalid_request(
            "invalid_value",
            format!("'provider.sort' must be \"price\" or \"latency\", not {sort:?}."),
        )
        .with_param("provider.sort"));
    }
    Ok(Preferences { models, provider })
}
