//! Usage records off the answer's path: each request's records go into its
//! [`Outbox`]; when every holder (the request, a stream's pump) is done, they join
//! the isolate's next send to the `USAGE_QUEUE` Queue (one `wait_until` task per
//! burst). The consumer (`consumer.rs`) writes them to D1 `USAGE`; `api.rs` answers
//! the query routes.

pub mod api;
mod consumer;
pub use consumer::expire;
pub mod d1;
pub mod monitor;

use crate::usage::UsageRecord;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{Context, Env};

#[wasm_bindgen(inline_js = r#"
export function sendMessages(queue, messages) {
  return queue.sendBatch(messages.split("\0").map((body) => ({ body, contentType: "text" })));
}
"#)]
extern "C" {
    /// `sendBatch` of these messages (separated by NUL, which serialized JSON never
    /// holds), in one call: the worker crate builds each message in a call per field.
    #[wasm_bindgen(js_name = sendMessages, catch)]
    fn send_messages(queue: &JsValue, messages: &str) -> Result<js_sys::Promise, JsValue>;
}

pub const QUEUE_BINDING: &str = "USAGE_QUEUE";
/// Records finished within this long of each other leave in one `sendBatch`.
const COALESCE_MS: u32 = 25;
/// A Queue message holds at most 128 KB: records are packed into messages up to this.
const MESSAGE_BYTES: usize = 96 * 1024;
/// A `sendBatch` takes at most 100 messages and 256 KB: this many messages a call.
const MESSAGES_PER_SEND: usize = 2;

thread_local! {
    /// Records waiting for this isolate's next send, and whether one is due. They are
    /// serialized when sent, after the answer, not on its latency path.
    static PENDING: RefCell<(Vec<UsageRecord>, bool)> = const { RefCell::new((Vec::new(), false)) };
}

#[derive(Default)]
struct State {
    records: Vec<UsageRecord>,
    holders: usize,
    waker: Option<Waker>,
}

/// Where a request's finished records wait to be sent. Cloning adds a holder; the
/// records leave when the last holder is dropped.
pub struct Outbox(Rc<RefCell<State>>);

impl Outbox {
    pub fn new() -> Self {
        Outbox(Rc::new(RefCell::new(State { holders: 1, ..State::default() })))
    }

    pub fn push(&self, record: UsageRecord) {
        self.0.borrow_mut().records.push(record);
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.0.borrow_mut().holders += 1;
        Outbox(self.0.clone())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.borrow_mut();
            state.holders = state.holders.saturating_sub(1);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Resolves with the records once no holder is left.
struct Drained(Rc<RefCell<State>>);

impl Future for Drained {
    type Output = Vec<UsageRecord>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Vec<UsageRecord>> {
        let mut state = self.0.borrow_mut();
        if state.holders == 0 {
            return Poll::Ready(std::mem::take(&mut state.records));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Hands the request's outbox to the runtime: its records are sent to the Queue
/// after the answer (streams: when they end). Without the binding, nothing is sent.
pub fn dispatch(env: &Env, ctx: &Context, outbox: Outbox) {
    let state = outbox.0.clone();
    let (alone, idle) = {
        let s = state.borrow();
        (s.holders == 1, s.records.is_empty())
    };
    drop(outbox);
    if alone && idle {
        return;
    }
    // The binding is looked up only by the request that starts a send (one a burst).
    let env = env.clone();
    if alone {
        // Nothing else holds it (a whole answer): its records are final now, and
        // need no task of their own to wait for them.
        let records = std::mem::take(&mut state.borrow_mut().records);
        if queue_for_sending(records) {
            crate::edge::in_background(ctx, send_pending(env));
        }
        return;
    }
    crate::edge::in_background(ctx, async move {
        let records = Drained(state).await;
        if queue_for_sending(records) {
            send_pending(env).await;
        }
    });
}

/// Adds records to the isolate's next send; true for the first since the last send,
/// which then sends them all.
fn queue_for_sending(records: Vec<UsageRecord>) -> bool {
    if records.is_empty() {
        return false;
    }
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.0.extend(records);
        !std::mem::replace(&mut p.1, true)
    })
}

/// Waits a moment for other requests' records, so that theirs go with these (one
/// Queue call for a burst, not one per request), and sends them.
async fn send_pending(env: Env) {
    super::timer::sleep_ms(COALESCE_MS).await;
    let records = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.1 = false;
        std::mem::take(&mut p.0)
    });
    // Without the binding, nothing is sent (and the records are let go).
    let Some(queue) = crate::edge::binding(&env, QUEUE_BINDING) else { return };
    let bodies: Vec<String> = records.iter().filter_map(|r| serde_json::to_string(r).ok()).collect();
    let messages = crate::usage::record::pack_lines(&bodies, MESSAGE_BYTES);
    for chunk in messages.chunks(MESSAGES_PER_SEND) {
        let sent = send_messages(&queue, &chunk.join("\0")).map(wasm_bindgen_futures::JsFuture::from);
        let sent = match sent {
            Ok(sending) => sending.await,
            Err(error) => Err(error),
        };
        if let Err(error) = sent {
            super::log::warn("usage_queue_send_failed", &worker::Error::from(error).to_string());
        }
    }
}
