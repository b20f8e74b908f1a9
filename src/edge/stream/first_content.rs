//! A stream until its first content: the pump reads the provider's body from Rust,
//! each read raced against one reusable idle timer, within the first-byte deadline.
//! Nothing has reached the client yet, so any failure here is an `AttemptFailure`
//! and the caller may still try the next provider.

use super::Pump;
use crate::edge::now_ms;
use crate::edge::timer::Timer;
use crate::edge::upstream::Chunk;
use crate::gateway::AttemptFailure;
use crate::providers::StreamFault;
use futures_util::future::{select, Either};

pub(super) struct IdleTimer {
    timer: Timer,
    fires_at_ms: u64,
}

enum Read {
    Chunk(Vec<u8>),
    End,
    Broken,
    Idle,
}

impl Pump {
    /// The next chunk, or `Idle` when none arrives within `ms`.
    async fn read(&mut self, ms: u64) -> Read {
        let deadline = now_ms().saturating_add(ms);
        loop {
            // A timer armed by an earlier read is kept while it fires no later than
            // this deadline; when it fires early, the rest is waited for below.
            let timer = match self.timer.take() {
                Some(timer) if timer.fires_at_ms <= deadline => timer,
                _ => {
                    let wait = deadline.saturating_sub(now_ms()).max(1);
                    IdleTimer { timer: Timer::after_ms(wait), fires_at_ms: now_ms() + wait }
                }
            };
            let timer = self.timer.insert(timer);
            let Some(body) = self.body.as_mut() else { return Read::Broken };
            match select(body.next(), &mut timer.timer).await {
                Either::Left((Chunk::Bytes(chunk), _)) => return Read::Chunk(chunk),
                Either::Left((Chunk::Broken, _)) => return Read::Broken,
                Either::Left((Chunk::End, _)) => return Read::End,
                Either::Right(_) => {
                    self.timer = None;
                    if now_ms() >= deadline {
                        return Read::Idle;
                    }
                }
            }
        }
    }

    /// Reads until the first real content (or the end), within the first-byte
    /// deadline. Until then nothing has reached the client, so any failure here
    /// lets the caller try the next provider.
    pub async fn until_committed(&mut self, deadline_ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        let until = now_ms() + deadline_ms;
        let mut out = Vec::new();
        while !self.relay.committed() {
            let left = until.saturating_sub(now_ms());
            if left == 0 {
                return Err(AttemptFailure::Timeout);
            }
            match self.read(left).await {
                Read::Chunk(chunk) => self.relay.feed(&chunk, &mut out).map_err(fault_before_content)?,
                Read::Idle => return Err(AttemptFailure::Timeout),
                Read::Broken => return Err(AttemptFailure::InvalidResponse("the stream broke before any content")),
                Read::End => {
                    let end = self.relay.end(&mut out).map_err(fault_before_content)?;
                    if !self.relay.committed() {
                        return Err(AttemptFailure::InvalidResponse("the stream ended before any content"));
                    }
                    self.finish_with(end, &mut out);
                }
            }
        }
        self.first_content_ms = Some(now_ms());
        Ok(out)
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
