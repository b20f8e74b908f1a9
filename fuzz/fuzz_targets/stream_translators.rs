//! Every provider kind's stream translator (OpenAI passthrough, Azure, Anthropic,
//! Gemini, Bedrock), with and without keeping raw events for a native relay: any
//! bytes, split anywhere, with and without JSON output asked. The first byte picks the
//! kind, the split, `raw` and `json_output`.
//! The whole body is also assembled into one answer (a long JSON answer streamed upstream),
//! and read as the Anthropic message a thread keeps.
#![no_main]
use edge_ai_gateway::config::{Provider, ProviderKind};
use edge_ai_gateway::dialects::anthropic_thread::MessageAssembler;
use edge_ai_gateway::providers::{adapter, assemble_stream, AttemptContext, StreamWants};
use libfuzzer_sys::fuzz_target;

fn provider(kind: ProviderKind) -> Provider {
    Provider {
        kind,
        base_url: "https://provider.example/v1".into(),
        api_key_secret: Some("KEY".into()),
        region: "us".into(),
        location_hint: None,
        limits: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let kind = match selector % 5 {
        0 => ProviderKind::Openai,
        1 => ProviderKind::AzureOpenai { api_version: "2024-10-21".into() },
        2 => ProviderKind::Anthropic,
        3 => ProviderKind::Gemini,
        _ => ProviderKind::Bedrock { aws_region: "us-east-1".into() },
    };
    let wants = StreamWants { raw: selector & 0x08 != 0, json_output: selector & 0x04 != 0 };
    let split = usize::from(selector >> 4).max(1) * 7;
    let provider = provider(kind);
    let ctx = AttemptContext {
        provider: &provider,
        upstream_model: "upstream-model",
        public_model: "public-model",
        api_key: Some("secret-key"),
        now_ms: 1_700_000_000_000,
        request_id: "req_fuzz",
    };
    let mut translator = adapter(&provider.kind).stream_translator(&ctx, wants);
    let (mut out, mut raw) = (Vec::new(), Vec::new());
    // A message thread keeps the Anthropic message a client's stream makes, natively relayed
    // bytes included: the same bytes, read as that.
    let mut kept = MessageAssembler::default();
    for chunk in body.chunks(split) {
        kept.feed(chunk);
        if translator.feed(chunk, &mut out).is_err() {
            return;
        }
        translator.take_raw(&mut raw);
        out.clear();
        raw.clear();
    }
    let _ = kept.finished();
    let _ = translator.finish(&mut out);
    translator.take_raw(&mut raw);
    let _ = assemble_stream(adapter(&provider.kind).stream_translator(&ctx, StreamWants { raw: false, ..wants }),
        body, 1 + u64::from(selector & 1));
});
