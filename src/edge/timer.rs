//! A timer that can be awaited again and again: unlike `worker::Delay`, which
//! wakes the task that first polled it, this wakes whichever task polled it last.
//! A stream's chunks are pulled by a new task each time, so one timer can then
//! guard many reads (arming a JS timer per chunk costs more than the chunk).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

pub struct Timer {
    fired: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
    timeout_id: Option<i32>,
    // Kept alive until the timer is dropped: JS calls it when the time is up.
    _callback: Closure<dyn FnMut()>,
}

impl Timer {
    pub fn after_ms(ms: u64) -> Self {
        let fired = Rc::new(Cell::new(false));
        let waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let callback = {
            let (fired, waker) = (fired.clone(), waker.clone());
            Closure::wrap(Box::new(move || {
                fired.set(true);
                let pending = waker.borrow_mut().take();
                if let Some(waker) = pending {
                    waker.wake();
                }
            }) as Box<dyn FnMut()>)
        };
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let delay = i32::try_from(ms).unwrap_or(i32::MAX);
        let timeout_id =
            global.set_timeout_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), delay).ok();
        if timeout_id.is_none() {
            // No timer could be set: fire at once rather than never.
            fired.set(true);
        }
        Timer { fired, waker, timeout_id, _callback: callback }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.get() {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let (Some(id), false) = (self.timeout_id, self.fired.get()) {
            let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
            global.clear_timeout_with_handle(id);
        }
    }
}

/// Waits `ms` with the runtime's `scheduler.wait` (a plain promise: no JS timer
/// calling back into wasm), or a `Timer` where that is missing.
pub async fn sleep_ms(ms: u32) {
    let scheduler = js_sys::Reflect::get(&js_sys::global(), &"scheduler".into()).ok().filter(|s| s.is_object());
    let wait = scheduler.as_ref().and_then(|s| {
        let wait: js_sys::Function = js_sys::Reflect::get(s, &"wait".into()).ok()?.dyn_into().ok()?;
        wait.call1(s, &ms.into()).ok()?.dyn_into::<js_sys::Promise>().ok()
    });
    match wait {
        Some(promise) => {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
        None => Timer::after_ms(u64::from(ms)).await,
    }
}
