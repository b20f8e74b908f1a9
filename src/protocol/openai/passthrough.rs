//! Serde for the request types that keep every field they do not name (`extra`, `rest`).
//!
//! Written out instead of `#[serde(flatten)]`, which buffers every unknown value into
//! serde's `Content` and converts it afterwards (more wasm, and a copy of each value).
//! The wire behaviour is flatten's: the object is read as a map (a JSON array is
//! refused), named fields are read in place (so an error points at them), a named
//! field given twice is an error, missing required fields are reported after the
//! object, other fields keep their last value, and serialization writes the named
//! fields first, then the others in the map's order.

use super::{ChatRequest, EmbeddingsRequest, Message, StreamOptions};
use serde::de::{Deserialize, Deserializer, Error, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// One named field, read at most once.
fn read_once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

fn required<T, E: Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

/// Reads an object's fields: `named` reads the value of a field the type names and
/// answers false for any other, whose value is kept in the returned map.
fn read_object<'de, A: MapAccess<'de>>(
    mut map: A,
    mut named: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<Map<String, Value>, A::Error> {
    let mut others = Map::new();
    while let Some(key) = map.next_key::<String>()? {
        if !named(&key, &mut map)? {
            let value: Value = map.next_value()?;
            others.insert(key, value);
        }
    }
    Ok(others)
}

fn write_others<M: SerializeMap>(map: &mut M, others: &Map<String, Value>) -> Result<(), M::Error> {
    for (key, value) in others {
        map.serialize_entry(key, value)?;
    }
    Ok(())
}

struct ChatRequestVisitor;

impl<'de> Visitor<'de> for ChatRequestVisitor {
    type Value = ChatRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct ChatRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ChatRequest, A::Error> {
        let (mut model, mut messages, mut stream, mut stream_options) = (None, None, None, None);
        let extra = read_object(map, |key, map| {
            match key {
                "model" => read_once(map, &mut model, "model")?,
                "messages" => read_once(map, &mut messages, "messages")?,
                "stream" => read_once(map, &mut stream, "stream")?,
                "stream_options" => read_once(map, &mut stream_options, "stream_options")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(ChatRequest {
            model: required(model, "model")?,
            messages: required(messages, "messages")?,
            stream: stream.flatten(),
            stream_options: stream_options.flatten(),
            extra,
        })
    }
}

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ChatRequestVisitor)
    }
}

impl Serialize for ChatRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &self.model)?;
        map.serialize_entry("messages", &self.messages)?;
        if let Some(stream) = &self.stream {
            map.serialize_entry("stream", stream)?;
        }
        if let Some(options) = &self.stream_options {
            map.serialize_entry("stream_options", options)?;
        }
        write_others(&mut map, &self.extra)?;
        map.end()
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct Message")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Message, A::Error> {
        let mut role = None;
        let rest = read_object(map, |key, map| match key {
            "role" => read_once(map, &mut role, "role").map(|()| true),
            _ => Ok(false),
        })?;
        Ok(Message { role: required(role, "role")?, rest })
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("role", &self.role)?;
        write_others(&mut map, &self.rest)?;
        map.end()
    }
}

struct StreamOptionsVisitor;

impl<'de> Visitor<'de> for StreamOptionsVisitor {
    type Value = StreamOptions;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct StreamOptions")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StreamOptions, A::Error> {
        let mut include_usage = None;
        let extra = read_object(map, |key, map| match key {
            "include_usage" => read_once(map, &mut include_usage, "include_usage").map(|()| true),
            _ => Ok(false),
        })?;
        Ok(StreamOptions { include_usage: include_usage.flatten(), extra })
    }
}

impl<'de> Deserialize<'de> for StreamOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StreamOptionsVisitor)
    }
}

impl Serialize for StreamOptions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(include_usage) = &self.include_usage {
            map.serialize_entry("include_usage", include_usage)?;
        }
        write_others(&mut map, &self.extra)?;
        map.end()
    }
}

struct EmbeddingsRequestVisitor;

impl<'de> Visitor<'de> for EmbeddingsRequestVisitor {
    type Value = EmbeddingsRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct EmbeddingsRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EmbeddingsRequest, A::Error> {
        let (mut model, mut input) = (None, None);
        let extra = read_object(map, |key, map| {
            match key {
                "model" => read_once(map, &mut model, "model")?,
                "input" => read_once(map, &mut input, "input")?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(EmbeddingsRequest { model: required(model, "model")?, input: required(input, "input")?, extra })
    }
}

impl<'de> Deserialize<'de> for EmbeddingsRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EmbeddingsRequestVisitor)
    }
}

