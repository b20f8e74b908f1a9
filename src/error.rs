//! Every error a client can see: an HTTP status plus an OpenAI-shaped body
//! (`{"error":{"message","type","param","code"}}`). Built here so no handler can
//! invent its own shape.

use serde::Serialize;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub status: u16,
    /// OpenAI's `type` field (`invalid_request_error`, `server_error`, ...).
    pub kind: Cow<'static, str>,
    pub code: Cow<'static, str>,
    pub message: String,
    pub param: Option<Cow<'static, str>>,
    /// Seconds for a `Retry-After` header, when waiting can help.
    pub retry_after_s: Option<u64>,
    /// Retrying the same request can never succeed (sent as `x-should-retry: false`).
    pub final_answer: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl GatewayError {
    pub fn new(
        status: u16,
        kind: impl Into<Cow<'static, str>>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::from_parts(status, kind.into(), code.into(), message.into())
    }

    /// Not inlined: errors are built at a few hundred places, each would get a copy.
    #[inline(never)]
    fn from_parts(status: u16, kind: Cow<'static, str>, code: Cow<'static, str>, message: String) -> Self {
        Self { status, kind, code, message, param: None, retry_after_s: None, final_answer: false }
    }

    /// Marks an error no retry can fix (SDKs obey `x-should-retry: false`).
    pub fn final_answer(mut self) -> Self {
        self.final_answer = true;
        self
    }

    pub fn with_param(self, param: impl Into<Cow<'static, str>>) -> Self {
        self.with_param_text(param.into())
    }

    #[inline(never)]
    fn with_param_text(mut self, param: Cow<'static, str>) -> Self {
        self.param = Some(param);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// The JSON body in OpenAI's error shape.
    pub fn to_json(&self) -> String {
        let body = Body {
            error: Inner { message: &self.message, kind: &self.kind, param: self.param.as_deref(), code: &self.code },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| {
            String::from(
                r#"{"error":{"message":"internal error","type":"server_error","param":null,"code":"internal_error"}}"#,
            )
        })
    }

    /// SDKs retry 408/409/429/5xx by default; tell them not to where a retry cannot succeed.
    pub fn should_retry(&self) -> bool {
        !self.final_answer && matches!(self.status, 408 | 409 | 429 | 500..=599) && self.code != "upstream_auth_failed"
    }

    pub fn invalid_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::from_parts(400, Cow::Borrowed("invalid_request_error"), Cow::Borrowed(code), message.into())
    }

    pub fn invalid_json(detail: impl std::fmt::Display) -> Self {
        Self::invalid_request("invalid_json", format!("We could not parse the JSON body of your request: {detail}"))
    }

    pub fn invalid_api_key() -> Self {
        Self::new(
            401,
            "invalid_request_error",
            "invalid_api_key",
            "Invalid API key. Send a gateway key as `Authorization: Bearer <key>` or `x-api-key: <key>`.",
        )
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(404, "invalid_request_error", "not_found", format!("Unknown request URL: {method} {path}."))
    }

    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            format!("Method {method} is not allowed on {path}; use {allowed}."),
        )
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .with_param("model")
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            "request_too_large",
            format!("The request body is larger than the gateway's limit of {limit} bytes."),
        )
    }

    pub fn unsupported_content_type() -> Self {
        Self::new(
            415,
            "invalid_request_error",
            "unsupported_content_type",
            "Send the request body as JSON with `Content-Type: application/json`.",
        )
    }

    pub fn config_unavailable(detail: &str) -> Self {
        Self::new(
            503,
            "server_error",
            "config_unavailable",
            format!("The gateway has no usable routing config: {detail}"),
        )
        .with_retry_after(5)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "server_error", "internal_error", message)
    }
}

/// Replaces secrets and anything shaped like a credential with `[REDACTED]`,
/// so a provider's error message can be passed on without leaking a key.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[REDACTED]");
    }
    const PREFIXES: [&str; 5] = ["sk-", "AIza", "Bearer ", "key=", "gw_"];
    for prefix in PREFIXES {
        out = redact_after(&out, prefix);
    }
    out
}

/// Redacts the token that follows each occurrence of `prefix` (up to whitespace or a quote).
fn redact_after(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(prefix) {
        let (before, from_prefix) = rest.split_at(pos);
        out.push_str(before);
        let token_end = from_prefix
            .char_indices()
            .skip(prefix.chars().count())
            .find(|(_, c)| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')' | '&'))
            .map(|(i, _)| i)
            .unwrap_or(from_prefix.len());
        if token_end > prefix.len() {
            out.push_str("[REDACTED]");
        } else {
            out.push_str(&from_prefix[..token_end]);
        }
        rest = &from_prefix[token_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_openai_shape() {
        let err = GatewayError::model_not_found("gpt-9");
        let v: serde_json::Value = crate::json_value::from_str(&err.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
        assert_eq!(err.status, 404);
    }

    #[test]
    fn scrub_removes_exact_secrets_and_key_shapes() {
        let msg = "Incorrect API key provided: sk-proj-abc123. Also secret-value and Bearer xyz, key=AIzaQQ";
        let out = scrub(msg, &["secret-value"]);
        assert!(!out.contains("abc123"));
        assert!(!out.contains("secret-value"));
        assert!(!out.contains("xyz"));
        assert!(!out.contains("AIzaQQ"));
        assert!(out.contains("Incorrect API key provided: [REDACTED]"));
    }

    #[test]
    fn scrub_leaves_plain_text_alone() {
        assert_eq!(scrub("model overloaded, try again", &[]), "model overloaded, try again");
    }

    #[test]
    fn should_retry_only_for_transient_statuses() {
        assert!(!GatewayError::model_not_found("x").should_retry());
        assert!(GatewayError::config_unavailable("x").should_retry());
    }
}
