//! The Anthropic Messages dialect's parser (its body into the canonical request), and a
//! threaded body's turn completed from a stored thread, as a `continue` is.
#![no_main]
use edge_ai_gateway::dialects::anthropic_thread::History;
use edge_ai_gateway::dialects::{AnthropicMessages, ClientDialect, Read};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let header = |name: &str| (name == "anthropic-version").then(|| "2023-06-01".to_string());
    let _ = AnthropicMessages.parse(data, &header);
    if let Ok(Read::Threaded(turn)) = AnthropicMessages.read(data, &header) {
        let mut history = History::default();
        history.messages = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]}),
        ];
        history.head.insert("system".into(), json!("Be brief."));
        let _ = turn.complete(history, 1 << 20, 0, &header);
    }
});
