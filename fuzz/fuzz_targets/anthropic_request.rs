//! The Anthropic Messages dialect's parser (its body into the canonical request).
#![no_main]
use edge_ai_gateway::dialects::{AnthropicMessages, ClientDialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = AnthropicMessages.parse(data, &|name| (name == "anthropic-version").then(|| "2023-06-01".to_string()));
});
