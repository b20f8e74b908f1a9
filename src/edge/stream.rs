//! Relaying an upstream SSE stream to the client event by event: never buffered
//! past the event being decoded, with an idle timeout between chunks, and a
//! well-formed error event (never a clean end) when the provider breaks mid-way.

use super::log::RequestLine;
use super::upstream::AbortOnDrop;
use super::{log, now_ms};
use crate::gateway::AttemptFailure;
use crate::protocol::openai::Usage;
use crate::providers::openai::{stream_error_event, EventVerdict, StreamEnd, StreamObserver};
use crate::sse::{self, SseDecoder, SseEvent};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::time::Duration;
use worker::{ByteStream, Delay};

pub struct Pump {
    body: ByteStream,
    decoder: SseDecoder,
    observer: StreamObserver,
    events: Vec<SseEvent>,
    idle_ms: u64,
    finished: bool,
    abort: AbortOnDrop,
    /// Written once when the stream ends, however it ends.
    log_line: Option<RequestLine>,
    started_ms: u64,
}

enum Read {
    Chunk(Vec<u8>),
    End,
    Broken,
    Idle,
}

impl Pump {
    pub fn new(
        body: ByteStream,
        abort: AbortOnDrop,
        client_wants_usage: bool,
        idle_ms: u64,
    ) -> Self {
        Self {
            body,
            decoder: SseDecoder::default(),
            observer: StreamObserver::new(client_wants_usage),
            events: Vec::new(),
            idle_ms,
            finished: false,
            abort,
            log_line: None,
            started_ms: 0,
        }
    }

    async fn read(&mut self, ms: u64) -> Read {
        let next = self.body.next();
        match select(next, Delay::from(Duration::from_millis(ms))).await {
            Either::Left((Some(Ok(chunk)), _)) => Read::Chunk(chunk),
            Either::Left((Some(Err(_)), _)) => Read::Broken,
            Either::Left((None, _)) => Read::End,
            Either::Right(_) => Read::Idle,
        }
    }

    /// Decodes a chunk and re-encodes the events the client should get. An error
    /// event from the provider is returned as `Err` with its message.
    fn relay(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if let Err(e) = self.decoder.feed(chunk, &mut self.events) {
            return Err(e.to_string());
        }
        self.relay_decoded(out)
    }

    fn relay_decoded(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        for event in std::mem::take(&mut self.events) {
            match self.observer.observe(&event.data) {
                EventVerdict::Forward => sse::encode(event.event.as_deref(), &event.data, out),
                EventVerdict::Drop => {}
                EventVerdict::UpstreamError(message) => return Err(message),
            }
        }
        Ok(())
    }

    /// Reads until the first real content (or the end), within the first-byte
    /// deadline. Until then nothing has reached the client, so any failure here
    /// lets the caller try the next provider.
    pub async fn until_committed(&mut self, deadline_ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        let until = now_ms() + deadline_ms;
        let mut out = Vec::new();
        while !self.observer.committed {
            let left = until.saturating_sub(now_ms());
            if left == 0 {
                return Err(AttemptFailure::Timeout);
            }
            match self.read(left).await {
                Read::Chunk(chunk) => self
                    .relay(&chunk, &mut out)
                    .map_err(AttemptFailure::StreamError)?,
                Read::Idle => return Err(AttemptFailure::Timeout),
                Read::Broken => {
                    return Err(AttemptFailure::InvalidResponse(
                        "the stream broke before any content",
                    ))
                }
                Read::End => {
                    self.decoder.finish(&mut self.events);
                    self.relay_decoded(&mut out)
                        .map_err(AttemptFailure::StreamError)?;
                    if !self.observer.committed {
                        return Err(AttemptFailure::InvalidResponse(
                            "the stream ended before any content",
                        ));
                    }
                    self.finish_with_end(&mut out);
                }
            }
        }
        Ok(out)
    }

    /// The request's log line, completed and written when the stream ends.
    pub fn set_log_line(&mut self, line: RequestLine, started_ms: u64) {
        self.log_line = Some(line);
        self.started_ms = started_ms;
    }

    /// The next bytes for the client, or `None` once the stream is over.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while out.is_empty() {
            if self.finished {
                return None;
            }
            match self.read(self.idle_ms).await {
                Read::Chunk(chunk) => {
                    if let Err(message) = self.relay(&chunk, &mut out) {
                        out.extend(stream_error_event(
                            "upstream_stream_error",
                            &format!(
                                "The provider reported an error mid-stream: {}",
                                crate::error::scrub(&message, &[])
                            ),
                        ));
                        self.finish("upstream_error");
                    }
                }
                Read::End => {
                    self.decoder.finish(&mut self.events);
                    if let Err(message) = self.relay_decoded(&mut out) {
                        out.extend(stream_error_event(
                            "upstream_stream_error",
                            &crate::error::scrub(&message, &[]),
                        ));
                        self.finish("upstream_error");
                    } else {
                        self.finish_with_end(&mut out);
                    }
                }
                Read::Broken => {
                    out.extend(stream_error_event(
                        "upstream_stream_interrupted",
                        "upstream stream ended unexpectedly",
                    ));
                    self.finish("interrupted");
                }
                Read::Idle => {
                    out.extend(stream_error_event(
                        "upstream_stream_idle_timeout",
                        &format!("the provider sent nothing for {} ms", self.idle_ms),
                    ));
                    self.finish("idle_timeout");
                }
            }
        }
        Some(out)
    }

    fn finish_with_end(&mut self, out: &mut Vec<u8>) {
        match self.observer.end() {
            StreamEnd::Complete => self.finish("complete"),
            StreamEnd::MissingDone => {
                sse::encode(None, "[DONE]", out);
                self.finish("complete");
            }
            StreamEnd::Interrupted => {
                out.extend(stream_error_event(
                    "upstream_stream_interrupted",
                    "upstream stream ended unexpectedly",
                ));
                self.finish("interrupted");
            }
        }
    }

    fn finish(&mut self, outcome: &'static str) {
        self.finished = true;
        if outcome == "complete" {
            self.abort.disarm();
        }
        self.write_log(outcome);
    }

    fn write_log(&mut self, outcome: &'static str) {
        if let Some(mut line) = self.log_line.take() {
            let usage: Usage = self.observer.usage.unwrap_or_default();
            line.outcome = outcome;
            line.prompt_tokens = self.observer.usage.map(|_| usage.prompt_tokens);
            line.completion_tokens = self.observer.usage.map(|_| usage.completion_tokens);
            line.duration_ms = now_ms().saturating_sub(self.started_ms);
            log::emit(&line);
        }
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        // Dropped before the end: the client went away (the upstream is aborted by `abort`).
        if !self.finished {
            self.write_log("client_gone");
        }
    }
}
