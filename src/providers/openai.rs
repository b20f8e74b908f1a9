//! Adapter for OpenAI and every OpenAI-compatible provider: builds the upstream
//! request (the answer is already canonical; `protocol::stream` watches it). No I/O.

mod input_tokens;

use crate::config::{Provider, ProviderKind};
use crate::error::GatewayError;
use crate::protocol::openai::{ChatRequest, EmbeddingsRequest, StreamOptions};
use crate::protocol::USER_AGENT;
use crate::providers::UpstreamRequest;

/// The upstream request for one attempt. Only the provider's own auth header and
/// protocol headers are sent: nothing of the client's headers leaves the gateway.
pub fn chat_request(
    provider: &Provider,
    upstream_model: &str,
    request: &mut ChatRequest,
    api_key: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let stream = request.is_stream();
    let client_model = std::mem::replace(&mut request.model, upstream_model.to_string());
    let client_stream_options = request.stream_options.clone();
    if stream {
        // Always ask for usage so every stream can be accounted; the extra chunk is
        // dropped on the way back when the client did not ask for it.
        let options = request.stream_options.get_or_insert_with(StreamOptions::default);
        options.include_usage = Some(true);
    }
    let body = serde_json::to_vec(&*request);
    request.model = client_model;
    request.stream_options = client_stream_options;
    let body = body.map_err(|e| GatewayError::internal(format!("could not encode the upstream request: {e}")))?;
    let headers = request_headers(provider, api_key, stream);
    Ok(UpstreamRequest { url: endpoint_url(provider, upstream_model, "chat/completions"), headers, body, stream })
}

/// A JSON request's headers: the provider's own auth and the protocol's, nothing of the client's.
fn request_headers(provider: &Provider, api_key: Option<&str>, stream: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "text/event-stream" } else { "application/json" }.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    headers.extend(auth_header(provider, api_key));
    headers
}

/// An embeddings request for OpenAI-compatible and Azure endpoints.
pub fn embeddings_request(
    provider: &Provider,
    upstream_model: &str,
    request: &EmbeddingsRequest,
    api_key: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let mut body = request.clone();
    body.model = upstream_model.to_string();
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    let headers = request_headers(provider, api_key, false);
    Ok(UpstreamRequest { url: endpoint_url(provider, upstream_model, "embeddings"), headers, body, stream: false })
}

/// `{base_url}/{operation}` for an operation of the whole API rather than of one
/// model (`models`, `responses/input_tokens`); Azure serves only its deployments'
/// operations, so it has none.
fn api_root_url(provider: &Provider, operation: &str) -> Option<String> {
    match provider.kind {
        ProviderKind::AzureOpenai { .. } => None,
        _ => Some(format!("{}/{operation}", provider.base_url)),
    }
}

/// `{base_url}/{operation}` for OpenAI-compatible APIs; Azure addresses the
/// deployment in the path and pins the API version in the query.
pub fn endpoint_url(provider: &Provider, upstream_model: &str, operation: &str) -> String {
    match &provider.kind {
        ProviderKind::AzureOpenai { api_version } => format!(
            "{}/openai/deployments/{}/{operation}?api-version={}",
            provider.base_url,
            percent_encode(upstream_model),
            percent_encode(api_version),
        ),
        _ => format!("{}/{operation}", provider.base_url),
    }
}

