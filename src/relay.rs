//! The stream relay's logic, free of I/O: provider bytes go through the adapter's
//! [`StreamTranslator`] into canonical OpenAI chunks, are watched (usage, end of
//! answer, in-band errors), and leave through a [`ClientEncoder`] in the client's
//! protocol. `edge/stream.rs` only reads bytes (with timeouts) and writes what
//! this returns.

use crate::protocol::openai::Usage;
use crate::protocol::stream::{stream_error_event, EventVerdict, StreamEnd, StreamObserver};
use crate::protocol::tool_calls::ToolCall;
#[cfg(test)]
use crate::providers::passthrough::OpenAiPassthrough;
use crate::providers::{StreamFault, StreamTranslator};
use crate::sse;

/// Writes canonical chunks in the client's wire format.
pub trait ClientEncoder {
    /// One canonical payload: a `chat.completion.chunk` JSON object or `[DONE]`.
    fn event(&mut self, payload: &str, out: &mut Vec<u8>);
    /// The stream cannot be completed: a final error event in the client's protocol.
    fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>);

    /// The whole answer, once the stream completed, for dialects that keep it
    /// (stored responses); taken once.
    fn finished(&mut self) -> Option<serde_json::Value> {
        None
    }

    /// The provider's count of the prompt, as soon as it is known (before the events
    /// it arrived with), for dialects whose stream names it first.
    fn prompt_tokens(&mut self, _tokens: u64) {}

    /// The bytes the client got from one read of the provider (the encoder's events
    /// and a native relay's own), for encoders that keep the answer they make.
    fn sent(&mut self, _bytes: &[u8]) {}
}

/// OpenAI clients: `data: <chunk>` events, `data: [DONE]` at the end.
#[derive(Debug, Default)]
pub struct OpenAiEncoder;

impl ClientEncoder for OpenAiEncoder {
    fn event(&mut self, payload: &str, out: &mut Vec<u8>) {
        sse::encode(None, payload, out);
    }

    fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        out.extend(stream_error_event(code, message));
    }
}

pub struct Relay {
    translator: Box<dyn StreamTranslator>,
    encoder: Box<dyn ClientEncoder>,
    observer: StreamObserver,
    payloads: Vec<String>,
    /// The provider's prompt count was handed to the encoder.
    prompt_told: bool,
}

impl Relay {
    pub fn new(
        translator: Box<dyn StreamTranslator>,
        encoder: Box<dyn ClientEncoder>,
        client_wants_usage: bool,
    ) -> Self {
        let observer = StreamObserver::new(client_wants_usage);
        Self { translator, encoder, observer, payloads: Vec::new(), prompt_told: false }
    }

    /// Real content (or the end of the answer) has been seen: from here on the
    /// client has something to lose, so the attempt can no longer fail over.
    pub fn committed(&self) -> bool {
        self.observer.committed
    }

    pub fn usage(&self) -> Option<Usage> {
        self.observer.usage
    }

    /// What the stream generated so far: the provider's usage when it arrived, else
    /// an estimate from the text relayed (about four characters a token) on top of
    /// the prompt estimate, so a stream cut short is charged what it produced.
    pub fn usage_or_estimate(&self, prompt_estimate: u64) -> Usage {
        self.observer.usage.unwrap_or_else(|| {
            let completion = self.observer.generated_chars.div_ceil(4);
            Usage {
                prompt_tokens: prompt_estimate,
                completion_tokens: completion,
                total_tokens: prompt_estimate + completion,
                ..Usage::default()
            }
        })
    }

    /// The request asked for `n` choices: the stream is finished only when each has.
    pub fn expect_choices(&mut self, n: u64) {
        self.observer.expect_choices(n);
    }

    /// Starts collecting streamed tool calls (for tool-call validity).
    pub fn collect_tool_calls(&mut self) {
        self.observer.tool_calls = Some(Default::default());
    }

    pub fn tool_calls(&self) -> Option<Vec<ToolCall>> {
        self.observer.tool_calls.as_ref().filter(|c| !c.overflowed).map(|c| c.finish())
    }

