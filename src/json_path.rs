//! Where in a JSON text a serde_json deserialization error happened, as a path of
//! object keys and array indexes (`messages[0].role`, `/models/chat/targets/1`).
//!
//! A path-tracking deserializer (serde_path_to_error) gives the same answer but
//! instantiates every tracked type's deserializer again (~120 KB of wasm); this
//! reads the error's line and column instead, and rescans the text only when a
//! body was refused.

/// One step of a path: an object's key or an array's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// The path of the value a deserialization error of `text` is about.
pub fn of_error(text: &[u8], error: &serde_json::Error) -> Vec<Segment> {
    // serde_json places an error just after the value it is about (a missing
    // member's or element's after its object's or array's closing bracket), or
    // just after the key of a member it refuses.
    match byte_offset(text, error.line(), error.column()) {
        Some(offset) => at(text, offset),
        None => Vec::new(),
    }
}

/// `messages[0].role`; `.` for the body itself.
pub fn dotted(path: &[Segment]) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// `/models/chat/targets/0` (RFC 6901); empty for the document itself.
pub fn pointer(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        match segment {
            Segment::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Index(index) => out.push_str(&index.to_string()),
        }
    }
    out
}

/// serde_json's position: 1-based line, and the count of bytes before the
/// position on that line. Line 0 means the error has no position.
fn byte_offset(text: &[u8], line: usize, column: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut start_of_line = 0;
    for _ in 1..line {
        start_of_line += text[start_of_line..].iter().position(|&b| b == b'\n')? + 1;
    }
    Some((start_of_line + column).min(text.len()))
}

enum Container {
    /// `key` is the member being read (from its key on); `in_value` once its `:` was seen.
    Object { key: Option<String>, in_value: bool },
    /// `in_value` once the element at `index` started.
    Array { index: usize, in_value: bool },
}

impl Container {
    fn segment(&self) -> Option<Segment> {
        match self {
            Container::Object { key: Some(key), .. } => Some(Segment::Key(key.clone())),
            Container::Array { index, in_value: true } => Some(Segment::Index(*index)),
            _ => None,
        }
    }

    fn value_starts(&mut self) {
        if let Container::Array { in_value, .. } = self {
            *in_value = true;
        }
    }
}

/// The path open at `offset` of `text` (read up to there, valid JSON or not).
fn at(text: &[u8], offset: usize) -> Vec<Segment> {
    let text = &text[..offset.min(text.len())];
    let mut stack: Vec<Container> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let end = string_end(text, i);
                let expects_key = matches!(stack.last(), Some(Container::Object { in_value: false, .. }));
                if expects_key {
                    if let Some(Container::Object { key, .. }) = stack.last_mut() {
                        *key = end.map(|end| decode_string(&text[i..=end]));
                    }
                } else if let Some(top) = stack.last_mut() {
                    top.value_starts();
                }
                let Some(end) = end else { break };
                i = end;
            }
            b'{' | b'[' => {
                if let Some(top) = stack.last_mut() {
                    top.value_starts();
                }
                stack.push(if text[i] == b'{' {
                    Container::Object { key: None, in_value: false }
                } else {
                    Container::Array { index: 0, in_value: false }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Container::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Container::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Container::Array { index, in_value }) => {
                    *index += 1;
                    *in_value = false;
                }
                None => {}
            },
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => {
                if let Some(top) = stack.last_mut() {
                    top.value_starts();
                }
            }
        }
        i += 1;
    }
    stack.iter().filter_map(Container::segment).collect()
}

/// The index of the closing quote of the string opening at `start`, if `text` has it.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A quoted JSON string's value (its raw text if it does not decode).
fn decode_string(quoted: &[u8]) -> String {
    serde_json::from_slice::<String>(quoted)
        .unwrap_or_else(|_| String::from_utf8_lossy(&quoted[1..quoted.len().saturating_sub(1)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Message {
        role: Role,
        content: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        User,
        Assistant,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        model: String,
        messages: Vec<Message>,
        #[serde(default)]
        pair: Option<(u8, u8)>,
        #[serde(default)]
        limits: Option<Limits>,
        #[serde(default)]
        tags: std::collections::BTreeMap<String, u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        rpm: Option<u32>,
    }

    fn path_of(text: &str) -> String {
        let error = crate::json_value::from_str::<Body>(text).expect_err(text);
        dotted(&of_error(text.as_bytes(), &error))
    }

    #[test]
    fn names_the_value_a_body_was_refused_for() {
        let cases = [
            (r#"{"model": 5, "messages": []}"#, "model"),
            (r#"{"model": "m", "messages": [{"role": "user"}, {"role": "robot"}]}"#, "messages[1].role"),
            (r#"{"model": "m", "messages": [{"role":5}]}"#, "messages[0].role"),
            (r#"{"model": "m", "messages": [{"role": "user", "content": [1]}]}"#, "messages[0].content"),
            (r#"{"model": "m", "messages": [{"role": "user", "content": {"a": 1}}]}"#, "messages[0].content"),
            (r#"{"model": "m", "messages": {}}"#, "messages"),
            (r#"{"model": "m", "messages": "hi"}"#, "messages"),
            (r#"{"model": "m", "messages": [], "tags": {"a/b": "x"}}"#, "tags.a/b"),
            (r#"{"model": "m", "messages": [], "tags": {"a\"b": true}}"#, "tags.a\"b"),
            (r#"{"model": "m", "messages": [], "pair": [1, 300]}"#, "pair[1]"),
            (r#"{"model": "m", "messages": [], "limits": {"rpm": -1}}"#, "limits.rpm"),
            (r#"[1]"#, "[0]"),
            (r#""text""#, "."),
            ("{\n  \"model\": \"m\",\n  \"messages\": [\n    {\"role\": true}\n  ]\n}", "messages[0].role"),
        ];
        for (text, expected) in cases {
            assert_eq!(path_of(text), expected, "{text}");
        }
    }

    #[test]
    fn names_the_container_a_member_or_element_is_missing_from() {
        assert_eq!(path_of(r#"{"messages": []}"#), ".");
        assert_eq!(path_of(r#"{"model": "m", "messages": [{"content": "x"}]}"#), "messages[0]");
        assert_eq!(path_of(r#"{"model": "m", "messages": [{"role": "user"}, {"content": "x" } ]}"#), "messages[1]");
        assert_eq!(path_of(r#"{"model": "m", "messages": [], "pair": [1]}"#), "pair");
    }

    #[test]
    fn an_unknown_member_is_reported_at_its_key() {
        assert_eq!(path_of(r#"{"model": "m", "messages": [], "limits": {"rpm": 1, "rpn": 2}}"#), "limits.rpn");
    }

    #[test]
    fn pointers_escape_their_tokens() {
        let path = [Segment::Key("a/b~c".into()), Segment::Index(3), Segment::Key("d".into())];
        assert_eq!(pointer(&path), "/a~1b~0c/3/d");
        assert_eq!(pointer(&[]), "");
        assert_eq!(dotted(&[Segment::Index(0), Segment::Key("x".into())]), "[0].x");
    }
}
