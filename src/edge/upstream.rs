//! Sending one attempt to a provider, with a first-byte deadline that does not
//! cut a body that is already streaming (the fetch is raced against a timer and
//! aborted only if the timer wins).

use crate::providers::AttemptFailure;
use crate::providers::UpstreamRequest;
use futures_util::future::{select, Either};
use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{AbortController, Delay, Fetch, Request};

/// Aborts the upstream request when dropped unless disarmed: a client that goes
/// away (its stream is dropped) cancels the provider call too.
pub struct AbortOnDrop(Option<web_sys::AbortController>);

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

/// A provider's answer as it arrived: the raw `web_sys::Response` (no conversion
/// work until a part of it is needed) and the guard that cancels the call.
pub struct Sent {
    response: web_sys::Response,
    pub abort: AbortOnDrop,
    /// The headers, read in one call when the first is asked for (an answer's quota,
    /// retry and content-type headers are several lookups).
    headers: OnceCell<Vec<(String, String)>>,
}

impl Sent {
    pub fn status(&self) -> u16 {
        self.response.status()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.headers.get_or_init(|| super::js_headers::all(&self.response.headers()));
        headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, value)| value.clone())
    }

    /// The body's reader (for streamed answers).
    pub fn reader(&self) -> Option<BodyReader> {
        let body = self.response.body()?;
        let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        Some(BodyReader { reader, pending: None })
    }

    /// Reads the whole (non-streamed or error) body within `ms`, in one call: a
    /// whole answer has nothing left to cancel afterwards.
    pub async fn read_body(&mut self, ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        let cut = || AttemptFailure::InvalidResponse("the body was cut off");
        let promise = self.response.array_buffer().map_err(|_| cut())?;
        let reading = JsFuture::from(promise);
        let raced = select(reading, Delay::from(Duration::from_millis(ms))).await;
        match raced {
            Either::Left((Ok(buffer), _)) => {
                self.abort.disarm();
                Ok(js_sys::Uint8Array::new(&buffer).to_vec())
            }
            Either::Left((Err(_), _)) => Err(cut()),
            Either::Right(_) => Err(AttemptFailure::Timeout),
        }
    }
}

/// Sends one attempt: straight to the runtime's `fetch`, raced against the
/// first-byte deadline.
pub async fn send(up: &UpstreamRequest, first_byte_ms: u64) -> Result<Sent, AttemptFailure> {
    let pairs: Vec<(&str, &str)> = up.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let headers = match super::js_headers::build(&pairs) {
        Some((headers, true)) => headers,
        _ => return Err(AttemptFailure::Connect),
    };
    let controller = web_sys::AbortController::new().map_err(|_| AttemptFailure::Connect)?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_body(&js_sys::Uint8Array::from(up.body.as_slice()));
    init.set_signal(Some(&controller.signal()));
    let abort = AbortOnDrop(Some(controller));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let sending = JsFuture::from(global.fetch_with_str_and_init(&up.url, &init));
    let deadline = Delay::from(Duration::from_millis(first_byte_ms));
    match select(sending, deadline).await {
        Either::Left((Ok(response), _)) => match response.dyn_into::<web_sys::Response>() {
            Ok(response) => Ok(Sent { response, abort, headers: OnceCell::new() }),
            Err(_) => Err(AttemptFailure::Connect),
        },
        Either::Left((Err(_), _)) => Err(AttemptFailure::Connect),
        Either::Right(_) => Err(AttemptFailure::Timeout), // dropping `abort` cancels the fetch
    }
}

/// A free health probe: true when the endpoint answers 2xx in time.
pub async fn get_ok(url: &str, headers: &[(&'static str, String)], timeout_ms: u64) -> bool {
    let Ok(h) = web_sys::Headers::new() else { return false };
    for (name, value) in headers {
        if h.set(name, value).is_err() {
            return false;
        }
    }
    // web_sys's RequestInit, as in `send` (worker's would carry its `cf` options code along).
    let init = web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_headers(&h);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let Ok(request) = web_sys::Request::new_with_str_and_init(url, &init) else { return false };
    let request = Request::from(request);
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

/// A streamed body read chunk by chunk with the runtime's own reader. A read that
/// is still pending when its caller gives up (a timer won) is kept for the next
/// call, so no chunk is lost. After the first content the reader is handed to the
/// JS pump (`client_stream`).
pub struct BodyReader {
    reader: web_sys::ReadableStreamDefaultReader,
    pending: Option<JsFuture>,
}

pub enum Chunk {
    Bytes(Vec<u8>),
    End,
    Broken,
}

impl BodyReader {
    pub fn next(&mut self) -> NextChunk<'_> {
        NextChunk(self)
    }

    /// The reader, for the JS pump; `None` while a read is still pending.
    pub fn into_reader(self) -> Option<web_sys::ReadableStreamDefaultReader> {
        self.pending.is_none().then_some(self.reader)
    }
}

pub struct NextChunk<'a>(&'a mut BodyReader);

impl Future for NextChunk<'_> {
    type Output = Chunk;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Chunk> {
        let body = &mut *self.0;
        let reader = &body.reader;
        let pending = body.pending.get_or_insert_with(|| JsFuture::from(reader.read()));
        let Poll::Ready(result) = Pin::new(pending).poll(cx) else { return Poll::Pending };
        body.pending = None;
        let Ok(result) = result else { return Poll::Ready(Chunk::Broken) };
        let field = |name: &str| js_sys::Reflect::get(&result, &wasm_bindgen::JsValue::from_str(name)).ok();
        if field("done").and_then(|d| d.as_bool()) == Some(true) {
            return Poll::Ready(Chunk::End);
        }
        match field("value").and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok()) {
            Some(bytes) => Poll::Ready(Chunk::Bytes(bytes.to_vec())),
            None => Poll::Ready(Chunk::Broken),
        }
    }
}
