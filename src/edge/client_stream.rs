//! The client's stream after the first content: a small JS pump reads the
//! provider's body with the runtime's reader and hands each chunk to the `Pump`
//! in one synchronous call, writing what comes back into the client's body (an
//! `IdentityTransformStream`; each write waits until the client took the bytes).
//! Reading from wasm through futures cost a promise, a wake-up and a stream bridge
//! per event; this costs one call. Writing into the runtime's own stream cost less
//! per event than a JS `ReadableStream` the runtime pulls from (~89 against ~110 µs
//! of CPU per relayed chunk in a bare relay). The pump also keeps one watchdog timer
//! for the idle timeout and `max_stream_ms` (re-armed only when it fires early), not
//! a timer per read. Decisions stay in Rust: the JS only moves bytes and reports
//! what happened.

use super::stream::Pump;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = r#"
export function pumpToClient(reader, handler, first, idleMs, leftMs, signal) {
  let last = Date.now();
  const endsAt = last + leftMs;
  let timer = 0;
  let timedOut = 0; // 1: idle, 2: past max_stream_ms
  let over = false;
  let writing = false; // waiting for the client to take a chunk
  let writeSince = last;
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  const watch = () => {
    timer = 0;
    const now = Date.now();
    if (writing && (now >= endsAt || now - writeSince >= idleMs)) {
      // The client stopped reading (the runtime does not always cancel the body
      // when a client leaves mid-stream): treated as gone.
      leave();
      return;
    }
    if (now >= endsAt) timedOut = 2;
    else if (!writing && now - last >= idleMs) timedOut = 1;
    else {
      const from = writing ? writeSince : last;
      timer = setTimeout(watch, Math.max(1, Math.min(from + idleMs, endsAt) - now));
      return;
    }
    reader.cancel().catch(() => {});
  };
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = 0;
    if (signal) signal.removeEventListener("abort", leave);
  };
  // The client left: the runtime may never cancel the body, so the request's own
  // signal (or a refused write) tells the pump to log, settle and cancel the provider call.
  const leave = () => {
    if (over) return;
    over = true;
    stop();
    handler.cancel();
    handler.free();
    reader.cancel().catch(() => {});
    writer.abort(new Error("the stream was abandoned")).catch(() => {});
  };
  if (signal) signal.addEventListener("abort", leave);
  // Resolves when the client took the bytes: the provider is read no faster than that.
  const write = async (bytes) => {
    writing = true;
    writeSince = Date.now();
    try {
      await writer.write(bytes);
    } finally {
      writing = false;
    }
  };
  const relay = async () => {
    if (first.length) await write(first);
    for (;;) {
      if (over) return;
      if (handler.done()) {
        stop();
        over = true;
        const keeping = handler.close();
        handler.free();
        if (keeping) await keeping;
        await writer.close();
        return;
      }
      let out;
      try {
        const read = await reader.read();
        if (over) return;
        if (timedOut) out = handler.timeout(timedOut === 2);
        else if (read.done) out = handler.end(false);
        else {
          last = Date.now();
          out = handler.chunk(read.value);
        }
      } catch {
        if (over) return;
        out = timedOut ? handler.timeout(timedOut === 2) : handler.end(true);
      }
      if (out.length) await write(out);
    }
  };
  timer = setTimeout(watch, Math.max(1, Math.min(idleMs, leftMs)));
  relay().catch(leave);
  return readable;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = pumpToClient)]
    fn pump_to_client(
        reader: &web_sys::ReadableStreamDefaultReader,
        handler: StreamHandler,
        first: &js_sys::Uint8Array,
        idle_ms: f64,
        left_ms: f64,
        client_signal: Option<web_sys::AbortSignal>,
    ) -> web_sys::ReadableStream;
}

/// The pump's side that JS calls: each call is one thing that happened upstream.
#[wasm_bindgen]
pub struct StreamHandler {
    pump: Option<Box<Pump>>,
}

#[wasm_bindgen]
impl StreamHandler {
    pub fn chunk(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pump.as_mut().map(|p| p.on_chunk(bytes)).unwrap_or_default()
    }

    pub fn end(&mut self, broken: bool) -> Vec<u8> {
        self.pump.as_mut().map(|p| p.on_end(broken)).unwrap_or_default()
    }

    pub fn timeout(&mut self, too_long: bool) -> Vec<u8> {
        self.pump.as_mut().map(|p| p.on_timeout(too_long)).unwrap_or_default()
    }

    pub fn done(&self) -> bool {
        self.pump.as_ref().is_none_or(|p| p.finished())
    }

    /// The stream is over: what the dialect kept is stored before the client's
    /// stream closes (a promise to wait for), and the pump is dropped.
    pub fn close(&mut self) -> Option<js_sys::Promise> {
        let keeping = self.pump.as_mut().and_then(|p| p.keep_finished());
        self.pump = None;
        keeping.map(|future| {
            wasm_bindgen_futures::future_to_promise(async move {
                future.await;
                Ok(wasm_bindgen::JsValue::UNDEFINED)
            })
        })
    }

    /// The client went away: dropping the pump logs it, settles what was generated
    /// and aborts the upstream call.
    pub fn cancel(&mut self) {
        self.pump = None;
    }
}

/// The client's body: `first` (already read, with the first content), then the
/// rest as the JS pump relays it; `client_signal` (the incoming request's) says when
/// the client left. `None` when the reader cannot be handed over.
pub fn body(
    first: Vec<u8>,
    mut pump: Box<Pump>,
    client_signal: Option<web_sys::AbortSignal>,
) -> Option<web_sys::ReadableStream> {
    let (reader, idle_ms, left_ms) = pump.hand_off()?;
    let first = js_sys::Uint8Array::from(first.as_slice());
    let handler = StreamHandler { pump: Some(pump) };
    Some(pump_to_client(&reader, handler, &first, idle_ms as f64, left_ms as f64, client_signal))
}
