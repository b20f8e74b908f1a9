//! Golden tests. Wire shapes follow Google's documented examples (the Gemini API
//! reference and guides on ai.google.dev and the google-gemini/cookbook REST
//! quickstarts); the example texts are our own, the structure is theirs. Each
//! golden names the example it is modelled on.

use super::*;
use crate::config::{Provider, ProviderKind};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::providers::{AttemptContext, StreamFault, StreamTranslator};
use serde_json::{json, Value};

const BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
const FLASH_25: &str = "gemini-2.5-flash";
const FLASH_3: &str = "gemini-3-flash-preview";

fn provider() -> Provider {
    Provider {
        kind: ProviderKind::Gemini,
        base_url: BASE_URL.into(),
        api_key_secret: Some("GEMINI_API_KEY".into()),
        region: "us".into(),
        location_hint: None,
        limits: Default::default(),
    }
}

fn ctx<'a>(provider: &'a Provider, model: &'a str) -> AttemptContext<'a> {
    AttemptContext {
        provider,
        upstream_model: model,
        public_model: "my-gemini",
        api_key: Some("test-gemini-key"),
        now_ms: 1_700_000_000_999,
        request_id: "req_0123abcd",
    }
}

fn parse(body: Value) -> ChatRequest {
    ChatRequest::parse(body.to_string().as_bytes()).expect("test request parses")
}

/// Built, or refused at the edge (malformed) or by the adapter (unsupported).
fn try_build(model: &str, body: Value) -> Result<crate::providers::UpstreamRequest, GatewayError> {
    let provider = provider();
    let request = ChatRequest::parse(body.to_string().as_bytes())?;
    chat_request(&ctx(&provider, model), &request)
}

/// The Gemini request body built for `body`.
fn build(model: &str, body: Value) -> Value {
    let up = try_build(model, body).expect("request builds");
    serde_json::from_slice(&up.body).expect("body is JSON")
}

fn build_err(body: Value) -> GatewayError {
    try_build(FLASH_25, body).expect_err("request is refused")
}

fn chat(messages: Value) -> Value {
    json!({ "model": "my-gemini", "messages": messages })
}

fn respond(model: &str, gemini: Value) -> Result<Value, String> {
    let provider = provider();
    chat_response(&ctx(&provider, model), gemini.to_string().as_bytes())
}

// ---------------------------------------------------------------------------
// URL, headers, auth

#[test]
fn url_headers_and_key_header() {
    let up = try_build(FLASH_25, chat(json!([{"role": "user", "content": "hi"}]))).unwrap();
    assert_eq!(up.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    assert!(!up.stream);
    assert!(up.headers.contains(&("x-goog-api-key", "test-gemini-key".to_string())));
    assert!(up.headers.contains(&("content-type", "application/json".to_string())));
    assert!(!up.headers.iter().any(|(name, _)| *name == "authorization"));

    let mut body = chat(json!([{"role": "user", "content": "hi"}]));
    body["stream"] = true.into();
    let up = try_build("models/gemini-2.5-flash", body).unwrap();
    assert_eq!(
        up.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert!(up.stream);
    assert!(up.headers.contains(&("accept", "text/event-stream".to_string())));
}

#[test]
fn model_segment_cannot_change_the_path_or_query() {
    assert_eq!(model_segment("gemini-2.5-flash"), "gemini-2.5-flash");
    assert_eq!(model_segment("models/gemini-2.5-pro"), "gemini-2.5-pro");
    assert_eq!(model_segment("../x?alt=json#y z"), "..%2Fx%3Falt%3Djson%23y%20z");
    let mut provider = provider();
    provider.base_url = format!("{BASE_URL}/");
    let up = chat_request(&ctx(&provider, "tuned/odd name"), &parse(chat(json!([{"role": "user", "content": "hi"}]))))
        .unwrap();
    assert_eq!(up.url, format!("{BASE_URL}/models/tuned%2Fodd%20name:generateContent"));
}

// ---------------------------------------------------------------------------
// Messages

// Modelled on the cookbook's System_instructions_REST multi-turn example
// (`system_instruction` + alternating user/model `contents`).
#[test]
fn golden_system_prompt_and_multi_turn_chat() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "system", "content": "You are a parrot; answer like one."},
            {"role": "user", "content": "Hello bird."},
            {"role": "assistant", "content": "Squawk! Hello! 🦜"},
            {"role": "user", "content": "What do you like to eat?"}
        ])),
    );
    assert_eq!(
        body,
        json!({
            "systemInstruction": {"parts": [{"text": "You are a parrot; answer like one."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hello bird."}]},
                {"role": "model", "parts": [{"text": "Squawk! Hello! 🦜"}]},
                {"role": "user", "parts": [{"text": "What do you like to eat?"}]}
            ]
        })
    );
}

#[test]
fn system_and_developer_messages_join_one_instruction() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "system", "content": [{"type": "text", "text": "Rule one.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "Rule two."}
        ])),
    );
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "Rule one."}, {"text": "Rule two."}]}));
    assert_eq!(body["contents"], json!([{"role": "user", "parts": [{"text": "hi"}]}]));
    let err = build_err(chat(json!([
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        {"role": "user", "content": "hi"}
    ])));
    assert_eq!(err.param.as_deref(), Some("messages[0].content[0]"));
}

#[test]
fn consecutive_same_role_messages_merge_and_empty_ones_vanish() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "user", "content": "first"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "again"}
        ])),
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "first"}, {"text": "second"}]},
            {"role": "model", "parts": [{"text": "answer"}]},
            {"role": "user", "parts": [{"text": "again"}]}
        ])
    );
}

// ---------------------------------------------------------------------------
// Tools

fn lighting_tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "enable_lights", "description": "Turn on the lighting system.",
            "parameters": {"type": "object"}}},
        {"type": "function", "function": {
            "name": "set_light_color", "description": "Set the light color.",
            "parameters": {"type": "object",
                "properties": {"rgb_hex": {"type": "string", "description": "6-digit hex color"}},
                "required": ["rgb_hex"]},
            "strict": true}},
        {"type": "function", "function": {"name": "stop_lights", "parameters": {}}}
    ])
}

// Modelled on the cookbook's Function_calling_config_REST lighting example:
// `tools[].functionDeclarations` plus `toolConfig.functionCallingConfig` with mode
// ANY and `allowedFunctionNames`.
#[test]
fn golden_tools_and_named_tool_choice() {
    let mut request = chat(json!([{"role": "user", "content": "Make this place purple!"}]));
    request["tools"] = lighting_tools();
    request["tool_choice"] = json!({"type": "function", "function": {"name": "set_light_color"}});
    let body = build(FLASH_25, request);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "enable_lights", "description": "Turn on the lighting system.",
             "parametersJsonSchema": {"type": "object"}},
            {"name": "set_light_color", "description": "Set the light color.",
             "parametersJsonSchema": {"type": "object",
                "properties": {"rgb_hex": {"type": "string", "description": "6-digit hex color"}},
                "required": ["rgb_hex"]}},
            {"name": "stop_lights"}
        ]}])
    );
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["set_light_color"]}})
    );
}

