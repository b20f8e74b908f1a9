//! A canonical stream assembled into one canonical answer: the
//! `chat.completion.chunk` payloads of a stream (as every stream translator
//! gives them) become the `chat.completion` the same answer would have been
//! without streaming. The gateway asks providers for a stream even when the
//! client wants JSON, so the first-byte deadline measures the provider's
//! liveness rather than the answer's length, and assembles the JSON here.
//!
//! Per choice: `content`, `refusal` and `reasoning_content` are concatenated,
//! tool calls are merged by their `index` (id, type and name once, `arguments`
//! concatenated, other members kept), list members such as Anthropic's signed
//! `thinking_blocks` are appended in order, and any other member a delta carries
//! (Gemini's `extra_content`) keeps its last value. A stream that ends before
//! every choice has its finish reason, or that carries an error, is no answer.

use crate::protocol::openai::{describe_error, ErrorProbe};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Why a stream gave no whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssembleError {
    /// The provider reported an error inside the stream (its message, to be scrubbed).
    Upstream(String),
    /// An event is not a chunk.
    Malformed,
    /// The stream ended before every choice finished (cut).
    Incomplete,
}

/// Message members whose deltas are pieces of one text.
const TEXTS: [&str; 3] = ["content", "refusal", "reasoning_content"];

#[derive(Debug, Default)]
struct ChoiceParts {
    texts: [Option<String>; 3],
    /// Every other member of the message (role, thinking_blocks, extra_content, …).
    rest: Map<String, Value>,
    /// By the delta's `index`.
    tool_calls: BTreeMap<u64, Map<String, Value>>,
    logprobs: Option<Map<String, Value>>,
    finish_reason: Option<Value>,
    /// Other members of the choice.
    extra: Map<String, Value>,
}

/// Collects the chunks of one stream; [`Assembler::finish`] gives the completion.
#[derive(Debug)]
pub struct Assembler {
    /// Top-level members of the chunks (id, created, model, system_fingerprint, …).
    top: Map<String, Value>,
    choices: BTreeMap<u64, ChoiceParts>,
    usage: Option<Value>,
    expected_choices: u64,
}

impl Assembler {
    /// For a request that asked for `n` choices.
    pub fn new(expected_choices: u64) -> Self {
        Self { top: Map::new(), choices: BTreeMap::new(), usage: None, expected_choices: expected_choices.max(1) }
    }

