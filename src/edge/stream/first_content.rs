//! A stream until its first content, within the first-byte deadline. One JS loop
//! reads the provider's body and hands each chunk to the pump in one synchronous
//! call, until the pump says the stream is committed (or ended, or failed): one
//! promise and one timer for the whole phase, where reading from Rust cost a
//! promise, two callbacks and a wake-up per chunk. Nothing has reached the client
//! yet, so any failure here is an `AttemptFailure` and the caller may still try the
//! next provider. After it, `client_stream`'s pump reads the rest.

use super::Pump;
use crate::edge::now_ms;
use crate::gateway::AttemptFailure;
use crate::providers::StreamFault;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::{wasm_bindgen, Closure};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
export function readUntilDecided(reader, feed, ms) {
  return new Promise((resolve) => {
    let over = false;
    const finish = (code) => {
      over = true;
      clearTimeout(timer);
      resolve(code);
    };
    // A read still pending when the time is up is left to the abort that follows.
    const timer = setTimeout(() => {
      over = true;
      resolve(2);
    }, ms);
    const next = () =>
      reader.read().then(
        (read) => {
          if (over) return;
          if (feed(read.done ? undefined : read.value)) finish(1);
          else next();
        },
        () => {
          if (!over) finish(3);
        },
      );
    next();
  });
}
"#)]
extern "C" {
    /// Resolves with `1` once `feed` (given each chunk, `undefined` at the end)
    /// returns true, `2` when `ms` passed first, `3` when the body broke.
    #[wasm_bindgen(js_name = readUntilDecided)]
    fn read_until_decided(
        reader: &web_sys::ReadableStreamDefaultReader,
        feed: &Closure<dyn FnMut(JsValue) -> bool>,
        ms: f64,
    ) -> js_sys::Promise;
}

/// The pump while the JS loop feeds it, and what it decided.
struct Reading {
    pump: Box<Pump>,
    out: Vec<u8>,
    failure: Option<AttemptFailure>,
}

impl Reading {
    /// One chunk (`None`: the body ended); true once there is no need to read on.
    fn feed(&mut self, chunk: Option<&[u8]>) -> bool {
        let fed = match chunk {
            Some(bytes) => self.pump.relay.feed(bytes, &mut self.out).map_err(fault_before_content),
            None => self.ended(),
        };
        match fed {
            Ok(()) => self.pump.relay.committed() || self.pump.finished,
            Err(failure) => {
                self.failure = Some(failure);
                true
            }
        }
    }

    fn ended(&mut self) -> Result<(), AttemptFailure> {
        let end = self.pump.relay.end(&mut self.out).map_err(fault_before_content)?;
        if !self.pump.relay.committed() {
            return Err(AttemptFailure::InvalidResponse("the stream ended before any content"));
        }
        self.pump.finish_with(end, &mut self.out);
        Ok(())
    }
}

impl Pump {
    /// Reads until the first real content (or the end), within the first-byte
    /// deadline: what goes to the client first, and the pump to relay the rest.
    pub async fn until_committed(self: Box<Self>, deadline_ms: u64) -> Result<(Vec<u8>, Box<Self>), AttemptFailure> {
        let Some(reader) = self.body.clone() else {
            return Err(AttemptFailure::InvalidResponse("the answer has no body"));
        };
        let reading = Rc::new(RefCell::new(Reading { pump: self, out: Vec::new(), failure: None }));
        let feed = Closure::<dyn FnMut(JsValue) -> bool>::new({
            let reading = reading.clone();
            move |chunk: JsValue| {
                let bytes = chunk.dyn_into::<js_sys::Uint8Array>().ok().map(|c| c.to_vec());
                reading.borrow_mut().feed(bytes.as_deref())
            }
        });
        let code = JsFuture::from(read_until_decided(&reader, &feed, deadline_ms.max(1) as f64)).await;
        drop(feed);
        let Ok(Reading { mut pump, out, failure }) = Rc::try_unwrap(reading).map(RefCell::into_inner) else {
            return Err(AttemptFailure::InvalidResponse("the stream could not be read"));
        };
        match (code.ok().and_then(|c| c.as_f64()), failure) {
            (_, Some(failure)) => Err(failure),
            (Some(1.0), None) => {
                pump.first_content_ms = Some(now_ms());
                Ok((out, pump))
            }
            (Some(2.0), None) => Err(AttemptFailure::Timeout),
            _ => Err(AttemptFailure::InvalidResponse("the stream broke before any content")),
        }
    }
}

fn fault_before_content(fault: StreamFault) -> AttemptFailure {
    match fault {
        StreamFault::Upstream(message) if message.starts_with("content_filter: ") => {
            crate::providers::refusal_or_invalid(&message)
        }
        StreamFault::Upstream(message) => AttemptFailure::StreamError(message),
        StreamFault::Malformed(_) => AttemptFailure::InvalidResponse("the stream could not be read"),
    }
}
