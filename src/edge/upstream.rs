//! Sending one attempt to a provider, with a first-byte deadline that does not
//! cut a body that is already streaming (the fetch is raced against a timer and
//! aborted only if the timer wins).
//!
//! The races run in JS (inline below): one call starts the fetch and its timer,
//! and one promise settles with the answer or what went wrong. Racing a `JsFuture`
//! against a `worker::Delay` in Rust cost a wasm closure per timer, a crossing for
//! each of `setTimeout`/`clearTimeout`, and one per `RequestInit` field.

use crate::pipeline::WholeBody;
use crate::providers::UpstreamRequest;
use crate::providers::{AttemptFailure, HeaderNames};
use std::cell::OnceCell;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
const wholes = new WeakMap();
export function sendWithin(url, headers, body, controller, ms, wholeAtLeastMs, wholeUntilMs, wholeType) {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    let bodyEndsAt = -1; // reading a whole body until then
    let response;
    const fire = () => {
      if (bodyEndsAt < 0) {
        controller.abort();
        reject(0);
        return;
      }
      const left = bodyEndsAt - Date.now();
      if (left > 0) timer = setTimeout(fire, left);
      else {
        wholes.set(response, 0);
        resolve(response);
      }
    };
    let timer = setTimeout(fire, ms);
    // `body` is a view of wasm memory: the request gets its own copy.
    const init = { method: "POST", headers, body: body.slice(), redirect: "manual", signal: controller.signal };
    fetch(url, init).then(
      (answer) => {
        response = answer;
        const type = wholeAtLeastMs < 0 ? "" : (answer.headers.get("content-type") ?? "").toLowerCase();
        if (wholeAtLeastMs < 0 || answer.status < 200 || answer.status > 299 || !type.startsWith(wholeType)) {
          clearTimeout(timer);
          resolve(answer);
          return;
        }
        // A 2xx answer read whole: its body within the longer of wholeAtLeastMs and
        // what is left of wholeUntilMs (pipeline::WholeBody). The timer already armed
        // is re-armed for the rest only if it fires first, or now if the body's
        // deadline comes before it.
        const now = Date.now();
        bodyEndsAt = now + Math.max(wholeAtLeastMs, wholeUntilMs - (now - start), 1);
        if (bodyEndsAt < start + ms) {
          clearTimeout(timer);
          timer = setTimeout(fire, bodyEndsAt - now);
        }
        answer.arrayBuffer().then(
          (buffer) => {
            clearTimeout(timer);
            wholes.set(answer, new Uint8Array(buffer));
            resolve(answer);
          },
          () => {
            clearTimeout(timer);
            wholes.set(answer, 1);
            resolve(answer);
          },
        );
      },
      () => {
        clearTimeout(timer);
        reject(1);
      },
    );
  });
}
export function takeWhole(response) {
  const whole = wholes.get(response);
  if (typeof whole === "number") return undefined;
  wholes.delete(response);
  return whole;
}
export function wholeFailure(response) {
  const whole = wholes.get(response);
  wholes.delete(response);
  return typeof whole === "number" ? whole : -1;
}
export function probeWithin(url, headers, ms) {
  const signal = AbortSignal.timeout(ms);
  return fetch(url, { method: "GET", headers, redirect: "manual", signal }).then(
    (answer) => {
      answer.body?.cancel().catch(() => {});
      return answer.status >= 200 && answer.status < 300;
    },
    () => false,
  );
}
export function bytesWithin(response, ms) {
  let promise;
  try {
    promise = response.arrayBuffer();
  } catch {
    return Promise.reject(1);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(0), ms);
    promise.then(
      (buffer) => {
        clearTimeout(timer);
        resolve(new Uint8Array(buffer));
      },
      () => {
        clearTimeout(timer);
        reject(1);
      },
    );
  });
}
"#)]
extern "C" {
    /// Resolves with the `Response`; rejects with `0` when `ms` passed first (the
    /// call is then aborted), `1` when the fetch failed. With `whole_at_least_ms`
    /// (≥ 0), a 2xx answer of `whole_type` is read whole before it resolves
    /// (`pipeline::WholeBody`'s deadline; see `takeWhole`).
    #[wasm_bindgen(js_name = sendWithin)]
    #[allow(clippy::too_many_arguments)]
    fn send_within(
        url: &str,
        headers: &web_sys::Headers,
        body: &[u8],
        controller: &web_sys::AbortController,
        ms: f64,
        whole_at_least_ms: f64,
        whole_until_ms: f64,
        whole_type: &str,
    ) -> js_sys::Promise;
    /// The body `sendWithin` read whole, if it did and could.
    #[wasm_bindgen(js_name = takeWhole)]
    fn take_whole(response: &web_sys::Response) -> Option<js_sys::Uint8Array>;
    /// Why `sendWithin` has no whole body: `0` out of time, `1` cut, `-1` none read.
    #[wasm_bindgen(js_name = wholeFailure)]
    fn whole_failure(response: &web_sys::Response) -> f64;
    /// Resolves with whether a GET of `url` answered 2xx within `ms` (its body is
    /// not read); never rejects.
    #[wasm_bindgen(js_name = probeWithin)]
    fn probe_within(url: &str, headers: &web_sys::Headers, ms: f64) -> js_sys::Promise;
    /// Resolves with the whole body (`Uint8Array`); rejects with `0` when `ms`
    /// passed first, `1` when it could not be read.
    #[wasm_bindgen(js_name = bytesWithin)]
    fn bytes_within(response: &web_sys::Response, ms: f64) -> js_sys::Promise;
}

