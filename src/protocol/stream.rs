//! Watching the canonical stream on its way to the client: which events to
//! forward, when the answer is committed (no more failover), how the stream ended,
//! and the error event that ends a stream which cannot be completed.

use crate::protocol::openai::{describe_error, ChunkProbe, Usage};
use crate::protocol::tool_calls::ToolCallCollector;

/// What to do with one event of an upstream stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventVerdict {
    Forward,
    /// Not for the client: a usage chunk it did not ask for.
    Drop,
    /// The provider reported an error inside the stream.
    UpstreamError(String),
    /// The event is not a chunk: the stream cannot be trusted to be complete.
    Malformed,
}

/// How a stream ended, from what was seen of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `[DONE]` arrived.
    Complete,
    /// A finish_reason arrived but no `[DONE]`: finish the stream for the client.
    MissingDone,
    /// Cut before the answer finished: the client must get an error event, never a clean end.
    Interrupted,
}

#[derive(Debug, Default)]
pub struct StreamObserver {
    pub usage: Option<Usage>,
    /// Something the client must not lose has been seen: content, a tool call, a
    /// finish reason or usage. Before that, the attempt can still fail over.
    pub committed: bool,
    pub done_seen: bool,
    client_wants_usage: bool,
    /// Choices seen and choices finished: with `n` > 1 the answer ends when every one has.
    choices_seen: std::collections::BTreeSet<u64>,
    choices_finished: std::collections::BTreeSet<u64>,
    /// How many choices the request asked for (`n`).
    expected_choices: u64,
    /// Characters of generated text and tool arguments seen: an estimate of the
    /// output when a stream ends before the provider's usage arrives.
    pub generated_chars: u64,
    /// Collects tool calls when the request offered tools (for tool-call validity).
    pub tool_calls: Option<ToolCallCollector>,
}

impl StreamObserver {
    pub fn new(client_wants_usage: bool) -> Self {
        Self { client_wants_usage, expected_choices: 1, ..Self::default() }
    }

    /// The request asked for `n` choices: the answer is finished only when each has.
    pub fn expect_choices(&mut self, n: u64) {
        self.expected_choices = n.max(1);
    }

    pub fn observe(&mut self, data: &str) -> EventVerdict {
        if data.trim() == "[DONE]" {
            self.done_seen = true;
            self.committed = true;
            return EventVerdict::Forward;
        }
        let chunk: ChunkProbe = match crate::json_value::from_str(data) {
            Ok(chunk) => chunk,
            Err(_) => return EventVerdict::Malformed,
        };
        if let Some(error) = chunk.error {
            return EventVerdict::UpstreamError(describe_error(&error));
        }
        let choices = chunk.choices.unwrap_or_default();
        let usage_only = chunk.usage.is_some() && choices.is_empty();
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
            self.committed = true;
        }
        for (position, choice) in choices.iter().enumerate() {
            let index = choice.index.unwrap_or(position as u64);
            self.choices_seen.insert(index);
            if choice.finish_reason.is_some() {
                self.choices_finished.insert(index);
                self.committed = true;
            }
            if let (Some(collector), Some(calls)) =
                (self.tool_calls.as_mut(), choice.delta.as_ref().and_then(|d| d.tool_calls.as_ref()))
            {
                for (position, call) in calls.iter().enumerate() {
                    let function = call.function.as_ref();
                    collector.push(
                        call.index.unwrap_or(position),
                        function.and_then(|f| f.name.as_deref()),
                        function.and_then(|f| f.arguments.as_deref()),
                    );
                }
            }
            if let Some(delta) = &choice.delta {
                let len = |s: &Option<String>| s.as_deref().map_or(0, str::len) as u64;
                self.generated_chars += len(&delta.content) + len(&delta.refusal) + len(&delta.reasoning_content);
                for call in delta.tool_calls.iter().flatten() {
                    self.generated_chars += call.function.as_ref().map_or(0, |f| len(&f.arguments));
                }
                let has_text = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.is_empty());
                if has_text(&delta.content)
                    || has_text(&delta.refusal)
                    || has_text(&delta.reasoning_content)
                    || delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
                {
                    self.committed = true;
                }
            }
        }
        if usage_only && !self.client_wants_usage {
            EventVerdict::Drop
        } else {
            EventVerdict::Forward
        }
    }

    pub fn end(&self) -> StreamEnd {
        let every_choice_finished = !self.choices_finished.is_empty()
            && self.choices_seen.is_subset(&self.choices_finished)
            && self.choices_finished.len() as u64 >= self.expected_choices;
        if self.done_seen {
            StreamEnd::Complete
        } else if every_choice_finished {
            StreamEnd::MissingDone
        } else {
            StreamEnd::Interrupted
        }
    }
}

