//! Function tools → `functionDeclarations`, and `tool_choice` → `toolConfig`.

use super::{invalid, present};
use crate::error::GatewayError;
use crate::json;
use crate::protocol::openai::ChatRequest;
use crate::providers::gemini::schema;
use serde_json::{Map, Value};

pub(super) fn function_declarations(req: &ChatRequest) -> Result<Vec<Value>, GatewayError> {
    let mut declarations = Vec::new();
    if let Some(tools) = present(req, "tools") {
        let tools =
            tools.as_array().ok_or_else(|| invalid("invalid_type", "'tools' must be an array.", "tools".into()))?;
        for (i, tool) in tools.iter().enumerate() {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("function");
            if kind != "function" {
                return Err(invalid(
                    "unsupported_parameter",
                    format!("Tool type {kind:?} is not supported for Gemini targets; use function tools."),
                    format!("tools[{i}].type"),
                ));
            }
            let function = tool.get("function").unwrap_or(&Value::Null);
            declarations.push(declaration(function, format!("tools[{i}].function"))?);
        }
    }
    if let Some(functions) = present(req, "functions") {
        let functions = functions
            .as_array()
            .ok_or_else(|| invalid("invalid_type", "'functions' must be an array.", "functions".into()))?;
        for (i, function) in functions.iter().enumerate() {
            declarations.push(declaration(function, format!("functions[{i}]"))?);
        }
    }
    Ok(declarations)
}

/// `strict` and `cache_control` have no Gemini equivalent and are dropped.
fn declaration(function: &Value, param: String) -> Result<Value, GatewayError> {
    let name = function.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or_else(|| {
        invalid("missing_required_parameter", "A function tool needs a 'name'.", format!("{param}.name"))
    })?;
    let mut out = Map::new();
    out.insert("name".into(), name.into());
    if let Some(description) = function.get("description").and_then(Value::as_str) {
        out.insert("description".into(), description.into());
    }
    if let Some(parameters) = function.get("parameters").filter(|p| !p.is_null()) {
        if !parameters.is_object() {
            return Err(invalid(
                "invalid_type",
                "'parameters' must be a JSON Schema object.",
                format!("{param}.parameters"),
            ));
        }
        if !schema::is_empty(parameters) {
            out.insert("parametersJsonSchema".into(), schema::for_gemini(parameters));
        }
    }
    Ok(Value::Object(out))
}

/// `tool_choice` (or legacy `function_call`) as `toolConfig.functionCallingConfig`.
pub(super) fn tool_config(req: &ChatRequest, has_tools: bool) -> Result<Option<Value>, GatewayError> {
    let (choice, param) = match present(req, "tool_choice") {
        Some(choice) => (choice, "tool_choice"),
        None => match present(req, "function_call") {
            Some(choice) => (choice, "function_call"),
            None => return Ok(None),
        },
    };
    let bad = || {
        invalid(
            "invalid_value",
            format!("Invalid '{param}': use \"auto\", \"none\", \"required\" or a named function."),
            param.to_string(),
        )
    };
    let config = match choice {
        Value::String(mode) => match mode.as_str() {
            "auto" => json!({ "mode": "AUTO" }),
            "none" => json!({ "mode": "NONE" }),
            "required" => json!({ "mode": "ANY" }),
            _ => return Err(bad()),
        },
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("allowed_tools") => allowed_tools(object).ok_or_else(bad)?,
            Some("function") | None => {
                let name = object
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .or_else(|| object.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?;
                json!({ "mode": "ANY", "allowedFunctionNames": [name] })
            }
            Some(_) => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    if !has_tools {
        // "auto"/"none" without tools mean nothing; forcing a call does.
        return match config.get("mode").and_then(Value::as_str) {
            Some("AUTO" | "NONE") => Ok(None),
            _ => Err(invalid("invalid_value", format!("'{param}' requires 'tools'."), param.to_string())),
        };
    }
    Ok(Some(json!({ "functionCallingConfig": config })))
}

/// `{"type":"allowed_tools","allowed_tools":{"mode","tools"}}`: required → ANY,
/// auto → VALIDATED (call one of these or answer in text), both limited to the names.
fn allowed_tools(choice: &Map<String, Value>) -> Option<Value> {
    let allowed = choice.get("allowed_tools")?;
    let names: Vec<&str> =
        allowed.get("tools")?.as_array()?.iter().filter_map(|t| t.get("function")?.get("name")?.as_str()).collect();
    let mode = match allowed.get("mode").and_then(Value::as_str) {
        Some("required") => "ANY",
        Some("auto") | None => "VALIDATED",
        Some(_) => return None,
    };
    Some(json!({ "mode": mode, "allowedFunctionNames": names }))
}
