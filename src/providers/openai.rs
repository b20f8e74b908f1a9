//! Adapter for OpenAI and every OpenAI-compatible provider: builds the upstream
//! request and watches the answer (usage, end of stream, in-band errors). No I/O.

use crate::config::{Provider, ProviderKind};
use crate::error::GatewayError;
use crate::protocol::openai::{ChatRequest, ChunkProbe, ErrorProbe, StreamOptions, Usage};
use crate::providers::UpstreamRequest;

pub const USER_AGENT: &str = concat!("edge-ai-gateway/", env!("CARGO_PKG_VERSION"));

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

    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", if stream { "text/event-stream" } else { "application/json" }.to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    headers.extend(auth_header(provider, api_key));
    Ok(UpstreamRequest { url: endpoint_url(provider, upstream_model, "chat/completions"), headers, body, stream })
}

/// An embeddings request for OpenAI-compatible and Azure endpoints.
pub fn embeddings_request(
    provider: &Provider,
    upstream_model: &str,
    request: &crate::protocol::openai::EmbeddingsRequest,
    api_key: Option<&str>,
) -> Result<UpstreamRequest, GatewayError> {
    let mut body = request.clone();
    body.model = upstream_model.to_string();
    let body = serde_json::to_vec(&body).map_err(|e| GatewayError::internal(e.to_string()))?;
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "application/json".to_string()),
        ("user-agent", USER_AGENT.to_string()),
    ];
    headers.extend(auth_header(provider, api_key));
    Ok(UpstreamRequest { url: endpoint_url(provider, upstream_model, "embeddings"), headers, body, stream: false })
}

/// `{base_url}/{operation}` for OpenAI-compatible APIs; Azure addresses the
/// deployment in the path and pins the API version in the query.
pub fn endpoint_url(provider: &Provider, upstream_model: &str, operation: &str) -> String {
    match provider.kind {
        ProviderKind::AzureOpenai => format!(
            "{}/openai/deployments/{}/{operation}?api-version={}",
            provider.base_url,
            percent_encode(upstream_model),
            percent_encode(provider.api_version.as_deref().unwrap_or_default()),
        ),
        _ => format!("{}/{operation}", provider.base_url),
    }
}

/// Azure takes its key in `api-key`; everyone else in a bearer token.
pub fn auth_header(provider: &Provider, api_key: Option<&str>) -> Option<(&'static str, String)> {
    let key = api_key?;
    Some(match provider.kind {
        ProviderKind::AzureOpenai => ("api-key", key.to_string()),
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

/// What to do with one event of an upstream stream.
#[derive(Debug, Clone, PartialEq)]
pub enum EventVerdict {
    Forward,
    /// Not for the client: a usage chunk it did not ask for, or an unparseable event.
    Drop,
    /// The provider reported an error inside the stream.
    UpstreamError(String),
}

/// How a stream ended, from what was seen of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `[DONE]` arrived.
    Complete,
    /// A finish_reason arrived but no `[DONE]`: finish the stream for the client.
    MissingDone,
    /// Cut before the answer finished: the client must get an error event, never a clean end.
    Interrupted,
}

#[derive(Debug, Default)]
pub struct StreamObserver {
    pub usage: Option<Usage>,
    /// Something the client must not lose has been seen: content, a tool call, a
    /// finish reason or usage. Before that, the attempt can still fail over.
    pub committed: bool,
    pub finish_reason_seen: bool,
    pub done_seen: bool,
    pub malformed_events: u32,
    client_wants_usage: bool,
    /// Collects tool calls when the request offered tools (for tool-call validity).
    pub tool_calls: Option<crate::health::tool_calls::ToolCallCollector>,
}

impl StreamObserver {
    pub fn new(client_wants_usage: bool) -> Self {
        Self { client_wants_usage, ..Self::default() }
    }

    pub fn observe(&mut self, data: &str) -> EventVerdict {
        if data.trim() == "[DONE]" {
            self.done_seen = true;
            self.committed = true;
            return EventVerdict::Forward;
        }
        let chunk: ChunkProbe = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(_) => {
                self.malformed_events += 1;
                return EventVerdict::Drop;
            }
        };
        if let Some(error) = chunk.error {
            return EventVerdict::UpstreamError(describe_error(&error));
        }
        let choices = chunk.choices.unwrap_or_default();
        let usage_only = chunk.usage.is_some() && choices.is_empty();
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
            self.committed = true;
        }
        for choice in &choices {
            if choice.finish_reason.is_some() {
                self.finish_reason_seen = true;
                self.committed = true;
            }
            if let (Some(collector), Some(calls)) =
                (self.tool_calls.as_mut(), choice.delta.as_ref().and_then(|d| d.tool_calls.as_ref()))
            {
                for (position, call) in calls.iter().enumerate() {
                    let function = call.function.as_ref();
                    collector.push(
                        call.index.unwrap_or(position),
                        function.and_then(|f| f.name.as_deref()),
                        function.and_then(|f| f.arguments.as_deref()),
                    );
                }
            }
            if let Some(delta) = &choice.delta {
                let has_text = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.is_empty());
                if has_text(&delta.content)
                    || has_text(&delta.refusal)
                    || has_text(&delta.reasoning_content)
                    || delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
                {
                    self.committed = true;
                }
            }
        }
        if usage_only && !self.client_wants_usage {
            EventVerdict::Drop
        } else {
            EventVerdict::Forward
        }
    }

    pub fn end(&self) -> StreamEnd {
        if self.done_seen {
            StreamEnd::Complete
        } else if self.finish_reason_seen {
            StreamEnd::MissingDone
        } else {
            StreamEnd::Interrupted
        }
    }
}