impl Serialize for EmbeddingsRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &self.model)?;
        map.serialize_entry("input", &self.input)?;
        write_others(&mut map, &self.extra)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    //! The written-out serde against serde's own `flatten` derive, input by input.
    use serde::{Deserialize, Serialize};

    /// The types as they were, with serde's `flatten` (same names: they are in messages).
    mod flatten {
        use serde::{Deserialize, Serialize};
        use serde_json::{Map, Value};

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        pub struct ChatRequest {
            model: String,
            messages: Vec<Message>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            stream: Option<bool>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            stream_options: Option<StreamOptions>,
            #[serde(flatten)]
            extra: Map<String, Value>,
        }

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        pub struct Message {
            role: String,
            #[serde(flatten)]
            rest: Map<String, Value>,
        }

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        pub struct StreamOptions {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            include_usage: Option<bool>,
            #[serde(flatten)]
            extra: Map<String, Value>,
        }

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        pub struct EmbeddingsRequest {
            model: String,
            input: Value,
            #[serde(flatten)]
            extra: Map<String, Value>,
        }
    }

    fn same_as_flatten<Ours, Theirs>(text: &str)
    where
        Ours: Serialize + for<'de> Deserialize<'de>,
        Theirs: Serialize + for<'de> Deserialize<'de>,
    {
        let ours = serde_json::from_slice::<Ours>(text.as_bytes());
        let theirs = serde_json::from_slice::<Theirs>(text.as_bytes());
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap(), "{text}")
            }
            (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string(), "{text}"),
            (ours, theirs) => panic!("{text}: ours {:?}, flatten's {:?}", ours.is_ok(), theirs.is_ok()),
        }
    }

    #[test]
    fn chat_requests_read_and_write_as_with_flatten() {
        for text in [
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"messages":[{"content":[{"type":"text","text":"a"}],"role":"user","name":"x"}],"model":"m","temperature":0.5,"n":2}"#,
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":1},"z":null,"a":[1,2.5,-3]}"#,
            r#"{"model":"m","messages":[],"stream":null,"stream_options":null}"#,
            r#"{"model":"m","messages":[],"stream_options":{"extra":"only"}}"#,
            r#"{"model":"m","messages":[],"top":1,"top":2}"#,
            r#"{"m\u006fdel":"m","messages":[{"r\u006fle":"user"}]}"#,
            r#"{"model":"m","model":"n","messages":[]}"#,
            r#"{"model":"m","messages":[],"stream":true,"stream":false}"#,
            r#"{"model":"m","messages":[{"role":"user","role":"system"}]}"#,
            r#"{"model":"m","messages":[],"stream_options":{"include_usage":true,"include_usage":true}}"#,
            r#"{"messages":[]}"#,
            r#"{"model":"m"}"#,
            r#"{"model":"m","messages":[{"content":"no role"}]}"#,
            r#"{"model":"m","messages":["text"]}"#,
            r#"{"model":"m","messages":{}}"#,
            r#"{"model":1,"messages":[]}"#,
            r#"{"model":"m","messages":[],"stream":"yes"}"#,
            r#"{"model":"m","messages":[],"stream_options":[true]}"#,
            r#"{"model":"m","messages":[],"stream_options":{"include_usage":"yes"}}"#,
            "[\"m\",[]]",
            "\"text\"",
            "null",
            "{\n  \"model\": \"m\",\n  \"messages\": [\n    {\"role\": 5}\n  ]\n}",
            r#"{"model":"m","messages":[],"big":18446744073709551616,"neg":-0,"f":1e400}"#,
            r#"{"model":"m","messages":[],"x":"#,
        ] {
            same_as_flatten::<super::super::ChatRequest, flatten::ChatRequest>(text);
        }
    }

    #[test]
    fn embeddings_requests_read_and_write_as_with_flatten() {
        for text in [
            r#"{"model":"m","input":"hi","dimensions":8,"encoding_format":"float"}"#,
            r#"{"input":[1,2],"model":"m"}"#,
            r#"{"input":null,"model":"m"}"#,
            r#"{"model":"m"}"#,
            r#"{"input":"x"}"#,
            r#"{"model":"m","input":"a","input":"b"}"#,
            r#"["m","x"]"#,
        ] {
            same_as_flatten::<super::super::EmbeddingsRequest, flatten::EmbeddingsRequest>(text);
        }
    }
}
