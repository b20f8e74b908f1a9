//! Golden translations from OpenAI's documented Responses examples.

use super::*;
use crate::dialects::{ClientDialect, Shape};
use crate::providers::WholeAnswer;
use crate::relay::ClientEncoder;
use serde_json::json;

fn call(body: Value) -> ClientCall {
    ResponsesRequest::parse(body.to_string().as_bytes()).unwrap().to_call(&[]).unwrap()
}

fn canonical(body: Value) -> Value {
    serde_json::to_value(call(body).request).unwrap()
}

fn shape() -> Shape<'static> {
    Shape {
        native: false,
        upstream_model: "up",
        public_model: "gpt-4.1",
        message_id: "msg_abc",
        created_s: 1_741_476_542,
        estimated_input_tokens: 0,
    }
}

#[test]
fn text_input_with_instructions() {
    let c = canonical(
        json!({"model": "gpt-4.1", "instructions": "Talk like a pirate.", "input": "Are semicolons optional in JavaScript?"}),
    );
    assert_eq!(
        c["messages"],
        json!([{"role": "system", "content": "Talk like a pirate."}, {"role": "user", "content": "Are semicolons optional in JavaScript?"}])
    );
}

#[test]
fn image_input_becomes_an_image_part() {
    let c = canonical(json!({"model": "gpt-4.1", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "what is in this image?"},
        {"type": "input_image", "image_url": "https://example.com/boardwalk.jpg", "detail": "low"}
    ]}]}));
    assert_eq!(
        c["messages"][0]["content"],
        json!([{"type": "text", "text": "what is in this image?"}, {"type": "image_url", "image_url": {"url": "https://example.com/boardwalk.jpg", "detail": "low"}}])
    );
}

#[test]
fn function_calling_round_trip() {
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Get current temperature for a given location.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}, "strict": true}]);
    let c = canonical(
        json!({"model": "gpt-4.1", "tools": tools, "tool_choice": {"type": "function", "name": "get_weather"}, "input": [
            {"role": "user", "content": "What is the weather like in Paris today?"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_12345xyz", "name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"},
            {"type": "function_call_output", "call_id": "call_12345xyz", "output": "{\"temperature\": 14}"}
        ]}),
    );
    assert_eq!(
        c["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather", "description": "Get current temperature for a given location.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}, "strict": true}})
    );
    assert_eq!(c["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
    assert_eq!(
        c["messages"][1],
        json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_12345xyz", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}}]})
    );
    assert_eq!(
        c["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_12345xyz", "content": "{\"temperature\": 14}"})
    );

    // The answer: a function call item.
    let completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_12345xyz", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
    let encoded = OpenAiResponses
        .whole_answer(
            &call(json!({"model": "gpt-4.1", "input": "x"})),
            Vec::new(),
            WholeAnswer::Translated(completion),
            &shape(),
        )
        .unwrap();
    let response: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(
        response["output"],
        json!([{"type": "function_call", "id": "fc_abc_0", "call_id": "call_12345xyz", "name": "get_weather",
        "arguments": "{\"location\":\"Paris, France\"}", "status": "completed"}])
    );
    assert_eq!(
        (response["id"].as_str(), response["object"].as_str(), response["status"].as_str()),
        (Some("resp_abc"), Some("response"), Some("completed"))
    );
}

#[test]
fn other_tool_types_are_refused_by_name() {
    let err = ResponsesRequest::parse(
        json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}]}).to_string().as_bytes(),
    )
    .unwrap()
    .to_call(&[])
    .unwrap_err();
    assert_eq!((err.status, err.code.as_ref(), err.param.as_deref()), (400, "unsupported_tool", Some("tools[0].type")));
    assert!(err.message.contains("file_search"));
}

#[test]
fn json_schema_output_and_limits() {
    let c = canonical(json!({"model": "gpt-4.1", "input": "Jane, 54", "max_output_tokens": 50, "temperature": 0.2,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "person", "strict": true, "schema": {"type": "object"}}}}));
    assert_eq!(
        c["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!((c["max_completion_tokens"].as_u64(), c["temperature"].as_f64()), (Some(50), Some(0.2)));
    assert_eq!(c["reasoning_effort"], "low");
    assert_eq!(
        canonical(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}))["response_format"],
        json!({"type": "json_object"})
    );
}