    /// Takes one payload of the canonical stream (`[DONE]` included).
    pub fn push(&mut self, data: &str) -> Result<(), AssembleError> {
        if data.trim() == "[DONE]" {
            return Ok(());
        }
        let mut reader = serde_json::Deserializer::from_slice(data.as_bytes());
        let frame = ChunkSeed { known: &self.top }.deserialize(&mut reader).and_then(|frame| {
            reader.end()?;
            Ok(frame)
        });
        let Ok(chunk) = frame else {
            return Err(AssembleError::Malformed);
        };
        if let Some(error) = chunk.error {
            let probe: ErrorProbe = serde_json::from_value(error).unwrap_or_default();
            return Err(AssembleError::Upstream(describe_error(&probe)));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for (name, value) in chunk.top {
            // The first real value (Azure opens with a chunk of empty id and model).
            match self.top.get(&name) {
                Some(known) if !is_blank(known) => {}
                _ => {
                    self.top.insert(name, value);
                }
            }
        }
        for (position, choice) in chunk.choices.into_iter().enumerate() {
            let index = choice.index.as_ref().and_then(Value::as_u64).unwrap_or(position as u64);
            let parts = self.choices.entry(index).or_default();
            if let Some(delta) = choice.delta {
                parts.absorb(delta);
            }
            if let Some(Value::Object(logprobs)) = choice.logprobs {
                append_lists(parts.logprobs.get_or_insert_with(Map::new), logprobs);
            }
            if let Some(reason) = choice.finish_reason {
                parts.finish_reason = Some(reason);
            }
            // Anything else about the choice (Azure's content_filter_results): its last value.
            parts.extra.extend(choice.extra);
        }
        Ok(())
    }

    /// The whole answer, once every choice has finished.
    pub fn finish(self) -> Result<Value, AssembleError> {
        let finished = self.choices.values().filter(|c| c.finish_reason.is_some()).count() as u64;
        if self.choices.is_empty() || finished < self.choices.len() as u64 || finished < self.expected_choices {
            return Err(AssembleError::Incomplete);
        }
        let mut completion = self.top;
        completion.insert("object".into(), "chat.completion".into());
        let choices = self.choices.into_iter().map(|(index, parts)| parts.into_choice(index)).collect();
        completion.insert("choices".into(), Value::Array(choices));
        if let Some(usage) = self.usage {
            completion.insert("usage".into(), usage);
        }
        Ok(Value::Object(completion))
    }
}

impl ChoiceParts {
    fn absorb(&mut self, delta: DeltaFrame<'_>) {
        for (slot, piece) in delta.texts.into_iter().enumerate() {
            if let Some(piece) = piece {
                self.texts[slot].get_or_insert_with(String::new).push_str(&piece);
            }
        }
        for (name, value) in delta.rest {
            match (name.as_str(), value) {
                ("tool_calls", Value::Array(calls)) => {
                    for (position, call) in calls.into_iter().enumerate() {
                        if let Value::Object(call) = call {
                            let index = call.get("index").and_then(Value::as_u64).unwrap_or(position as u64);
                            merge_tool_call(self.tool_calls.entry(index).or_default(), call);
                        }
                    }
                }
                ("role", role) => {
                    self.rest.entry("role").or_insert(role);
                }
                (_, Value::Array(items)) => match self.rest.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                    Value::Array(list) => list.extend(items),
                    other => *other = Value::Array(items),
                },
                (_, value) => {
                    self.rest.insert(name, value);
                }
            }
        }
    }

    fn into_choice(self, index: u64) -> Value {
        let mut message = self.rest;
        message.entry("role").or_insert_with(|| "assistant".into());
        let [content, refusal, reasoning] = self.texts;
        let tool_calls: Vec<Value> = self.tool_calls.into_values().map(finish_tool_call).collect();
        let content = match content.filter(|c| !c.is_empty()) {
            Some(text) => Value::String(text),
            None if !tool_calls.is_empty() => Value::Null,
            None => Value::String(String::new()),
        };
        message.insert("content".into(), content);
        message.insert("refusal".into(), refusal.map_or(Value::Null, Value::String));
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        // A signed reasoning block always comes with its text (as whole answers give it).
        let reasoning = reasoning.or_else(|| message.contains_key("thinking_blocks").then(String::new));
        if let Some(reasoning) = reasoning {
            message.insert("reasoning_content".into(), reasoning.into());
        }
        let mut choice = self.extra;
        choice.insert("index".into(), index.into());
        choice.insert("message".into(), Value::Object(message));
        choice.insert("logprobs".into(), self.logprobs.map_or(Value::Null, Value::Object));
        choice.insert("finish_reason".into(), self.finish_reason.unwrap_or(Value::Null));
        Value::Object(choice)
    }
}

/// A placeholder rather than a value: null, an empty string, zero.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_u64() == Some(0),
        _ => false,
    }
}

/// One chunk as the assembler takes it, read in one pass without a tree for what
/// it only concatenates (text pieces, borrowed from the event where they have no
/// escapes) or already knows (top-level members after their first real value):
/// a chunk read as a `Value` was most of an assembled answer's cost.
struct ChunkFrame<'de> {
    error: Option<Value>,
    usage: Option<Value>,
    choices: Vec<ChoiceFrame<'de>>,
    /// Top-level members the assembler has no real value for yet.
    top: Vec<(String, Value)>,
}

struct ChoiceFrame<'de> {
    index: Option<Value>,
    delta: Option<DeltaFrame<'de>>,
    logprobs: Option<Value>,
    finish_reason: Option<Value>,
    extra: Vec<(String, Value)>,
}

/// A delta's text pieces (by [`TEXTS`]) and its other non-null members.
#[derive(Default)]
struct DeltaFrame<'de> {
    texts: [Option<Cow<'de, str>>; 3],
    rest: Vec<(String, Value)>,
}

