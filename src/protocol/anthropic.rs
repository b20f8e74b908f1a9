//! Anthropic's Messages vocabulary against the canonical one, in both directions:
//! `stop_reason` and `finish_reason`, and the two ways of counting usage. The
//! Anthropic adapter reads Anthropic answers with it; the `/v1/messages` dialect
//! endpoint writes canonical answers back out with it.

use crate::json;
use serde_json::Value;

/// The `anthropic-version` header sent upstream when the client gave none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic's `stop_reason` as a canonical `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>) -> Option<&'static str> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    })
}

/// A canonical `finish_reason` as Anthropic's `stop_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage as canonical usage. Anthropic counts cache reads and writes
/// apart from `input_tokens`; canonical `prompt_tokens` include them (OpenAI's way).
pub fn canonical_usage(usage: &Value) -> Value {
    let n = |f: &str| usage.get(f).and_then(Value::as_u64).unwrap_or(0);
    let (input, output, read, write) =
        (n("input_tokens"), n("output_tokens"), n("cache_read_input_tokens"), n("cache_creation_input_tokens"));
    json!({
        "prompt_tokens": input + read + write,
        "completion_tokens": output,
        "total_tokens": input + read + write + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
    })
}

/// Canonical usage as Anthropic's: cache reads and writes taken out of `input_tokens`.
pub fn anthropic_usage(usage: &Value) -> Value {
    let n = |p: &str| usage.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("/prompt_tokens_details/cached_tokens");
    let created = n("/prompt_tokens_details/cache_creation_tokens");
    json!({
        "input_tokens": n("/prompt_tokens").saturating_sub(cached + created),
        "output_tokens": n("/completion_tokens"),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_survive_the_round_trip() {
        for anthropic in ["end_turn", "max_tokens", "tool_use", "refusal"] {
            assert_eq!(stop_reason(finish_reason(Some(anthropic))), anthropic);
        }
        for canonical in ["stop", "length", "tool_calls", "content_filter"] {
            assert_eq!(finish_reason(Some(stop_reason(Some(canonical)))), Some(canonical));
        }
    }

    #[test]
    fn reasons_without_a_twin_map_to_the_nearest() {
        assert_eq!(finish_reason(Some("stop_sequence")), Some("stop"));
        assert_eq!(finish_reason(Some("pause_turn")), Some("stop"));
        assert_eq!(finish_reason(Some("model_context_window_exceeded")), Some("length"));
        assert_eq!(finish_reason(None), None);
        assert_eq!(stop_reason(Some("function_call")), "tool_use");
        assert_eq!(stop_reason(None), "end_turn");
    }

    #[test]
    fn usage_survives_the_round_trip() {
        let anthropic = json!({"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 3});
        let canonical = canonical_usage(&anthropic);
        assert_eq!(
            canonical,
            json!({"prompt_tokens": 33, "completion_tokens": 7, "total_tokens": 40,
                "prompt_tokens_details": {"cached_tokens": 10, "cache_creation_tokens": 3}})
        );
        assert_eq!(anthropic_usage(&canonical), anthropic);
    }

    #[test]
    fn missing_usage_counts_zero() {
        assert_eq!(canonical_usage(&Value::Null)["total_tokens"], 0);
        assert_eq!(
            anthropic_usage(&json!({"prompt_tokens": 5, "completion_tokens": 2})),
            json!({"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0})
        );
    }
}