#[test]
fn tool_choice_modes() {
    let config = |choice: Value| {
        let mut request = chat(json!([{"role": "user", "content": "hi"}]));
        request["tools"] = lighting_tools();
        request["tool_choice"] = choice;
        build(FLASH_25, request)["toolConfig"]["functionCallingConfig"].clone()
    };
    assert_eq!(config(json!("auto")), json!({"mode": "AUTO"}));
    assert_eq!(config(json!("none")), json!({"mode": "NONE"}));
    assert_eq!(config(json!("required")), json!({"mode": "ANY"}));
    assert_eq!(
        config(json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto",
            "tools": [{"type": "function", "function": {"name": "stop_lights"}}]}})),
        json!({"mode": "VALIDATED", "allowedFunctionNames": ["stop_lights"]})
    );
    assert_eq!(
        config(json!({"type": "allowed_tools", "allowed_tools": {"mode": "required",
            "tools": [{"type": "function", "function": {"name": "stop_lights"}}]}})),
        json!({"mode": "ANY", "allowedFunctionNames": ["stop_lights"]})
    );

    // Without tools, "none"/"auto" say nothing and forcing a call is an error.
    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["tool_choice"] = json!("none");
    assert!(build(FLASH_25, request.clone()).get("toolConfig").is_none());
    request["tool_choice"] = json!("required");
    assert_eq!(build_err(request).param.as_deref(), Some("tool_choice"));

    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["tools"] = lighting_tools();
    request["tool_choice"] = json!("sometimes");
    assert_eq!(build_err(request).param.as_deref(), Some("tool_choice"));
}

#[test]
fn legacy_functions_and_function_call_are_understood() {
    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["functions"] = json!([{"name": "ping", "parameters": {"type": "object"}}]);
    request["function_call"] = json!({"name": "ping"});
    let body = build(FLASH_25, request);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{"name": "ping", "parametersJsonSchema": {"type": "object"}}]}])
    );
    assert_eq!(body["toolConfig"]["functionCallingConfig"], json!({"mode": "ANY", "allowedFunctionNames": ["ping"]}));
}

#[test]
fn tool_schemas_go_out_as_json_schema_without_the_dialect_marker() {
    let parameters = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "$schema": {"type": "string", "description": "a property that happens to be called $schema"},
            "count": {"type": "integer", "exclusiveMinimum": 0},
            "target": {"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string", "$schema": "x"}, "uniqueItems": true}
        },
        "$defs": {"point": {"$schema": "x", "type": "object",
            "properties": {"x": {"type": "number"}}, "additionalProperties": false}},
        "required": ["count"],
        "additionalProperties": false
    });
    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": parameters}}]);
    let body = build(FLASH_25, request);
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"],
        json!({
            "type": "object",
            "properties": {
                "$schema": {"type": "string", "description": "a property that happens to be called $schema"},
                "count": {"type": "integer", "exclusiveMinimum": 0},
                "target": {"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
            },
            "$defs": {"point": {"type": "object",
                "properties": {"x": {"type": "number"}}, "additionalProperties": false}},
            "required": ["count"],
            "additionalProperties": false
        })
    );
}

#[test]
fn non_function_tools_are_refused() {
    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["tools"] = json!([{"type": "web_search"}]);
    let err = build_err(request);
    assert_eq!(err.status, 400);
    assert_eq!(err.code, "unsupported_parameter");
    assert_eq!(err.param.as_deref(), Some("tools[0].type"));
}

// Modelled on the cookbook's Function_calling_REST multi-turn example: the model's
// `functionCall` turn is replayed, then a `functionResponse` part answers it by name.
#[test]
fn golden_tool_round_trip() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "user", "content": "Which cinemas in Springfield show Paddington?"},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_7", "type": "function",
                "function": {"name": "find_theaters",
                             "arguments": "{\"movie\":\"Paddington\",\"location\":\"Springfield, IL\"}"}
            }]},
            {"role": "tool", "tool_call_id": "call_7",
             "content": "{\"movie\":\"Paddington\",\"theaters\":[{\"name\":\"Roxy\",\"address\":\"1 Main St\"}]}"},
            {"role": "assistant", "content": "Paddington is on at the Roxy."},
            {"role": "user", "content": "Any comedies?"}
        ])),
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Which cinemas in Springfield show Paddington?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "find_theaters",
                "args": {"movie": "Paddington", "location": "Springfield, IL"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "find_theaters",
                "response": {"movie": "Paddington", "theaters": [{"name": "Roxy", "address": "1 Main St"}]}}}]},
            {"role": "model", "parts": [{"text": "Paddington is on at the Roxy."}]},
            {"role": "user", "parts": [{"text": "Any comedies?"}]}
        ])
    );
}

#[test]
fn tool_results_that_are_not_objects_are_wrapped() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "user", "content": "time?"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "now", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "12:00"}]}
        ])),
    );
    assert_eq!(body["contents"][1]["parts"][0], json!({"functionCall": {"name": "now", "args": {}}}));
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "now", "response": {"content": "12:00"}}})
    );
}

// Modelled on the thought-signatures guide's parallel function call example: the
// signature sits on the first functionCall part only and must come back exactly
// there; both results answer in one user turn.
#[test]
fn golden_parallel_calls_echo_signatures_and_group_results() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "user", "content": "Temperature in Paris and London?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_p", "type": "function",
                 "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"Paris\"}"},
                 "extra_content": {"google": {"thought_signature": "<Signature_A>"}}},
                {"id": "call_l", "type": "function",
                 "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"London\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_p", "content": "{\"temperature\":15,\"unit\":\"C\"}"},
            {"role": "tool", "tool_call_id": "call_l", "content": "{\"temperature\":12,\"unit\":\"C\"}"}
        ])),
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Temperature in Paris and London?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_current_temperature", "args": {"location": "Paris"}},
                 "thoughtSignature": "<Signature_A>"},
                {"functionCall": {"name": "get_current_temperature", "args": {"location": "London"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_current_temperature", "response": {"temperature": 15, "unit": "C"}}},
                {"functionResponse": {"name": "get_current_temperature", "response": {"temperature": 12, "unit": "C"}}}
            ]}
        ])
    );
}

