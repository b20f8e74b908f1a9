use super::*;
use crate::config::{Provider, ProviderKind};

fn with_ctx<T>(secret: &str, f: impl FnOnce(&AttemptContext) -> T) -> T {
    let provider = Provider {
        kind: ProviderKind::Bedrock { aws_region: "eu-central-1".into() },
        base_url: "https://bedrock-runtime.eu-central-1.amazonaws.com".into(),
        api_key_secret: Some("AWS_BEDROCK".into()),
        region: "eu-de".into(),
        location_hint: None,
        limits: Default::default(),
    };
    let ctx = AttemptContext {
        provider: &provider,
        upstream_model: "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        public_model: "claude-eu",
        api_key: Some(secret),
        now_ms: 1_440_938_160_000,
        request_id: "req_1",
    };
    f(&ctx)
}

fn parse(v: Value) -> ChatRequest {
    ChatRequest::parse(v.to_string().as_bytes()).unwrap()
}

#[test]
fn converse_request_is_signed_for_the_region() {
    let req = parse(
        json!({"model": "claude-eu", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "temperature": 0.5, "max_tokens": 300, "stop": "END"}),
    );
    let up =
        with_ctx("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", |ctx| chat_request(ctx, &req, 1024)).unwrap();
    assert_eq!(up.url, "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse");
    let auth = &up.headers.iter().find(|(n, _)| *n == "authorization").unwrap().1;
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-central-1/bedrock/aws4_request"),
        "{auth}"
    );
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"messages": [{"role": "user", "content": [{"text": "Hello"}]}], "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.5, "stopSequences": ["END"]}})
    );
    // A Bedrock API key is a bearer token; a malformed secret is never echoed.
    let up = with_ctx("ABSKbedrockapikey", |ctx| chat_request(ctx, &req, 1024)).unwrap();
    assert!(up.headers.contains(&("authorization", "Bearer ABSKbedrockapikey".into())));
    let err = with_ctx("", |ctx| chat_request(ctx, &req, 1024)).unwrap_err();
    assert_eq!(err.code, "upstream_auth_failed");
}

#[test]
fn tools_images_thinking_and_cache_points() {
    let req = parse(json!({"model": "m", "stream": true,
    "tools": [{"type": "function", "function": {"name": "top_song", "description": "Most popular song", "parameters": {"type": "object", "properties": {"sign": {"type": "string"}}}}}],
    "tool_choice": "required",
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long prompt", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
        {"role": "assistant", "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "sig"}],
         "tool_calls": [{"id": "tooluse_1", "type": "function", "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\"}"}}]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"}
    ]}));
    let up = with_ctx("A:B", |ctx| chat_request(ctx, &req, 1024)).unwrap();
    assert!(up.url.ends_with("/converse-stream"));
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body["system"], json!([{"text": "Long prompt"}, {"cachePoint": {"type": "default"}}]));
    assert_eq!(body["messages"][0]["content"][1], json!({"image": {"format": "png", "source": {"bytes": "iVBOR"}}}));
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}})
    );
    assert_eq!(
        body["messages"][1]["content"][1],
        json!({"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}})
    );
    assert_eq!(
        body["messages"][2]["content"][0],
        json!({"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Elemental Hotel"}]}})
    );
    assert_eq!(body["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["sign"]["type"],
        "string"
    );
    let url_image = parse(
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
    );
    assert_eq!(with_ctx("A:B", |ctx| chat_request(ctx, &url_image, 1024)).unwrap_err().status, 400);
}

