//! Reading a client's request body without ever buffering more than the limit.

use crate::error::GatewayError;
use futures_util::StreamExt;
use worker::Request;

pub async fn read_limited(req: &mut Request, limit: usize) -> Result<Vec<u8>, GatewayError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::body_too_large(limit));
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        Err(_) => return Ok(Vec::new()), // no body at all
    };
    let mut body = Vec::with_capacity(declared.map_or(4096, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| GatewayError::invalid_request("body_read_failed", "The request body could not be read."))?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::body_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