fn unsigned_history() -> Value {
    chat(json!([
        {"role": "user", "content": "Book a taxi."},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "book_taxi", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "notify", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "booked"},
        {"role": "tool", "tool_call_id": "c2", "content": "sent"}
    ]))
}

// The thought-signatures guide documents a placeholder signature for histories that
// never had one (another model, or a client that dropped it); Gemini 3 rejects the
// current turn's function calls without a signature.
#[test]
fn gemini_3_histories_without_signatures_get_the_documented_placeholder() {
    let body = build(FLASH_3, unsigned_history());
    let parts = &body["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], "skip_thought_signature_validator");
    assert!(parts[1].get("thoughtSignature").is_none());

    // Earlier generations do not validate: nothing is invented for them.
    let body = build(FLASH_25, unsigned_history());
    assert!(body["contents"][1]["parts"][0].get("thoughtSignature").is_none());
}

#[test]
fn message_level_signature_returns_to_the_last_text_part() {
    let body = build(
        FLASH_3,
        chat(json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!", "reasoning_content": "greet",
             "extra_content": {"google": {"thought_signature": "SIG_TEXT"}}},
            {"role": "user", "content": "bye"}
        ])),
    );
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [{"text": "Hello!", "thoughtSignature": "SIG_TEXT"}]})
    );
}

#[test]
fn broken_tool_history_is_a_clear_400() {
    let err = build_err(chat(json!([
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "nope", "content": "y"}
    ])));
    assert_eq!(err.param.as_deref(), Some("messages[1].tool_call_id"));

    let err = build_err(chat(json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1,2]"}}]}
    ])));
    assert_eq!(err.param.as_deref(), Some("messages[1].tool_calls[0].function.arguments"));
}

// ---------------------------------------------------------------------------
// Images and other media

// Modelled on the thinking and file-input guides: base64 media as
// `inlineData{mimeType,data}`, URLs as `fileData{mimeType,fileUri}`.
#[test]
fn golden_images_inline_and_by_url() {
    let body = build(
        FLASH_25,
        chat(json!([{"role": "user", "content": [
            {"type": "text", "text": "Which balls sum to 30?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/photos/pool.JPG?size=large#top"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/render"}}
        ]}])),
    );
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"text": "Which balls sum to 30?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photos/pool.JPG?size=large#top"}},
            {"fileData": {"fileUri": "https://example.com/render"}}
        ])
    );
}

#[test]
fn audio_and_file_parts() {
    let body = build(
        FLASH_25,
        chat(json!([{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "b.pdf"}}
        ]}])),
    );
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
        ])
    );
}

#[test]
fn unusable_media_is_a_clear_400() {
    let image = |url: &str| {
        build_err(chat(json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}])))
    };
    for url in ["ftp://example.com/a.png", "data:image/png,notbase64", "data:;base64,AAAA", "data:image/png;base64"] {
        let err = image(url);
        assert_eq!(err.status, 400, "{url}");
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].image_url.url"));
    }
    let err = build_err(chat(json!([{"role": "user", "content": [{"type": "video", "video": {}}]}])));
    assert_eq!(err.code, "unsupported_content");
}

// ---------------------------------------------------------------------------
// Response format, generation config, thinking

// Modelled on the cookbook's JSON_mode_REST (`response_mime_type`) and the
// structured-output guide (`responseMimeType` + `responseJsonSchema`).
#[test]
fn golden_json_mode_and_json_schema() {
    let mut request = chat(json!([{"role": "user", "content": "List cookie recipes."}]));
    request["response_format"] = json!({"type": "json_object"});
    assert_eq!(build(FLASH_25, request.clone())["generationConfig"], json!({"responseMimeType": "application/json"}));

    request["response_format"] = json!({"type": "json_schema", "json_schema": {
        "name": "recipes", "strict": true,
        "schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
                   "items": {"type": "object", "properties": {"recipe_name": {"type": "string"}},
                             "required": ["recipe_name"], "additionalProperties": false}}}});
    assert_eq!(
        build(FLASH_25, request.clone())["generationConfig"],
        json!({"responseMimeType": "application/json", "responseJsonSchema": {
            "type": "array",
            "items": {"type": "object", "properties": {"recipe_name": {"type": "string"}},
                      "required": ["recipe_name"], "additionalProperties": false}}})
    );

    request["response_format"] = json!({"type": "text"});
    assert!(build(FLASH_25, request.clone()).get("generationConfig").is_none());
    request["response_format"] = json!({"type": "yaml"});
    assert_eq!(build_err(request).param.as_deref(), Some("response_format.type"));
}

#[test]
fn generation_config_mapping_and_dropped_hints() {
    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    for (key, value) in [
        ("temperature", json!(0.3)),
        ("top_p", json!(0.9)),
        ("max_tokens", json!(50)),
        ("max_completion_tokens", json!(80)),
        ("stop", json!("END")),
        ("seed", json!(42)),
        ("n", json!(2)),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(-0.5)),
        ("user", json!("u-1")),
        ("metadata", json!({"k": "v"})),
        ("store", json!(true)),
        ("parallel_tool_calls", json!(false)),
        ("service_tier", json!("auto")),
    ] {
        request[key] = value;
    }
    let body = build(FLASH_25, request.clone());
    assert_eq!(
        body["generationConfig"],
        json!({
            "temperature": 0.3, "topP": 0.9, "maxOutputTokens": 80,
            "stopSequences": ["END"], "seed": 42, "candidateCount": 2,
            "presencePenalty": 0.5, "frequencyPenalty": -0.5
        })
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["contents", "generationConfig"]);

    request["stop"] = json!(["a", "b"]);
    request.as_object_mut().unwrap().remove("max_completion_tokens");
    let config = &build(FLASH_25, request.clone())["generationConfig"];
    assert_eq!(config["stopSequences"], json!(["a", "b"]));
    assert_eq!(config["maxOutputTokens"], 50);

    request["stop"] = json!([1]);
    assert_eq!(build_err(request.clone()).param.as_deref(), Some("stop"));
    request["stop"] = Value::Null;
    request["seed"] = json!(1.5);
    assert_eq!(build_err(request).param.as_deref(), Some("seed"));
}

