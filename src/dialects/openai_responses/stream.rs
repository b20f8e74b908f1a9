//! Canonical chunks as the Responses API's event stream: `response.created`,
//! `response.in_progress`, items and parts added, text and argument deltas, each
//! item done, then `response.completed` (or `.incomplete`), every event numbered.
//! A failure after the start ends with `error` and `response.failed`.

use super::output::{self, Frame};
use crate::json;
use crate::relay::ClientEncoder;
use crate::sse;
use serde_json::{Map, Value};

struct OpenText {
    output_index: usize,
    text: String,
}

struct OpenCall {
    output_index: usize,
    /// The call's index in the canonical chunks.
    chat_index: u64,
    call_id: String,
    name: String,
    arguments: String,
}

pub struct ResponsesEncoder {
    id: String,
    created_at: u64,
    model: String,
    request: Map<String, Value>,
    include_encrypted: bool,
    sequence: u64,
    started: bool,
    output: Vec<Value>,
    next_index: usize,
    reasoning: Option<OpenText>,
    blocks: Vec<Value>,
    /// Provider signatures seen outside reasoning (Gemini's), kept in a last reasoning item.
    carried: Vec<Value>,
    message: Option<OpenText>,
    calls: Vec<OpenCall>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// The whole response once it completed (with provider reasoning blocks).
    finished: Option<Value>,
}

