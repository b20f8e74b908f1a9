use super::*;
use crate::config::{Provider, ProviderKind};

fn with_ctx<T>(f: impl FnOnce(&AttemptContext) -> T) -> T {
    let provider = Provider {
        kind: ProviderKind::Gemini,
        base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
        api_key_secret: Some("GEMINI_API_KEY".into()),
        region: "us".into(),
        api_version: None,
        aws_region: None,
        location_hint: None,
        limits: Default::default(),
    };
    let ctx = AttemptContext {
        provider: &provider,
        upstream_model: "gemini-2.5-flash",
        public_model: "fast",
        api_key: Some("AIza-test"),
        now_ms: 1_700_000_000_000,
        request_id: "req_1",
    };
    f(&ctx)
}

fn build(body: Value) -> (UpstreamRequest, Value) {
    let req = ChatRequest::parse(body.to_string().as_bytes()).unwrap();
    with_ctx(|ctx| {
        let up = chat_request(ctx, &req).unwrap();
        let json = serde_json::from_slice(&up.body).unwrap();
        (up, json)
    })
}

#[test]
fn plain_chat_with_system_instruction_and_generation_config() {
    let (up, body) = build(json!({"model": "fast", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Explain how AI works"}],
        "temperature": 0.3, "top_p": 0.9, "max_tokens": 100, "stop": ["END"], "seed": 4,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}));
    assert_eq!(up.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    assert!(up.headers.contains(&("x-goog-api-key", "AIza-test".into())));
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "Explain how AI works"}]}]));
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.3, "topP": 0.9, "seed": 4, "maxOutputTokens": 100,
        "stopSequences": ["END"], "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})
    );
}

#[test]
fn tools_round_trip_with_thought_signatures_and_images() {
    let (up, body) = build(json!({"model": "fast", "stream": true,
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"], "additionalProperties": false}}}],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Here?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"},
            "extra_content": {"google": {"thought_signature": "CiQB-sig"}}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\": 18}"},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}
    ]}));
    assert_eq!(
        up.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["additionalProperties"], false);
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents[0]["parts"][1], json!({"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}));
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": "CiQB-sig"}]})
    );
    assert_eq!(
        contents[2]["parts"],
        json!([
            {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}
        ])
    );
}

#[test]
fn documented_response_and_function_call() {
    // From the generateContent reference and the function-calling guide.
    let body = br#"{"candidates":[{"content":{"parts":[{"text":"Sure."},{"functionCall":{"name":"schedule_meeting","args":{"attendees":["Bob"],"time":"10:00"}},"thoughtSignature":"sig1"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":12,"totalTokenCount":25,"thoughtsTokenCount":5,"cachedContentTokenCount":2},"modelVersion":"gemini-2.5-flash","responseId":"resp-1"}"#;
    let out = with_ctx(|ctx| chat_response(ctx, body)).unwrap();
    assert_eq!(out["model"], "fast");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    let call = &out["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_0");
    assert_eq!(call["extra_content"]["google"]["thought_signature"], "sig1");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"attendees": ["Bob"], "time": "10:00"})
    );
    assert_eq!(out["usage"]["completion_tokens"], 17);
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 2);

    let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}"#;
    assert!(with_ctx(|ctx| chat_response(ctx, blocked)).unwrap_err().starts_with("content_filter"));
    let filtered = br#"{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"SAFETY"}]}"#;
    assert_eq!(with_ctx(|ctx| chat_response(ctx, filtered)).unwrap()["choices"][0]["finish_reason"], "content_filter");
}

const STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Thinking...\", \"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The \"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"answer.\"},{\"functionCall\": {\"name\": \"f\", \"args\": {\"a\": 1}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 4,\"totalTokenCount\": 13},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n"
);

fn translate(pieces: &[&[u8]]) -> Vec<String> {
    with_ctx(|ctx| {
        let mut t = stream_translator(ctx);
        let mut out = Vec::new();
        for piece in pieces {
            t.feed(piece, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        out
    })
}

#[test]
fn stream_translates_and_is_split_invariant() {
    let out = translate(&[STREAM.as_bytes()]);
    let deltas: Vec<Value> =
        out.iter().filter(|c| *c != "[DONE]").map(|c| serde_json::from_str::<Value>(c).unwrap()).collect();
    assert_eq!(deltas[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1]["choices"][0]["delta"], json!({"reasoning_content": "Thinking..."}));
    assert_eq!(deltas[2]["choices"][0]["delta"], json!({"content": "The "}));
    assert_eq!(deltas[3]["choices"][0]["delta"], json!({"content": "answer."}));
    assert_eq!(deltas[4]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    assert_eq!(deltas[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(deltas[6]["usage"]["total_tokens"], 13);
    assert_eq!(out.last().unwrap(), "[DONE]");
    let bytes = STREAM.as_bytes();
    for cut in 0..=bytes.len() {
        assert_eq!(translate(&[&bytes[..cut], &bytes[cut..]]), out, "split at {cut}");
    }
}

#[test]
fn stream_errors_and_cut_streams() {
    with_ctx(|ctx| {
        let mut t = stream_translator(ctx);
        let mut out = Vec::new();
        let err = t.feed(b"data: {\"error\": {\"code\": 429, \"message\": \"Resource exhausted\", \"status\": \"RESOURCE_EXHAUSTED\"}}\n\n", &mut out);
        assert_eq!(err, Err(StreamFault::Upstream("Resource exhausted".into())));
        // Without a finish reason, no [DONE]: the relay reports an interrupted stream.
        let mut cut = stream_translator(ctx);
        let mut out = Vec::new();
        cut.feed(STREAM.split("\r\n\r\n").next().unwrap().as_bytes(), &mut out).unwrap();
        cut.finish(&mut out).unwrap();
        assert!(!out.iter().any(|c| c == "[DONE]"));
    });
}

#[test]
fn embeddings_request_and_response() {
    let request = crate::protocol::openai::EmbeddingsRequest::parse(
        br#"{"model": "embed", "input": ["hello", "world"], "dimensions": 3}"#,
    )
    .unwrap();
    let (up, out) = with_ctx(|ctx| {
        let up = embeddings_request(ctx, &request).unwrap();
        let answer = br#"{"embeddings": [{"values": [0.5, -1.0, 2.0]}, {"values": [0.0, 0.25, 1.0]}]}"#;
        (up, embeddings_response(ctx, answer, false, 4).unwrap())
    });
    assert_eq!(up.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:batchEmbedContents");
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body["requests"][1],
        json!({"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 3})
    );
    assert_eq!(out["data"][0]["embedding"], json!([0.5, -1.0, 2.0]));
    assert_eq!(out["data"][1]["index"], 1);
    // base64 of little-endian f32 [1.0] is "AACAPw==".
    assert_eq!(float32_base64(&json!([1.0])), "AACAPw==");
    assert_eq!(float32_base64(&json!([1.0, 2.0])), "AACAPwAAAEA=");
}
