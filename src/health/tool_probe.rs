//! The active tool-calling benchmark: a small fixed request with one tool, sent by
//! the cron to every configured chat target every `settings.tool_probe_minutes`
//! (off by default), so quiet endpoints get a measured tool-call accuracy too.
//! About 120 prompt and 30 completion tokens per target per run.

use super::tool_calls;
use crate::config::Config;
use crate::json;
use crate::protocol::openai::ChatRequest;
use serde_json::Value;

/// Its answers are held to this tool's schema (`location` required).
pub fn tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["location"]
            }
        }
    }])
}

/// The probe's request, in the canonical form, for the public model `model`.
pub fn request(model: &str) -> ChatRequest {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "What is the weather in Paris right now? Use the get_weather tool."}],
        "tools": tools(),
        "max_tokens": 64,
        "temperature": 0,
    });
    // Read from bytes like a client's body: from a Value would instantiate the chat
    // request's deserializer a second time (wasm size).
    serde_json::from_slice(body.to_string().as_bytes()).unwrap_or_else(|_| ChatRequest {
        model: model.to_string(),
        messages: Vec::new(),
        stream: None,
        stream_options: None,
        extra: serde_json::Map::new(),
    })
}

/// Whether a cron run at `now_ms` probes (every `every_minutes`; 0 is off).
pub fn due(every_minutes: u64, now_ms: u64) -> bool {
    every_minutes > 0 && (now_ms / 60_000).is_multiple_of(every_minutes)
}

/// The verdict on the probe's answer: valid calls, or `false` when it called no tool.
pub fn judge(completion: &Value) -> bool {
    tool_calls::all_valid(Some(&tools()), &tool_calls::from_completion(completion)).unwrap_or(false)
}

/// Every (provider, upstream model, public model) that may take tools, once each.
pub fn targets(config: &Config) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for (public, model) in &config.models {
        for t in model.targets.iter().filter(|t| t.capabilities.tools != Some(false)) {
            if !out.iter().any(|(p, m, _)| *p == t.provider && *m == t.model) {
                out.push((t.provider.clone(), t.model.clone(), public.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_are_judged_against_its_tool() {
        let call = |args: &str| {
            json!({"choices": [{"message": {"tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "get_weather", "arguments": args}}]}}]})
        };
        assert!(judge(&call(r#"{"location": "Paris"}"#)));
        assert!(!judge(&call(r#"{"city": "Paris"}"#)), "required field missing");
        assert!(!judge(&call("{not json")));
        assert!(!judge(&json!({"choices": [{"message": {"content": "It is sunny."}}]})), "no tool call");
        let r = request("m");
        assert_eq!((r.model.as_str(), r.messages.len()), ("m", 1));
        assert!(r.extra.contains_key("tools"));
    }

    #[test]
    fn probes_run_every_n_minutes_and_are_off_by_default() {
        assert!(!due(0, 0));
        assert!(due(60, 120 * 60_000) && !due(60, 61 * 60_000));
        assert!(due(1, 7 * 60_000 + 5));
    }
}
