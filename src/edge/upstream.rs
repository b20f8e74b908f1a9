//! Sending one attempt to a provider, with a first-byte deadline that does not
//! cut a body that is already streaming (the fetch is raced against a timer and
//! aborted only if the timer wins).

use crate::gateway::{status_failure, AttemptFailure};
use crate::providers::UpstreamRequest;
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

/// Aborts the upstream request when dropped unless disarmed: a client that goes
/// away (its stream is dropped) cancels the provider call too.
pub struct AbortOnDrop(Option<AbortController>);

impl AbortOnDrop {
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

pub struct Sent {
    pub response: Response,
    pub abort: AbortOnDrop,
}

pub async fn send(up: &UpstreamRequest, first_byte_ms: u64) -> Result<Sent, AttemptFailure> {
    let headers = Headers::new();
    for (name, value) in &up.headers {
        headers.set(name, value).map_err(|_| AttemptFailure::Connect)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(js_sys::Uint8Array::from(up.body.as_slice()).into()));
    let request = Request::new_with_init(&up.url, &init).map_err(|_| AttemptFailure::Connect)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let abort = AbortOnDrop(Some(controller));
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let deadline = Delay::from(Duration::from_millis(first_byte_ms));
    let raced = select(sending, deadline).await;
    match raced {
        Either::Left((Ok(response), _)) => Ok(Sent { response, abort }),
        Either::Left((Err(_), _)) => Err(AttemptFailure::Connect),
        Either::Right(_) => Err(AttemptFailure::Timeout), // dropping `abort` cancels the fetch
    }
}

/// Reads a whole (non-streamed or error) body within `ms`.
pub async fn read_body(response: &mut Response, ms: u64) -> Result<Vec<u8>, AttemptFailure> {
    let reading = Box::pin(response.bytes());
    let raced = select(reading, Delay::from(Duration::from_millis(ms))).await;
    match raced {
        Either::Left((Ok(bytes), _)) => Ok(bytes),
        Either::Left((Err(_), _)) => Err(AttemptFailure::InvalidResponse("the body was cut off")),
        Either::Right(_) => Err(AttemptFailure::Timeout),
    }
}

/// A non-2xx answer as a failure (its body is read briefly, for the error message).
pub async fn failure_from_status(sent: &mut Sent, ms: u64) -> AttemptFailure {
    let status = sent.response.status_code();
    let retry_after = sent.response.headers().get("retry-after").ok().flatten();
    let body = read_body(&mut sent.response, ms.min(5_000)).await.unwrap_or_default();
    status_failure(status, retry_after.as_deref(), &body)
}

pub fn content_type(response: &Response) -> String {
    response.headers().get("content-type").ok().flatten().unwrap_or_default().to_ascii_lowercase()
}

/// A free health probe: true when the endpoint answers 2xx in time.
pub async fn get_ok(url: &str, headers: &[(&'static str, String)], timeout_ms: u64) -> bool {
    let h = Headers::new();
    for (name, value) in headers {
        if h.set(name, value).is_err() {
            return false;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(h).with_redirect(RequestRedirect::Manual);
    let Ok(request) = Request::new_with_init(url, &init) else { return false };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let raced = select(sending, Delay::from(Duration::from_millis(timeout_ms))).await;
    match raced {
        Either::Left((Ok(response), _)) => (200..300).contains(&response.status_code()),
        Either::Left((Err(_), _)) => false,
        Either::Right(_) => {
            controller.abort();
            false
        }
    }
}