#[test]
fn unsupported_parameters_are_clear_400s() {
    let base = || chat(json!([{"role": "user", "content": "hi"}]));
    let refused = |key: &str, value: Value| {
        let mut request = base();
        request[key] = value;
        let err = build_err(request);
        assert_eq!(err.status, 400, "{key}");
        assert_eq!(err.code, "unsupported_parameter", "{key}");
        err.param.map(|p| p.to_string())
    };
    assert_eq!(refused("logprobs", json!(true)).as_deref(), Some("logprobs"));
    assert_eq!(refused("top_logprobs", json!(3)).as_deref(), Some("logprobs"));
    assert_eq!(refused("audio", json!({"voice": "x"})).as_deref(), Some("audio"));
    assert_eq!(refused("modalities", json!(["text", "audio"])).as_deref(), Some("modalities"));
    assert_eq!(refused("web_search_options", json!({})).as_deref(), Some("web_search_options"));

    let mut request = base();
    request["stream"] = true.into();
    request["n"] = 3.into();
    assert_eq!(build_err(request).param.as_deref(), Some("n"));

    let mut request = base();
    request["logprobs"] = false.into();
    request["modalities"] = json!(["text"]);
    assert!(try_build(FLASH_25, request).is_ok());
}

#[test]
fn reasoning_effort_becomes_thinking_config() {
    let thinking = |model: &str, extra: Value| {
        let mut request = chat(json!([{"role": "user", "content": "hi"}]));
        for (key, value) in extra.as_object().unwrap() {
            request[key] = value.clone();
        }
        build(model, request)["generationConfig"]["thinkingConfig"].clone()
    };
    // Gemini 2.x: token budgets.
    assert_eq!(
        thinking(FLASH_25, json!({"reasoning_effort": "low"})),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(
        thinking(FLASH_25, json!({"reasoning_effort": "medium"})),
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );
    assert_eq!(
        thinking("gemini-2.5-pro", json!({"reasoning_effort": "high"})),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    assert_eq!(
        thinking(FLASH_25, json!({"reasoning_effort": "none"})),
        json!({"thinkingBudget": 0, "includeThoughts": false})
    );
    // Names that do not say their generation get the budget every generation takes.
    assert_eq!(
        thinking("gemini-flash-latest", json!({"reasoning_effort": "high"})),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    // Gemini 3+: thinking levels.
    assert_eq!(
        thinking(FLASH_3, json!({"reasoning_effort": "medium"})),
        json!({"thinkingLevel": "medium", "includeThoughts": true})
    );
    assert_eq!(
        thinking("models/gemini-3.1-pro-preview", json!({"reasoning_effort": "none"})),
        json!({"thinkingLevel": "minimal", "includeThoughts": false})
    );
    // An explicit budget wins.
    assert_eq!(
        thinking(
            FLASH_3,
            json!({"reasoning_effort": "low",
            "thinking": {"type": "enabled", "budget_tokens": 2048}})
        ),
        json!({"thinkingBudget": 2048, "includeThoughts": true})
    );
    assert_eq!(thinking(FLASH_25, json!({"thinking": {"type": "disabled"}})), json!({"thinkingBudget": 0}));
    assert_eq!(thinking(FLASH_25, json!({})), Value::Null);

    let mut request = chat(json!([{"role": "user", "content": "hi"}]));
    request["reasoning_effort"] = json!("extreme");
    assert_eq!(build_err(request).param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn gemini_generation_is_read_from_the_model_id() {
    use super::request::gemini_major_version as major;
    assert_eq!(major("gemini-2.5-flash"), Some(2));
    assert_eq!(major("models/gemini-3-pro-preview"), Some(3));
    assert_eq!(major("Gemini-10-ultra"), Some(10));
    assert_eq!(major("gemini-flash-latest"), None);
    assert_eq!(major("gemma-3-27b-it"), None);
}

// ---------------------------------------------------------------------------
// Non-streamed responses

// Modelled on a generateContent response as the cookbook's Batch_mode notebook
// prints it (gemini-2.5-flash with thinking: `responseId`, `modelVersion`,
// `usageMetadata` with `thoughtsTokenCount` and `promptTokensDetails`).
#[test]
fn golden_plain_response_with_thinking_usage() {
    let gemini = json!({
        "responseId": "9kFkaPDuEdXVjMcP4-XW7Qo",
        "usageMetadata": {
            "totalTokenCount": 512,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
            "thoughtsTokenCount": 491,
            "candidatesTokenCount": 12,
            "promptTokenCount": 9
        },
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": "Rust checks memory safety at compile time."}]},
            "finishReason": "STOP",
            "index": 0
        }],
        "modelVersion": "gemini-2.5-flash"
    });
    assert_eq!(
        respond(FLASH_25, gemini).unwrap(),
        json!({
            "id": "chatcmpl-9kFkaPDuEdXVjMcP4-XW7Qo",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "my-gemini",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Rust checks memory safety at compile time.", "refusal": null},
                "finish_reason": "stop",
                "logprobs": null
            }],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": 503,
                "total_tokens": 512,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 491}
            }
        })
    );
}

// Modelled on the thinking guide's `includeThoughts` answers: a `thought: true`
// summary part, then the answer part.
#[test]
fn thought_summaries_become_reasoning_content() {
    let gemini = json!({"candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "**Weighing the options**\n\nA shrew is small.", "thought": true},
            {"text": "A water shrew."}
        ]},
        "finishReason": "STOP", "index": 0}]});
    let out = respond(FLASH_25, gemini).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "A water shrew.");
    assert_eq!(message["reasoning_content"], "**Weighing the options**\n\nA shrew is small.");
    assert_eq!(out["id"], "chatcmpl-req_0123abcd");
    assert_eq!(out["usage"]["total_tokens"], 0);
}

// Modelled on the cookbook's Function_calling_REST single-turn answer (a
// `functionCall` part with `finishReason: STOP` and safety ratings).
#[test]
fn golden_function_call_response() {
    let gemini = json!({"candidates": [{
        "content": {"parts": [{"functionCall": {"name": "find_theaters",
            "args": {"movie": "Paddington", "location": "Springfield, IL"}}}], "role": "model"},
        "finishReason": "STOP", "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]}]});
    let out = respond(FLASH_25, gemini).unwrap();
    assert_eq!(
        out["choices"][0],
        json!({
            "index": 0,
            "message": {
                "role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "call_0", "type": "function", "function": {
                    "name": "find_theaters",
                    "arguments": "{\"location\":\"Springfield, IL\",\"movie\":\"Paddington\"}"}}]
            },
            "finish_reason": "tool_calls",
            "logprobs": null
        })
    );
}

// Modelled on the thought-signatures guide's parallel call answer (signature on the
// first functionCall part only) and its Gemini 3 text answer (signature on the last part).
#[test]
fn golden_parallel_calls_with_signatures() {
    let gemini = json!({"responseId": "rsp-42", "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Checking both."},
            {"functionCall": {"name": "get_current_temperature", "args": {"location": "Paris"}},
             "thoughtSignature": "<Signature_A>"},
            {"functionCall": {"name": "get_current_temperature", "args": {"location": "London"}}}
        ]},
        "finishReason": "STOP", "index": 0}]});
    let out = respond(FLASH_3, gemini).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "Checking both.");
    assert_eq!(
        message["tool_calls"],
        json!([
            {"id": "call_rsp-42_0", "type": "function",
             "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"Paris\"}"},
             "extra_content": {"google": {"thought_signature": "<Signature_A>"}}},
            {"id": "call_rsp-42_1", "type": "function",
             "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"London\"}"}}
        ])
    );
    assert!(message.get("extra_content").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");

    let text = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Done."}, {"text": "", "thoughtSignature": "SIG_LAST"}]},
        "finishReason": "STOP"}]});
    let out = respond(FLASH_3, text).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "Done.");
    assert_eq!(out["choices"][0]["message"]["extra_content"], json!({"google": {"thought_signature": "SIG_LAST"}}));
}