#[test]
fn answers_carry_usage_status_and_reasoning_losslessly() {
    let blocks = json!([{"type": "thinking", "thinking": "Let me think.", "signature": "sig-123"}]);
    let completion = json!({"choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Partial",
        "reasoning_content": "Let me think.", "thinking_blocks": blocks}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50, "prompt_tokens_details": {"cached_tokens": 8},
                  "completion_tokens_details": {"reasoning_tokens": 12}}});
    let plain = call(json!({"model": "m", "input": "x"}));
    let encoded = OpenAiResponses
        .whole_answer(&plain, Vec::new(), WholeAnswer::Translated(completion.clone()), &shape())
        .unwrap();
    let response: Value = serde_json::from_slice(&encoded.body).unwrap();
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 50})
    );
    assert_eq!(response["output"][0]["summary"], json!([{"type": "summary_text", "text": "Let me think."}]));
    assert!(response["output"][0].get("encrypted_content").is_none(), "not asked for");
    assert_eq!(response["output"][1]["content"][0]["text"], "Partial");
    // Kept (stored) with the signed blocks; shown when the client includes them.
    let kept = encoded.kept.unwrap();
    let encrypted = kept["output"][0]["encrypted_content"].as_str().unwrap().to_string();
    let asking = call(json!({"model": "m", "input": "x", "include": ["reasoning.encrypted_content"]}));
    let shown =
        OpenAiResponses.whole_answer(&asking, Vec::new(), WholeAnswer::Translated(completion), &shape()).unwrap();
    let shown: Value = serde_json::from_slice(&shown.body).unwrap();
    assert_eq!(shown["output"][0]["encrypted_content"], encrypted.as_str());
    // Sent back in a later turn, the provider's blocks return on the assistant message.
    let next = canonical(json!({"model": "m", "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_abc", "summary": [{"type": "summary_text", "text": "Let me think."}], "encrypted_content": encrypted},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Partial"}]},
        {"role": "user", "content": "go on"}
    ]}));
    assert_eq!(next["messages"][1]["thinking_blocks"], blocks);
    assert_eq!(next["messages"][1]["reasoning_content"], "Let me think.");
    assert_eq!(next["messages"][1]["content"], "Partial");
}

#[test]
fn a_stored_conversation_continues_before_the_new_input() {
    let request = ResponsesRequest::parse(br#"{"model":"m","input":"and then?","instructions":"Be brief."}"#).unwrap();
    let history = vec![
        json!({"type": "message", "role": "user", "content": "once"}),
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "upon a time"}]}),
    ];
    let c = serde_json::to_value(request.to_call(&history).unwrap().request).unwrap();
    let roles: Vec<&str> = c["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert!(request.store());
}

#[test]
fn unsupported_and_malformed_requests_are_clear_400s() {
    for (body, param) in [
        (json!({"input": "x"}), "model"),
        (json!({"model": "m", "input": "x", "background": true}), "background"),
        (json!({"model": "m", "input": 5}), "input"),
        (json!({"model": "m", "input": "x", "store": "yes"}), "store"),
    ] {
        let err = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap_err();
        assert_eq!((err.status, err.param.as_deref()), (400, Some(param)), "{body}");
    }
}

fn events(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| crate::json_value::from_str(data).unwrap())
        .collect()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
}

