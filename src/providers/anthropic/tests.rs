use super::*;
use crate::config::{Provider, ProviderKind};
use crate::providers::{ProviderAdapter, StreamFault, StreamTranslator};

fn provider() -> Provider {
    Provider {
        kind: ProviderKind::Anthropic,
        base_url: "https://api.anthropic.com/v1".into(),
        api_key_secret: Some("ANTHROPIC_API_KEY".into()),
        region: "us".into(),
        location_hint: None,
        limits: Default::default(),
    }
}

fn with_ctx<T>(f: impl FnOnce(&AttemptContext) -> T) -> T {
    let provider = provider();
    let ctx = AttemptContext {
        provider: &provider,
        upstream_model: "claude-sonnet-4-5",
        public_model: "smart",
        api_key: Some("sk-ant-test"),
        now_ms: 1_700_000_000_000,
        request_id: "req_1",
    };
    f(&ctx)
}

fn build(body: Value) -> Value {
    let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
    with_ctx(|ctx| {
        let up = chat_request(ctx, &req, 1024).unwrap();
        assert_eq!(up.url, "https://api.anthropic.com/v1/messages");
        assert!(up.headers.contains(&("x-api-key", "sk-ant-test".into())));
        assert!(up.headers.contains(&("anthropic-version", "2023-06-01".into())));
        serde_json::from_slice(&up.body).unwrap()
    })
}

#[test]
fn plain_chat_with_system_lifted_and_max_tokens_defaulted() {
    // Anthropic's documented minimal request: model, max_tokens, one user message.
    let body = build(json!({"model": "smart", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, world"}
    ], "temperature": 1.5, "stop": "END", "user": "u-1", "seed": 7}));
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, world"}]}],
            "temperature": 1.0, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}
        })
    );
}

#[test]
fn tool_round_trip_with_images_thinking_and_cache_control() {
    let body = build(json!({"model": "smart", "max_completion_tokens": 2000, "parallel_tool_calls": false,
    "tools": [{"type": "function", "cache_control": {"type": "ephemeral", "ttl": "1h"}, "function": {"name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Weather here?", "cache_control": {"type": "ephemeral"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}}
        ]},
        {"role": "assistant", "content": null,
         "thinking_blocks": [{"type": "thinking", "thinking": "Need the tool.", "signature": "sig-abc"}],
         "tool_calls": [
            {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
            {"id": "toolu_02", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Rome\"}"}}
         ]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "24°C"}
    ]}));
    assert_eq!(body["max_tokens"], 2000);
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(body["tools"][0]["cache_control"], json!({"type": "ephemeral", "ttl": "1h"}));
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}));
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "the two tool results are one user turn");
    assert_eq!(messages[0]["content"][0]["cache_control"], json!({"type": "ephemeral"}));
    assert_eq!(
        messages[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(messages[0]["content"][2]["source"], json!({"type": "url", "url": "https://example.com/sky.jpg"}));
    assert_eq!(
        messages[1]["content"][0],
        json!({"type": "thinking", "thinking": "Need the tool.", "signature": "sig-abc"})
    );
    assert_eq!(
        messages[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}})
    );
    assert_eq!(messages[2]["content"][1], json!({"type": "tool_result", "tool_use_id": "toolu_02", "content": "24°C"}));
}

#[test]
fn tool_choice_variants_and_unsupported_fields() {
    for (choice, expected) in
        [("auto", json!({"type": "auto"})), ("required", json!({"type": "any"})), ("none", json!({"type": "none"}))]
    {
        let body = build(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": choice}));
        assert_eq!(body["tool_choice"], expected);
    }
    let req = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    };
    with_ctx(|ctx| {
        assert_eq!(chat_request(ctx, &req(json!({"n": 2})), 1024).unwrap_err().param.as_deref(), Some("n"));
        let bad_args = req(
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
        );
        assert!(chat_request(ctx, &bad_args, 1024).is_err());
    });
}

#[test]
fn documented_response_becomes_a_chat_completion() {
    // From Anthropic's Messages API reference.
    let body = br#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503,"cache_read_input_tokens":100,"cache_creation_input_tokens":5}}"#;
    let out = with_ctx(|ctx| chat_response(ctx, body)).unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["model"], "smart");
    assert_eq!(out["choices"][0]["message"]["content"], "Hi! My name is Claude.");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 2200, "completion_tokens": 503, "total_tokens": 2703,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 5}})
    );
}

