//! `streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk` payloads.
//!
//! Each Gemini event is a whole `GenerateContentResponse` carrying the next few
//! parts. Text and thought parts become content and `reasoning_content` deltas as
//! they arrive; a `functionCall` part arrives complete, so it becomes one complete
//! tool-call delta with the next index. Gemini repeats `usageMetadata` (and, in older
//! models, `finishReason`) on many events, so both are remembered and only sent when
//! the body ends: the finish chunk, the usage chunk, then `[DONE]`.

use super::response::{
    block_reason, blocked_prompt_message, candidates, completion_id, describe_error, finish_reason, google_extra,
    part_kind, response_id, thought_signature, tool_call, usage, PartKind, ToolCallIds,
};
use crate::json;
use crate::protocol::chunk::StreamChunks;
use crate::providers::{AttemptContext, StreamFault, StreamTranslator};
use crate::sse::{SseDecoder, SseEvent};
use serde_json::{Map, Value};

/// Longest SSE line accepted. Gemini sends each response as one `data:` line, and
/// thought signatures and inline media can make one larger than the usual 1 MiB.
const MAX_LINE: usize = 8 * 1024 * 1024;
/// Most bytes buffered without completing an event (the decoder bounds each line,
/// this bounds an event made of many `data:` lines that never ends).
const MAX_PENDING: usize = 2 * MAX_LINE;

pub struct GeminiStreamTranslator {
    decoder: SseDecoder,
    request_id: String,
    /// Its `id` is set by the first event.
    chunks: StreamChunks,
    started: bool,
    include_usage: bool,
    call_ids: ToolCallIds,
    tool_calls: usize,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// Bytes fed since the last complete event.
    pending: usize,
    /// How the stream ended, once it has: later calls repeat a fault (or do nothing
    /// after a clean end) rather than translate past it.
    end: Option<Result<(), StreamFault>>,
}

/// The translator for one streamed attempt; `include_usage` is whether the client
/// asked for the final usage chunk (`stream_options.include_usage`).
pub fn stream_translator(ctx: &AttemptContext, include_usage: bool) -> GeminiStreamTranslator {
    GeminiStreamTranslator {
        decoder: SseDecoder::new(MAX_LINE),
        request_id: ctx.request_id.to_string(),
        chunks: StreamChunks { id: String::new(), created: ctx.now_ms / 1000, model: ctx.public_model.to_string() },
        started: false,
        include_usage,
        call_ids: ToolCallIds::for_response(None),
        tool_calls: 0,
        finish_reason: None,
        usage: None,
        pending: 0,
        end: None,
    }
}

impl StreamTranslator for GeminiStreamTranslator {
    fn prompt_tokens(&self) -> Option<u64> {
        self.usage.as_ref()?.get("prompt_tokens")?.as_u64().filter(|&n| n > 0)
    }

    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        if let Some(end) = &self.end {
            return end.clone();
        }
        let result = self.feed_bytes(bytes, out);
        if result.is_err() {
            self.end = Some(result.clone());
        }
        result
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        if let Some(end) = &self.end {
            return end.clone();
        }
        let result = self.finish_stream(out);
        self.end = Some(result.clone());
        result
    }
}

impl GeminiStreamTranslator {
    fn feed_bytes(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        let mut events = Vec::new();
        self.decoder.feed(bytes, &mut events).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        if events.is_empty() {
            self.pending = self.pending.saturating_add(bytes.len());
            if self.pending > MAX_PENDING {
                return Err(StreamFault::Malformed(format!("a Gemini stream event grew past {MAX_PENDING} bytes")));
            }
        } else {
            self.pending = 0;
        }
        self.on_events(&events, out)
    }

    fn finish_stream(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let mut events = Vec::new();
        self.decoder.finish(&mut events);
        self.on_events(&events, out)?;
        let Some(reason) = self.finish_reason.take() else {
            return Err(StreamFault::Malformed("the Gemini stream ended before a finish reason".into()));
        };
        let reason = finish_reason(Some(&reason), self.tool_calls > 0);
        out.push(self.chunks.delta(json!({}), Some(reason)));
        if self.include_usage {
            if let Some(usage) = self.usage.take() {
                out.push(self.chunks.usage(usage));
            }
        }
        out.push("[DONE]".into());
        Ok(())
    }

    fn on_events(&mut self, events: &[SseEvent], out: &mut Vec<String>) -> Result<(), StreamFault> {
        events.iter().try_for_each(|event| self.on_event(&event.data, out))
    }

    fn on_event(&mut self, data: &str, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let data = data.trim();
        // Gemini sends no `[DONE]`; one from a compatible proxy means nothing more.
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let response: Value = crate::json_value::from_str(data)
            .map_err(|e| StreamFault::Malformed(format!("a Gemini stream event is not JSON: {e}")))?;
        if !response.is_object() {
            return Err(StreamFault::Malformed("a Gemini stream event is not a JSON object".into()));
        }
        if let Some(error) = response.get("error") {
            return Err(StreamFault::Upstream(describe_error(error)));
        }
        let candidates = candidates(&response);
        if candidates.is_empty() {
            if let Some(reason) = block_reason(&response) {
                return Err(StreamFault::Upstream(blocked_prompt_message(reason)));
            }
        }
        self.start(response_id(&response), out);
        if let Some(metadata) = response.get("usageMetadata") {
            self.usage = Some(usage(Some(metadata)));
        }
        // Streams carry one candidate (`n` > 1 is refused for streams).
        if let Some(candidate) = candidates.first() {
            let parts = candidate
                .get("content")
                .and_then(|c| c.get("parts"))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for part in parts {
                if let Some(delta) = self.delta(part) {
                    out.push(self.chunks.delta(Value::Object(delta), None));
                }
            }
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        Ok(())
    }

    /// The first event fixes the chunk id and opens the stream with the role delta.
    fn start(&mut self, response_id: Option<&str>, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        self.chunks.id = completion_id(response_id, &self.request_id);
        self.call_ids = ToolCallIds::for_response(response_id);
        out.push(self.chunks.delta(json!({ "role": "assistant", "content": "" }), None));
    }

    /// The delta for one part, or `None` when it carries nothing a client can use.
    fn delta(&mut self, part: &Value) -> Option<Map<String, Value>> {
        let signature = thought_signature(part);
        let mut delta = Map::new();
        match part_kind(part) {
            PartKind::FunctionCall { name, args, id } => {
                let mut call = tool_call(&mut self.call_ids, name, args, id, signature);
                call.insert("index".into(), self.tool_calls.into());
                self.tool_calls += 1;
                delta.insert("tool_calls".into(), json!([call]));
                return Some(delta);
            }
            PartKind::Thought(text) if !text.is_empty() => {
                delta.insert("reasoning_content".into(), text.into());
            }
            PartKind::Text(text) if !text.is_empty() => {
                delta.insert("content".into(), text.into());
            }
            _ => {}
        }
        if let Some(signature) = signature {
            delta.insert("extra_content".into(), google_extra(signature));
        }
        (!delta.is_empty()).then_some(delta)
    }
}