#[test]
fn a_stream_is_the_documented_event_sequence() {
    let mut encoder = ResponsesEncoder::new("resp_abc", 1, "gpt-4.1", Map::new());
    let mut out = Vec::new();
    encoder.event(&chunk(json!({"role": "assistant", "content": "Hel"}), None), &mut out);
    encoder.event(&chunk(json!({"content": "lo"}), None), &mut out);
    encoder.event(&chunk(json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}}]}), None), &mut out);
    encoder.event(
        &chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}), Some("tool_calls")),
        &mut out,
    );
    encoder.event(
        &json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
            .to_string(),
        &mut out,
    );
    encoder.event("[DONE]", &mut out);
    let events = events(&out);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let done = events.last().unwrap();
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["response"]["output"][1]["arguments"], "{\"a\":1}");
    assert_eq!(done["response"]["output"][1]["call_id"], "call_1");
    assert_eq!(done["response"]["usage"]["total_tokens"], 7);
    assert_eq!(events[4]["output_index"], 0);
    assert_eq!(events[10]["output_index"], 1);
    assert!(encoder.finished().is_some(), "kept for storing");
}

#[test]
fn a_failed_stream_ends_with_error_and_response_failed() {
    let mut encoder = ResponsesEncoder::new("resp_abc", 1, "m", Map::new());
    let mut out = Vec::new();
    encoder.event(&chunk(json!({"content": "Hi"}), None), &mut out);
    encoder.error("upstream_stream_interrupted", "upstream stream ended unexpectedly", &mut out);
    let events = events(&out);
    let last_two: Vec<&str> = events.iter().rev().take(2).map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(last_two, ["response.failed", "error"]);
    assert_eq!(events.last().unwrap()["response"]["status"], "failed");
    assert!(encoder.finished().is_none(), "a failed stream is not stored");
    assert!(!String::from_utf8(out).unwrap().contains("response.completed"));
}

#[test]
fn gemini_thought_signatures_survive_a_stateless_round_trip() {
    let extra = json!({"google": {"thought_signature": "sig-gemini"}});
    let completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_g", "type": "function", "extra_content": extra, "function": {"name": "f", "arguments": "{}"}}]}}]});
    let asking = call(json!({"model": "m", "input": "x", "include": ["reasoning.encrypted_content"]}));
    let encoded =
        OpenAiResponses.whole_answer(&asking, Vec::new(), WholeAnswer::Translated(completion), &shape()).unwrap();
    let response: Value = serde_json::from_slice(&encoded.body).unwrap();
    let output = response["output"].as_array().unwrap().clone();
    assert_eq!(output[0]["type"], "reasoning");
    let mut input = vec![json!({"role": "user", "content": "x"})];
    input.extend(output);
    input.push(json!({"type": "function_call_output", "call_id": "call_g", "output": "ok"}));
    let next = canonical(json!({"model": "m", "input": input}));
    assert_eq!(next["messages"][1]["tool_calls"][0]["extra_content"], extra);
    assert!(next["messages"][1].get("thinking_blocks").is_none(), "signatures are not thinking blocks");
}

#[test]
fn streamed_signatures_are_kept_in_a_reasoning_item() {
    let mut encoder = ResponsesEncoder::new("resp_abc", 1, "m", Map::new());
    let mut out = Vec::new();
    let extra = json!({"google": {"thought_signature": "sig"}});
    encoder.event(&chunk(json!({"tool_calls": [{"index": 0, "id": "call_s", "type": "function", "extra_content": extra, "function": {"name": "f", "arguments": "{}"}}]}), Some("tool_calls")), &mut out);
    encoder.event("[DONE]", &mut out);
    let kept = encoder.finished().unwrap();
    let reasoning = kept["output"].as_array().unwrap().iter().find(|i| i["type"] == "reasoning").unwrap().clone();
    let next =
        canonical(json!({"model": "m", "input": [{"role": "user", "content": "x"}, kept["output"][0], reasoning,
        {"type": "function_call_output", "call_id": "call_s", "output": "ok"}]}));
    assert_eq!(next["messages"][1]["tool_calls"][0]["extra_content"], extra);
}