#[test]
fn tool_use_and_thinking_response() {
    // From the tool-use and extended-thinking guides.
    let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude","content":[
        {"type":"thinking","thinking":"Let me check.","signature":"EqQBCgIYAhIM"},
        {"type":"text","text":"I'll check the weather."},
        {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}}],
        "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":20}}"#;
    let out = with_ctx(|ctx| chat_response(ctx, body)).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["tool_calls"][0]["id"], "toolu_01A09q90qw90lq917835lq9");
    let args: Value =
        crate::json_value::from_str(message["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "San Francisco, CA", "unit": "celsius"}));
    assert_eq!(message["reasoning_content"], "Let me check.");
    assert_eq!(message["thinking_blocks"][0]["signature"], "EqQBCgIYAhIM");
    assert_eq!(
        error_details(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        Some(("Overloaded".into(), Some("overloaded_error".into())))
    );
}

/// Anthropic's documented streaming example, plus a tool_use block and a thinking block.
const STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-opus-4-6\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\n",
    "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"thinking\", \"thinking\": \"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"thinking_delta\", \"thinking\": \"Hmm.\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"signature_delta\", \"signature\": \"EqQBCg\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
    "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 1, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 1, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 1, \"delta\": {\"type\": \"text_delta\", \"text\": \"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Paris\\\"}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"tool_use\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\n",
    "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n"
);

fn translate(pieces: &[&[u8]]) -> Vec<String> {
    with_ctx(|ctx| {
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
fn stream_translates_to_canonical_chunks() {
    let out = translate(&[STREAM.as_bytes()]);
    let chunks: Vec<Value> =
        out.iter().filter(|c| *c != "[DONE]").map(|c| crate::json_value::from_str(c).unwrap()).collect();
    let deltas: Vec<&Value> = chunks.iter().filter_map(|c| c.pointer("/choices/0/delta")).collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1], &json!({"reasoning_content": "Hmm."}));
    assert_eq!(deltas[2]["thinking_blocks"][0], json!({"type": "thinking", "thinking": "Hmm.", "signature": "EqQBCg"}));
    assert_eq!(deltas[3], &json!({"content": "Hello"}));
    assert_eq!(deltas[4], &json!({"content": "!"}));
    assert_eq!(
        deltas[5]["tool_calls"][0],
        json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
    );
    let args: String =
        deltas[6..8].iter().map(|d| d["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).collect();
    assert_eq!(args, "{\"location\": \"Paris\"}");
    assert_eq!(
        chunks.iter().find_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str)),
        Some("tool_calls")
    );
    let usage = chunks.iter().find_map(|c| c.get("usage")).unwrap();
    assert_eq!(usage["prompt_tokens"], 25);
    assert_eq!(usage["completion_tokens"], 15);
    assert_eq!(out.last().unwrap(), "[DONE]");
    assert!(chunks.iter().all(|c| c["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY" && c["model"] == "smart"));
}

#[test]
fn stream_is_identical_for_every_split() {
    let whole = translate(&[STREAM.as_bytes()]);
    let bytes = STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        assert_eq!(translate(&[&bytes[..cut], &bytes[cut..]]), whole, "split at {cut}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(translate(&singles), whole);
}

#[test]
fn error_events_are_faults_and_raw_events_can_be_kept() {
    with_ctx(|ctx| {
        let mut t = stream_translator(ctx, false);
        let mut out = Vec::new();
        let err = t.feed(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n", &mut out);
        assert_eq!(err, Err(StreamFault::Upstream("Overloaded (overloaded_error)".into())));

        let mut raw_mode = stream_translator(ctx, false).keep_raw(ctx);
        raw_mode.feed(STREAM.as_bytes(), &mut out).unwrap();
        let mut raw = Vec::new();
        raw_mode.take_raw(&mut raw);
        let text = String::from_utf8(raw).unwrap();
        assert!(text.starts_with("event: message_start\ndata: {\"type\": \"message_start\""));
        assert_eq!(text.matches("event: ").count(), STREAM.matches("event: ").count());
    });
}

#[test]
fn a_native_relay_names_the_public_model_and_keeps_every_other_byte() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":3}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"model\\\":\\\"claude-sonnet-4-5\\\"\"}}\n\n",
    );
    let raw = with_ctx(|ctx| {
        let mut t = stream_translator(ctx, false).keep_raw(ctx);
        t.feed(stream.as_bytes(), &mut Vec::new()).unwrap();
        let mut raw = Vec::new();
        t.take_raw(&mut raw);
        String::from_utf8(raw).unwrap()
    });
    let (start, rest) = raw.split_once("\n\n").unwrap();
    assert!(start.contains(r#""model":"smart""#), "{start}");
    assert_eq!(rest, &stream[stream.find("event: content_block_delta").unwrap()..], "text naming the model is text");
}

#[test]
fn message_delta_usage_is_cumulative_and_a_null_count_keeps_the_start_figure() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":30,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},",
        "\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":7,\"cache_creation_input_tokens\":null,\"output_tokens\":12}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let out = translate(&[stream.as_bytes()]);
    let usage = out
        .iter()
        .filter_map(|c| crate::json_value::from_str::<Value>(c).ok()?.get("usage").cloned())
        .next_back()
        .unwrap();
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()), (Some(37), Some(12)), "{usage}");
}

#[test]
fn json_output_travels_as_a_forced_tool_and_returns_as_content() {
    let body = build(json!({"model": "m", "messages": [{"role": "user", "content": "Give me a city"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}));
    assert_eq!(body["tools"][0]["name"], JSON_TOOL);
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["name"]));
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));

    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"toolu_1","name":"gateway_json_response","input":{"name":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6}}"#;
    let out = with_ctx(|ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "{\"name\":\"Paris\"}");
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "stop");

    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"gateway_json_response\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"name\\\": \\\"Rome\\\"}\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":4}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let chunks: Vec<Value> = translate(&[stream.as_bytes()])
        .iter()
        .filter(|c| *c != "[DONE]")
        .map(|c| crate::json_value::from_str(c).unwrap())
        .collect();
    let text: String =
        chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert_eq!(text, "{\"name\": \"Rome\"}");
    assert!(chunks.iter().all(|c| c.pointer("/choices/0/delta/tool_calls").is_none()));
    assert!(chunks.iter().any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("stop"))));
}

