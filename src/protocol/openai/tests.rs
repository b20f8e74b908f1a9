use super::*;
use serde_json::json;

/// The request example from OpenAI's Chat Completions API reference.
fn documented_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"}
        ]
    })
}

/// The function-calling example from the same reference.
fn documented_tools_request() -> Value {
    json!({
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "What is the weather like in Boston today?"}],
        "tools": [{
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                    },
                    "required": ["location"]
                }
            }
        }],
        "tool_choice": "auto",
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": 0.2,
        "max_completion_tokens": 300,
        "user": "user-123",
        "seed": 42
    })
}

fn parse(v: &Value) -> Result<ChatRequest, GatewayError> {
    ChatRequest::parse(v.to_string().as_bytes())
}

#[test]
fn documented_requests_round_trip_losslessly() {
    for original in [documented_request(), documented_tools_request()] {
        let parsed = parse(&original).unwrap();
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(back, original);
    }
}

#[test]
fn stream_flags_are_read() {
    let plain = parse(&documented_request()).unwrap();
    assert!(!plain.is_stream());
    assert!(!plain.wants_stream_usage());
    let tools = parse(&documented_tools_request()).unwrap();
    assert!(tools.is_stream());
    assert!(tools.wants_stream_usage());
}

#[test]
fn missing_fields_name_the_parameter() {
    let err = parse(&json!({"model": "gpt-4o"})).unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.code, "missing_required_parameter");
    assert_eq!(err.param.as_deref(), Some("messages"));
    let err = parse(&json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("model"));
    let err = parse(&json!({"model": "m", "messages": [{"content": "hi"}]})).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[0].role"), "{err:?}");
}

#[test]
fn malformed_json_is_invalid_json() {
    for body in [&b"{\"model\": "[..], b"", b"not json", b"{\"model\":\"m\",\"messages\":[]}}"] {
        let err = ChatRequest::parse(body).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.code == "invalid_json" || err.code == "invalid_value", "{err:?}");
    }
    let err = ChatRequest::parse(b"[1,2]").unwrap_err();
    assert_eq!(err.code, "invalid_request");
}

#[test]
fn wrong_types_are_invalid_type() {
    let err = parse(&json!({"model": 5, "messages": [{"role": "user", "content": "hi"}]})).unwrap_err();
    assert_eq!(err.code, "invalid_type");
    assert_eq!(err.param.as_deref(), Some("model"));
    let err = parse(&json!({"model": "m", "messages": "hi"})).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages"));
}

#[test]
fn out_of_range_values_are_rejected_with_param() {
    let base = documented_request();
    let cases = [
        ("temperature", json!(2.5)),
        ("top_p", json!(-0.1)),
        ("max_tokens", json!(-1)),
        ("max_tokens", json!(1.5)),
        ("n", json!(1000)),
        ("temperature", json!("hot")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let err = parse(&body).unwrap_err();
        assert_eq!(err.status, 400, "{field}={value}");
        assert_eq!(err.param.as_deref(), Some(field), "{field}={value}");
    }
    // 1e309 is not a finite JSON number: serde refuses it as a syntax/number error.
    assert!(
        ChatRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e309}"#).is_err()
    );
}

#[test]
fn empty_messages_and_unknown_roles_are_rejected() {
    let err = parse(&json!({"model": "m", "messages": []})).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages"));
    let err = parse(&json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages[0].role"));
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = ChatRequest::parse(deep.as_bytes()).unwrap_err();
    assert_eq!(err.code, "json_too_deep");
    // Brackets inside strings do not count.
    let ok = json!({"model": "m", "messages": [{"role": "user", "content": "[[[[".repeat(100)}]});
    assert!(parse(&ok).is_ok());
}

#[test]
fn stream_chunk_probe_reads_documented_chunks() {
    let first: ChunkProbe = crate::json_value::from_str(r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#).unwrap();
    let delta = first.choices.unwrap().remove(0).delta.unwrap();
    assert_eq!(delta.content.as_deref(), Some(""));
    let usage: ChunkProbe = crate::json_value::from_str(r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0}}}"#).unwrap();
    assert_eq!(usage.usage.unwrap().total_tokens, 21);
}

#[test]
fn completion_probe_reads_documented_response() {
    let body = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}"#;
    let probe: CompletionProbe = crate::json_value::from_str(body).unwrap();
    assert_eq!(probe.choices.len(), 1);
    let usage = probe.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens), (19, 10, 29));
    assert_eq!(usage.cached_tokens(), 0);
    // A null details object (some OpenAI-compatible servers) is no details, not an unreadable usage.
    let null_details: Usage = crate::json_value::from_str(
        r#"{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6,"prompt_tokens_details":null}"#,
    )
    .unwrap();
    assert_eq!(null_details.cached_tokens(), 0);
    let cached: Usage = crate::json_value::from_str(r#"{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920}}"#).unwrap();
    assert_eq!(cached.cached_tokens(), 1920);
}

#[test]
fn provider_errors_read_as_one_line() {
    let describe = |error: Value| describe_error(&serde_json::from_value::<ErrorProbe>(error).unwrap());
    assert_eq!(describe(json!({"message": "overloaded", "code": "overloaded"})), "overloaded (overloaded)");
    assert_eq!(describe(json!({"message": "slow down", "code": 429})), "slow down (429)");
    assert_eq!(describe(json!({"message": "bad", "code": null})), "bad");
    assert_eq!(describe(json!({})), "no message");
}

#[test]
fn known_fields_are_checked_by_type_before_routing() {
    let base = || serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let refused = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut body = base();
        patch(&mut body);
        let err = ChatRequest::parse(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.status, 400);
        err.param.unwrap_or_default()
    };
    assert_eq!(refused(&|b| b["tools"] = serde_json::json!({"type": "function"})), "tools");
    assert_eq!(
        refused(&|b| b["tools"] = serde_json::json!([{"type": "function", "function": {}}])),
        "tools[0].function.name"
    );
    assert_eq!(refused(&|b| b["messages"][0]["content"] = serde_json::json!(42)), "messages[0].content");
    assert_eq!(refused(&|b| b["messages"][0]["content"] = serde_json::json!(["text"])), "messages[0].content[0]");
    assert_eq!(refused(&|b| b["tool_choice"] = serde_json::json!(3)), "tool_choice");
    assert_eq!(
        refused(&|b| b["messages"] = serde_json::json!([{"role": "tool", "content": "x"}])),
        "messages[0].tool_call_id"
    );
    // Unknown fields and other tool types still pass through.
    let mut body = base();
    body["vendor_option"] = serde_json::json!({"x": 1});
    body["tools"] = serde_json::json!([{"type": "web_search"}]);
    assert!(ChatRequest::parse(body.to_string().as_bytes()).is_ok());
}
