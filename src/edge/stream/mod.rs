//! Relaying an upstream stream to the client as it arrives: the pure [`Relay`]
//! translates and watches; this adds the I/O. `first_content` reads until the first
//! content within a deadline (failover is still possible then); after it the JS
//! pump of `client_stream` reads and calls [`Pump::on_chunk`] and friends
//! synchronously, one call per chunk (both phases read in JS: no Rust future per
//! chunk). Here: the pump's state, what each call does, the final error event when
//! the provider breaks mid-way, and how the stream ends (health outcome, the
//! request's log line, the settlement's signal).

mod first_content;

use super::end_signal::EndSignal;
use super::health_cache;
use super::log::RequestLine;
use super::upstream::AbortOnDrop;
use super::{log, now_ms};
use crate::config::{BreakerPolicy, Price};
use crate::error::scrub;
use crate::health::{tool_calls, Outcome};
use crate::limits::Used;
use crate::protocol::stream::StreamEnd;
use crate::providers::StreamFault;
use crate::relay::Relay;

/// Stores what a dialect kept of a completed answer (a stored response).
pub type Keep = Box<dyn FnOnce(Kept) -> futures_util::future::LocalBoxFuture<'static, ()>>;

/// A completed answer as the dialect kept it, and the regions it is held to.
pub struct Kept {
    pub answer: serde_json::Value,
    pub regions: Option<Vec<String>>,
}

pub struct Pump {
    /// The provider's body, until the JS pump takes it.
    body: Option<web_sys::ReadableStreamDefaultReader>,
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
    /// Tells the settlement waiting in `ctx.wait_until` what the stream used, once.
    end: EndSignal,
    /// The prompt estimate, for charging a stream cut before its usage arrived.
    prompt_estimate: u64,
    /// No stream outlives this (its limiter leases are sized from it).
    ends_by_ms: u64,
    /// The serving target's price, for the real cost of the stream.
    price: Option<Price>,
    /// Where a completed answer is kept, and what was kept (taken at the end).
    keep: Option<(Keep, Option<Vec<String>>)>,
    kept: Option<serde_json::Value>,
    /// Provider keys to scrub from a mid-stream error before it reaches the client.
    secrets: Vec<String>,
    /// When the first content arrived (time to first token), and where the usage record goes.
    first_content_ms: Option<u64>,
    outbox: Option<super::usage::Outbox>,
}

impl Pump {
    pub fn new(body: web_sys::ReadableStreamDefaultReader, abort: AbortOnDrop, relay: Relay, idle_ms: u64) -> Self {
        Self {
            body: Some(body),
            relay,
            idle_ms,
            finished: false,
            abort,
            log_line: None,
            started_ms: 0,
            end: EndSignal::default(),
            prompt_estimate: 0,
            ends_by_ms: u64::MAX,
            breaker_policy: BreakerPolicy::default(),
            tools: None,
            price: None,
            keep: None,
            kept: None,
            secrets: Vec::new(),
            first_content_ms: None,
            outbox: None,
        }
    }

    /// What the stream used so far (all of it, once it has ended): the provider's
    /// count, or an estimate of what was generated when it never came.
    fn used(&self) -> Used {
        let usage = self.relay.usage_or_estimate(self.prompt_estimate);
        Used { tokens: Some(usage.total_tokens), micro_usd: self.price.map(|price| price.usage_cost_micro_usd(&usage)) }
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

    pub fn scrub_secrets(&mut self, secrets: Vec<String>) {
        self.secrets = secrets;
    }

    /// Keeps the dialect's whole answer when the stream completes (stored responses).
    pub fn keep_with(&mut self, keep: Keep, regions: Option<Vec<String>>) {
        self.keep = Some((keep, regions));
    }

    /// Where the stream says what it used when it ends (or is dropped).
    pub fn end_signal(&self) -> EndSignal {
        self.end.clone()
    }

    pub fn set_usage_outbox(&mut self, outbox: super::usage::Outbox) {
        self.outbox = Some(outbox);
    }

    /// The prompt estimate, and the latest time the stream may still run.
    pub fn bound(&mut self, prompt_estimate: u64, ends_by_ms: u64) {
        self.prompt_estimate = prompt_estimate;
        self.ends_by_ms = ends_by_ms;
    }

    /// The upstream reader and the timings, for the JS pump: the idle timeout and
    /// the time left before `max_stream_ms`.
    pub fn hand_off(&mut self) -> Option<(web_sys::ReadableStreamDefaultReader, u64, u64)> {
        let reader = self.body.take()?;
        Some((reader, self.idle_ms, self.ends_by_ms.saturating_sub(now_ms())))
    }

    pub fn finished(&self) -> bool {
        self.finished
    }

    /// One chunk of the provider's stream: what goes to the client.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(fault) = self.relay.feed(chunk, &mut out) {
            self.fail_with(fault, &mut out);
        }
        out
    }

    /// The provider's stream ended (cleanly, or with an error when `broken`).
    pub fn on_end(&mut self, broken: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if broken {
            self.interrupted(&mut out);
            return out;
        }
        match self.relay.end(&mut out) {
            Ok(end) => self.finish_with(end, &mut out),
            Err(fault) => self.fail_with(fault, &mut out),
        }
        out
    }

    /// Nothing came for the idle timeout, or the stream ran past `max_stream_ms`.
    pub fn on_timeout(&mut self, too_long: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if too_long {
            let message = "the stream ran past the gateway's longest stream (settings.max_stream_ms)";
            self.relay.fail("upstream_stream_too_long", message, &mut out);
            self.finish("too_long");
        } else {
            let message = format!("the provider sent nothing for {} ms", self.idle_ms);
            self.relay.fail("upstream_stream_idle_timeout", &message, &mut out);
            self.finish("idle_timeout");
        }
        out
    }

    /// Stores what the dialect kept of a completed answer, before the client's
    /// stream ends (so a next turn finds it).
    pub fn keep_finished(&mut self) -> Option<futures_util::future::LocalBoxFuture<'static, ()>> {
        let (answer, (keep, regions)) = (self.kept.take()?, self.keep.take()?);
        Some(keep(Kept { answer, regions }))
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
            StreamFault::Upstream(m) => {
                let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
                format!("The provider reported an error mid-stream: {}", scrub(&m, &secrets))
            }
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
            self.kept = self.relay.finished_answer();
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
        } else if let Some(provider) = provider.filter(|_| outcome != "too_long") {
            // A provider that breaks mid-stream is failing, even though the attempt had started well.
            health_cache::record(&provider, Outcome::Failure, &self.breaker_policy);
        }
        self.write_log(outcome);
        self.end.send(self.used());
    }

    fn write_log(&mut self, outcome: &'static str) {
        if let Some(mut line) = self.log_line.take() {
            let usage = self.relay.usage_or_estimate(self.prompt_estimate);
            line.outcome = outcome;
            line.account(Some(usage));
            line.duration_ms = now_ms().saturating_sub(self.started_ms);
            line.record.ttft_ms = self.first_content_ms.map(|at| at.saturating_sub(self.started_ms));
            log::request(&line);
            if let Some(outbox) = self.outbox.take() {
                outbox.push(line.usage_record());
            }
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        // Dropped before the end: the client went away (the upstream is aborted by
        // `abort`). Not the provider's fault, so no health outcome.
        if !self.finished {
            self.write_log("client_gone");
        }
        // The settlement waits in the request's `wait_until`, which the runtime keeps
        // alive after the client left: it is charged what was generated.
        self.end.send(self.used());
    }
}
