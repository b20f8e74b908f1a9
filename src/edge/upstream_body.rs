//! A provider's streamed body, read chunk by chunk from Rust until the first
//! content (see `stream::first_content`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

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
    pub fn new(reader: web_sys::ReadableStreamDefaultReader) -> Self {
        BodyReader { reader, pending: None }
    }

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
