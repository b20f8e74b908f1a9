//! Relaying an upstream stream to the client as it arrives: the pure [`Relay`]
//! translates and watches; this adds the I/O — reads with an idle timeout, the
//! final error event when the provider breaks mid-way, and the request's log line.

use super::health_cache;
use super::limiter::Settlements;
use super::log::RequestLine;
use super::timer::Timer;
use super::upstream::AbortOnDrop;
use super::{log, now_ms};
use crate::config::{BreakerPolicy, Price};
use crate::error::scrub;
use crate::gateway::AttemptFailure;
use crate::health::{tool_calls, Outcome};
use crate::limits::Used;
use crate::protocol::stream::StreamEnd;
use crate::providers::StreamFault;
use crate::relay::Relay;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::cell::RefCell;
use std::rc::Rc;
use worker::ByteStream;

pub struct Pump {
    body: ByteStream,
    relay: Relay,
    idle_ms: u64,
    finished: bool,
    abort: AbortOnDrop,
    /// Written once when the stream ends, however it ends.
    log_line: Option<RequestLine>,
    started_ms: u64,
    breaker_policy: BreakerPolicy,
    /// The request's tool definitions, to check the streamed tool calls against.
    tools: Option<serde_json::Value>,
    /// The key's limiter reservation, settled with the real usage at the end.
    settlement: Rc<RefCell<Option<Settlements>>>,
    /// The serving target's price, for the real cost of the stream.
    price: Option<Price>,
    /// One timer reused across reads: arming a timer per chunk costs more than the
    /// chunk's own work.
    timer: Option<IdleTimer>,
    /// When the first content arrived (time to first token), and where the usage record goes.
    first_content_ms: Option<u64>,
    outbox: Option<super::usage::Outbox>,
}

struct IdleTimer {
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
    pub fn new(body: ByteStream, abort: AbortOnDrop, relay: Relay, idle_ms: u64) -> Self {
        Self {
            body,
            relay,
            idle_ms,
            finished: false,
            abort,
            log_line: None,
            started_ms: 0,
            settlement: Rc::new(RefCell::new(None)),
            breaker_policy: BreakerPolicy::default(),
            tools: None,
            price: None,
            timer: None,
            first_content_ms: None,
            outbox: None,
        }
    }

    /// What the stream used so far (all of it, once it has ended).
    fn used(&self) -> Used {
        let usage = self.relay.usage();
        Used {
            tokens: usage.map(|u| u.total_tokens),
            micro_usd: usage.zip(self.price).map(|(u, price)| price.usage_cost_micro_usd(&u)),
        }
    }

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
            match select(self.body.next(), &mut timer.timer).await {
                Either::Left((Some(Ok(chunk)), _)) => return Read::Chunk(chunk),
                Either::Left((Some(Err(_)), _)) => return Read::Broken,
                Either::Left((None, _)) => return Read::End,
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

    /// The request's log line, completed and written when the stream ends.
    pub fn set_breaker_policy(&mut self, policy: BreakerPolicy) {
        self.breaker_policy = policy;
    }

    /// Checks the streamed tool calls against these definitions when the stream ends.
    pub fn check_tool_calls(&mut self, tools: serde_json::Value) {
        self.relay.collect_tool_calls();
        self.tools = Some(tools);
    }

    pub fn set_log_line(&mut self, line: RequestLine, started_ms: u64) {
        self.price = line.price;
        self.log_line = Some(line);
        self.started_ms = started_ms;
    }

    pub fn set_usage_outbox(&mut self, outbox: super::usage::Outbox) {
        self.outbox = Some(outbox);
    }

    /// Where the caller puts the limiter settlements to run when the stream ends.
    pub fn settlements_cell(&self) -> Rc<RefCell<Option<Settlements>>> {
        self.settlement.clone()
    }

    /// The next bytes for the client, or `None` once the stream is over.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while out.is_empty() {
            if self.finished {
                let settlement = self.settlement.borrow_mut().take();
                if let Some(settlement) = settlement {
                    settlement.run(self.used()).await;
                }
                return None;
            }
            match self.read(self.idle_ms).await {
                Read::Chunk(chunk) => {
                    if let Err(fault) = self.relay.feed(&chunk, &mut out) {
                        self.fail_with(fault, &mut out);
                    }
                }
                Read::End => match self.relay.end(&mut out) {
                    Ok(end) => self.finish_with(end, &mut out),
                    Err(fault) => self.fail_with(fault, &mut out),
                },
                Read::Broken => self.interrupted(&mut out),
                Read::Idle => {
                    let message = format!("the provider sent nothing for {} ms", self.idle_ms);
                    self.relay.fail("upstream_stream_idle_timeout", &message, &mut out);
                    self.finish("idle_timeout");
                }
            }
        }
        Some(out)
    }

    fn finish_with(&mut self, end: StreamEnd, out: &mut Vec<u8>) {
        match end {
            StreamEnd::Complete | StreamEnd::MissingDone => self.finish("complete"),
            StreamEnd::Interrupted => self.interrupted(out),
        }
    }

    fn interrupted(&mut self, out: &mut Vec<u8>) {
        self.relay.fail("upstream_stream_interrupted", "upstream stream ended unexpectedly", out);
        self.finish("interrupted");
    }

    fn fail_with(&mut self, fault: StreamFault, out: &mut Vec<u8>) {
        let message = match fault {
            StreamFault::Upstream(m) => format!("The provider reported an error mid-stream: {}", scrub(&m, &[])),
            StreamFault::Malformed(m) => format!("The provider's stream could not be read: {m}"),
        };
        self.relay.fail("upstream_stream_error", &message, out);
        self.finish("upstream_error");
    }

    fn finish(&mut self, outcome: &'static str) {
        self.finished = true;
        let provider = self.log_line.as_ref().and_then(|l| l.provider.clone());
        if outcome == "complete" {
            self.abort.disarm();
            let valid = self.relay.tool_calls().and_then(|calls| tool_calls::all_valid(self.tools.as_ref(), &calls));
            if let Some(line) = self.log_line.as_mut() {
                line.record.tool_calls_valid = valid;
            }
            if let Some(provider) = provider {
                let finished = Outcome::Finished {
                    duration_ms: now_ms().saturating_sub(self.started_ms),
                    output_tokens: self.relay.usage().map(|u| u.completion_tokens),
                    tool_calls_valid: valid,
                };
                health_cache::record(&provider, finished, &self.breaker_policy);
            }
        } else if let Some(provider) = provider {
            // A provider that breaks mid-stream is failing, even though the attempt had started well.
            health_cache::record(&provider, Outcome::Failure, &self.breaker_policy);
        }
        self.write_log(outcome);
    }

    fn write_log(&mut self, outcome: &'static str) {
        if let Some(mut line) = self.log_line.take() {
            let usage = self.relay.usage();
            line.outcome = outcome;
            line.account(usage);
            line.duration_ms = now_ms().saturating_sub(self.started_ms);
            line.record.ttft_ms = self.first_content_ms.map(|at| at.saturating_sub(self.started_ms));
            log::request(&line);
            if let Some(outbox) = self.outbox.take() {
                outbox.push(line.usage_record());
            }
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

impl Drop for Pump {
    fn drop(&mut self) {
        // Dropped before the end: the client went away (the upstream is aborted by
        // `abort`). Not the provider's fault, so no health outcome; the lease is
        // released if the runtime lets this last task run, and expires otherwise.
        if !self.finished {
            self.write_log("client_gone");
        }
        if let Some(settlement) = self.settlement.borrow_mut().take() {
            wasm_bindgen_futures::spawn_local(settlement.run(self.used()));
        }
    }
}