impl ResponsesEncoder {
    pub fn new(id: &str, created_at: u64, model: &str, request: Map<String, Value>) -> Self {
        let include_encrypted = output::includes_encrypted_reasoning(&request);
        Self {
            id: id.to_string(),
            created_at,
            model: model.to_string(),
            request,
            include_encrypted,
            sequence: 0,
            started: false,
            output: Vec::new(),
            next_index: 0,
            reasoning: None,
            blocks: Vec::new(),
            carried: Vec::new(),
            message: None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
            finished: None,
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame { id: &self.id, created_at: self.created_at, model: &self.model, request: &self.request }
    }

    fn emit(&mut self, kind: &str, mut event: Value, out: &mut Vec<u8>) {
        event["type"] = kind.into();
        event["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        sse::encode(Some(kind), &event.to_string(), out);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.frame().response("in_progress", Vec::new(), None, None);
        self.emit("response.created", json!({"response": response}), out);
        let response = self.frame().response("in_progress", Vec::new(), None, None);
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn take_index(&mut self) -> usize {
        self.next_index += 1;
        self.next_index - 1
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        if self.reasoning.is_none() {
            let output_index = self.take_index();
            let item_id = self.frame().reasoning_id();
            let item = json!({"type": "reasoning", "id": &item_id, "summary": []});
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
            let part = json!({"type": "summary_text", "text": ""});
            let added = json!({"item_id": &item_id, "output_index": output_index, "summary_index": 0, "part": part});
            self.emit("response.reasoning_summary_part.added", added, out);
            self.reasoning = Some(OpenText { output_index, text: String::new() });
        }
        let Some(open) = self.reasoning.as_mut() else { return };
        open.text.push_str(delta);
        let output_index = open.output_index;
        let item_id = self.frame().reasoning_id();
        let event = json!({"item_id": &item_id, "output_index": output_index, "summary_index": 0, "delta": delta});
        self.emit("response.reasoning_summary_text.delta", event, out);
    }

    fn close_reasoning(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.reasoning.take() else { return };
        let item_id = self.frame().reasoning_id();
        let (index, text) = (open.output_index, open.text);
        if !text.is_empty() {
            let done = json!({"item_id": &item_id, "output_index": index, "summary_index": 0, "text": &text});
            self.emit("response.reasoning_summary_text.done", done, out);
            let part = json!({"type": "summary_text", "text": &text});
            let done = json!({"item_id": &item_id, "output_index": index, "summary_index": 0, "part": part});
            self.emit("response.reasoning_summary_part.done", done, out);
        }
        let blocks = std::mem::take(&mut self.blocks);
        let item = output::reasoning_item(&self.frame(), &text, &blocks);
        self.finish_item(index, item, out);
    }

    fn text_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        if self.message.is_none() {
            let output_index = self.take_index();
            let item_id = self.frame().message_id();
            let item =
                json!({"type": "message", "id": &item_id, "status": "in_progress", "role": "assistant", "content": []});
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            let added = json!({"item_id": &item_id, "output_index": output_index, "content_index": 0, "part": part});
            self.emit("response.content_part.added", added, out);
            self.message = Some(OpenText { output_index, text: String::new() });
        }
        let Some(open) = self.message.as_mut() else { return };
        open.text.push_str(delta);
        let output_index = open.output_index;
        let item_id = self.frame().message_id();
        let event = json!({"item_id": &item_id, "output_index": output_index, "content_index": 0, "delta": delta, "logprobs": []});
        self.emit("response.output_text.delta", event, out);
    }

    fn close_message(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.message.take() else { return };
        let item_id = self.frame().message_id();
        let (index, text) = (open.output_index, open.text);
        let done =
            json!({"item_id": &item_id, "output_index": index, "content_index": 0, "text": &text, "logprobs": []});
        self.emit("response.output_text.done", done, out);
        let part = json!({"type": "output_text", "text": &text, "annotations": []});
        let done = json!({"item_id": &item_id, "output_index": index, "content_index": 0, "part": part});
        self.emit("response.content_part.done", done, out);
        let item = output::message_item(&self.frame(), &text, None, "completed");
        self.finish_item(index, item, out);
    }

    fn call_delta(&mut self, call: &Value, out: &mut Vec<u8>) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        if !self.calls.iter().any(|c| c.chat_index == chat_index) {
            self.close_reasoning(out);
            self.close_message(out);
            let output_index = self.take_index();
            let open = OpenCall {
                output_index,
                chat_index,
                call_id: call.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: String::new(),
            };
            let item = output::call_item(&self.frame(), self.calls.len(), &open.call_id, &open.name, "", "in_progress");
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": item}), out);
            self.calls.push(open);
        }
        if let Some(extra) = call.get("extra_content") {
            let call_id = self.calls.iter().find(|c| c.chat_index == chat_index).map(|c| c.call_id.clone());
            self.carried.push(output::call_extra_block(&call_id.unwrap_or_default(), extra));
        }
        let piece = function.and_then(|f| f.get("arguments")).and_then(Value::as_str).unwrap_or_default();
        if piece.is_empty() {
            return;
        }
        let Some(position) = self.calls.iter().position(|c| c.chat_index == chat_index) else { return };
        self.calls[position].arguments.push_str(piece);
        let output_index = self.calls[position].output_index;
        let item_id = self.frame().call_item_id(position);
        let event = json!({"item_id": &item_id, "output_index": output_index, "delta": piece});
        self.emit("response.function_call_arguments.delta", event, out);
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for (position, call) in std::mem::take(&mut self.calls).into_iter().enumerate() {
            let item_id = self.frame().call_item_id(position);
            let done = json!({"item_id": &item_id, "output_index": call.output_index, "arguments": &call.arguments, "name": &call.name});
            self.emit("response.function_call_arguments.done", done, out);
            let item =
                output::call_item(&self.frame(), position, &call.call_id, &call.name, &call.arguments, "completed");
            self.finish_item(call.output_index, item, out);
        }
    }

    fn finish_item(&mut self, output_index: usize, item: Value, out: &mut Vec<u8>) {
        let shown = self.shown(item.clone());
        self.emit("response.output_item.done", json!({"output_index": output_index, "item": shown}), out);
        self.output.push(item);
    }

    /// An item as the client may see it.
    fn shown(&self, mut item: Value) -> Value {
        if !self.include_encrypted {
            if let Some(item) = item.as_object_mut() {
                item.remove("encrypted_content");
            }
        }
        item
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(output::usage(usage));
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["index"] == 0 || c.get("index").is_none()))
        else {
            return;
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("reasoning_content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                self.reasoning_delta(text, out);
            }
            if let Some(blocks) = delta.get("thinking_blocks").and_then(Value::as_array) {
                self.blocks.extend(blocks.iter().cloned());
                if self.reasoning.is_none() {
                    self.reasoning_delta("", out);
                }
            }
            if let Some(extra) = delta.get("extra_content") {
                self.carried.push(output::message_extra_block(extra));
            }
            for field in ["content", "refusal"] {
                if let Some(text) = delta.get(field).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                    self.text_delta(text, out);
                }
            }
            for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                self.call_delta(call, out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        self.close_message(out);
        self.close_calls(out);
        if !self.carried.is_empty() {
            // A reasoning item of signatures only: its place in the output does not matter.
            let output_index = self.take_index();
            let blocks = std::mem::take(&mut self.carried);
            let item = output::reasoning_item(&self.frame(), "", &blocks);
            let added = json!({"type": "reasoning", "id": &item["id"], "summary": []});
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": added}), out);
            self.finish_item(output_index, item, out);
        }
        let reason = self.finish_reason.clone();
        let status = output::status(reason.as_deref());
        let response = self.frame().response(status, self.output.clone(), self.usage.clone(), reason.as_deref());
        let kind = if status == "incomplete" { "response.incomplete" } else { "response.completed" };
        let shown = output::for_client(response.clone(), self.include_encrypted);
        self.emit(kind, json!({"response": shown}), out);
        self.finished = Some(response);
    }
}

impl ClientEncoder for ResponsesEncoder {
    fn event(&mut self, payload: &str, out: &mut Vec<u8>) {
        self.start(out);
        if self.finished.is_some() {
            return;
        }
        if payload.trim() == "[DONE]" {
            self.complete(out);
            return;
        }
        if let Ok(chunk) = crate::json_value::from_str::<Value>(payload) {
            self.chunk(&chunk, out);
        }
    }

    fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        self.start(out);
        self.emit("error", json!({"code": code, "message": message, "param": null}), out);
        let mut response = self.frame().response("failed", self.output.clone(), self.usage.clone(), None);
        response["error"] = json!({"code": code, "message": message});
        let shown = output::for_client(response, self.include_encrypted);
        self.emit("response.failed", json!({"response": shown}), out);
    }

    fn finished(&mut self) -> Option<Value> {
        self.finished.take()
    }
}