#[test]
fn gemini_function_call_ids_are_kept() {
    let gemini = json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"id": "fc-9", "name": "f", "args": {}}}]}, "finishReason": "STOP"}]});
    let out = respond(FLASH_25, gemini).unwrap();
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["id"], "fc-9");
    assert_eq!(out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], "{}");
}

#[test]
fn finish_reasons_map_to_openai() {
    let reason = |gemini_reason: &str| {
        let gemini = json!({"candidates": [{"content": {"parts": [{"text": "x"}]},
            "finishReason": gemini_reason}]});
        respond(FLASH_25, gemini).unwrap()["choices"][0]["finish_reason"].clone()
    };
    assert_eq!(reason("STOP"), "stop");
    assert_eq!(reason("MAX_TOKENS"), "length");
    for filtered in ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"] {
        assert_eq!(reason(filtered), "content_filter", "{filtered}");
    }
    assert_eq!(reason("OTHER"), "stop");
    assert_eq!(reason("MALFORMED_FUNCTION_CALL"), "stop");

    // A safety stop with nothing generated has no content at all.
    let gemini = json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]});
    let out = respond(FLASH_25, gemini).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
}

// Modelled on the cookbook's Safety_REST answer to a blocked prompt: no candidates,
// `promptFeedback.blockReason: SAFETY`.
#[test]
fn golden_blocked_prompt_is_a_content_filter_error() {
    let gemini = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM"}]}});
    let err = respond(FLASH_25, gemini).unwrap_err();
    assert!(err.starts_with("content_filter:"), "{err}");
    assert!(err.contains("SAFETY"));
}

#[test]
fn unusable_bodies_are_errors_not_panics() {
    assert_eq!(respond(FLASH_25, json!({"candidates": []})).unwrap_err(), "Gemini returned no candidates");
    let provider = provider();
    assert!(chat_response(&ctx(&provider, FLASH_25), b"<html>").is_err());
    assert!(chat_response(&ctx(&provider, FLASH_25), b"[]").is_err());
    let err = respond(FLASH_25, json!({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})).unwrap_err();
    assert_eq!(err, "boom (INTERNAL)");
    // Hostile numbers and shapes.
    let odd = json!({"candidates": [{"content": {"parts": [
        {"text": 5}, {"functionCall": {"args": {}}}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}}]},
        "finishReason": 7, "index": "x"}],
        "usageMetadata": {"promptTokenCount": u64::MAX, "candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 1}});
    let out = respond(FLASH_25, odd).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(out["usage"]["total_tokens"], u64::MAX);
}

#[test]
fn cached_and_tool_use_tokens_are_accounted() {
    let gemini = json!({"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1000, "cachedContentTokenCount": 800,
            "toolUsePromptTokenCount": 50, "candidatesTokenCount": 5, "totalTokenCount": 1055}});
    let usage = &respond(FLASH_25, gemini).unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 1050);
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(usage["total_tokens"], 1055);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 800);
}

#[test]
fn several_candidates_become_several_choices() {
    let gemini = json!({"candidates": [
        {"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP", "index": 0},
        {"content": {"parts": [{"text": "two"}]}, "finishReason": "MAX_TOKENS", "index": 1}]});
    let out = respond(FLASH_25, gemini).unwrap();
    assert_eq!(out["choices"][1]["index"], 1);
    assert_eq!(out["choices"][1]["message"]["content"], "two");
    assert_eq!(out["choices"][1]["finish_reason"], "length");
}

