//! Tool calls as the client receives them, reassembled from streamed deltas.

use serde_json::{Map, Value};

/// One tool call as the client received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

/// Collects streamed tool-call deltas by index (bounded, so a runaway stream cannot grow memory).
#[derive(Debug, Default)]
pub struct ToolCallCollector {
    calls: Map<String, Value>,
    bytes: usize,
    pub overflowed: bool,
}

const MAX_COLLECTED_BYTES: usize = 256 * 1024;

impl ToolCallCollector {
    pub fn push(&mut self, index: usize, name: Option<&str>, arguments: Option<&str>) {
        let added = name.map_or(0, str::len) + arguments.map_or(0, str::len);
        if self.bytes + added > MAX_COLLECTED_BYTES {
            self.overflowed = true;
            return;
        }
        self.bytes += added;
        let entry = self.calls.entry(index.to_string()).or_insert_with(|| crate::json!({"name": "", "arguments": ""}));
        for (field, piece) in [("name", name), ("arguments", arguments)] {
            if let (Some(piece), Some(Value::String(current))) = (piece, entry.get_mut(field)) {
                current.push_str(piece);
            }
        }
    }

    pub fn finish(&self) -> Vec<ToolCall> {
        let mut calls: Vec<(usize, ToolCall)> = self
            .calls
            .iter()
            .map(|(index, v)| {
                let text = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
                (index.parse().unwrap_or(usize::MAX), ToolCall { name: text("name"), arguments: text("arguments") })
            })
            .collect();
        crate::order::sort_by_key(&mut calls, |(i, _)| *i);
        calls.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall { name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn streamed_deltas_are_reassembled_in_index_order() {
        let mut c = ToolCallCollector::default();
        c.push(1, Some("get_weather"), Some(""));
        c.push(0, Some("get_weather"), Some("{\"loca"));
        c.push(0, None, Some("tion\":\"Paris\"}"));
        c.push(1, None, Some("{\"location\":\"Rome\"}"));
        let calls = c.finish();
        assert_eq!(
            calls,
            vec![call("get_weather", r#"{"location":"Paris"}"#), call("get_weather", r#"{"location":"Rome"}"#)]
        );
    }
}
