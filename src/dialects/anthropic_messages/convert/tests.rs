use super::*;

fn canonical(body: Value) -> Value {
    let request = parse_request(body.to_string().as_bytes()).unwrap();
    serde_json::to_value(to_canonical(&request).unwrap()).unwrap()
}

#[test]
fn documented_request_becomes_canonical() {
    let out = canonical(json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello, world"}], "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
        "temperature": 0.5, "top_k": 5, "stream": true}));
    assert_eq!(
        out["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello, world"}])
    );
    assert_eq!(out["max_tokens"], 1024);
    assert_eq!(out["stop"], json!(["END"]));
    assert_eq!(out["user"], "u1");
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert!(out.get("top_k").is_none(), "provider-specific sampling knobs are not forwarded to other providers");
}

#[test]
fn tool_round_trip_images_and_cache_markers() {
    let out = canonical(json!({"model": "m", "max_tokens": 100,
    "system": [{"type": "text", "text": "Long context", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Here?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18°C"}]},
            {"type": "text", "text": "And tomorrow?"}]}
    ]}));
    let m = out["messages"].as_array().unwrap();
    assert_eq!(m[0]["content"][0]["cache_control"], json!({"type": "ephemeral", "ttl": "1h"}));
    assert_eq!(
        m[1]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}})
    );
    assert_eq!(
        m[2]["tool_calls"][0],
        json!({"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}})
    );
    assert_eq!(m[2]["thinking_blocks"][0]["signature"], "sig");
    assert_eq!(m[3], json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"}));
    assert_eq!(m[4], json!({"role": "user", "content": "And tomorrow?"}));
    assert_eq!(out["tools"][0]["function"]["parameters"]["properties"]["location"]["type"], "string");
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
}

/// Claude Code's shape: a system message after a user turn (Anthropic's mid-conversation
/// system messages), adaptive thinking, effort and context management it alone reads.
#[test]
fn a_mid_conversation_system_message_keeps_its_place() {
    let out =
        canonical(json!({"model": "m", "max_tokens": 32000, "system": [{"type": "text", "text": "You are an agent."}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Agents available: claude."},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "again"},
            {"role": "system", "content": [{"type": "text", "text": "Be terse."}]}
        ]}));
    let roles: Vec<&str> = out["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "system", "assistant", "user", "system"]);
    assert_eq!(out["messages"][2]["content"], "Agents available: claude.");
    assert_eq!(out["messages"][5]["content"], "Be terse.");
    assert!(out.get("thinking").is_none() && out.get("context_management").is_none());
    let long_id = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
        "metadata": {"user_id": r#"{"device_id":"7ea487a7bb1f35ba219c8bc05e9727bd6b8aa1a805f5e01f89f67ffa53948740","account_uuid":"","session_id":"7f3429f9"}"#}});
    assert!(canonical(long_id).get("user").is_none(), "longer than OpenAI's 64 characters: left out");
}

/// Structured outputs reach OpenAI-format targets as `response_format` (the GA
/// `output_config.format` and the beta's `output_format` alike).
#[test]
fn structured_outputs_become_a_response_format() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false});
    for format in [
        json!({"output_config": {"format": {"type": "json_schema", "schema": &schema}, "effort": "low"}}),
        json!({"output_format": {"type": "json_schema", "schema": &schema}}),
    ] {
        let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "A city?"}]});
        body.as_object_mut().unwrap().extend(format.as_object().unwrap().clone());
        let out = canonical(body);
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "response", "schema": &schema}})
        );
    }
    let plain = canonical(
        json!({"model": "m", "max_tokens": 10, "output_config": {"effort": "low"}, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(plain.get("response_format").is_none());
}

#[test]
fn canonical_requests_are_checked_like_a_clients() {
    for (body, param) in [
        (
            json!({"model": "m", "max_tokens": 10, "temperature": 3, "messages": [{"role": "user", "content": "x"}]}),
            "temperature",
        ),
        (json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": []}]}), "messages"),
    ] {
        let request = parse_request(body.to_string().as_bytes()).unwrap();
        let err = to_canonical(&request).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some(param)));
    }
}

#[test]
fn invalid_requests_say_which_field() {
    for (body, param) in [
        (json!({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}), "max_tokens"),
        (json!({"model": "m", "max_tokens": 10, "messages": []}), "messages"),
        (json!({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}), "messages.0.role"),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "system", "content": "z"}]}),
            "messages.2.role",
        ),
        (json!({"model": "m", "max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]}), "messages.0.role"),
    ] {
        let err = parse_request(body.to_string().as_bytes()).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some(param)));
    }
    assert_eq!(parse_request(b"{oops").unwrap_err().code, "invalid_json");
}

#[test]
fn canonical_completion_becomes_an_anthropic_message() {
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37, "prompt_tokens_details": {"cached_tokens": 10}}});
    let message = from_canonical_response(&completion, "smart", "msg_gw_1");
    assert_eq!(message["type"], "message");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0], json!({"type": "text", "text": "Checking."}));
    assert_eq!(
        message["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}})
    );
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 20, "output_tokens": 7, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0})
    );
}

fn events(chunks: &[&str]) -> Vec<(String, Value)> {
    let mut encoder = AnthropicEncoder::new("smart", "msg_gw_1", 8);
    let mut out = Vec::new();
    for chunk in chunks {
        encoder.event(chunk, &mut out);
    }
    let mut decoder = crate::sse::SseDecoder::default();
    let mut decoded = Vec::new();
    decoder.feed(&out, &mut decoded).unwrap();
    decoded.into_iter().map(|e| (e.event.unwrap_or_default(), crate::json_value::from_str(&e.data).unwrap())).collect()
}

#[test]
fn canonical_chunks_become_anthropic_events_in_order() {
    let out = events(&[
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"!"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":1}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#,
        "[DONE]",
    ]);
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(out[5].1["content_block"], json!({"type": "tool_use", "id": "call_a", "name": "f", "input": {}}));
    assert_eq!(out[5].1["index"], 1);
    assert_eq!(out[8].1["content_block"]["id"], "call_b");
    assert_eq!(out[8].1["index"], 2, "parallel tool calls get distinct blocks");
    assert_eq!(out[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(out[11].1["usage"]["output_tokens"], 4);
    assert_eq!(out[11].1["usage"]["input_tokens"], 9, "the provider's exact count at the end");
    assert_eq!(out[0].1["message"]["id"], "msg_gw_1");
    assert_eq!(
        out[0].1["message"]["usage"],
        json!({"input_tokens": 8, "output_tokens": 0}),
        "the prompt's estimated size first, as Anthropic's stream names it (never 0)"
    );
}

#[test]
fn errors_in_anthropic_shape() {
    let body: Value = crate::json_value::from_str(&error_body(&GatewayError::model_not_found("x"), "req_1")).unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "not_found_error", "message": "The model `x` does not exist or you do not have access to it."}, "request_id": "req_1"})
    );
    assert_eq!(error_type(529), "overloaded_error");
    let mut out = Vec::new();
    AnthropicEncoder::new("m", "id", 0).error("upstream_stream_interrupted", "cut", &mut out);
    assert!(String::from_utf8(out).unwrap().starts_with("event: error\ndata: {"));
}
