//! The types of the chat request's known fields, checked before routing so a
//! malformed request is a clear 400 naming the field, never a provider's 502.
//! Unknown fields pass through untouched.

use super::ChatRequest;
use crate::error::GatewayError;
use serde_json::Value;

fn invalid_type(param: String, message: String) -> GatewayError {
    GatewayError::invalid_request("invalid_type", message).with_param(param)
}

/// A field's name, its check, and what it must be (for the message).
type FieldType = (&'static str, fn(&Value) -> bool, &'static str);

fn is_string_list(value: &Value) -> bool {
    value.as_array().is_some_and(|items| items.iter().all(Value::is_string))
}

pub(super) fn check(request: &ChatRequest) -> Result<(), GatewayError> {
    for (i, message) in request.messages.iter().enumerate() {
        match message.rest.get("content") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                if let Some(j) = parts.iter().position(|p| p.get("type").and_then(Value::as_str).is_none()) {
                    return Err(invalid_type(
                        format!("messages[{i}].content[{j}]"),
                        format!("'messages[{i}].content[{j}]' must be an object with a string 'type'."),
                    ));
                }
            }
            Some(_) => {
                return Err(invalid_type(
                    format!("messages[{i}].content"),
                    format!("'messages[{i}].content' must be a string or a list of content parts."),
                ))
            }
        }
        if let Some(calls) = message.rest.get("tool_calls").filter(|c| !c.is_null()) {
            let valid = calls.as_array().is_some_and(|calls| {
                calls.iter().all(|c| c.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).is_some())
            });
            if !valid {
                return Err(invalid_type(
                    format!("messages[{i}].tool_calls"),
                    format!("'messages[{i}].tool_calls' must be a list of calls, each with a function name."),
                ));
            }
        }
        if message.role == "tool" && message.rest.get("tool_call_id").and_then(Value::as_str).is_none() {
            return Err(GatewayError::invalid_request(
                "missing_required_parameter",
                format!("'messages[{i}].tool_call_id' is required for tool messages."),
            )
            .with_param(format!("messages[{i}].tool_call_id")));
        }
    }
    let extra = &request.extra;
    if let Some(tools) = extra.get("tools").filter(|t| !t.is_null()) {
        let Some(tools) = tools.as_array() else {
            return Err(invalid_type("tools".into(), "'tools' must be a list of tools.".into()));
        };
        for (i, tool) in tools.iter().enumerate() {
            // Other tool types pass to the provider, which takes them or says why not.
            let function = matches!(tool.get("type").and_then(Value::as_str), None | Some("function"));
            let named = tool.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).is_some();
            if !tool.is_object() || (function && !named) {
                return Err(invalid_type(
                    format!("tools[{i}].function.name"),
                    format!("'tools[{i}]' must be a function tool with a name (type function, function.name)."),
                ));
            }
        }
    }
    let field_types: [FieldType; 8] = [
        ("tool_choice", |v| v.is_string() || v.is_object(), "a string or an object"),
        ("response_format", |v| v.get("type").is_some_and(Value::is_string), "an object with a string 'type'"),
        ("stop", |v| v.is_string() || is_string_list(v), "a string or a list of strings"),
        ("metadata", Value::is_object, "an object"),
        ("user", Value::is_string, "a string"),
        ("parallel_tool_calls", Value::is_boolean, "a boolean"),
        ("logprobs", Value::is_boolean, "a boolean"),
        ("seed", |v| v.is_i64() || v.is_u64(), "an integer"),
    ];
    for (field, valid, what) in field_types {
        if let Some(value) = extra.get(field).filter(|v| !v.is_null()) {
            if !valid(value) {
                return Err(invalid_type(field.into(), format!("'{field}' must be {what}.")));
            }
        }
    }
    Ok(())
}
