//! Reading a client's request body without ever buffering more than the limit.

use super::js_headers::ClientHeaders;
use crate::error::GatewayError;
use futures_util::StreamExt;
use worker::Request;

/// Past the limit the rest of the body is read and thrown away (up to this many
/// times the limit), so the client gets its 413 instead of a reset connection
/// while it is still sending; beyond that the connection is simply answered.
const DRAIN_FACTOR: usize = 4;

pub async fn read_limited(req: &mut Request, limit: usize, headers: &ClientHeaders) -> Result<Vec<u8>, GatewayError> {
    let content_type = headers.get("content-type");
    if !crate::protocol::accepts_content_type(content_type.as_deref()) {
        return Err(GatewayError::unsupported_content_type());
    }
    let declared = headers.get("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR) as u64;
    if declared.is_some_and(|n| n > drain_cap) {
        return Err(GatewayError::body_too_large(limit));
    }
    // A declared length within the limit (the runtime holds the client to it): one
    // read, without the per-chunk reader calls of a stream.
    if declared.is_some_and(|n| n as usize <= limit) {
        return req
            .bytes()
            .await
            .map_err(|_| GatewayError::invalid_request("body_read_failed", "The request body could not be read."));
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        Err(_) => return Ok(Vec::new()), // no body at all
    };
    let mut body = Vec::with_capacity(declared.map_or(4096, |n| (n as usize).min(limit)));
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| GatewayError::invalid_request("body_read_failed", "The request body could not be read."))?;
        seen += chunk.len() as u64;
        if seen > drain_cap {
            break;
        }
        if seen as usize <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if seen as usize > limit {
        return Err(GatewayError::body_too_large(limit));
    }
    Ok(body)
}