/// The AI SDK's second step: its earlier output sent back as `item_reference`s.
#[test]
fn item_references_are_replaced_by_the_stored_items_they_name() {
    let body = json!({"model": "m", "input": [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "item_reference", "id": "fc_0a1b_0"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
    ]});
    let mut request = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.referenced_responses().unwrap(), ["resp_0a1b"]);
    let stored_call = json!({"type": "function_call", "id": "fc_0a1b_0", "call_id": "call_1", "name": "get_weather", "arguments": "{\"location\":\"Paris\"}"});
    let turn = stored::StoredResponse {
        id: "resp_0a1b".into(),
        previous: None,
        created_at_ms: 1,
        expires_at_ms: 2,
        input_items: vec![json!({"role": "user", "content": "weather in Paris?"})],
        response: json!({"id": "resp_0a1b", "output": [stored_call]}),
        include_encrypted: false,
        regions: None,
        conversation_bytes: 10,
    };
    request.resolve_references(std::slice::from_ref(&turn)).unwrap();
    assert_eq!(request.items[1], stored_call);
    let canonical = serde_json::to_value(request.to_call(&[]).unwrap().request).unwrap();
    assert_eq!(canonical["messages"][1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(canonical["messages"][2]["role"], "tool");

    // A reference to an item the store does not have, or that no response of ours made.
    let missing = json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_ffff"}]});
    let mut request = ResponsesRequest::parse(missing.to_string().as_bytes()).unwrap();
    let error = request.resolve_references(&[turn]).unwrap_err();
    assert_eq!((error.status, error.code.as_ref(), error.param.as_deref()), (404, "item_not_found", Some("input[0]")));
    let foreign = json!({"model": "m", "input": [{"type": "item_reference", "id": "item_123"}]});
    let error = ResponsesRequest::parse(foreign.to_string().as_bytes()).unwrap().referenced_responses().unwrap_err();
    assert_eq!(error.status, 404);
    let no_id = json!({"model": "m", "input": [{"type": "item_reference"}]});
    let error = ResponsesRequest::parse(no_id.to_string().as_bytes()).unwrap().referenced_responses().unwrap_err();
    assert_eq!(error.param.as_deref(), Some("input[0].id"));
}

/// Codex's tools: functions, a `namespace` of functions, and hosted web search.
#[test]
fn namespaced_functions_round_trip_and_hosted_web_search_is_left_out() {
    let spawn = json!({"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}});
    let body = json!({"model": "gpt-4.1", "input": "go", "tools": [
        {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
        {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [spawn]},
        {"type": "web_search", "external_web_access": false}
    ]});
    let c = canonical(body.clone());
    let names: Vec<&str> =
        c["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["exec_command", "multi_agent_v1__spawn_agent"]);

    // The model calls the qualified name: the client gets the namespace back.
    let completion = json!({"id": "c", "object": "chat.completion", "model": "up", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "multi_agent_v1__spawn_agent", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "exec_command", "arguments": "{}"}}]}}]});
    let answer = OpenAiResponses
        .whole_answer(&call(body.clone()), Vec::new(), WholeAnswer::Translated(completion), &shape())
        .unwrap();
    let response: Value = serde_json::from_slice(&answer.body).unwrap();
    let calls: Vec<&Value> =
        response["output"].as_array().unwrap().iter().filter(|i| i["type"] == "function_call").collect();
    assert_eq!(
        (calls[0]["namespace"].as_str(), calls[0]["name"].as_str()),
        (Some("multi_agent_v1"), Some("spawn_agent"))
    );
    assert_eq!((calls[1].get("namespace"), calls[1]["name"].as_str()), (None, Some("exec_command")));

    // Sent back as history, the call is the qualified name again.
    let mut next = body;
    next["input"] = json!([
        {"type": "function_call", "call_id": "call_1", "namespace": "multi_agent_v1", "name": "spawn_agent", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "spawned"}
    ]);
    assert_eq!(canonical(next)["messages"][0]["tool_calls"][0]["function"]["name"], "multi_agent_v1__spawn_agent");

    let custom = json!({"model": "m", "input": "x", "tools": [{"type": "namespace", "name": "n", "tools": [{"type": "custom", "name": "c"}]}]});
    let error = ResponsesRequest::parse(custom.to_string().as_bytes()).unwrap().to_call(&[]).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("tools[0].tools[0].type"));
}