/// JSON output with thinking on: Claude refuses a forced tool then ("Thinking may not
/// be enabled when tool_choice forces tool use"), so the tool is offered, and what
/// the model writes beside the call never reaches the JSON content.
#[test]
fn json_output_with_thinking_offers_the_tool_and_answers_the_json_alone() {
    let format = json!({"type": "json_schema", "json_schema": {"name": "city", "schema": {"type": "object"}}});
    for thinking in
        [json!({"reasoning_effort": "low"}), json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})]
    {
        let mut request = json!({"model": "m", "max_tokens": 4096, "messages": [{"role": "user", "content": "A city?"}], "response_format": format.clone()});
        request.as_object_mut().unwrap().extend(thinking.as_object().unwrap().clone());
        let body = build(request);
        assert_eq!(body["tool_choice"], json!({"type": "auto"}), "{body}");
        assert_eq!(body["tools"][0]["name"], JSON_TOOL);
        assert_eq!(body["thinking"]["type"], "enabled");
    }

    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"thinking","thinking":"A city.","signature":"sig"},{"type":"text","text":"Here it is:"},{"type":"tool_use","id":"toolu_1","name":"gateway_json_response","input":{"name":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6}}"#;
    let out = with_ctx(|ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "{\"name\":\"Paris\"}");
    assert_eq!(out["choices"][0]["message"]["reasoning_content"], "A city.");

    let stream = |blocks: &str| {
        format!(
            "{}{blocks}{}{}",
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        )
    };
    let text_block = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"{\\\"name\\\": \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"Oslo\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    let json_block = concat!(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"gateway_json_response\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"name\\\": \\\"Rome\\\"}\"}}\n\n",
    );
    let content = |stream: String| {
        let out = with_ctx(|ctx| {
            let mut t = stream_translator(ctx, true);
            let mut out = Vec::new();
            t.feed(stream.as_bytes(), &mut out).unwrap();
            t.finish(&mut out).unwrap();
            out
        });
        let chunks: Vec<Value> =
            out.iter().filter(|c| *c != "[DONE]").map(|c| crate::json_value::from_str(c).unwrap()).collect();
        chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect::<String>()
    };
    assert_eq!(content(stream(&format!("{text_block}{json_block}"))), "{\"name\": \"Rome\"}", "text before the call");
    assert_eq!(content(stream(text_block)), "{\"name\": \"Oslo\"}", "answered in text: sent at the end");
}

/// An agent asks for a structured final answer and offers tools in every turn (the
/// OpenAI Agents SDK's `output_type`): the model must call one of its tools or the
/// JSON tool; a client that forces a tool of its own gets no JSON tool that turn.
#[test]
fn json_output_beside_tools_lets_the_model_call_a_tool_or_answer() {
    let ask = |extra: Value| {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}});
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let body = build(request);
        let names: Vec<String> =
            body["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
        (names, body["tool_choice"].clone())
    };
    let both = vec!["get_weather".to_string(), JSON_TOOL.to_string()];
    assert_eq!(ask(json!({})), (both.clone(), json!({"type": "any"})));
    assert_eq!(
        ask(json!({"parallel_tool_calls": false})),
        (both.clone(), json!({"type": "any", "disable_parallel_tool_use": true}))
    );
    assert_eq!(ask(json!({"tool_choice": "none"})), (both.clone(), json!({"type": "tool", "name": JSON_TOOL})));
    assert_eq!(ask(json!({"reasoning_effort": "low", "max_tokens": 4096})), (both, json!({"type": "auto"})));
    assert_eq!(ask(json!({"tool_choice": "required"})), (vec!["get_weather".to_string()], json!({"type": "any"})));
    let named = json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    assert_eq!(ask(named), (vec!["get_weather".to_string()], json!({"type": "tool", "name": "get_weather"})));

    // A real call beside the answer ends the turn as a tool call.
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris"}},{"type":"tool_use","id":"toolu_2","name":"gateway_json_response","input":{"name":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6}}"#;
    let out = with_ctx(|ctx| chat_response(ctx, answer)).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
}