/// A member name or text: borrowed from the event unless it has escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A member's value, null as none.
fn non_null<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Value>, A::Error> {
    Ok(Some(map.next_value::<Value>()?).filter(|v| !v.is_null()))
}

/// Keeps a member other than those the frame names, unless it is null.
fn push_non_null<'de, A: MapAccess<'de>>(
    map: &mut A,
    name: Cow<'de, str>,
    into: &mut Vec<(String, Value)>,
) -> Result<(), A::Error> {
    if let Some(value) = non_null(map)? {
        into.push((name.into_owned(), value));
    }
    Ok(())
}

/// Reads a chunk knowing which top-level members the assembler already has.
struct ChunkSeed<'a> {
    known: &'a Map<String, Value>,
}

impl<'de> DeserializeSeed<'de> for ChunkSeed<'_> {
    type Value = ChunkFrame<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChunkSeed<'_> {
    type Value = ChunkFrame<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chunk")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut chunk = ChunkFrame { error: None, usage: None, choices: Vec::new(), top: Vec::new() };
        while let Some(Text(name)) = map.next_key::<Text>()? {
            match name.as_ref() {
                "error" => chunk.error = non_null(&mut map)?,
                "usage" => chunk.usage = non_null(&mut map)?,
                "choices" => chunk.choices = map.next_value::<Option<Vec<ChoiceFrame>>>()?.unwrap_or_default(),
                // Stream-only members: the chunk's type, and OpenAI's random padding.
                "object" | "obfuscation" => {
                    map.next_value::<IgnoredAny>()?;
                }
                name if self.known.get(name).is_some_and(|known| !is_blank(known)) => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => push_non_null(&mut map, name, &mut chunk.top)?,
            }
        }
        Ok(chunk)
    }
}

impl<'de> de::Deserialize<'de> for ChoiceFrame<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChoiceVisitor;
        impl<'de> Visitor<'de> for ChoiceVisitor {
            type Value = ChoiceFrame<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a choice")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut choice =
                    ChoiceFrame { index: None, delta: None, logprobs: None, finish_reason: None, extra: Vec::new() };
                while let Some(Text(name)) = map.next_key::<Text>()? {
                    match name.as_ref() {
                        "index" => choice.index = non_null(&mut map)?,
                        "delta" => choice.delta = map.next_value()?,
                        "logprobs" => choice.logprobs = non_null(&mut map)?,
                        "finish_reason" => choice.finish_reason = non_null(&mut map)?,
                        _ => {
                            push_non_null(&mut map, name, &mut choice.extra)?;
                        }
                    }
                }
                Ok(choice)
            }
        }
        deserializer.deserialize_map(ChoiceVisitor)
    }
}

impl<'de> de::Deserialize<'de> for DeltaFrame<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DeltaVisitor;
        impl<'de> Visitor<'de> for DeltaVisitor {
            type Value = DeltaFrame<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a delta")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut delta = DeltaFrame::default();
                while let Some(Text(name)) = map.next_key::<Text>()? {
                    match TEXTS.iter().position(|t| *t == name) {
                        Some(slot) => {
                            if let Some(Text(piece)) = map.next_value::<Option<Text>>()? {
                                delta.texts[slot] = Some(piece);
                            }
                        }
                        None => {
                            push_non_null(&mut map, name, &mut delta.rest)?;
                        }
                    }
                }
                Ok(delta)
            }
        }
        deserializer.deserialize_map(DeltaVisitor)
    }
}

/// One tool call's delta into what is known of it so far.
fn merge_tool_call(call: &mut Map<String, Value>, delta: Map<String, Value>) {
    for (name, value) in delta {
        match (name.as_str(), value) {
            ("index", _) | (_, Value::Null) => {}
            ("function", Value::Object(function)) => {
                let known = call.entry("function").or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(known) = known else { continue };
                for (field, part) in function {
                    match (field.as_str(), part) {
                        ("arguments", Value::String(piece)) => match known.get_mut("arguments") {
                            Some(Value::String(arguments)) => arguments.push_str(&piece),
                            _ => {
                                known.insert(field, Value::String(piece));
                            }
                        },
                        (_, Value::Null) => {}
                        (_, part) => {
                            known.entry(field).or_insert(part);
                        }
                    }
                }
            }
            (_, value) => {
                call.entry(name).or_insert(value);
            }
        }
    }
}

