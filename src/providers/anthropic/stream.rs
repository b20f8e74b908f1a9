//! Anthropic's SSE event stream as canonical chunks (and, for native relaying,
//! the events themselves kept as they came).

use crate::json;
use crate::protocol::anthropic::{canonical_usage, finish_reason};
use crate::protocol::chunk::StreamChunks;
use crate::providers::common::{JsonAnswerText, JSON_TOOL};
use crate::providers::passthrough::ModelRename;
use crate::providers::{AttemptContext, StreamFault, StreamTranslator};
use crate::sse::{SseDecoder, SseEvent};
use serde_json::{Map, Value};

enum Block {
    Text,
    Tool,
    /// The JSON-output tool: its input streams out as content.
    JsonAnswer,
    Thinking {
        text: String,
        signature: String,
    },
    Other,
}

/// Anthropic's event stream as canonical chunks. Tool-use blocks get OpenAI tool
/// indexes 0, 1, 2… in order of appearance, whatever their Anthropic block index.
pub struct AnthropicStream {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    chunks: StreamChunks,
    blocks: Vec<(u64, Block, usize)>,
    next_tool: usize,
    /// The text, and whether the answer is JSON output carried by the JSON tool.
    json: JsonAnswerText,
    usage: Map<String, Value>,
    stopped: bool,
    /// Native Anthropic-to-Anthropic relaying only.
    raw: Option<RawRelay>,
}

/// The provider's events to forward: unchanged but for `message_start`'s model,
/// reported by its public name.
struct RawRelay {
    bytes: Vec<u8>,
    rename: Option<ModelRename>,
}

pub fn stream_translator(ctx: &AttemptContext, json_output: bool) -> AnthropicStream {
    AnthropicStream {
        decoder: SseDecoder::default(),
        events: Vec::new(),
        chunks: StreamChunks {
            id: format!("chatcmpl-{}", ctx.request_id),
            created: ctx.now_ms / 1000,
            model: ctx.public_model.to_string(),
        },
        blocks: Vec::new(),
        next_tool: 0,
        json: JsonAnswerText::new(json_output),
        usage: Map::new(),
        stopped: false,
        raw: None,
    }
}

impl AnthropicStream {
    /// Keeps a copy of every event as received (the model by its public name), for native relaying.
    pub fn keep_raw(mut self, ctx: &AttemptContext) -> Self {
        self.raw = Some(RawRelay { bytes: Vec::new(), rename: ModelRename::new(ctx.upstream_model, ctx.public_model) });
        self
    }

    fn block_mut(&mut self, index: u64) -> Option<&mut (u64, Block, usize)> {
        self.blocks.iter_mut().find(|(i, _, _)| *i == index)
    }

