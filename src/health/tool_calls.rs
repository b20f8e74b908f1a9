//! "Verified tool-calling reliability": did a model's tool calls name a tool the
//! client offered, with arguments that parse as a JSON object and fit that
//! tool's schema (required properties present, declared top-level types right)?

use crate::protocol::tool_calls::ToolCall;
use serde_json::Value;

/// `None` when there was nothing to check (no tools offered, or no calls made).
pub fn all_valid(tools: Option<&Value>, calls: &[ToolCall]) -> Option<bool> {
    let tools = tools?.as_array()?;
    if calls.is_empty() {
        return None;
    }
    Some(calls.iter().all(|call| {
        let schema = tools.iter().find_map(|t| {
            let function = t.get("function")?;
            (function.get("name")?.as_str()? == call.name).then(|| function.get("parameters"))
        });
        match schema {
            None => false, // a tool the client never offered
            Some(schema) => fits(&call.arguments, schema),
        }
    }))
}

fn fits(arguments: &str, schema: Option<&Value>) -> bool {
    let Ok(Value::Object(args)) =
        crate::json_value::from_str::<Value>(if arguments.trim().is_empty() { "{}" } else { arguments })
    else {
        return false;
    };
    let Some(schema) = schema else { return true };
    let required = schema.get("required").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if !required.iter().filter_map(Value::as_str).all(|name| args.contains_key(name)) {
        return false;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    args.iter().all(|(name, value)| match properties.and_then(|p| p.get(name)) {
        Some(property) => type_fits(value, property),
        None => allows_extra(schema),
    })
}

fn allows_extra(schema: &Value) -> bool {
    schema.get("additionalProperties") != Some(&Value::Bool(false))
}

fn type_fits(value: &Value, property: &Value) -> bool {
    let matches = |t: &str| match t {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    };
    let enum_ok = property.get("enum").and_then(Value::as_array).is_none_or(|options| options.contains(value));
    let type_ok = match property.get("type") {
        Some(Value::String(t)) => matches(t),
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).any(matches),
        _ => true,
    };
    enum_ok && type_ok
}

/// The tool calls of a non-streamed completion body.
pub fn from_completion(completion: &Value) -> Vec<ToolCall> {
    completion
        .pointer("/choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|choice| choice.pointer("/message/tool_calls").and_then(Value::as_array))
        .flatten()
        .map(|call| {
            let text = |p: &str| call.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
            ToolCall { name: text("/function/name"), arguments: text("/function/arguments") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Value {
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer"}},
            "required": ["location"],
            "additionalProperties": false
        }}}])
    }

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall { name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn valid_and_invalid_calls() {
        let t = tools();
        assert_eq!(
            all_valid(Some(&t), &[call("get_weather", r#"{"location":"Paris","unit":"c","days":3}"#)]),
            Some(true)
        );
        let two_calls = [call("get_weather", r#"{"location":"Paris"}"#), call("get_weather", r#"{"location":"Rome"}"#)];
        assert_eq!(all_valid(Some(&t), &two_calls), Some(true));
        for (name, args) in [
            ("get_weather", r#"{"unit":"c"}"#),                // missing required
            ("get_weather", r#"{"location":5}"#),              // wrong type
            ("get_weather", r#"{"location":"P","unit":"k"}"#), // not in enum
            ("get_weather", r#"{"location":"P","extra":1}"#),  // extra property forbidden
            ("get_weather", r#"{"location": "P""#),            // truncated JSON
            ("get_weather", r#"["Paris"]"#),                   // not an object
            ("get_time", r#"{}"#),                             // a tool never offered
        ] {
            assert_eq!(all_valid(Some(&t), &[call(name, args)]), Some(false), "{name} {args}");
        }
        assert_eq!(all_valid(Some(&t), &[]), None);
        assert_eq!(all_valid(None, &[call("x", "{}")]), None);
    }

    #[test]
    fn completion_tool_calls_are_read() {
        let body = json!({"choices": [{"message": {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}}]}}]});
        assert_eq!(from_completion(&body), vec![call("get_weather", r#"{"location":"Oslo"}"#)]);
    }
}
