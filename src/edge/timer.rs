//! Waiting in the runtime: a plain promise (no JS timer calling back into wasm).

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = r#"
export function sleepMs(ms) {
  const scheduler = globalThis.scheduler;
  if (typeof scheduler?.wait === "function") return scheduler.wait(ms);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = sleepMs)]
    fn sleep_promise(ms: u32) -> js_sys::Promise;
}

/// Waits `ms` with the runtime's `scheduler.wait`, or `setTimeout` where that is missing.
pub async fn sleep_ms(ms: u32) {
    let _ = wasm_bindgen_futures::JsFuture::from(sleep_promise(ms)).await;
}