// Modelled on the error the cookbook's thinking REST notebook prints
// (`{"error":{"code":400,"message","status":"INVALID_ARGUMENT","details":[...]}}`).
#[test]
fn golden_error_details() {
    let body = json!({"error": {"code": 400,
        "message": "Invalid JSON payload received. Unknown name \"foo\" at 'generation_config': Cannot find field.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "generation_config", "description": "Unknown name"}]}]}});
    assert_eq!(
        error_details(body.to_string().as_bytes()),
        Some((
            "Invalid JSON payload received. Unknown name \"foo\" at 'generation_config': Cannot find field."
                .to_string(),
            Some("INVALID_ARGUMENT".to_string())
        ))
    );
    let wrapped = json!([{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]);
    assert_eq!(
        error_details(wrapped.to_string().as_bytes()),
        Some(("Resource exhausted".into(), Some("RESOURCE_EXHAUSTED".into())))
    );
    let code_only = json!({"error": {"code": 503, "message": "overloaded"}});
    assert_eq!(error_details(code_only.to_string().as_bytes()), Some(("overloaded".into(), Some("503".into()))));
    assert_eq!(error_details(b"not json"), None);
    assert_eq!(error_details(b"{\"candidates\":[]}"), None);
}

// ---------------------------------------------------------------------------
// Streaming

/// Modelled on the cookbook's Streaming_REST `alt=sse` output (an early model):
/// whole `GenerateContentResponse` objects per `data:` line, the first one ending
/// in CRLF, `finishReason: STOP` repeated on every chunk, no usage metadata.
const STORY_STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Two cats lived in a sunny\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0,\"safetyRatings\": [{\"category\": \"HARM_CATEGORY_HARASSMENT\",\"probability\": \"NEGLIGIBLE\"}]}],\"promptFeedback\": {\"safetyRatings\": [{\"category\": \"HARM_CATEGORY_HARASSMENT\",\"probability\": \"NEGLIGIBLE\"}]}}\r\n",
    "\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" café by the river; the elder was called 小猫.\\n\\n\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0,\"safetyRatings\": [{\"category\": \"HARM_CATEGORY_HARASSMENT\",\"probability\": \"NEGLIGIBLE\"}]}]}\n",
    "\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"They napped all afternoon. ☀️\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0,\"safetyRatings\": [{\"category\": \"HARM_CATEGORY_HARASSMENT\",\"probability\": \"NEGLIGIBLE\"}]}]}\n",
    "\n",
);

/// Modelled on a gemini-2.5-flash `alt=sse` answer with a function call: one event
/// carrying the whole `functionCall`, its `thoughtSignature`, `finishMessage`,
/// `usageMetadata` (with thoughts), `modelVersion` and `responseId`.
const FUNCTION_CALL_STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"getWeather\",\"args\": {\"location\": \"Kyoto\"}},\"thoughtSignature\": \"CiQBcsjafA8xVq+example/signature==\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0,\"finishMessage\": \"Model generated function call(s).\"}],\"usageMetadata\": {\"promptTokenCount\": 61,\"candidatesTokenCount\": 15,\"totalTokenCount\": 166,\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 61}],\"thoughtsTokenCount\": 90},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Xr4tZb1nQ0ma\"}\n\n";

/// Modelled on a gemini-2.5-flash `alt=sse` text answer: running `usageMetadata` on
/// every event, `finishReason` on the last.
const TEXT_STREAM: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Kyoto is\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 120,\"candidatesTokenCount\": 3,\"totalTokenCount\": 123},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Tq9YZc2xA1\"}\n\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" cloudy, 21°C.\\n\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 120,\"candidatesTokenCount\": 11,\"totalTokenCount\": 131},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Tq9YZc2xA1\"}\n\n",
);

/// Built from the documented shapes of a Gemini 3 stream with thought summaries
/// (`thought: true` parts, thinking guide) and parallel calls (signature on the
/// first `functionCall` only, thought-signatures guide).
const THINKING_PARALLEL_STREAM: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"**Two cities**\\n\\nI need both temperatures.\",\"thought\":true}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":40,\"totalTokenCount\":40},\"modelVersion\":\"gemini-3-flash-preview\",\"responseId\":\"r3par\"}\n\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Checking both.\"},{\"functionCall\":{\"name\":\"get_current_temperature\",\"args\":{\"location\":\"Paris\"}},\"thoughtSignature\":\"SIG_A\"},{\"functionCall\":{\"name\":\"get_current_temperature\",\"args\":{\"location\":\"London\"}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":40,\"candidatesTokenCount\":30,\"thoughtsTokenCount\":25,\"totalTokenCount\":95},\"modelVersion\":\"gemini-3-flash-preview\",\"responseId\":\"r3par\"}\n\n",
);

fn translate(pieces: &[&[u8]], include_usage: bool) -> Result<Vec<String>, StreamFault> {
    let provider = provider();
    let mut translator = stream_translator(&ctx(&provider, FLASH_25), include_usage);
    let mut out = Vec::new();
    for piece in pieces {
        translator.feed(piece, &mut out)?;
    }
    translator.finish(&mut out)?;
    Ok(out)
}

fn chunks(stream: &str, include_usage: bool) -> Vec<Value> {
    translate(&[stream.as_bytes()], include_usage)
        .expect("stream translates")
        .iter()
        .map(|c| {
            if c == "[DONE]" {
                Value::String(c.clone())
            } else {
                crate::json_value::from_str(c).expect("chunk is JSON")
            }
        })
        .collect()
}

fn chunk(id: &str, delta: Value, finish: Value) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
           "model": "my-gemini",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

#[test]
fn golden_documented_story_stream() {
    let id = "chatcmpl-req_0123abcd";
    assert_eq!(
        chunks(STORY_STREAM, true),
        vec![
            chunk(id, json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(id, json!({"content": "Two cats lived in a sunny"}), Value::Null),
            chunk(id, json!({"content": " café by the river; the elder was called 小猫.\n\n"}), Value::Null),
            chunk(id, json!({"content": "They napped all afternoon. ☀️"}), Value::Null),
            chunk(id, json!({}), json!("stop")),
            // No usage metadata was sent, so there is no usage chunk to give.
            json!("[DONE]"),
        ]
    );
}

#[test]
fn golden_function_call_stream() {
    let id = "chatcmpl-Xr4tZb1nQ0ma";
    assert_eq!(
        chunks(FUNCTION_CALL_STREAM, true),
        vec![
            chunk(id, json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(
                id,
                json!({"tool_calls": [{
                    "index": 0, "id": "call_Xr4tZb1nQ0ma_0", "type": "function",
                    "function": {"name": "getWeather", "arguments": "{\"location\":\"Kyoto\"}"},
                    "extra_content": {"google": {"thought_signature": "CiQBcsjafA8xVq+example/signature=="}}
                }]}),
                Value::Null
            ),
            chunk(id, json!({}), json!("tool_calls")),
            json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000,
                   "model": "my-gemini", "choices": [],
                   "usage": {"prompt_tokens": 61, "completion_tokens": 105, "total_tokens": 166,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 90}}}),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn golden_text_stream_with_running_usage() {
    let id = "chatcmpl-Tq9YZc2xA1";
    let with_usage = chunks(TEXT_STREAM, true);
    assert_eq!(
        with_usage[..4],
        [
            chunk(id, json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(id, json!({"content": "Kyoto is"}), Value::Null),
            chunk(id, json!({"content": " cloudy, 21°C.\n"}), Value::Null),
            chunk(id, json!({}), json!("stop")),
        ]
    );
    // The last usageMetadata counts, not the first.
    assert_eq!(with_usage[4]["usage"]["completion_tokens"], 11);
    assert_eq!(with_usage[4]["usage"]["total_tokens"], 131);
    assert_eq!(with_usage[5], "[DONE]");

    let without = chunks(TEXT_STREAM, false);
    assert_eq!(without.len(), 5);
    assert!(without.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn golden_thinking_and_parallel_calls_stream() {
    let id = "chatcmpl-r3par";
    assert_eq!(
        chunks(THINKING_PARALLEL_STREAM, false),
        vec![
            chunk(id, json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(id, json!({"reasoning_content": "**Two cities**\n\nI need both temperatures."}), Value::Null),
            chunk(id, json!({"content": "Checking both."}), Value::Null),
            chunk(
                id,
                json!({"tool_calls": [{
                "index": 0, "id": "call_r3par_0", "type": "function",
                "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"Paris\"}"},
                "extra_content": {"google": {"thought_signature": "SIG_A"}}}]}),
                Value::Null
            ),
            chunk(
                id,
                json!({"tool_calls": [{
                "index": 1, "id": "call_r3par_1", "type": "function",
                "function": {"name": "get_current_temperature", "arguments": "{\"location\":\"London\"}"}}]}),
                Value::Null
            ),
            chunk(id, json!({}), json!("tool_calls")),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn text_signature_rides_on_a_delta() {
    let stream = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"},{\"text\":\"\",\"thoughtSignature\":\"SIG_T\"}]},\"finishReason\":\"STOP\"}]}\n\n";
    let out = chunks(stream, false);
    assert_eq!(out[1]["choices"][0]["delta"], json!({"content": "Hi"}));
    assert_eq!(out[2]["choices"][0]["delta"], json!({"extra_content": {"google": {"thought_signature": "SIG_T"}}}));
    assert_eq!(out[3]["choices"][0]["finish_reason"], "stop");
}

const ALL_STREAMS: [&str; 4] = [STORY_STREAM, FUNCTION_CALL_STREAM, TEXT_STREAM, THINKING_PARALLEL_STREAM];

#[test]
fn every_two_way_split_gives_identical_chunks() {
    for stream in ALL_STREAMS {
        let bytes = stream.as_bytes();
        let whole = translate(&[bytes], true).unwrap();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(translate(&[a, b], true).unwrap(), whole, "split at byte {cut}");
        }
    }
}

#[test]
fn byte_at_a_time_gives_identical_chunks() {
    for stream in ALL_STREAMS {
        let bytes = stream.as_bytes();
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(translate(&pieces, true).unwrap(), translate(&[bytes], true).unwrap());
    }
}

#[test]
fn every_chunk_shares_id_created_model_and_object() {
    for stream in ALL_STREAMS {
        let out = chunks(stream, true);
        let first = &out[0];
        for chunk in out.iter().filter(|c| c.is_object()) {
            for key in ["id", "created", "model", "object"] {
                assert_eq!(chunk[key], first[key], "{key}");
            }
        }
        assert_eq!(out.last().unwrap(), "[DONE]");
    }
}

#[test]
fn errors_inside_the_stream_are_upstream_faults() {
    let error = "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\n";
    assert_eq!(
        translate(&[error.as_bytes()], false),
        Err(StreamFault::Upstream("The model is overloaded. (UNAVAILABLE)".into()))
    );
    let after_content = format!("{}{error}", &TEXT_STREAM[..TEXT_STREAM.find("\n\n").unwrap() + 2]);
    let provider = provider();
    let mut translator = stream_translator(&ctx(&provider, FLASH_25), false);
    let mut out = Vec::new();
    let result = translator.feed(after_content.as_bytes(), &mut out);
    assert!(matches!(result, Err(StreamFault::Upstream(_))));
    assert_eq!(out.len(), 2, "content before the error was already passed on");
}

// A blocked prompt arrives as the only event: promptFeedback, no candidates.
#[test]
fn blocked_prompt_in_a_stream_is_a_content_filter_fault() {
    let stream = "data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"},\"usageMetadata\": {\"promptTokenCount\": 7,\"totalTokenCount\": 7}}\n\n";
    match translate(&[stream.as_bytes()], true) {
        Err(StreamFault::Upstream(message)) => {
            assert!(message.starts_with("content_filter:"), "{message}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_stream_cut_before_its_finish_reason_is_malformed() {
    let first_event = &TEXT_STREAM[..TEXT_STREAM.find("\n\n").unwrap() + 2];
    assert!(matches!(translate(&[first_event.as_bytes()], true), Err(StreamFault::Malformed(_))));
    assert!(matches!(translate(&[], true), Err(StreamFault::Malformed(_))));
}

#[test]
fn garbage_and_overlong_lines_are_malformed() {
    assert!(matches!(translate(&[b"data: {not json\n\n"], false), Err(StreamFault::Malformed(_))));
    assert!(matches!(translate(&[b"data: [1,2]\n\n"], false), Err(StreamFault::Malformed(_))));
    let huge = vec![b'x'; 8 * 1024 * 1024 + 1];
    assert!(matches!(translate(&[b"data: ", &huge], false), Err(StreamFault::Malformed(_))));
}

#[test]
fn a_last_event_without_its_blank_line_still_counts() {
    let trimmed = TEXT_STREAM.trim_end();
    assert_eq!(translate(&[trimmed.as_bytes()], true).unwrap(), translate(&[TEXT_STREAM.as_bytes()], true).unwrap());
}

// ---------------------------------------------------------------------------
// Embeddings

// Modelled on the cookbook's Embeddings_REST `batchEmbedContents` request.
#[test]
fn golden_embeddings_request() {
    let provider = provider();
    let ctx = ctx(&provider, "gemini-embedding-001");
    let up = embeddings_request(&ctx, &json!(["What is the meaning of life?", "How does the brain work?"]), Some(256))
        .unwrap();
    assert_eq!(up.url, format!("{BASE_URL}/models/gemini-embedding-001:batchEmbedContents"));
    assert!(up.headers.contains(&("x-goog-api-key", "test-gemini-key".to_string())));
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001",
             "content": {"parts": [{"text": "What is the meaning of life?"}]},
             "outputDimensionality": 256},
            {"model": "models/gemini-embedding-001",
             "content": {"parts": [{"text": "How does the brain work?"}]},
             "outputDimensionality": 256}
        ]})
    );

    let single = embeddings_request(&ctx, &json!("Hello world"), None).unwrap();
    let body: Value = serde_json::from_slice(&single.body).unwrap();
    assert_eq!(
        body,
        json!({"requests": [{"model": "models/gemini-embedding-001",
                             "content": {"parts": [{"text": "Hello world"}]}}]})
    );

    for bad in [json!([]), json!([[1, 2, 3]]), json!(42), json!(["ok", null])] {
        let err = embeddings_request(&ctx, &bad, None).unwrap_err();
        assert_eq!(err.status, 400, "{bad}");
        assert_eq!(err.param.as_deref(), Some("input"));
    }
}

// Modelled on the cookbook's Embeddings_REST answers (`{"embeddings":[{"values"}]}`
// for a batch, `{"embedding":{"values"}}` for one).
#[test]
fn golden_embeddings_response() {
    let provider = provider();
    let ctx = ctx(&provider, "gemini-embedding-001");
    let batch = json!({"embeddings": [
        {"values": [-0.0223, -0.0045, 0.0133]},
        {"values": [0.0047, 0.0087, -0.0177]}
    ]});
    assert_eq!(
        embeddings_response(&ctx, batch.to_string().as_bytes()).unwrap(),
        json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [-0.0223, -0.0045, 0.0133]},
                {"object": "embedding", "index": 1, "embedding": [0.0047, 0.0087, -0.0177]}
            ],
            "model": "my-gemini",
            "usage": {"prompt_tokens": 0, "total_tokens": 0}
        })
    );
    let single = json!({"embedding": {"values": [0.5, -0.5]},
                        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}});
    let out = embeddings_response(&ctx, single.to_string().as_bytes()).unwrap();
    assert_eq!(out["data"][0]["embedding"], json!([0.5, -0.5]));
    assert_eq!(out["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    assert!(embeddings_response(&ctx, b"{}").is_err());
    assert!(embeddings_response(&ctx, b"{\"embeddings\":[{\"values\":[\"x\"]}]}").is_err());
    assert_eq!(
        embeddings_response(&ctx, b"{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":\"INVALID_ARGUMENT\"}}")
            .unwrap_err(),
        "bad (INVALID_ARGUMENT)"
    );
}

#[test]
fn an_endless_event_of_many_lines_is_malformed() {
    let provider = provider();
    let mut translator = stream_translator(&ctx(&provider, FLASH_25), false);
    let mut out = Vec::new();
    let line = format!("data: {}\n", "x".repeat(1024 * 1024));
    let mut result = Ok(());
    for _ in 0..40 {
        result = translator.feed(line.as_bytes(), &mut out);
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(StreamFault::Malformed(_))));
    assert!(out.is_empty());
}

#[test]
fn faults_and_ends_are_sticky() {
    let provider = provider();
    let mut translator = stream_translator(&ctx(&provider, FLASH_25), false);
    let mut out = Vec::new();
    let fault = translator.feed(b"data: {oops}\n\n", &mut out).unwrap_err();
    assert_eq!(translator.feed(TEXT_STREAM.as_bytes(), &mut out), Err(fault.clone()));
    assert_eq!(translator.finish(&mut out), Err(fault));
    assert!(out.is_empty());

    let mut translator = stream_translator(&ctx(&provider, FLASH_25), false);
    let mut out = Vec::new();
    translator.feed(TEXT_STREAM.as_bytes(), &mut out).unwrap();
    translator.finish(&mut out).unwrap();
    let done = out.len();
    translator.feed(TEXT_STREAM.as_bytes(), &mut out).unwrap();
    translator.finish(&mut out).unwrap();
    assert_eq!(out.len(), done, "nothing is translated after [DONE]");
}

#[test]
fn legacy_assistant_function_call_is_replayed() {
    let body = build(
        FLASH_25,
        chat(json!([
            {"role": "user", "content": "ping it"},
            {"role": "assistant", "content": null,
             "function_call": {"name": "ping", "arguments": "{\"host\":\"a\"}"}},
            {"role": "function", "name": "ping", "content": "pong"}
        ])),
    );
    assert_eq!(body["contents"][1]["parts"], json!([{"functionCall": {"name": "ping", "args": {"host": "a"}}}]));
    assert_eq!(
        body["contents"][2]["parts"],
        json!([{"functionResponse": {"name": "ping", "response": {"content": "pong"}}}])
    );
    let err = build_err(chat(json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "function_call": {"arguments": "{}"}}
    ])));
    assert_eq!(err.param.as_deref(), Some("messages[1].function_call.name"));
}