#[test]
fn documented_converse_response() {
    // From the Converse API reference (tool use example).
    let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"I'll look that up."},{"toolUse":{"toolUseId":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q","name":"top_song","input":{"sign":"WZPZ"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":375,"outputTokens":36,"totalTokens":411,"cacheReadInputTokens":10},"metrics":{"latencyMs":2423}}"#;
    let out = with_ctx("A:B", |ctx| chat_response(ctx, body)).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(out["usage"]["prompt_tokens"], 385);
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
    assert_eq!(error_details(br#"{"message":"Too many requests"}"#).as_deref(), Some("Too many requests"));
}

fn stream_bytes() -> Vec<u8> {
    let event = |kind: &str, payload: Value| {
        eventstream::encode(
            &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
            payload.to_string().as_bytes(),
        )
    };
    let mut out = Vec::new();
    out.extend(event("messageStart", json!({"role": "assistant", "p": "abc"})));
    out.extend(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}})));
    out.extend(event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": " there"}})));
    out.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    out.extend(event(
        "contentBlockStart",
        json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "f"}}}),
    ));
    out.extend(event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}})));
    out.extend(event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}})));
    out.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
    out.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    out.extend(event(
        "metadata",
        json!({"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {"latencyMs": 100}}),
    ));
    out
}

fn translate(pieces: &[&[u8]]) -> Vec<String> {
    with_ctx("A:B", |ctx| {
        let mut t = stream_translator(ctx, false);
        let mut out = Vec::new();
        for piece in pieces {
            t.feed(piece, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        out
    })
}

#[test]
fn converse_stream_translates_and_is_split_invariant() {
    let bytes = stream_bytes();
    let out = translate(&[&bytes]);
    let chunks: Vec<Value> =
        out.iter().filter(|c| *c != "[DONE]").map(|c| crate::json_value::from_str(c).unwrap()).collect();
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hello"}));
    assert_eq!(
        chunks[3]["choices"][0]["delta"]["tool_calls"][0],
        json!({"index": 0, "id": "tu_1", "type": "function", "function": {"name": "f", "arguments": ""}})
    );
    assert_eq!(chunks[5]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], "1}");
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[7]["usage"]["total_tokens"], 12);
    assert_eq!(out.last().unwrap(), "[DONE]");
    for cut in (0..=bytes.len()).step_by(3) {
        assert_eq!(translate(&[&bytes[..cut], &bytes[cut..]]), out, "split at {cut}");
    }
}

#[test]
fn exceptions_in_the_stream_are_faults() {
    let frame = eventstream::encode(
        &[(":exception-type", "throttlingException"), (":message-type", "exception")],
        br#"{"message":"Too many tokens"}"#,
    );
    with_ctx("A:B", |ctx| {
        let mut t = stream_translator(ctx, false);
        let mut out = Vec::new();
        assert_eq!(
            t.feed(&frame, &mut out),
            Err(StreamFault::Upstream("Too many tokens (throttlingException)".into()))
        );
    });
}

#[test]
fn json_output_is_a_forced_tool_both_ways() {
    let req = parse(
        json!({"model": "m", "messages": [{"role": "user", "content": "city?"}], "response_format": {"type": "json_object"}}),
    );
    let up = with_ctx("A:B", |ctx| chat_request(ctx, &req, 1024)).unwrap();
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body["toolConfig"]["toolChoice"], json!({"tool": {"name": JSON_TOOL}}));
    let answer = br#"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","name":"gateway_json_response","input":{"name":"Oslo"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2}}"#;
    let out = with_ctx("A:B", |ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "{\"name\":\"Oslo\"}");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
}

/// With thinking on the JSON tool is offered, not forced (Claude refuses a forced tool
/// then), and text beside the call never reaches the JSON content.
#[test]
fn json_output_with_thinking_offers_the_tool_and_answers_the_json_alone() {
    use crate::providers::{assemble_stream, ProviderAdapter, StreamWants};
    let req = parse(json!({"model": "m", "messages": [{"role": "user", "content": "city?"}],
        "response_format": {"type": "json_object"}, "reasoning_effort": "low"}));
    let up = with_ctx("A:B", |ctx| chat_request(ctx, &req, 4096)).unwrap();
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert!(body["toolConfig"].get("toolChoice").is_none(), "{body}");
    assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], JSON_TOOL);
    assert_eq!(body["additionalModelRequestFields"]["thinking"]["type"], "enabled");

    let answer = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Here:"},{"toolUse":{"toolUseId":"t","name":"gateway_json_response","input":{"name":"Oslo"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2}}"#;
    let out = with_ctx("A:B", |ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "{\"name\":\"Oslo\"}");

    let event = |kind: &str, payload: Value| {
        eventstream::encode(
            &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
            payload.to_string().as_bytes(),
        )
    };
    let stream = |with_call: bool| {
        let mut out = event("messageStart", json!({"role": "assistant"}));
        out.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "{\"name\": \"Rome\"}"}}),
        ));
        out.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
        if with_call {
            out.extend(event(
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL}}}),
            ));
            out.extend(event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"name\":\"Oslo\"}"}}}),
            ));
            out.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
        }
        out.extend(event("messageStop", json!({"stopReason": if with_call { "tool_use" } else { "end_turn" }})));
        out.extend(event("metadata", json!({"usage": {"inputTokens": 3, "outputTokens": 9, "totalTokens": 12}})));
        out
    };
    let wants = StreamWants { raw: false, json_output: true };
    for (with_call, expected) in [(true, "{\"name\":\"Oslo\"}"), (false, "{\"name\": \"Rome\"}")] {
        let assembled =
            with_ctx("A:B", |ctx| assemble_stream(Bedrock.stream_translator(ctx, wants), &stream(with_call), 1))
                .unwrap();
        assert_eq!(assembled["choices"][0]["message"]["content"], expected, "with the call: {with_call}");
    }
}