    fn on_event(&mut self, event: &SseEvent, out: &mut Vec<String>) -> Result<(), StreamFault> {
        let Ok(data) = crate::json_value::from_str::<Value>(&event.data) else { return Ok(()) };
        let kind = data.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or_default();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(id) = data.pointer("/message/id").and_then(Value::as_str) {
                    self.chunks.id = id.to_string();
                }
                if let Some(Value::Object(u)) = data.pointer("/message/usage") {
                    self.usage.extend(u.clone());
                }
                out.push(self.chunks.delta(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or_default();
                let (kind, tool) = match block.get("type").and_then(Value::as_str) {
                    Some("text") => (Block::Text, 0),
                    Some("tool_use") if block.get("name").and_then(Value::as_str) == Some(JSON_TOOL) => {
                        self.json.answering();
                        (Block::JsonAnswer, 0)
                    }
                    Some("tool_use") => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        out.push(self.chunks.delta(
                            json!({"tool_calls": [{"index": tool, "id": block.get("id"), "type": "function",
                                "function": {"name": block.get("name"), "arguments": ""}}]}),
                            None,
                        ));
                        (Block::Tool, tool)
                    }
                    Some("thinking") => (Block::Thinking { text: String::new(), signature: String::new() }, 0),
                    Some("redacted_thinking") => {
                        out.push(self.chunks.delta(json!({"thinking_blocks": [block]}), None));
                        (Block::Other, 0)
                    }
                    _ => (Block::Other, 0),
                };
                self.blocks.push((index, kind, tool));
            }
            "content_block_delta" => {
                let delta = data.get("delta").cloned().unwrap_or_default();
                let text = |f: &str| delta.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
                let chunk = match (delta.get("type").and_then(Value::as_str), self.block_mut(index)) {
                    (Some("text_delta"), _) => self.json.text(&text("text")).map(|t| json!({"content": t})),
                    (Some("input_json_delta"), Some((_, Block::JsonAnswer, _))) => {
                        Some(json!({"content": text("partial_json")}))
                    }
                    (Some("input_json_delta"), Some((_, Block::Tool, tool))) => {
                        Some(json!({"tool_calls": [{"index": *tool, "function": {"arguments": text("partial_json")}}]}))
                    }
                    (Some("thinking_delta"), Some((_, Block::Thinking { text: acc, .. }, _))) => {
                        acc.push_str(&text("thinking"));
                        Some(json!({"reasoning_content": text("thinking")}))
                    }
                    (Some("signature_delta"), Some((_, Block::Thinking { signature, .. }, _))) => {
                        signature.push_str(&text("signature"));
                        None
                    }
                    _ => None,
                };
                if let Some(delta) = chunk {
                    out.push(self.chunks.delta(delta, None));
                }
            }
            "content_block_stop" => {
                if let Some((_, Block::Thinking { text, signature }, _)) = self.block_mut(index) {
                    // The whole signed block at once, so clients can echo it back on tool turns.
                    let block = json!({"type": "thinking", "thinking": std::mem::take(text), "signature": std::mem::take(signature)});
                    out.push(self.chunks.delta(json!({"thinking_blocks": [block]}), None));
                }
            }
            "message_delta" => {
                // Cumulative counts; a null one leaves message_start's figure standing.
                if let Some(Value::Object(u)) = data.get("usage") {
                    self.usage.extend(u.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())));
                }
                if let Some(text) = self.json.release() {
                    out.push(self.chunks.delta(json!({"content": text}), None));
                }
                let reason = finish_reason(data.pointer("/delta/stop_reason").and_then(Value::as_str));
                // Real tool calls beside the JSON answer end the turn as tool calls.
                let reason =
                    if self.json.is_answering() && self.next_tool == 0 { "stop" } else { reason.unwrap_or("stop") };
                out.push(self.chunks.delta(json!({}), Some(reason)));
            }
            "message_stop" => self.stop(out),
            "error" => {
                let message = data.pointer("/error/message").and_then(Value::as_str).unwrap_or("error");
                let kind = data.pointer("/error/type").and_then(Value::as_str).unwrap_or("api_error");
                return Err(StreamFault::Upstream(format!("{message} ({kind})")));
            }
            _ => {} // ping and future event types
        }
        Ok(())
    }

    fn stop(&mut self, out: &mut Vec<String>) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Always emitted: the gateway accounts for every stream, and drops this chunk
        // on the way out when the client did not ask for usage.
        let usage = canonical_usage(&Value::Object(self.usage.clone()));
        out.push(self.chunks.usage(usage));
        out.push("[DONE]".into());
    }

    fn process(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        for event in std::mem::take(&mut self.events) {
            if let Some(RawRelay { bytes, rename }) = self.raw.as_mut() {
                let name = event.event.as_deref();
                match rename {
                    // Only message_start names the model.
                    Some(rename) if name == Some("message_start") => {
                        crate::sse::encode(name, &rename.apply(event.data.clone()), bytes)
                    }
                    _ => crate::sse::encode(name, &event.data, bytes),
                }
            }
            self.on_event(&event, out)?;
        }
        Ok(())
    }
}

impl StreamTranslator for AnthropicStream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.feed(bytes, &mut self.events).map_err(|e| StreamFault::Malformed(e.to_string()))?;
        self.process(out)
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamFault> {
        self.decoder.finish(&mut self.events);
        self.process(out)
    }

    fn take_raw(&mut self, out: &mut Vec<u8>) {
        if let Some(raw) = self.raw.as_mut() {
            out.append(&mut raw.bytes);
        }
    }
}
