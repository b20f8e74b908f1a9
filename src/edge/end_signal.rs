//! A stream's end, sent by the pump (when the stream ends, or when it is dropped
//! because the client went away) to the settlement waiting in `ctx.wait_until`:
//! settling never depends on a detached task the runtime may cancel.

use crate::limits::Used;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct State {
    used: Option<Used>,
    waker: Option<Waker>,
}

/// The sending half, held by the pump; the first send wins.
#[derive(Clone, Default)]
pub struct EndSignal(Rc<RefCell<State>>);

impl EndSignal {
    pub fn send(&self, used: Used) {
        let waker = {
            let mut state = self.0.borrow_mut();
            if state.used.is_some() {
                return;
            }
            state.used = Some(used);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves with what the stream used, once it ended.
    pub fn wait(&self) -> EndWait {
        EndWait(self.0.clone())
    }
}

pub struct EndWait(Rc<RefCell<State>>);

impl Future for EndWait {
    type Output = Used;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Used> {
        let mut state = self.0.borrow_mut();
        match state.used {
            Some(used) => Poll::Ready(used),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
