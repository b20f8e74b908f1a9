//! How the Rust futures' task queue is scheduled. `wasm-bindgen-futures` runs its
//! queue from `queueMicrotask` when the global has one, else from a resolved
//! promise's `then`. In workerd `queueMicrotask` wraps each callback for the
//! request's context: ~2–6 µs a call against ~0.1 µs for `then` (measured in
//! workerd), paid at every wake-up of a future (several a request). Both run the
//! callback in the same microtask checkpoint, so the global is replaced, once per
//! isolate, by a `then` on one resolved promise. Nothing else here calls it.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = r#"
export function queueMicrotasksThroughPromises() {
  const resolved = Promise.resolve();
  globalThis.queueMicrotask = (task) => {
    resolved.then(task);
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = queueMicrotasksThroughPromises)]
    fn queue_microtasks_through_promises();
}

/// Called once when the instance starts, before any future is woken.
pub fn schedule_through_promises() {
    queue_microtasks_through_promises();
}
