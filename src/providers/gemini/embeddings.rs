//! OpenAI `/v1/embeddings` ↔ Gemini `batchEmbedContents`.
//!
//! One batch call serves both a single string and a list (Gemini's `embedContent`
//! takes one input only, and the batch form answers in the same order it was asked).

use super::{bare_model_name, headers, method_url};
use crate::error::GatewayError;
use crate::json;
use crate::providers::{AttemptContext, UpstreamRequest};
use serde_json::Value;

/// Builds the `batchEmbedContents` request for `input` (a string or an array of
/// strings; token arrays are refused, Gemini embeds text). `dimensions` becomes
/// `outputDimensionality` (Gemini truncates the vector to that size).
pub fn embeddings_request(
    ctx: &AttemptContext,
    input: &Value,
    dimensions: Option<u32>,
) -> Result<UpstreamRequest, GatewayError> {
    let texts = input_texts(input)?;
    let model = format!("models/{}", bare_model_name(ctx.upstream_model));
    let requests: Vec<Value> = texts
        .iter()
        .map(|text| {
            let mut request = json!({
                "model": &model,
                "content": { "parts": [{ "text": text }] },
            });
            if let Some(dimensions) = dimensions {
                request["outputDimensionality"] = dimensions.into();
            }
            request
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "requests": requests }))
        .map_err(|e| GatewayError::internal(format!("could not encode the Gemini request: {e}")))?;
    Ok(UpstreamRequest {
        url: method_url(ctx, "batchEmbedContents"),
        headers: headers(ctx, false),
        body,
        stream: false,
    })
}

fn input_texts(input: &Value) -> Result<Vec<&str>, GatewayError> {
    let text_only = || {
        GatewayError::invalid_request(
            "invalid_value",
            "Gemini embeddings take 'input' as a string or an array of strings.",
        )
        .with_param("input")
    };
    match input {
        Value::String(text) => Ok(vec![text.as_str()]),
        Value::Array(items) if items.is_empty() => {
            Err(GatewayError::invalid_request("invalid_value", "'input' must not be empty.").with_param("input"))
        }
        Value::Array(items) => items.iter().map(|item| item.as_str().ok_or_else(text_only)).collect(),
        _ => Err(text_only()),
    }
}

/// Turns a `batchEmbedContents` (or `embedContent`) answer into OpenAI's embeddings
/// list. Gemini reports no token counts for embeddings on every model; usage is
/// taken from `usageMetadata` when present and is 0 otherwise.
pub fn embeddings_response(ctx: &AttemptContext, body: &[u8]) -> Result<Value, String> {
    let response: Value =
        serde_json::from_slice(body).map_err(|e| format!("Gemini returned a body that is not JSON: {e}"))?;
    if let Some(error) = response.get("error") {
        return Err(super::response::describe_error(error));
    }
    let embeddings: Vec<&Value> = match (response.get("embeddings"), response.get("embedding")) {
        (Some(Value::Array(list)), _) => list.iter().collect(),
        (None, Some(single)) => vec![single],
        _ => return Err("Gemini returned no embeddings".to_string()),
    };
    let mut data = Vec::with_capacity(embeddings.len());
    for (index, embedding) in embeddings.into_iter().enumerate() {
        let values = embedding
            .get("values")
            .and_then(Value::as_array)
            .filter(|values| values.iter().all(Value::is_number))
            .ok_or_else(|| format!("Gemini embedding {index} has no numeric 'values'"))?;
        data.push(json!({ "object": "embedding", "index": index, "embedding": values }));
    }
    let count = |key: &str| response.get("usageMetadata").and_then(|m| m.get(key)).and_then(Value::as_u64);
    let prompt = count("promptTokenCount").unwrap_or(0);
    let total = count("totalTokenCount").unwrap_or(prompt);
    Ok(json!({
        "object": "list",
        "data": data,
        "model": ctx.public_model,
        "usage": { "prompt_tokens": prompt, "total_tokens": total },
    }))
}