fn finish_tool_call(mut call: Map<String, Value>) -> Value {
    call.entry("type").or_insert_with(|| "function".into());
    if let Some(Value::Object(function)) = call.get_mut("function") {
        function.entry("arguments").or_insert_with(|| String::new().into());
    }
    Value::Object(call)
}

/// Appends the lists of `more` to those of `into` (logprobs' `content`, `refusal`).
fn append_lists(into: &mut Map<String, Value>, more: Map<String, Value>) {
    for (name, value) in more {
        match (into.get_mut(&name), value) {
            (Some(Value::Array(list)), Value::Array(items)) => list.extend(items),
            (_, Value::Null) => {}
            (_, value) => {
                into.insert(name, value);
            }
        }
    }
}

/// A completion with every tool call's `arguments` parsed, so that the same JSON
/// written with other spacing (streamed pieces, re-encoded input) compares equal.
#[cfg(test)]
pub fn comparable(mut completion: Value) -> Value {
    for choice in completion.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten() {
        let calls = choice.pointer_mut("/message/tool_calls").and_then(Value::as_array_mut);
        for call in calls.into_iter().flatten() {
            if let Some(arguments) = call.pointer_mut("/function/arguments") {
                if let Some(parsed) = arguments.as_str().and_then(|a| crate::json_value::from_str::<Value>(a).ok()) {
                    *arguments = parsed;
                }
            }
        }
    }
    completion
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assemble(events: &[Value], n: u64) -> Result<Value, AssembleError> {
        let mut assembler = Assembler::new(n);
        for event in events {
            assembler.push(&event.to_string())?;
        }
        assembler.push("[DONE]")?;
        assembler.finish()
    }

    fn chunk(choices: Value) -> Value {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": choices})
    }

    #[test]
    fn text_pieces_are_concatenated_and_the_last_finish_and_usage_kept() {
        let events = [
            chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])),
            chunk(json!([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}])),
            chunk(json!([{"index": 0, "delta": {"content": "lo", "reasoning_content": "r"}, "finish_reason": null}])),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}])),
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m", "choices": [],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}),
        ];
        let completion = assemble(&events, 1).unwrap();
        assert_eq!(
            completion,
            json!({"id": "c1", "object": "chat.completion", "created": 7, "model": "m",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop", "message":
                    {"role": "assistant", "content": "Hello", "refusal": null, "reasoning_content": "r"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
        );
    }

    #[test]
    fn tool_calls_merge_by_index_with_their_arguments_split_anywhere() {
        let call = |index: u64, value: Value| {
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": value}}]}}]))
        };
        let events = [
            chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": null, "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]}}])),
            call(0, json!("{\"x\"")),
            chunk(json!([{"index": 0, "delta": {"tool_calls": [
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}}])),
            call(0, json!(":1}")),
            chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        ];
        let completion = assemble(&events, 1).unwrap();
        let message = &completion["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"],
            json!([
                {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ])
        );
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn every_choice_of_n_is_kept_and_must_finish() {
        let piece = |i: u64, text: &str, finish: Option<&str>| {
            chunk(json!([{"index": i, "delta": {"content": text}, "finish_reason": finish}]))
        };
        let events =
            [piece(1, "b", None), piece(0, "a", None), piece(0, "", Some("stop")), piece(1, "", Some("length"))];
        let completion = assemble(&events, 2).unwrap();
        let choices = completion["choices"].as_array().unwrap();
        assert_eq!(
            (choices[0]["message"]["content"].as_str(), choices[0]["finish_reason"].as_str()),
            (Some("a"), Some("stop"))
        );
        assert_eq!(
            (choices[1]["message"]["content"].as_str(), choices[1]["finish_reason"].as_str()),
            (Some("b"), Some("length"))
        );
        assert_eq!(assemble(&events[..3], 2), Err(AssembleError::Incomplete), "choice 1 never finished");
        assert_eq!(assemble(&events[1..3], 2), Err(AssembleError::Incomplete), "choice 1 never came");
    }

    #[test]
    fn a_cut_stream_an_error_event_or_a_broken_event_is_no_answer() {
        let content = chunk(json!([{"index": 0, "delta": {"content": "partial"}, "finish_reason": null}]));
        assert_eq!(assemble(std::slice::from_ref(&content), 1), Err(AssembleError::Incomplete));
        assert_eq!(assemble(&[], 1), Err(AssembleError::Incomplete));
        let error = json!({"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}});
        assert_eq!(assemble(&[content, error], 1), Err(AssembleError::Upstream("overloaded (overloaded)".into())));
        let mut assembler = Assembler::new(1);
        assert_eq!(assembler.push("{not json"), Err(AssembleError::Malformed));
    }

    #[test]
    fn azures_blank_opening_chunk_and_stream_only_members_leave_no_trace() {
        let events = [
            json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}),
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m", "obfuscation": "x1",
                "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop",
                    "content_filter_results": {"hate": {"filtered": false}}}]}),
        ];
        let completion = assemble(&events, 1).unwrap();
        assert_eq!((completion["id"].as_str(), completion["model"].as_str()), (Some("c1"), Some("m")));
        assert_eq!(completion["created"], 7);
        assert!(completion.get("obfuscation").is_none());
        assert_eq!(completion["prompt_filter_results"][0]["prompt_index"], 0);
        assert_eq!(completion["choices"][0]["content_filter_results"]["hate"]["filtered"], false);
    }

    #[test]
    fn members_in_any_order_with_escapes_read_as_they_would_from_a_tree() {
        // The choice's index after its delta, escaped text, a top-level member that
        // comes only later, and a chunk that is not an object.
        let events = [
            r#"{"choices":[{"delta":{"content":"a\"b\u00e9"},"index":1}],"model":"","id":"c"}"#,
            r#"{"model":"m","choices":[{"finish_reason":"stop","delta":{"content":"\n"},"index":1}],"system_fingerprint":"fp"}"#,
        ];
        let mut assembler = Assembler::new(1);
        for event in events {
            assembler.push(event).unwrap();
        }
        let completion = assembler.finish().unwrap();
        assert_eq!(completion["choices"][0]["index"], 1);
        assert_eq!(completion["choices"][0]["message"]["content"], "a\"b\u{e9}\n");
        assert_eq!((completion["model"].as_str(), completion["id"].as_str()), (Some("m"), Some("c")));
        assert_eq!(completion["system_fingerprint"], "fp");
        for broken in [r#"[1]"#, r#"{"choices":5}"#, r#"{"choices":[7]}"#, r#"{"choices":[]} x"#] {
            assert_eq!(Assembler::new(1).push(broken), Err(AssembleError::Malformed), "{broken}");
        }
    }

    #[test]
    fn list_members_are_appended_and_other_members_keep_their_last_value() {
        let events = [
            chunk(
                json!([{"index": 0, "delta": {"reasoning_content": "a", "extra_content": {"google": {"thought_signature": "s1"}}}}]),
            ),
            chunk(
                json!([{"index": 0, "delta": {"thinking_blocks": [{"type": "thinking", "thinking": "a", "signature": "sig"}]}}]),
            ),
            chunk(json!([{"index": 0, "delta": {"thinking_blocks": [{"type": "redacted_thinking", "data": "x"}]}}])),
            chunk(
                json!([{"index": 0, "delta": {"content": "ok", "extra_content": {"google": {"thought_signature": "s2"}}}, "finish_reason": "stop"}]),
            ),
        ];
        let message = assemble(&events, 1).unwrap()["choices"][0]["message"].clone();
        assert_eq!(message["thinking_blocks"].as_array().unwrap().len(), 2);
        assert_eq!(message["extra_content"]["google"]["thought_signature"], "s2");
        assert_eq!(message["reasoning_content"], "a");
    }
}
