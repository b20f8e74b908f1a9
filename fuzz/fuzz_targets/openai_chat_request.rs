//! The OpenAI chat request parser, and every provider's request builder on what it accepts.
#![no_main]
use edge_ai_gateway::config::{Provider, ProviderKind};
use edge_ai_gateway::dialects::{ClientDialect, OpenAiChat};
use edge_ai_gateway::protocol::openai::ChatRequest;
use edge_ai_gateway::providers::{adapter, AttemptContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = OpenAiChat.parse(data, &|_| None);
    let Ok(request) = ChatRequest::parse(data) else { return };
    for kind in [
        ProviderKind::Openai,
        ProviderKind::AzureOpenai { api_version: "2024-10-21".into() },
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Bedrock { aws_region: "us-east-1".into() },
    ] {
        let provider = Provider {
            kind,
            base_url: "https://provider.example/v1".into(),
            api_key_secret: Some("KEY".into()),
            region: "us".into(),
            location_hint: None,
            limits: Default::default(),
        };
        let ctx = AttemptContext {
            provider: &provider,
            upstream_model: "upstream-model",
            public_model: "public-model",
            api_key: Some("AKID:secret"),
            now_ms: 1_700_000_000_000,
            request_id: "req_fuzz",
        };
        let mut request = request.clone();
        let _ = adapter(&provider.kind).chat_request(&ctx, &mut request, Some(4096));
    }
});
