//! `join_all` without futures_util's: for more than 30 futures that one switches to a
//! `FuturesOrdered`, whose code (a task queue, wakers, the ordering) is a few KB of wasm
//! per use even where the count never gets there.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

/// A future and, once it is done, its output.
type Slot<F> = (Pin<Box<F>>, Option<<F as Future>::Output>);

/// Runs every future concurrently; their outputs in the order given.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut slots: Vec<Slot<F>> = futures.into_iter().map(|future| (Box::pin(future), None)).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for (future, output) in slots.iter_mut().filter(|(_, output)| output.is_none()) {
            match future.as_mut().poll(cx) {
                Poll::Ready(value) => *output = Some(value),
                Poll::Pending => all_done = false,
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

#[cfg(test)]
mod tests {
    use super::join_all;
    use std::future::{poll_fn, Future};
    use std::task::Poll;

    /// Ready after being polled `pending` times (waking itself each time).
    fn after(pending: u32, value: u32) -> impl Future<Output = u32> {
        let mut left = pending;
        poll_fn(move |cx| {
            if left == 0 {
                return Poll::Ready(value);
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    #[test]
    fn outputs_come_in_the_order_given_whenever_each_finishes() {
        let futures = (0..40).map(|i| after(40 - i, i));
        assert_eq!(futures_executor::block_on(join_all(futures)), (0..40).collect::<Vec<_>>());
        assert!(futures_executor::block_on(join_all(Vec::<std::future::Ready<u8>>::new())).is_empty());
    }
}
