//! The OpenAI wire format's own stream translator: OpenAI-compatible providers
//! already stream canonical chunks, so events pass with only the model renamed.

use super::{StreamFault, StreamTranslator};
use crate::sse::{SseDecoder, SseEvent};

/// OpenAI-compatible providers already stream canonical chunks: decode the SSE
/// framing and pass the payloads on, reporting the public model name.
#[derive(Debug, Default)]
pub struct OpenAiPassthrough {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    rename: Option<ModelRename>,
}

impl OpenAiPassthrough {
    /// Reports `public` where the provider says `upstream` in the chunks' `model`.
    pub fn renaming(upstream: &str, public: &str) -> Self {
        Self { rename: ModelRename::new(upstream, public), ..Self::default() }
    }

    fn drain(&mut self, out: &mut Vec<String>) {
        let rename = self.rename.as_ref();
        out.extend(self.events.drain(..).map(|e| match rename {
            Some(r) => r.apply(e.data),
            None => e.data,
        }));
    }
}

impl StreamTranslator for OpenAiPassthrough {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.feed(bytes, &mut self.events).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        self.drain(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.finish(&mut self.events);
        self.drain(out);
        Ok(())
    }
}

/// Replaces the `"model"` member's value (as providers serialise it, with or
/// without a space) without re-encoding the whole chunk: a substring inside a
/// string value would have escaped quotes and never match. The value is the
/// upstream name or a dated snapshot of it (`claude-sonnet-4-5-20250929` for
/// `claude-sonnet-4-5`, as providers answer an alias).
#[derive(Debug, Clone)]
pub struct ModelRename {
    /// The upstream name as a JSON string, without its closing quote.
    from: String,
    replacement: String,
}

const MODEL_KEY: &[u8] = b"\"model\":";

impl ModelRename {
    pub fn new(upstream: &str, public: &str) -> Option<Self> {
        if upstream == public {
            return None;
        }
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut from = quoted(upstream);
        from.pop();
        Some(Self { from, replacement: format!("\"model\":{}", quoted(public)) })
    }

    /// In place: every event of a stream goes through here, so no search structure
    /// is built and nothing is copied but the chunk's tail when the lengths differ.
    pub fn apply(&self, mut data: String) -> String {
        if let Some(member) = self.find(data.as_bytes()) {
            data.replace_range(member, &self.replacement);
        }
        data
    }

    /// A whole answer's body with `public` where the provider said `upstream`.
    pub fn whole_answer(upstream: &str, public: &str, body: Vec<u8>) -> Vec<u8> {
        match Self::new(upstream, public) {
            Some(rename) => rename.apply_bytes(body),
            None => body,
        }
    }

    fn apply_bytes(&self, body: Vec<u8>) -> Vec<u8> {
        match String::from_utf8(body) {
            Ok(text) => self.apply(text).into_bytes(),
            Err(e) => e.into_bytes(),
        }
    }

    /// Where the first `"model":` member naming the upstream model is (the member
    /// from its key to the end of its value).
    fn find(&self, data: &[u8]) -> Option<std::ops::Range<usize>> {
        let mut from = 0;
        while let Some(at) = data.get(from..)?.iter().position(|&b| b == b'"') {
            let start = from + at;
            from = start + 1;
            if !data[start..].starts_with(MODEL_KEY) {
                continue;
            }
            let mut value = start + MODEL_KEY.len();
            if data.get(value) == Some(&b' ') {
                value += 1;
            }
            if !data[value..].starts_with(self.from.as_bytes()) {
                continue;
            }
            let rest = value + self.from.len();
            match data.get(rest) {
                Some(b'"') => return Some(start..rest + 1),
                // A suffix such as a snapshot's date: plain characters up to the closing quote.
                Some(b'-') => {
                    let end = data[rest..].iter().position(|&b| b == b'"' || b == b'\\')?;
                    if data[rest + end] == b'"' {
                        return Some(start..rest + end + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_model_name_replaces_the_providers() {
        let rename = ModelRename::new("gpt-4o-mini-2024-07-18", "fast").unwrap();
        assert_eq!(
            rename.apply(r#"{"id":"c","model":"gpt-4o-mini-2024-07-18","x":1}"#.into()),
            r#"{"id":"c","model":"fast","x":1}"#
        );
        assert_eq!(rename.apply(r#"{"model": "gpt-4o-mini-2024-07-18"}"#.into()), r#"{"model":"fast"}"#);
        let content = r#"{"model":"other","choices":[{"delta":{"content":"\"model\":\"gpt-4o-mini-2024-07-18\""}}]}"#;
        assert_eq!(rename.apply(content.into()), content, "text inside content is never touched");
        assert!(ModelRename::new("same", "same").is_none());
        let other_first = r#"{"model":"other","x":{"model": "gpt-4o-mini-2024-07-18"}}"#;
        assert_eq!(rename.apply(other_first.into()), r#"{"model":"other","x":{"model":"fast"}}"#);
        assert_eq!(rename.apply(r#"{"model":"gpt-4o-mini"}"#.into()), r#"{"model":"gpt-4o-mini"}"#);
        assert_eq!(
            rename.apply(r#"{"model":"gpt-4o-mini-2024-07-180"}"#.into()),
            r#"{"model":"gpt-4o-mini-2024-07-180"}"#
        );
        let alias = ModelRename::new("claude-sonnet-4-5", "smart").unwrap();
        assert_eq!(
            alias.apply(r#"{"model":"claude-sonnet-4-5-20250929","id":"m"}"#.into()),
            r#"{"model":"smart","id":"m"}"#,
            "a dated snapshot of the upstream name"
        );
        assert_eq!(alias.apply(r#"{"model":"claude-sonnet-4-50"}"#.into()), r#"{"model":"claude-sonnet-4-50"}"#);
        assert_eq!(
            alias.apply(r#"{"model":"claude-sonnet-4-5-x\"y"}"#.into()),
            r#"{"model":"claude-sonnet-4-5-x\"y"}"#
        );
        assert_eq!(alias.apply(r#"{"model":"claude-sonnet-4-5-"#.into()), r#"{"model":"claude-sonnet-4-5-"#);
        assert_eq!(rename.apply("{\"model\":".into()), "{\"model\":");
    }
}
