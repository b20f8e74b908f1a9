//! Sampling, limits, output format and thinking → `generationConfig`.

use super::{invalid, present};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::openai::ChatRequest;
use crate::providers::gemini::{bare_model_name, schema};
use crate::providers::AttemptContext;
use serde_json::{Map, Value};

pub(super) fn generation_config(ctx: &AttemptContext, req: &ChatRequest) -> Result<Map<String, Value>, GatewayError> {
    let mut config = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(value) = present(req, from) {
            config.insert(to.into(), value.clone());
        }
    }
    for (from, to) in [("top_k", "topK"), ("seed", "seed")] {
        if let Some(value) = present(req, from) {
            if !(value.is_i64() || value.is_u64()) {
                return Err(invalid("invalid_type", format!("'{from}' must be an integer."), from.into()));
            }
            config.insert(to.into(), value.clone());
        }
    }
    if let Some(max) = present(req, "max_completion_tokens").or_else(|| present(req, "max_tokens")) {
        config.insert("maxOutputTokens".into(), max.clone());
    }
    if let Some(stop) = stop_sequences(req)? {
        config.insert("stopSequences".into(), stop);
    }
    if let Some(n) = present(req, "n").and_then(Value::as_u64).filter(|n| *n > 1) {
        config.insert("candidateCount".into(), n.into());
    }
    response_format(req, &mut config)?;
    if let Some(thinking) = thinking_config(ctx, req)? {
        config.insert("thinkingConfig".into(), thinking);
    }
    Ok(config)
}

fn stop_sequences(req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    let bad = || invalid("invalid_type", "'stop' must be a string or an array of strings.", "stop".into());
    match present(req, "stop") {
        None => Ok(None),
        Some(Value::String(stop)) => Ok(Some(json!([stop]))),
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            Ok((!stops.is_empty()).then(|| Value::Array(stops.clone())))
        }
        Some(_) => Err(bad()),
    }
}

fn response_format(req: &ChatRequest, config: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let Some(format) = present(req, "response_format") else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), "application/json".into());
            let schema = format.get("json_schema").and_then(|s| s.get("schema")).filter(|s| s.is_object());
            // `name` and `strict` have no Gemini field; the schema is always enforced.
            if let Some(schema) = schema {
                config.insert("responseJsonSchema".into(), schema::for_gemini(schema));
            }
        }
        _ => {
            return Err(invalid(
                "invalid_value",
                "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\".",
                "response_format.type".into(),
            ))
        }
    }
    Ok(())
}

/// The major version of a `gemini-N…` model id (`None` for any other name).
pub(crate) fn gemini_major_version(model: &str) -> Option<u32> {
    let name = bare_model_name(model).to_ascii_lowercase();
    let rest = name.strip_prefix("gemini-")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Gemini 3 and later steer thinking with `thinkingLevel`; earlier models (and any
/// name we cannot place, such as `*-latest` aliases) get `thinkingBudget`, which
/// every thinking generation accepts.
pub(super) fn uses_thinking_levels(model: &str) -> bool {
    gemini_major_version(model).is_some_and(|v| v >= 3)
}

/// `reasoning_effort`, or an explicit `thinking: {type, budget_tokens}` (which wins),
/// as `thinkingConfig`. Thought summaries are asked for whenever thinking is on, so
/// they come back as `reasoning_content`.
fn thinking_config(ctx: &AttemptContext, req: &ChatRequest) -> Result<Option<Value>, GatewayError> {
    if let Some(thinking) = present(req, "thinking") {
        return explicit_thinking(thinking).map(Some);
    }
    let Some(effort) = present(req, "reasoning_effort") else {
        return Ok(None);
    };
    let effort = effort.as_str().unwrap_or_default();
    if !matches!(effort, "none" | "minimal" | "low" | "medium" | "high" | "xhigh") {
        return Err(invalid(
            "invalid_value",
            "'reasoning_effort' must be one of none, minimal, low, medium, high.",
            "reasoning_effort".into(),
        ));
    }
    let include_thoughts = effort != "none";
    if uses_thinking_levels(ctx.upstream_model) {
        // Gemini 3 cannot switch thinking off; "minimal" is its closest setting.
        let level = match effort {
            "none" | "minimal" => "minimal",
            "xhigh" => "high",
            other => other,
        };
        return Ok(Some(json!({ "thinkingLevel": level, "includeThoughts": include_thoughts })));
    }
    // The budgets Google's OpenAI-compatible endpoint documents for these levels.
    let budget = match effort {
        "none" => 0,
        "minimal" | "low" => 1024,
        "medium" => 8192,
        _ => 24576,
    };
    Ok(Some(json!({ "thinkingBudget": budget, "includeThoughts": include_thoughts })))
}

fn explicit_thinking(thinking: &Value) -> Result<Value, GatewayError> {
    let bad = || {
        invalid(
            "invalid_value",
            "'thinking' must be {\"type\":\"enabled\",\"budget_tokens\":N} or {\"type\":\"disabled\"}.",
            "thinking".into(),
        )
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(json!({ "thinkingBudget": 0 })),
        Some("enabled") => {
            let budget = thinking.get("budget_tokens").and_then(Value::as_u64).ok_or_else(bad)?;
            Ok(json!({ "thinkingBudget": budget, "includeThoughts": true }))
        }
        _ => Err(bad()),
    }
}
