//! Builders for the canonical answers the translating adapters emit: the
//! `chat.completion` body and the `chat.completion.chunk` payloads of a stream.
//!
//! They build `serde_json::Value`s, whose maps are sorted: members always come out
//! in key order, the exact bytes clients have always received.

use crate::json;
use serde_json::Value;

/// A non-streamed answer, as a `chat.completion` body.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    /// `chatcmpl-…`, or the provider's own id passed on as it was sent.
    pub id: Value,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The public model name the client asked for.
    pub model: &'a str,
    /// Built with [`completion_choice`].
    pub choices: Vec<Value>,
    pub usage: Value,
}

impl Completion<'_> {
    pub fn into_json(self) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": self.choices,
            "usage": self.usage,
        })
    }
}

/// One choice of a completion: the assistant message and why it ended.
pub fn completion_choice(index: u64, message: Value, finish_reason: &str) -> Value {
    json!({"index": index, "message": message, "logprobs": null, "finish_reason": finish_reason})
}

/// The chunks of one stream: what each of them repeats, and how to build them.
#[derive(Debug, Clone, Default)]
pub struct StreamChunks {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The public model name the client asked for.
    pub model: String,
}

impl StreamChunks {
    /// A chunk whose single choice (index 0) carries `delta`; the last one of an
    /// answer also carries its `finish_reason`.
    pub fn delta(&self, delta: Value, finish_reason: Option<&str>) -> String {
        json!({
            "id": &self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": &self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
        .to_string()
    }

    /// The usage chunk that closes a stream: no choices, only usage.
    pub fn usage(&self, usage: Value) -> String {
        json!({
            "id": &self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": &self.model,
            "choices": [],
            "usage": usage,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks() -> StreamChunks {
        StreamChunks { id: "chatcmpl-1".into(), created: 1_700_000_000, model: "smart".into() }
    }

    #[test]
    fn chunks_are_byte_stable() {
        assert_eq!(
            chunks().delta(json!({"role": "assistant", "content": ""}), None),
            r#"{"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-1","model":"smart","object":"chat.completion.chunk"}"#
        );
        assert_eq!(
            chunks().delta(json!({}), Some("stop")),
            r#"{"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1700000000,"id":"chatcmpl-1","model":"smart","object":"chat.completion.chunk"}"#
        );
        assert_eq!(
            chunks().usage(json!({"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3})),
            r#"{"choices":[],"created":1700000000,"id":"chatcmpl-1","model":"smart","object":"chat.completion.chunk","usage":{"completion_tokens":1,"prompt_tokens":2,"total_tokens":3}}"#
        );
    }

    #[test]
    fn completions_are_byte_stable() {
        let completion = Completion {
            id: "chatcmpl-1".into(),
            created: 1_700_000_000,
            model: "smart",
            choices: vec![completion_choice(0, json!({"role": "assistant", "content": "Hi"}), "stop")],
            usage: json!({"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}),
        };
        assert_eq!(
            completion.into_json().to_string(),
            r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"Hi","role":"assistant"}}],"created":1700000000,"id":"chatcmpl-1","model":"smart","object":"chat.completion","usage":{"completion_tokens":1,"prompt_tokens":2,"total_tokens":3}}"#
        );
    }

    #[test]
    fn chunks_parse_as_what_the_stream_observer_reads() {
        let probe: crate::protocol::openai::ChunkProbe =
            crate::json_value::from_str(&chunks().delta(json!({"content": "Hi"}), Some("length"))).unwrap();
        let choice = &probe.choices.unwrap()[0];
        assert_eq!(choice.finish_reason.as_deref(), Some("length"));
        assert_eq!(choice.delta.as_ref().unwrap().content.as_deref(), Some("Hi"));
    }
}
