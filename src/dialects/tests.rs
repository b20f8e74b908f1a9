use super::*;
use crate::providers::{adapter, WholeAnswer};
use serde_json::json;

fn no_call() -> ClientCall {
    OpenAiChat.parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#, &|_| None).unwrap()
}

fn shape(native: bool) -> Shape<'static> {
    Shape {
        native,
        upstream_model: "up-model",
        public_model: "public",
        message_id: "msg_1",
        created_s: 7,
        estimated_input_tokens: 0,
    }
}

#[test]
fn the_route_table_maps_each_chat_path_to_one_dialect() {
    assert_eq!(for_path("/v1/chat/completions").map(|d| d.wire()), Some(Wire::OpenAiChat));
    assert_eq!(for_path("/v1/messages").map(|d| d.wire()), Some(Wire::AnthropicMessages));
    assert!(for_path("/v1/embeddings").is_none());
}

#[test]
fn errors_under_v1_messages_take_anthropics_shape_and_others_openais() {
    let wire = |path: &str| errors_for_path(path).wire();
    assert_eq!(wire("/v1/messages"), Wire::AnthropicMessages);
    assert_eq!(wire("/v1/messages/count_tokens"), Wire::AnthropicMessages);
    assert_eq!(wire("/v1/messages/batches"), Wire::AnthropicMessages, "a path the gateway does not serve");
    assert_eq!(wire("/v1/responses"), Wire::OpenAiResponses);
    assert_eq!(wire("/v1/embeddings"), Wire::OpenAiChat);
    assert_eq!(wire("/v1/messagesx"), Wire::OpenAiChat);
}

#[test]
fn a_count_tokens_body_needs_no_max_tokens_but_is_otherwise_a_messages_request() {
    let count = br#"{"model":"m","system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
    let call = AnthropicMessages.parse_count(count, &|name| (name == "anthropic-version").then(|| "2023-06-01".into()));
    let call = call.unwrap();
    assert_eq!(call.request.model, "m");
    let native = call.native.unwrap();
    assert_eq!(native.body.get("system"), Some(&json!("be brief")), "the client's own body, as sent");
    assert_eq!(native.headers, [("anthropic-version", "2023-06-01".to_string())]);
    assert!(AnthropicMessages.parse(count, &|_| None).is_err(), "a Messages request still needs max_tokens");
    let error = AnthropicMessages.parse_count(br#"{"model":"m","messages":[]}"#, &|_| None).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("messages"));
}

#[test]
fn only_a_provider_of_the_same_wire_gets_the_clients_own_body() {
    let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let call =
        AnthropicMessages.parse(body, &|name| (name == "anthropic-beta").then(|| "tools-2024".to_string())).unwrap();
    let native = native_for(&AnthropicMessages, &call, adapter(&crate::config::ProviderKind::Anthropic)).unwrap();
    assert_eq!(native.headers, [("anthropic-beta", "tools-2024".to_string())]);
    assert!(native_for(&AnthropicMessages, &call, adapter(&crate::config::ProviderKind::Gemini)).is_none());
    let openai = OpenAiChat.parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#, &|_| None).unwrap();
    assert!(native_for(&OpenAiChat, &openai, adapter(&crate::config::ProviderKind::Openai)).is_none());
}

#[test]
fn openai_answers_report_the_public_model() {
    let raw = br#"{"id":"c","object":"chat.completion","model":"up-model","choices":[]}"#.to_vec();
    let body = OpenAiChat.whole_answer(&no_call(), raw, WholeAnswer::Canonical, &shape(false)).unwrap().body;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"id":"c","object":"chat.completion","model":"public","choices":[]}"#
    );
}

#[test]
fn anthropic_answers_and_errors_take_anthropics_shape() {
    let completion = json!({"id": "c", "object": "chat.completion", "model": "public",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}});
    let body = AnthropicMessages
        .whole_answer(&no_call(), Vec::new(), WholeAnswer::Translated(completion), &shape(false))
        .unwrap()
        .body;
    let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((message["id"].as_str(), message["stop_reason"].as_str()), (Some("msg_1"), Some("max_tokens")));
    assert_eq!(message["content"][0]["text"], "hello");
    let native = AnthropicMessages
        .whole_answer(&no_call(), b"as sent".to_vec(), WholeAnswer::Canonical, &shape(true))
        .unwrap()
        .body;
    assert_eq!(native, b"as sent");

    let error = GatewayError::invalid_request("invalid_value", "bad");
    let body: serde_json::Value = crate::json_value::from_str(&AnthropicMessages.error_body(&error, "req_1")).unwrap();
    assert_eq!((body["type"].as_str(), body["error"]["type"].as_str()), (Some("error"), Some("invalid_request_error")));
    let body: serde_json::Value = crate::json_value::from_str(&OpenAiChat.error_body(&error, "req_1")).unwrap();
    assert_eq!(body["error"]["code"], "invalid_value");
}

/// An Anthropic client's stream from a provider that counts the prompt in its first
/// chunk (Gemini): `message_start` names that count; from one that counts only at
/// the end, the gateway's estimate.
#[test]
fn message_start_names_the_providers_prompt_count_when_it_comes_first() {
    use crate::config::{Provider, ProviderKind};
    use crate::providers::{AttemptContext, StreamWants};
    use crate::relay::Relay;
    let call = AnthropicMessages
        .parse(br#"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"}],"stream":true}"#, &|_| None)
        .unwrap();
    let first_input_tokens = |kind: ProviderKind, stream: &str| {
        let provider = Provider {
            kind,
            base_url: "https://provider.example/v1".into(),
            api_key_secret: None,
            region: "us".into(),
            location_hint: None,
            limits: Default::default(),
        };
        let ctx = AttemptContext {
            provider: &provider,
            upstream_model: "up",
            public_model: "public",
            api_key: None,
            now_ms: 0,
            request_id: "req_1",
        };
        let translator = adapter(&provider.kind).stream_translator(&ctx, StreamWants::default());
        let (encoder, usage) =
            AnthropicMessages.stream_encoder(&call, &Shape { estimated_input_tokens: 42, ..shape(false) });
        let mut relay = Relay::new(translator, encoder, usage);
        let mut out = Vec::new();
        relay.feed(stream.as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let start = text.lines().find(|l| l.starts_with("data:") && l.contains("message_start")).unwrap();
        let event: serde_json::Value = crate::json_value::from_str(start.trim_start_matches("data:").trim()).unwrap();
        event["message"]["usage"]["input_tokens"].as_u64()
    };
    let gemini = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Kyoto\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 120,\"candidatesTokenCount\": 1,\"totalTokenCount\": 121}}\n\n";
    assert_eq!(first_input_tokens(ProviderKind::Gemini, gemini), Some(120));
    let openai = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
    assert_eq!(first_input_tokens(ProviderKind::Openai, openai), Some(42));
}