/// Azure takes its key in `api-key`; everyone else in a bearer token.
pub fn auth_header(provider: &Provider, api_key: Option<&str>) -> Option<(&'static str, String)> {
    let key = api_key?;
    Some(match provider.kind {
        ProviderKind::AzureOpenai { .. } => ("api-key", key.to_string()),
        _ => ("authorization", format!("Bearer {key}")),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for one path segment or query value).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// OpenAI, Azure OpenAI and every OpenAI-compatible API (the canonical wire format).
pub struct OpenAi;

impl super::ProviderAdapter for OpenAi {
    fn wire(&self) -> super::Wire {
        super::Wire::OpenAiChat
    }

    fn quota(&self, header: super::quota::Headers, now_ms: u64) -> super::quota::QuotaReading {
        super::quota::openai(header, now_ms)
    }

    fn answer_headers(&self) -> super::HeaderNames {
        super::quota::OPENAI_HEADERS
    }

    fn chat_request(
        &self,
        ctx: &super::AttemptContext,
        request: &mut ChatRequest,
        _max_output_tokens: Option<u64>,
    ) -> Result<UpstreamRequest, GatewayError> {
        chat_request(ctx.provider, ctx.upstream_model, request, ctx.api_key)
    }

    fn chat_response(
        &self,
        _ctx: &super::AttemptContext,
        _body: &[u8],
    ) -> Result<super::WholeAnswer, super::AttemptFailure> {
        // Relayed as the provider's own bytes (checked when its usage is read).
        Ok(super::WholeAnswer::Canonical)
    }

    /// OpenAI's `responses/input_tokens`, over the Responses body the request would be.
    /// Azure deployments have no count; an OpenAI-compatible API without one answers
    /// 404, which the count reads as "this target cannot count".
    fn count_tokens_request(
        &self,
        ctx: &super::AttemptContext,
        count: super::TokenCount,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        let url = api_root_url(ctx.provider, "responses/input_tokens")?;
        let body = serde_json::to_vec(&input_tokens::body(count.request, ctx.upstream_model));
        Some(body.map_err(|e| GatewayError::internal(e.to_string())).map(|body| UpstreamRequest {
            url,
            headers: request_headers(ctx.provider, ctx.api_key, false),
            body,
            stream: false,
        }))
    }

    fn stream_translator(
        &self,
        ctx: &super::AttemptContext,
        _wants: super::StreamWants,
    ) -> Box<dyn super::StreamTranslator> {
        Box::new(super::passthrough::OpenAiPassthrough::renaming(ctx.upstream_model, ctx.public_model))
    }

    fn embeddings_request(
        &self,
        ctx: &super::AttemptContext,
        request: &crate::protocol::openai::EmbeddingsRequest,
    ) -> Option<Result<UpstreamRequest, GatewayError>> {
        Some(embeddings_request(ctx.provider, ctx.upstream_model, request, ctx.api_key))
    }

    fn probe_request(&self, provider: &Provider, api_key: Option<&str>) -> Option<super::ProbeRequest> {
        // `GET /models` is free on OpenAI-compatible APIs; Azure lists no deployments there.
        let url = api_root_url(provider, "models")?;
        let mut headers = vec![("accept", "application/json".to_string())];
        headers.extend(auth_header(provider, api_key));
        Some(super::ProbeRequest { url, headers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Provider {
        Provider {
            kind: ProviderKind::Openai,
            base_url: "https://api.example.com/v1".into(),
            api_key_secret: Some("EXAMPLE_KEY".into()),
            region: "us".into(),
            location_hint: None,
            limits: Default::default(),
        }
    }

    fn request(stream: bool, include_usage: Option<bool>) -> ChatRequest {
        let mut body = serde_json::json!({"model": "public-name", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5});
        if stream {
            body["stream"] = true.into();
        }
        if let Some(flag) = include_usage {
            body["stream_options"] = serde_json::json!({"include_usage": flag});
        }
        ChatRequest::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn upstream_request_uses_upstream_model_and_provider_auth_only() {
        let mut req = request(false, None);
        let up = chat_request(&provider(), "gpt-4o-mini-2024", &mut req, Some("sk-secret")).unwrap();
        assert_eq!(up.url, "https://api.example.com/v1/chat/completions");
        let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["model"], "gpt-4o-mini-2024");
        assert_eq!(body["temperature"], 0.5);
        assert!(body.get("stream_options").is_none());
        assert!(up.headers.contains(&("authorization", "Bearer sk-secret".to_string())));
        assert_eq!(up.headers.len(), 4);
        // The client's request is left as it was, for the next attempt.
        assert_eq!(req.model, "public-name");
    }

    #[test]
    fn azure_addresses_the_deployment_with_api_version_and_api_key() {
        let azure = Provider {
            kind: ProviderKind::AzureOpenai { api_version: "2024-10-21".into() },
            base_url: "https://my-resource.openai.azure.com".into(),
            api_key_secret: Some("AZURE_KEY".into()),
            region: "eu".into(),
            location_hint: None,
            limits: Default::default(),
        };
        let mut req = request(true, None);
        let up = chat_request(&azure, "gpt-4o mini/eu", &mut req, Some("azure-secret")).unwrap();
        assert_eq!(
            up.url,
            "https://my-resource.openai.azure.com/openai/deployments/gpt-4o%20mini%2Feu/chat/completions?api-version=2024-10-21"
        );
        assert!(up.headers.contains(&("api-key", "azure-secret".to_string())));
        assert!(!up.headers.iter().any(|(name, _)| *name == "authorization"));
    }

    #[test]
    fn streams_always_ask_for_usage_upstream() {
        let mut req = request(true, None);
        let up = chat_request(&provider(), "m", &mut req, None).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert!(!up.headers.iter().any(|(name, _)| *name == "authorization"));
        assert!(req.stream_options.is_none());
    }

    /// SSE of the chunks, as OpenAI streams them.
    fn sse(chunks: &[serde_json::Value]) -> Vec<u8> {
        let mut out = String::new();
        for chunk in chunks {
            out.push_str(&format!("data: {chunk}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        out.into_bytes()
    }

    fn assemble(chunks: &[serde_json::Value], n: u64) -> Result<serde_json::Value, super::super::AttemptFailure> {
        let provider = provider();
        let ctx = super::super::AttemptContext {
            provider: &provider,
            upstream_model: "gpt-4o-mini",
            public_model: "public-name",
            api_key: None,
            now_ms: 1_694_268_190_000,
            request_id: "req_1",
        };
        super::super::assemble_stream(
            super::super::ProviderAdapter::stream_translator(&OpenAi, &ctx, Default::default()),
            &sse(chunks),
            n,
        )
    }

    /// One chunk as OpenAI's streaming reference shows them.
    fn chunk(choices: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices": choices})
    }

    fn usage_chunk(prompt: u64, completion: u64) -> serde_json::Value {
        let mut chunk = chunk(serde_json::json!([]));
        chunk["usage"] = serde_json::json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
        chunk
    }

    /// The same answer unstreamed (as the Chat Completions reference shows it, with the public model).
    fn whole(choices: serde_json::Value, prompt: u64, completion: u64) -> serde_json::Value {
        serde_json::json!({"id": "chatcmpl-123", "object": "chat.completion", "created": 1694268190,
            "model": "public-name", "system_fingerprint": "fp_44709d6fcb", "choices": choices,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    }

    #[test]
    fn a_streamed_answer_assembled_equals_the_same_answer_unstreamed() {
        use serde_json::json;
        let delta = |index: u64, delta: serde_json::Value, finish: serde_json::Value| json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish});
        let null = serde_json::Value::Null;
        // The streaming reference's example, with the usage chunk `include_usage` adds.
        let text = [
            chunk(json!([delta(0, json!({"role": "assistant", "content": ""}), null.clone())])),
            chunk(json!([delta(0, json!({"content": "Hello"}), null.clone())])),
            chunk(json!([delta(0, json!({"content": " there, how may I assist you today?"}), null.clone())])),
            chunk(json!([delta(0, json!({}), json!("stop"))])),
            usage_chunk(9, 12),
        ];
        let expected = whole(
            json!([{"index": 0, "logprobs": null, "finish_reason": "stop", "message":
                {"role": "assistant", "content": "Hello there, how may I assist you today?", "refusal": null}}]),
            9,
            12,
        );
        assert_eq!(assemble(&text, 1).unwrap(), expected);

        // The function-calling guide's streamed call: arguments split over many events.
        let mut calls = vec![chunk(json!([delta(
            0,
            json!({"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]}),
            null.clone()
        )]))];
        for piece in ["{\"", "location", "\":\"", "Paris", ",", " France", "\"}"] {
            calls.push(chunk(json!([delta(
                0,
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                null.clone()
            )])));
        }
        calls.push(chunk(json!([delta(0, json!({}), json!("tool_calls"))])));
        calls.push(usage_chunk(20, 8));
        let expected = whole(
            json!([{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message":
                {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                    {"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}}]}}]),
            20,
            8,
        );
        assert_eq!(assemble(&calls, 1).unwrap(), expected);

        // n = 2: the choices' events interleave; each keeps its own text and finish reason.
        let two = [
            chunk(json!([delta(0, json!({"role": "assistant", "content": ""}), null.clone())])),
            chunk(json!([delta(1, json!({"role": "assistant", "content": ""}), null.clone())])),
            chunk(json!([delta(1, json!({"content": "Bonjour"}), null.clone())])),
            chunk(json!([delta(0, json!({"content": "Hello"}), null.clone())])),
            chunk(json!([delta(0, json!({}), json!("stop"))])),
            chunk(json!([delta(1, json!({}), json!("length"))])),
            usage_chunk(5, 4),
        ];
        let expected = whole(
            json!([
                {"index": 0, "logprobs": null, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello", "refusal": null}},
                {"index": 1, "logprobs": null, "finish_reason": "length", "message": {"role": "assistant", "content": "Bonjour", "refusal": null}}
            ]),
            5,
            4,
        );
        assert_eq!(assemble(&two, 2).unwrap(), expected);
        assert!(assemble(&two[..5], 2).is_err(), "the second choice never finished");
        let error = json!({"error": {"message": "overloaded", "code": "overloaded"}});
        let failure = assemble(&[text[0].clone(), text[1].clone(), error], 1).unwrap_err();
        assert_eq!(failure, super::super::AttemptFailure::StreamError("overloaded (overloaded)".into()));
    }
}