    /// Provider bytes in; client bytes appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault> {
        let start = out.len();
        self.translator.feed(bytes, &mut self.payloads)?;
        if !self.prompt_told {
            if let Some(tokens) = self.translator.prompt_tokens() {
                self.encoder.prompt_tokens(tokens);
                self.prompt_told = true;
            }
        }
        self.emit(out)?;
        self.translator.take_raw(out);
        self.encoder.sent(&out[start..]);
        Ok(())
    }

    /// The provider's body ended: flush, then say how the answer ended. A missing
    /// `[DONE]` after a finish reason is supplied here.
    pub fn end(&mut self, out: &mut Vec<u8>) -> Result<StreamEnd, StreamFault> {
        let start = out.len();
        self.translator.finish(&mut self.payloads)?;
        self.emit(out)?;
        self.translator.take_raw(out);
        let end = self.observer.end();
        if end == StreamEnd::MissingDone {
            self.encoder.event("[DONE]", out);
        }
        self.encoder.sent(&out[start..]);
        Ok(end)
    }

    /// The dialect's whole answer once the stream completed (see [`ClientEncoder::finished`]).
    pub fn finished_answer(&mut self) -> Option<serde_json::Value> {
        self.encoder.finished()
    }

    /// Ends the client's stream with an error event.
    pub fn fail(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        self.encoder.error(code, message, out);
    }

    fn emit(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        for payload in std::mem::take(&mut self.payloads) {
            match self.observer.observe(&payload) {
                EventVerdict::Forward => self.encoder.event(&payload, out),
                EventVerdict::Drop => {}
                EventVerdict::UpstreamError(message) => return Err(StreamFault::Upstream(message)),
                EventVerdict::Malformed => {
                    return Err(StreamFault::Malformed("an event of the stream is not a valid chunk".into()))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(include_usage: bool) -> Relay {
        Relay::new(Box::new(OpenAiPassthrough::default()), Box::new(OpenAiEncoder), include_usage)
    }

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn passthrough_relays_events_and_drops_unrequested_usage() {
        let mut r = relay(false);
        let mut out = Vec::new();
        r.feed(STREAM.as_bytes(), &mut out).unwrap();
        assert_eq!(r.end(&mut out).unwrap(), StreamEnd::Complete);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("data: ").count(), 4);
        assert!(!text.contains("usage"));
        assert_eq!(r.usage().unwrap().total_tokens, 3);
    }

    #[test]
    fn same_output_for_every_split() {
        let mut whole = Vec::new();
        let mut r = relay(true);
        r.feed(STREAM.as_bytes(), &mut whole).unwrap();
        r.end(&mut whole).unwrap();
        for cut in 0..STREAM.len() {
            let (a, b) = STREAM.as_bytes().split_at(cut);
            let mut r = relay(true);
            let mut out = Vec::new();
            r.feed(a, &mut out).unwrap();
            r.feed(b, &mut out).unwrap();
            r.end(&mut out).unwrap();
            assert_eq!(out, whole, "split at {cut}");
        }
    }

    #[test]
    fn commit_waits_for_content() {
        let mut r = relay(false);
        let mut out = Vec::new();
        let first_event_end = STREAM.find("\n\n").unwrap() + 2;
        r.feed(&STREAM.as_bytes()[..first_event_end], &mut out).unwrap();
        assert!(!r.committed());
        r.feed(&STREAM.as_bytes()[first_event_end..], &mut out).unwrap();
        assert!(r.committed());
    }

    #[test]
    fn missing_done_is_supplied_and_cut_streams_are_interrupted() {
        let without_done = STREAM.replace("data: [DONE]\n\n", "");
        let mut r = relay(false);
        let mut out = Vec::new();
        r.feed(without_done.as_bytes(), &mut out).unwrap();
        assert_eq!(r.end(&mut out).unwrap(), StreamEnd::MissingDone);
        assert!(String::from_utf8(out).unwrap().ends_with("data: [DONE]\n\n"));

        // Cut at the end of an event, before the finish reason.
        let cut = &STREAM[..STREAM.find("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},").unwrap()];
        let mut r = relay(false);
        let mut out = Vec::new();
        r.feed(cut.as_bytes(), &mut out).unwrap();
        assert_eq!(r.end(&mut out).unwrap(), StreamEnd::Interrupted);
        r.fail("upstream_stream_interrupted", "upstream stream ended unexpectedly", &mut out);
        let text = String::from_utf8(out).unwrap();
        let last = text.trim_end().rsplit("data: ").next().unwrap();
        let error: serde_json::Value = crate::json_value::from_str(last).unwrap();
        assert_eq!(error["error"]["code"], "upstream_stream_interrupted", "{text}");
        assert!(!text.contains("[DONE]"));
    }

    #[test]
    fn a_stream_cut_before_its_usage_is_charged_what_it_relayed() {
        let mut r = relay(false);
        let mut out = Vec::new();
        let content_only = STREAM.split("data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},").next().unwrap();
        r.feed(content_only.as_bytes(), &mut out).unwrap();
        assert_eq!(
            r.usage_or_estimate(10),
            Usage { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11, ..Usage::default() }
        );
        r.feed(&STREAM.as_bytes()[content_only.len()..], &mut out).unwrap();
        assert_eq!(r.usage_or_estimate(10).total_tokens, 3, "the provider's own count once it arrived");
    }

    #[test]
    fn a_malformed_event_is_a_fault_never_a_silent_gap() {
        let mut r = relay(false);
        let mut out = Vec::new();
        let fault = r.feed(b"data: {not json}\n\ndata: [DONE]\n\n", &mut out).unwrap_err();
        assert!(matches!(fault, StreamFault::Malformed(_)), "{fault:?}");
    }

    #[test]
    fn in_band_error_is_a_fault() {
        let mut r = relay(false);
        let mut out = Vec::new();
        let fault = r.feed(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n", &mut out).unwrap_err();
        assert_eq!(fault, StreamFault::Upstream("overloaded".into()));
        assert!(out.is_empty());
    }
}