/// A provider error object as one line of text (to be scrubbed before it leaves).
pub fn describe_error(error: &ErrorProbe) -> String {
    let message = error.message.as_deref().unwrap_or("no message");
    match error.code.as_ref().and_then(|c| c.as_str().map(str::to_string).or_else(|| Some(c.to_string()))) {
        Some(code) if code != "null" => format!("{message} ({code})"),
        _ => message.to_string(),
    }
}

/// The in-band error event that ends a stream which cannot be completed.
pub fn stream_error_event(code: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}});
    let mut out = Vec::new();
    crate::sse::encode(None, &body.to_string(), &mut out);
    out
}

/// OpenAI, Azure OpenAI and every OpenAI-compatible API (the canonical wire format).
pub struct OpenAi;

impl super::ProviderAdapter for OpenAi {
    fn wire(&self) -> super::Wire {
        super::Wire::OpenAiChat
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
        body: &[u8],
    ) -> Result<super::WholeAnswer, super::AttemptFailure> {
        // Checked as a completion here; relayed as the provider's own bytes.
        serde_json::from_slice::<crate::protocol::openai::CompletionProbe>(body)
            .map_err(|_| super::AttemptFailure::InvalidResponse("the answer is not a chat completion"))?;
        Ok(super::WholeAnswer::Canonical)
    }

    fn stream_translator(&self, ctx: &super::AttemptContext, _keep_raw: bool) -> Box<dyn super::StreamTranslator> {
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
        if provider.kind == ProviderKind::AzureOpenai {
            return None;
        }
        let mut headers = vec![("accept", "application/json".to_string())];
        headers.extend(auth_header(provider, api_key));
        Some(super::ProbeRequest { url: endpoint_url(provider, "", "models"), headers })
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
            api_version: None,
            aws_region: None,
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
            kind: ProviderKind::AzureOpenai,
            base_url: "https://my-resource.openai.azure.com".into(),
            api_key_secret: Some("AZURE_KEY".into()),
            region: "eu".into(),
            api_version: Some("2024-10-21".into()),
            aws_region: None,
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

    const PREAMBLE: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const CONTENT: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
    const FINISH: &str =
        r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    const USAGE: &str = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;

    #[test]
    fn preamble_does_not_commit_content_does() {
        let mut obs = StreamObserver::new(false);
        assert_eq!(obs.observe(PREAMBLE), EventVerdict::Forward);
        assert!(!obs.committed);
        obs.observe(CONTENT);
        assert!(obs.committed);
    }

    #[test]
    fn tool_call_delta_commits() {
        let mut obs = StreamObserver::new(false);
        obs.observe(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#);
        assert!(obs.committed);
    }

    #[test]
    fn usage_chunk_is_dropped_unless_asked_for_and_always_counted() {
        let mut obs = StreamObserver::new(false);
        assert_eq!(obs.observe(USAGE), EventVerdict::Drop);
        assert_eq!(obs.usage.unwrap().total_tokens, 4);
        let mut obs = StreamObserver::new(true);
        assert_eq!(obs.observe(USAGE), EventVerdict::Forward);
    }

    #[test]
    fn stream_end_classification() {
        let mut obs = StreamObserver::new(false);
        for e in [PREAMBLE, CONTENT] {
            obs.observe(e);
        }
        assert_eq!(obs.end(), StreamEnd::Interrupted);
        obs.observe(FINISH);
        assert_eq!(obs.end(), StreamEnd::MissingDone);
        obs.observe("[DONE]");
        assert_eq!(obs.end(), StreamEnd::Complete);
    }

    #[test]
    fn error_events_and_malformed_events() {
        let mut obs = StreamObserver::new(false);
        let verdict = obs.observe(r#"{"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}"#);
        assert_eq!(verdict, EventVerdict::UpstreamError("overloaded (overloaded)".into()));
        assert_eq!(obs.observe("{not json}"), EventVerdict::Drop);
        assert_eq!(obs.malformed_events, 1);
        assert!(!obs.committed);
    }

    #[test]
    fn error_event_is_openai_shaped_sse() {
        let bytes = stream_error_event("upstream_stream_interrupted", "upstream stream ended unexpectedly");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("data: {\"error\":"));
        assert!(text.ends_with("\n\n"));
        assert!(text.contains("\"code\":\"upstream_stream_interrupted\""));
    }
}