/// The answer `STREAM` streams, as Anthropic sends it without streaming.
const STREAM_AS_MESSAGE: &str = r#"{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","model":"claude-opus-4-6","content":[
    {"type":"thinking","thinking":"Hmm.","signature":"EqQBCg"},
    {"type":"text","text":"Hello!"},
    {"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{"location":"Paris"}}],
    "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":15}}"#;

#[test]
fn a_streamed_answer_assembled_equals_the_same_answer_unstreamed() {
    use crate::protocol::assemble::comparable;
    use crate::providers::{assemble_stream, ProviderAdapter, WholeAnswer};
    with_ctx(|ctx| {
        let adapter = Anthropic;
        let assembled =
            assemble_stream(adapter.stream_translator(ctx, Default::default()), STREAM.as_bytes(), 1).unwrap();
        let Ok(WholeAnswer::Translated(whole)) = adapter.chat_response(ctx, STREAM_AS_MESSAGE.as_bytes()) else {
            panic!("a translated answer")
        };
        assert_eq!(comparable(assembled.clone()), comparable(whole));
        // Thinking with its signature, text, the tool call's arguments split over two events, usage.
        let message = &assembled["choices"][0]["message"];
        assert_eq!(
            message["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Hmm.", "signature": "EqQBCg"}])
        );
        assert_eq!(message["content"], "Hello!");
        assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{\"location\": \"Paris\"}");
        assert_eq!(assembled["usage"]["total_tokens"], 40);

        // Cut before message_delta (no finish reason), or an error event: no answer.
        let cut = &STREAM[..STREAM.find("event: message_delta").unwrap()];
        let failure =
            assemble_stream(adapter.stream_translator(ctx, Default::default()), cut.as_bytes(), 1).unwrap_err();
        assert!(matches!(failure, crate::providers::AttemptFailure::InvalidResponse(_)), "{failure:?}");
        let error = format!("{cut}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n");
        let failure =
            assemble_stream(adapter.stream_translator(ctx, Default::default()), error.as_bytes(), 1).unwrap_err();
        assert_eq!(failure, crate::providers::AttemptFailure::StreamError("Overloaded (overloaded_error)".into()));
    });
}

#[test]
fn documented_count_tokens_request_and_answer() {
    // Anthropic's documented count_tokens example, as the client sent it.
    let body = crate::json_value::from_str::<Map<String, Value>>(
        r#"{"model":"smart","system":"You are a scientist","messages":[{"role":"user","content":"Hello, Claude"}]}"#,
    )
    .unwrap();
    let headers =
        [("anthropic-version", "2023-06-01".to_string()), ("anthropic-beta", "token-counting-2024-11-01".into())];
    let native = crate::providers::NativeBody { body: &body, headers: &headers, max_output_tokens: None };
    let request =
        ChatRequest::parse(br#"{"model":"smart","messages":[{"role":"user","content":"Hello, Claude"}]}"#).unwrap();
    let count = crate::providers::TokenCount { request: &request, native: Some(native) };
    let sent = with_ctx(|ctx| Anthropic.count_tokens_request(ctx, count)).unwrap().unwrap();
    assert_eq!(sent.url, "https://api.anthropic.com/v1/messages/count_tokens");
    assert!(!sent.stream);
    let header = |name: &str| sent.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(header("anthropic-beta"), Some("token-counting-2024-11-01"));
    let sent_body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        sent_body,
        json!({"model": "claude-sonnet-4-5", "system": "You are a scientist",
               "messages": [{"role": "user", "content": "Hello, Claude"}]})
    );
    // From another dialect: the Messages request it would be, with only what a count takes.
    let without_native = crate::providers::TokenCount { request: &request, native: None };
    let sent = with_ctx(|ctx| Anthropic.count_tokens_request(ctx, without_native)).unwrap().unwrap();
    assert_eq!(sent.url, "https://api.anthropic.com/v1/messages/count_tokens");
    let sent_body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(sent_body["model"], "claude-sonnet-4-5");
    assert_eq!(sent_body["messages"][0]["role"], "user");
    assert!(sent_body.get("max_tokens").is_none() && sent_body.get("stream").is_none(), "{sent_body}");

    assert_eq!(Anthropic.count_tokens_response(br#"{"input_tokens":14}"#), Ok(14));
    assert!(matches!(
        Anthropic.count_tokens_response(b"{}"),
        Err(crate::providers::AttemptFailure::InvalidResponse(_))
    ));
}
