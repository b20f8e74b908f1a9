//! Building client responses: JSON bodies and OpenAI-shaped errors.

use crate::dialects::ClientDialect;
use crate::error::GatewayError;
use worker::{Headers, Response, ResponseBuilder};

pub fn json(status: u16, value: &impl serde::Serialize) -> Result<Response, GatewayError> {
    let body =
        serde_json::to_vec(value).map_err(|e| GatewayError::internal(format!("could not encode a response: {e}")))?;
    Ok(bytes(status, "application/json", body, Headers::new()))
}

pub fn bytes(status: u16, content_type: &str, body: Vec<u8>, headers: Headers) -> Response {
    let _ = headers.set("content-type", content_type);
    with_headers(status, body, headers)
}

/// A body whose headers (its content type among them) are all set already.
pub fn with_headers(status: u16, body: Vec<u8>, headers: Headers) -> Response {
    ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body)
}

pub fn error(error: &GatewayError) -> Response {
    let headers = Headers::new();
    if let Some(seconds) = error.retry_after_s {
        let _ = headers.set("retry-after", &seconds.to_string());
    }
    if !error.should_retry() {
        let _ = headers.set("x-should-retry", "false");
    }
    bytes(error.status, "application/json", error.to_json().into_bytes(), headers)
}

/// An error in the shape of the API the client called.
pub fn error_in(dialect: &dyn ClientDialect, error: &GatewayError, request_id: &str) -> Response {
    let response = self::error(error);
    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        let _ = headers.set(&name, &value);
    }
    bytes(error.status, "application/json", dialect.error_body(error, request_id).into_bytes(), headers)
}