/// What a JS race's rejection code means.
fn failure(code: Option<f64>, otherwise: AttemptFailure) -> AttemptFailure {
    match code {
        Some(0.0) => AttemptFailure::Timeout,
        _ => otherwise,
    }
}

const CUT: AttemptFailure = AttemptFailure::InvalidResponse("the body was cut off");

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
    /// The names the pipeline will ask for (its adapter's), and their values, read in
    /// one call when the first is asked for (an answer's quota, retry and content-type
    /// headers are several lookups).
    reads: HeaderNames,
    headers: OnceCell<super::js_headers::HeaderView>,
    /// The body, when it was read with the headers.
    whole: Option<Result<js_sys::Uint8Array, AttemptFailure>>,
}

impl Sent {
    pub fn status(&self) -> u16 {
        self.response.status()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let headers =
            self.headers.get_or_init(|| super::js_headers::HeaderView::read(self.response.headers(), self.reads));
        headers.get(name)
    }

    /// The body's reader (for streamed answers).
    pub fn reader(&self) -> Option<web_sys::ReadableStreamDefaultReader> {
        Some(self.response.body()?.get_reader().unchecked_into())
    }

    /// Reads the whole (non-streamed or error) body within `ms`, in one call: a
    /// whole answer has nothing left to cancel afterwards.
    /// A body already read with the headers (`send_whole`) is taken as it came.
    pub async fn read_body(&mut self, ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        let bytes = match self.whole.take() {
            Some(whole) => whole?,
            None => match JsFuture::from(bytes_within(&self.response, ms as f64)).await {
                Ok(bytes) => bytes.unchecked_into(),
                Err(code) => return Err(failure(code.as_f64(), CUT)),
            },
        };
        self.abort.disarm();
        Ok(bytes.to_vec())
    }
}

/// Sends one attempt: straight to the runtime's `fetch`, raced against the
/// first-byte deadline. With `whole`, a 2xx answer's body is read in the same wait
/// (see `pipeline::WholeBody`): one promise and one timer, not two.
pub async fn send(
    up: &UpstreamRequest,
    reads: HeaderNames,
    first_byte_ms: u64,
    whole: Option<WholeBody>,
) -> Result<Sent, AttemptFailure> {
    let pairs: Vec<(&str, &str)> = up.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let headers = match super::js_headers::build(&pairs) {
        Some((headers, true)) => headers,
        _ => return Err(AttemptFailure::Connect),
    };
    let controller = web_sys::AbortController::new().map_err(|_| AttemptFailure::Connect)?;
    let (at_least_ms, until_ms, whole_type) = match whole {
        Some(w) => (w.at_least_ms as f64, w.until_ms as f64, w.content_type.unwrap_or_default()),
        None => (-1.0, 0.0, ""),
    };
    let sending =
        send_within(&up.url, &headers, &up.body, &controller, first_byte_ms as f64, at_least_ms, until_ms, whole_type);
    // Dropped before the answer came (the request itself was dropped), it cancels the fetch.
    let abort = AbortOnDrop(Some(controller));
    match JsFuture::from(sending).await {
        Ok(response) => {
            let response: web_sys::Response = response.unchecked_into();
            let whole = whole.and_then(|_| match take_whole(&response) {
                Some(bytes) => Some(Ok(bytes)),
                None => match whole_failure(&response) {
                    code if code < 0.0 => None,
                    code => Some(Err(failure(Some(code), CUT))),
                },
            });
            Ok(Sent { response, abort, reads, headers: OnceCell::new(), whole })
        }
        // The JS timer won (and aborted the fetch), or the fetch failed.
        Err(code) => Err(failure(code.as_f64(), AttemptFailure::Connect)),
    }
}

/// A free health probe: true when the endpoint answers 2xx in time.
pub async fn get_ok(url: &str, headers: &[(&'static str, String)], timeout_ms: u64) -> bool {
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let Some((headers, true)) = super::js_headers::build(&pairs) else { return false };
    JsFuture::from(probe_within(url, &headers, timeout_ms as f64)).await.ok().and_then(|ok| ok.as_bool()) == Some(true)
}