/// A whole Gemini response of the parts and the last event's metadata a stream carries.
fn stream_as_response(stream: &str) -> Value {
    let events: Vec<Value> = stream
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .map(|d| crate::json_value::from_str(d).unwrap())
        .collect();
    let mut whole = events.last().unwrap().clone();
    let parts: Vec<Value> = events
        .iter()
        .flat_map(|e| e["candidates"][0]["content"]["parts"].as_array().cloned().unwrap_or_default())
        .collect();
    whole["candidates"][0]["content"]["parts"] = Value::Array(parts);
    whole
}

#[test]
fn streamed_answers_assembled_equal_the_same_answers_unstreamed() {
    use crate::protocol::assemble::comparable;
    use crate::providers::{assemble_stream, ProviderAdapter, WholeAnswer};
    let provider = provider();
    let ctx = ctx(&provider, FLASH_25);
    for stream in [FUNCTION_CALL_STREAM, TEXT_STREAM, THINKING_PARALLEL_STREAM] {
        let assembled =
            assemble_stream(Gemini.stream_translator(&ctx, Default::default()), stream.as_bytes(), 1).unwrap();
        let whole = stream_as_response(stream).to_string();
        let Ok(WholeAnswer::Translated(whole)) = Gemini.chat_response(&ctx, whole.as_bytes()) else {
            panic!("a translated answer")
        };
        assert_eq!(comparable(assembled), comparable(whole), "{stream}");
    }
    let assembled =
        assemble_stream(Gemini.stream_translator(&ctx, Default::default()), THINKING_PARALLEL_STREAM.as_bytes(), 1);
    let message = assembled.unwrap()["choices"][0]["message"].clone();
    assert_eq!(message["reasoning_content"], "**Two cities**\n\nI need both temperatures.");
    assert_eq!(message["tool_calls"][0]["extra_content"]["google"]["thought_signature"], "SIG_A");
    assert_eq!(message["tool_calls"][1]["id"], "call_r3par_1");

    // A stream with no finish reason is cut; a blocked prompt is the client's 400, as unstreamed.
    let cut = TEXT_STREAM.split("\n\n").next().unwrap().to_string() + "\n\n";
    assert!(assemble_stream(Gemini.stream_translator(&ctx, Default::default()), cut.as_bytes(), 1).is_err());
    let blocked = "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}}\n\n";
    let failure =
        assemble_stream(Gemini.stream_translator(&ctx, Default::default()), blocked.as_bytes(), 1).unwrap_err();
    assert!(matches!(failure, crate::providers::AttemptFailure::Status { status: 400, .. }), "{failure:?}");
}

/// The countTokens reference's `generateContentRequest` form: the whole request,
/// system instruction and tools included, with the model named inside it.
#[test]
fn count_tokens_wraps_the_whole_generate_content_request() {
    use crate::providers::ProviderAdapter;
    let provider = provider();
    let request = parse(json!({"model": "my-gemini", "messages": [
        {"role": "system", "content": "You are a cat."}, {"role": "user", "content": "Hello there"}]}));
    let up = count_tokens_request(&ctx(&provider, FLASH_25), &request).unwrap();
    assert_eq!(up.url, format!("{BASE_URL}/models/{FLASH_25}:countTokens"));
    assert!(!up.stream);
    assert!(up.headers.contains(&("x-goog-api-key", "test-gemini-key".into())));
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        body,
        json!({"generateContentRequest": {"model": format!("models/{FLASH_25}"),
            "systemInstruction": {"parts": [{"text": "You are a cat."}]},
            "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}]}})
    );
    let answer = br#"{"totalTokens": 10, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}]}"#;
    assert_eq!(Gemini.count_tokens_response(answer), Ok(10));
}
