//! Building client responses: JSON bodies and OpenAI-shaped errors.

use crate::dialects::ClientDialect;
use crate::error::GatewayError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{Headers, Response, ResponseBody, ResponseBuilder};

#[wasm_bindgen(inline_js = r#"
export function bytesResponse(status, body, headers) {
  return new Response(body.slice(), { status, headers });
}
export function bodyResponse(status, body, headers) {
  return new Response(body, { status, headers });
}
"#)]
extern "C" {
    /// `body` is a view of wasm memory: copied before the runtime holds it.
    #[wasm_bindgen(js_name = bytesResponse, catch)]
    fn bytes_response(status: u16, body: &[u8], headers: &web_sys::Headers) -> Result<web_sys::Response, JsValue>;
    #[wasm_bindgen(js_name = bodyResponse, catch)]
    fn body_response(
        status: u16,
        body: Option<&web_sys::ReadableStream>,
        headers: &web_sys::Headers,
    ) -> Result<web_sys::Response, JsValue>;
}

/// The runtime's response for one of ours, in one call: `worker`'s conversion
/// copies the body and builds the init object a property per call. The gateway's
/// responses carry no WebSocket, `cf` or manual encoding, which it would also copy.
pub fn into_js(response: Response) -> web_sys::Response {
    let (status, headers) = (response.status_code(), &response.headers().0);
    let made = match response.body() {
        ResponseBody::Body(bytes) => bytes_response(status, bytes, headers),
        ResponseBody::Stream(stream) => body_response(status, Some(stream), headers),
        ResponseBody::Empty => body_response(status, None, headers),
    };
    made.unwrap_or_else(|_| response.into())
}

pub fn json(status: u16, value: &impl serde::Serialize) -> Result<Response, GatewayError> {
    let body =
        serde_json::to_vec(value).map_err(|e| GatewayError::internal(format!("could not encode a response: {e}")))?;
    Ok(bytes(status, "application/json", body, Headers::new()))
}

/// Which endpoint served a request, after how many attempts: the headers an answer
/// other than chat's carries (chat adds the model's and the cost's).
pub fn served_headers(candidate: &crate::routing::Candidate<'_>, attempts: usize) -> Headers {
    let headers = Headers::new();
    let _ = headers.set("x-gateway-provider", candidate.provider_id);
    let _ = headers.set("x-gateway-region", candidate.region);
    let _ = headers.set("x-gateway-attempts", &attempts.to_string());
    headers
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