/// The in-band error event that ends a stream which cannot be completed.
pub fn stream_error_event(code: &str, message: &str) -> Vec<u8> {
    let body = crate::json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}});
    let mut out = Vec::new();
    crate::sse::encode(None, &body.to_string(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREAMBLE: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const CONTENT: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    const FINISH: &str =
        r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;

    #[test]
    fn preamble_does_not_commit_content_does() {
        let mut obs = StreamObserver::new(false);
        assert_eq!(obs.observe(PREAMBLE), EventVerdict::Forward);
        assert!(!obs.committed);
        obs.observe(CONTENT);
        assert!(obs.committed);
    }

    #[test]
    fn tool_call_delta_commits() {
        let mut obs = StreamObserver::new(false);
        obs.observe(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#);
        assert!(obs.committed);
    }

    #[test]
    fn usage_chunk_is_dropped_unless_asked_for_and_always_counted() {
        let mut obs = StreamObserver::new(false);
        assert_eq!(obs.observe(USAGE), EventVerdict::Drop);
        assert_eq!(obs.usage.unwrap().total_tokens, 4);
        let mut obs = StreamObserver::new(true);
        assert_eq!(obs.observe(USAGE), EventVerdict::Forward);
    }

    #[test]
    fn stream_end_classification() {
        let mut obs = StreamObserver::new(false);
        for e in [PREAMBLE, CONTENT] {
            obs.observe(e);
        }
        assert_eq!(obs.end(), StreamEnd::Interrupted);
        obs.observe(FINISH);
        assert_eq!(obs.end(), StreamEnd::MissingDone);
        obs.observe("[DONE]");
        assert_eq!(obs.end(), StreamEnd::Complete);
    }

    #[test]
    fn error_events_and_malformed_events() {
        let mut obs = StreamObserver::new(false);
        let verdict = obs.observe(r#"{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}"#);
        assert_eq!(verdict, EventVerdict::UpstreamError("overloaded (overloaded)".into()));
        assert_eq!(obs.observe("{not json}"), EventVerdict::Malformed);
        assert!(!obs.committed);
    }

    #[test]
    fn with_several_choices_the_stream_ends_when_every_one_has() {
        let chunk = |index: u64, finish: Option<&str>| {
            serde_json::json!({"choices": [{"index": index, "delta": {"content": "x"}, "finish_reason": finish}]})
                .to_string()
        };
        let mut obs = StreamObserver::new(false);
        obs.expect_choices(2);
        obs.observe(&chunk(0, None));
        obs.observe(&chunk(1, None));
        obs.observe(&chunk(0, Some("stop")));
        assert_eq!(obs.end(), StreamEnd::Interrupted, "choice 1 never finished");
        obs.observe(&chunk(1, Some("stop")));
        assert_eq!(obs.end(), StreamEnd::MissingDone);
        let mut only_one = StreamObserver::new(false);
        only_one.expect_choices(2);
        only_one.observe(&chunk(0, Some("stop")));
        assert_eq!(only_one.end(), StreamEnd::Interrupted, "the second choice never came");
    }

    #[test]
    fn error_event_is_openai_shaped_sse() {
        let bytes = stream_error_event("upstream_stream_interrupted", "upstream stream ended unexpectedly");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("data: {\"error\":"));
        assert!(text.ends_with("\n\n"));
        assert!(text.contains("\"code\":\"upstream_stream_interrupted\""));
    }
}