/// The JSON tool beside the client's tools: some tool must be called (one of theirs,
/// or the answer); a client forcing its own tool gets no JSON tool that turn.
#[test]
fn json_output_beside_tools_lets_the_model_call_a_tool_or_answer() {
    let config = |extra: Value| {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"}});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let up = with_ctx("A:B", |ctx| chat_request(ctx, &parse(request), 4096)).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        let names: Vec<String> = body["toolConfig"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["toolSpec"]["name"].as_str().unwrap().to_string())
            .collect();
        (names, body["toolConfig"].get("toolChoice").cloned())
    };
    let both = vec!["get_weather".to_string(), JSON_TOOL.to_string()];
    assert_eq!(config(json!({})), (both.clone(), Some(json!({"any": {}}))));
    assert_eq!(config(json!({"reasoning_effort": "low"})), (both, None));
    assert_eq!(
        config(json!({"tool_choice": "none"})),
        (vec![JSON_TOOL.to_string()], Some(json!({"tool": {"name": JSON_TOOL}})))
    );
    assert_eq!(config(json!({"tool_choice": "required"})), (vec!["get_weather".to_string()], Some(json!({"any": {}}))));

    let answer = br#"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"get_weather","input":{}}},{"toolUse":{"toolUseId":"t2","name":"gateway_json_response","input":{"name":"Oslo"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2}}"#;
    let out = with_ctx("A:B", |ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

fn thinking_stream_bytes() -> Vec<u8> {
    let event = |kind: &str, payload: Value| {
        eventstream::encode(
            &[(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
            payload.to_string().as_bytes(),
        )
    };
    let mut out = Vec::new();
    out.extend(event("messageStart", json!({"role": "assistant"})));
    out.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Think"}}}),
    ));
    out.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "ing."}}}),
    ));
    out.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "SIGb"}}}),
    ));
    out.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    out.extend(event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Done."}})));
    out.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
    out.extend(event("messageStop", json!({"stopReason": "end_turn"})));
    out.extend(event("metadata", json!({"usage": {"inputTokens": 3, "outputTokens": 9, "totalTokens": 12}})));
    out
}

#[test]
fn streamed_answers_assembled_equal_the_same_answers_unstreamed() {
    use crate::protocol::assemble::comparable;
    use crate::providers::{assemble_stream, ProviderAdapter, WholeAnswer};
    let cases = [
        (
            stream_bytes(),
            r#"{"output":{"message":{"role":"assistant","content":[{"text":"Hello there"},{"toolUse":{"toolUseId":"tu_1","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":7,"totalTokens":12}}"#,
        ),
        (
            thinking_stream_bytes(),
            r#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"Thinking.","signature":"SIGb"}}},{"text":"Done."}]}},"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":9,"totalTokens":12}}"#,
        ),
    ];
    with_ctx("A:B", |ctx| {
        for (bytes, whole) in cases {
            let assembled = assemble_stream(Bedrock.stream_translator(ctx, Default::default()), &bytes, 1).unwrap();
            let Ok(WholeAnswer::Translated(whole)) = Bedrock.chat_response(ctx, whole.as_bytes()) else {
                panic!("a translated answer")
            };
            assert_eq!(comparable(assembled), comparable(whole));
        }
        let assembled =
            assemble_stream(Bedrock.stream_translator(ctx, Default::default()), &thinking_stream_bytes(), 1).unwrap();
        assert_eq!(
            assembled["choices"][0]["message"]["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Thinking.", "signature": "SIGb"}])
        );
        // Cut before messageStop: no answer.
        let bytes = stream_bytes();
        let cut = &bytes[..bytes.len() / 2];
        assert!(assemble_stream(Bedrock.stream_translator(ctx, Default::default()), cut, 1).is_err());
    });
}

#[test]
fn count_tokens_asks_for_the_converse_input_signed_and_reads_input_tokens() {
    use crate::providers::ProviderAdapter;
    let req = parse(json!({"model": "claude-eu", "temperature": 0.5, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]}));
    let up = with_ctx("AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", |ctx| count_tokens_request(ctx, &req))
        .unwrap();
    assert_eq!(
        up.url,
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/count-tokens"
    );
    assert!(!up.stream);
    let auth = &up.headers.iter().find(|(n, _)| *n == "authorization").unwrap().1;
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-central-1/bedrock/aws4_request"));
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    // CountTokens' ConverseTokensRequest: the input parts, no inferenceConfig.
    assert_eq!(
        body,
        json!({"input": {"converse": {"messages": [{"role": "user", "content": [{"text": "Hello"}]}], "system": [{"text": "Be brief."}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "", "inputSchema": {"json": {"type": "object"}}}}]}}}})
    );
    assert_eq!(Bedrock.count_tokens_response(br#"{"inputTokens": 12}"#), Ok(12));
    assert!(Bedrock.count_tokens_response(br#"{"input_tokens": 12}"#).is_err());
}
