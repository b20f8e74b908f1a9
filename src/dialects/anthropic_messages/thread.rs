//! Anthropic's message threads (the beta `message-threads-2026-08-12`, which the
//! Anthropic SDKs' tool runners use by default), served by the gateway itself for
//! every kind of provider: a `create` turn is kept with its system prompt and tools;
//! a `continue` sends only its new messages, and the gateway puts the thread's
//! history in front of them before the request is read, so the provider gets a
//! whole conversation. The edge keeps the turns in the key's store (its
//! jurisdiction); this is the pure part: the request's `thread`, the stored turn,
//! the history put back, and the answer kept from a stream.

use crate::dialects::ClientCall;
use crate::error::GatewayError;
use crate::relay::ClientEncoder;
use crate::sse::{SseDecoder, SseEvent};
use serde::Serialize;
use serde_json::{Map, Value};

/// The beta a threaded request names; a native relay does not pass it on (the
/// gateway holds the thread, the provider gets the whole conversation).
pub const BETA: &str = "message-threads-2026-08-12";

/// The fields a `continue` takes from the thread (a request may repeat them unchanged).
const FROM_THE_THREAD: [&str; 2] = ["system", "tools"];

/// How long a thread is kept after its last turn.
pub const KEPT_MS: u64 = 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thread {
    Create,
    Continue(String),
}

/// A threaded request as the client sent it: a `create` (whole) or a `continue`
/// (only its new messages), made whole by [`Turn::complete`].
#[derive(Debug)]
pub struct Turn {
    pub(super) asked: Thread,
    pub(super) request: Map<String, Value>,
    /// The size of the client's body.
    pub(super) bytes: u64,
}

impl Turn {
    /// The reply this turn continues from (its thread is loaded first), if any.
    pub fn continues(&self) -> Option<&str> {
        match &self.asked {
            Thread::Create => None,
            Thread::Continue(id) => Some(id),
        }
    }

    /// The request made whole with its thread's `history` (empty for a `create`),
    /// read as a call; and the turn to keep once its reply comes (its id then set).
    pub fn complete(
        self,
        history: History,
        max_bytes: u64,
        now_ms: u64,
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(ClientCall, ThreadTurn), GatewayError> {
        let Turn { asked, mut request, bytes } = self;
        let total = history.bytes.saturating_add(bytes);
        if total > max_bytes {
            return Err(too_large(total, max_bytes));
        }
        let own_messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
        let regions = history.regions.clone();
        let (previous, head) = match asked {
            Thread::Continue(id) => {
                resume(&mut request, history)?;
                (Some(id), Map::new())
            }
            Thread::Create => (None, head_of(&request)),
        };
        let mut call = super::call_of(super::convert::check_request(request, true)?, header)?;
        call.keep_answer = true;
        let turn = ThreadTurn {
            id: String::new(),
            previous,
            expires_at_ms: now_ms + KEPT_MS,
            head,
            messages: own_messages,
            regions,
            conversation_bytes: total,
        };
        Ok((call, turn))
    }
}

impl ThreadTurn {
    /// A stored turn read back from its JSON; none when it is not one.
    pub fn from_json(value: Value) -> Option<Self> {
        let Value::Object(mut turn) = value else { return None };
        let text = |value: Value| match value {
            Value::String(text) => Some(text),
            _ => None,
        };
        let number = |turn: &Map<String, Value>, field: &str| turn.get(field).and_then(Value::as_u64);
        Some(Self {
            id: text(turn.remove("id")?)?,
            previous: turn.remove("previous").and_then(text),
            expires_at_ms: number(&turn, "expires_at_ms")?,
            head: match turn.remove("head") {
                Some(Value::Object(head)) => head,
                _ => Map::new(),
            },
            messages: match turn.remove("messages")? {
                Value::Array(messages) => messages,
                _ => return None,
            },
            regions: match turn.remove("regions") {
                Some(Value::Array(regions)) => Some(regions.into_iter().filter_map(text).collect()),
                _ => None,
            },
            conversation_bytes: number(&turn, "conversation_bytes")?,
        })
    }

    /// The turn with its reply (an Anthropic message answer), under the reply's id;
    /// none when the answer is not a message.
    pub fn with_reply(mut self, answer: &Value, regions: Option<Vec<String>>) -> Option<Self> {
        let id = answer.get("id").and_then(Value::as_str)?;
        let content = answer.get("content").filter(|c| c.is_array())?;
        let reply = serde_json::json!({"role": "assistant", "content": content});
        self.id = id.to_string();
        self.conversation_bytes += reply.to_string().len() as u64;
        self.messages.push(reply);
        self.regions = self.regions.take().or(regions);
        Some(self)
    }
}

fn invalid(param: &str, message: &str) -> GatewayError {
    GatewayError::invalid_request("invalid_request_error", message).with_param(param.to_string())
}

/// A body's thread turn, when it names one (`thread` taken out of it); else the body.
pub fn turn_of(mut request: Map<String, Value>, bytes: u64) -> Result<Result<Turn, Map<String, Value>>, GatewayError> {
    Ok(match take(&mut request)? {
        Some(asked) => Ok(Turn { asked, request, bytes }),
        None => Err(request),
    })
}

/// Takes `thread` out of a request body.
fn take(body: &mut Map<String, Value>) -> Result<Option<Thread>, GatewayError> {
    let thread = match body.remove("thread") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(thread)) => thread,
        Some(_) => return Err(invalid("thread", "thread: must be an object.")),
    };
    match thread.get("type").and_then(Value::as_str) {
        Some("create") => Ok(Some(Thread::Create)),
        Some("continue") => match thread.get("previous_message_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(Some(Thread::Continue(id.to_string()))),
            _ => Err(invalid(
                "thread.previous_message_id",
                "thread.previous_message_id: Field required (the id of the reply to continue from).",
            )),
        },
        _ => Err(invalid("thread.type", "thread.type: must be \"create\" or \"continue\".")),
    }
}

/// One stored turn of a thread, chained to the one it continued. Read back through
/// [`ThreadTurn::from_json`] (a `Value`, whose reader the wasm has anyway, rather
/// than a derived `Deserialize` of its own).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadTurn {
    /// The reply's id: what the next turn continues from.
    pub id: String,
    pub previous: Option<String>,
    pub expires_at_ms: u64,
    /// The first turn's system prompt and tools (empty on the turns after it).
    pub head: Map<String, Value>,
    /// This turn's own messages, then the reply.
    pub messages: Vec<Value>,
    /// The regions the thread is held to, when its first turn was restricted.
    pub regions: Option<Vec<String>>,
    /// Bytes of the whole thread up to and including this turn.
    pub conversation_bytes: u64,
}

/// A thread read back for continuing it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub head: Map<String, Value>,
    pub messages: Vec<Value>,
    pub regions: Option<Vec<String>>,
    pub bytes: u64,
}

/// A thread from its turns, newest first (as the chain is walked).
pub fn history(newest_first: Vec<ThreadTurn>) -> History {
    let mut history = History::default();
    if let Some(newest) = newest_first.first() {
        history.bytes = newest.conversation_bytes;
    }
    for turn in newest_first.into_iter().rev() {
        if history.head.is_empty() {
            history.head = turn.head;
        }
        history.regions = history.regions.or(turn.regions);
        history.messages.extend(turn.messages);
    }
    history
}

/// What a turn keeps of its request's own fields: the system prompt and tools.
fn head_of(body: &Map<String, Value>) -> Map<String, Value> {
    // Built by insertion: `collect` into a map sorts (and would compile a sort for it).
    let mut head = Map::new();
    for field in FROM_THE_THREAD {
        if let Some(value) = body.get(field) {
            head.insert(field.to_string(), value.clone());
        }
    }
    head
}

/// Puts the thread's history in front of a `continue`'s own messages, and its
/// system prompt and tools in; a request that sends them other than the thread's
/// own is refused, as Anthropic refuses it.
fn resume(body: &mut Map<String, Value>, history: History) -> Result<(), GatewayError> {
    for field in FROM_THE_THREAD {
        match (body.get(field), history.head.get(field)) {
            (Some(given), kept) if Some(given) != kept => {
                return Err(GatewayError::invalid_request(
                    "thread_fingerprint_mismatch",
                    format!(
                        "{field}: a thread keeps the {field} of its create request; leave it out of a continue, or start a new thread to change it."
                    ),
                )
                .with_param(field))
            }
            (_, Some(kept)) => {
                body.insert(field.to_string(), kept.clone());
            }
            _ => {}
        }
    }
    let own = match body.remove("messages") {
        Some(Value::Array(own)) => own,
        // A continue after a `pause_turn` sends no messages: the reply goes on.
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(invalid("messages", "messages: must be a list of messages.")),
    };
    let mut messages = history.messages;
    messages.extend(own);
    body.insert("messages".to_string(), Value::Array(messages));
    Ok(())
}

/// Anthropic's answer to a `continue` whose thread is not kept (never made, another
/// key's, expired): the SDKs then send the whole conversation as a new thread.
pub fn not_found(id: &str) -> GatewayError {
    GatewayError::new(
        404,
        "not_found_error",
        "thread_not_found",
        format!(
            "No thread holds a reply with id '{id}' (kept an hour after its last turn); send the whole conversation with thread: {{\"type\": \"create\"}}."
        ),
    )
    .with_param("thread.previous_message_id")
}

/// A thread that would grow past the gateway's cap: the SDKs then go on without a
/// thread, sending the whole conversation each turn.
fn too_large(total: u64, cap: u64) -> GatewayError {
    GatewayError::invalid_request(
        "thread_unsupported_request",
        format!(
            "The thread would reach {total} bytes, over this gateway's limit of {cap}; send the whole conversation without thread."
        ),
    )
}

/// The error codes Anthropic names in `error.details.error_code` (its SDKs act on them).
pub fn has_details(code: &str) -> bool {
    matches!(code, "thread_not_found" | "thread_fingerprint_mismatch" | "thread_unsupported_request")
}

/// A client encoder that also keeps the Anthropic message its stream makes (the
/// bytes the client gets, native or translated), for a thread's next turn.
pub struct Keeping {
    inner: Box<dyn ClientEncoder>,
    assembler: MessageAssembler,
}

impl Keeping {
    pub fn new(inner: Box<dyn ClientEncoder>) -> Self {
        Self { inner, assembler: MessageAssembler::default() }
    }
}

impl ClientEncoder for Keeping {
    fn event(&mut self, payload: &str, out: &mut Vec<u8>) {
        self.inner.event(payload, out);
    }

    fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        self.assembler.broken = true;
        self.inner.error(code, message, out);
    }

    fn sent(&mut self, bytes: &[u8]) {
        self.assembler.feed(bytes);
    }

    fn finished(&mut self) -> Option<Value> {
        self.assembler.finished()
    }

    fn prompt_tokens(&mut self, tokens: u64) {
        self.inner.prompt_tokens(tokens);
    }
}

/// An Anthropic message from its event stream: `message_start`, each block's
/// start, deltas and stop, `message_delta`, `message_stop`.
#[derive(Debug, Default)]
pub struct MessageAssembler {
    decoder: SseDecoder,
    message: Option<Map<String, Value>>,
    blocks: Vec<Value>,
    /// Each block's streamed `input` JSON, parsed at the block's stop.
    partial_json: Vec<String>,
    stopped: bool,
    broken: bool,
}

impl MessageAssembler {
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut events = Vec::new();
        if self.decoder.feed(bytes, &mut events).is_err() {
            self.broken = true;
        }
        for SseEvent { data, .. } in events {
            if !self.broken {
                self.event(&data);
            }
        }
    }

    fn event(&mut self, data: &str) {
        let Ok(Value::Object(mut event)) = crate::json_value::from_str::<Value>(data) else { return };
        let index = event.get("index").and_then(Value::as_u64).map(|i| i as usize);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => match event.remove("message") {
                Some(Value::Object(message)) => self.message = Some(message),
                _ => self.broken = true,
            },
            Some("content_block_start") => match (index, event.remove("content_block")) {
                // Only objects: the deltas below write into them (a provider's stream may hold anything).
                (Some(i), Some(block)) if i == self.blocks.len() && block.is_object() => {
                    self.blocks.push(block);
                    self.partial_json.push(String::new());
                }
                _ => self.broken = true,
            },
            Some("content_block_delta") => {
                let (Some(block), Some(delta)) = (index.and_then(|i| self.blocks.get_mut(i)), event.get("delta"))
                else {
                    self.broken = true;
                    return;
                };
                let piece = |field: &str| delta.get(field).and_then(Value::as_str).unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(block, "text", piece("text")),
                    Some("thinking_delta") => append(block, "thinking", piece("thinking")),
                    Some("signature_delta") => set(block, "signature", Value::String(piece("signature").to_string())),
                    Some("input_json_delta") => {
                        if let Some(json) = index.and_then(|i| self.partial_json.get_mut(i)) {
                            json.push_str(piece("partial_json"));
                        }
                    }
                    Some("citations_delta") => {
                        if let (Some(citation), Some(block)) = (delta.get("citation"), block.as_object_mut()) {
                            let citations = block.entry("citations").or_insert_with(|| Value::Array(Vec::new()));
                            if let Some(list) = citations.as_array_mut() {
                                list.push(citation.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                let Some(i) = index.filter(|i| *i < self.blocks.len()) else {
                    self.broken = true;
                    return;
                };
                let json = std::mem::take(&mut self.partial_json[i]);
                if !json.is_empty() {
                    match crate::json_value::from_str::<Value>(&json) {
                        Ok(input) => set(&mut self.blocks[i], "input", input),
                        Err(_) => self.broken = true,
                    }
                }
            }
            Some("message_delta") => {
                if let (Some(message), Some(Value::Object(delta))) = (self.message.as_mut(), event.remove("delta")) {
                    message.extend(delta);
                }
            }
            Some("message_stop") => self.stopped = true,
            Some("error") => self.broken = true,
            _ => {}
        }
    }

    /// The whole message, once the stream stopped as it should; taken once.
    pub fn finished(&mut self) -> Option<Value> {
        if !self.stopped || self.broken {
            return None;
        }
        let mut message = self.message.take()?;
        message.insert("content".to_string(), Value::Array(std::mem::take(&mut self.blocks)));
        Some(Value::Object(message))
    }
}

fn set(block: &mut Value, field: &str, value: Value) {
    if let Some(block) = block.as_object_mut() {
        block.insert(field.to_string(), value);
    }
}

fn append(block: &mut Value, field: &str, piece: &str) {
    if let Some(block) = block.as_object_mut() {
        let text = block.entry(field).or_insert_with(|| Value::String(String::new()));
        if let Value::String(text) = text {
            text.push_str(piece);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn turn(id: &str, previous: Option<&str>, head: Value, messages: Value, bytes: u64) -> ThreadTurn {
        ThreadTurn {
            id: id.into(),
            previous: previous.map(str::to_string),
            expires_at_ms: 10,
            head: body(head),
            messages: messages.as_array().unwrap().clone(),
            regions: (previous.is_none()).then(|| vec!["eu".to_string()]),
            conversation_bytes: bytes,
        }
    }

    #[test]
    fn a_stored_turn_reads_back_as_it_was_kept() {
        let kept = turn("msg_2", Some("msg_1"), json!({"system": "S"}), json!([{"role": "user", "content": "x"}]), 7);
        let text = serde_json::to_string(&kept).unwrap();
        assert_eq!(ThreadTurn::from_json(serde_json::from_str(&text).unwrap()), Some(kept));
        assert_eq!(ThreadTurn::from_json(json!({"id": "msg_1"})), None);
    }

    #[test]
    fn a_request_names_its_thread() {
        let mut create = body(json!({"model": "m", "thread": {"type": "create"}}));
        assert_eq!(take(&mut create).unwrap(), Some(Thread::Create));
        assert!(!create.contains_key("thread"));
        let mut go_on = body(json!({"thread": {"type": "continue", "previous_message_id": "msg_1"}}));
        assert_eq!(take(&mut go_on).unwrap(), Some(Thread::Continue("msg_1".into())));
        assert_eq!(take(&mut body(json!({"model": "m"}))).unwrap(), None);
        for bad in [json!({"thread": "create"}), json!({"thread": {"type": "continue"}}), json!({"thread": {}})] {
            let err = take(&mut body(bad)).unwrap_err();
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn a_continue_gets_the_threads_history_system_and_tools() {
        let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
        let chain = vec![
            turn(
                "msg_2",
                Some("msg_1"),
                json!({}),
                json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
                       {"role": "assistant", "content": [{"type": "text", "text": "Sunny."}]}]),
                300,
            ),
            turn(
                "msg_1",
                None,
                json!({"system": "Be brief.", "tools": tools}),
                json!([{"role": "user", "content": "weather?"},
                       {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]}]),
                100,
            ),
        ];
        let history = history(chain);
        assert_eq!((history.bytes, history.regions.clone()), (300, Some(vec!["eu".to_string()])));
        let mut request =
            body(json!({"model": "m", "tools": tools, "messages": [{"role": "user", "content": "thanks"}]}));
        resume(&mut request, history.clone()).unwrap();
        assert_eq!(request["system"], "Be brief.");
        assert_eq!(request["tools"], tools);
        let roles: Vec<&str> =
            request["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
        assert_eq!(request["messages"][1]["content"][0]["id"], "t1");

        // After a `pause_turn` a continue sends no messages.
        let mut paused = body(json!({"model": "m"}));
        resume(&mut paused, history.clone()).unwrap();
        assert_eq!(paused["messages"].as_array().unwrap().len(), 4);

        let mut changed = body(json!({"model": "m", "system": "Be long.", "messages": []}));
        let err = resume(&mut changed, history).unwrap_err();
        assert_eq!((err.status, err.code.as_ref()), (400, "thread_fingerprint_mismatch"));
    }

    #[test]
    fn a_turn_keeps_the_system_prompt_and_tools_and_the_reply() {
        let request = body(json!({"model": "m", "system": "S", "max_tokens": 5, "messages": []}));
        assert_eq!(Value::Object(head_of(&request)), json!({"system": "S"}));
        let answer = json!({"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "Hi"}]});
        let turn = turn("", None, json!({}), json!([{"role": "user", "content": "hello"}]), 100);
        let kept = turn.clone().with_reply(&answer, None).unwrap();
        assert_eq!(kept.id, "msg_1");
        assert_eq!(kept.messages[1], json!({"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}));
        assert!(kept.conversation_bytes > 100);
        assert_eq!(turn.with_reply(&json!({"error": {}}), None), None);
        assert_eq!(not_found("msg_x").status, 404);
        assert!(has_details(&not_found("msg_x").code));
        assert!(has_details(&too_large(2, 1).code));
    }

    #[test]
    fn a_turn_is_completed_from_its_thread_and_kept_with_what_it_sent() {
        let read = |value: Value| {
            let bytes = value.to_string().len() as u64;
            turn_of(body(value), bytes).unwrap().unwrap()
        };
        let create = read(json!({"model": "m", "max_tokens": 9, "system": "S", "thread": {"type": "create"},
                                 "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(create.continues(), None);
        let (call, kept) = create.complete(History::default(), 10_000, 1_000, &|_| None).unwrap();
        assert!(call.keep_answer);
        assert!(!call.native.as_ref().unwrap().body.contains_key("thread"));
        assert_eq!((kept.previous.as_deref(), kept.expires_at_ms), (None, 1_000 + KEPT_MS));
        assert_eq!(Value::Object(kept.head.clone()), json!({"system": "S"}));
        let first = ThreadTurn { id: "msg_1".into(), ..kept.clone() }
            .with_reply(
                &json!({"id": "msg_1", "content": [{"type": "text", "text": "Hello"}]}),
                Some(vec!["eu".into()]),
            )
            .unwrap();

        let go_on =
            read(json!({"model": "m", "max_tokens": 9, "thread": {"type": "continue", "previous_message_id": "msg_1"},
                                "messages": [{"role": "user", "content": "again"}]}));
        assert_eq!(go_on.continues(), Some("msg_1"));
        let (call, kept) = go_on.complete(history(vec![first.clone()]), 10_000, 2_000, &|_| None).unwrap();
        let sent = &call.native.as_ref().unwrap().body;
        assert_eq!(sent["system"], "S");
        assert_eq!(sent["messages"].as_array().unwrap().len(), 3);
        assert_eq!(call.request.messages.len(), 4, "the system prompt, then the three messages");
        assert_eq!((kept.previous.as_deref(), kept.head.is_empty()), (Some("msg_1"), true));
        assert_eq!(kept.messages, vec![json!({"role": "user", "content": "again"})]);
        assert_eq!(kept.regions, Some(vec!["eu".to_string()]));

        let too_big =
            read(json!({"model": "m", "max_tokens": 9, "thread": {"type": "continue", "previous_message_id": "msg_1"},
                                  "messages": [{"role": "user", "content": "again"}]}));
        let err = too_big.complete(history(vec![first]), 10, 2_000, &|_| None).unwrap_err();
        assert_eq!((err.status, err.code.as_ref()), (400, "thread_unsupported_request"));
        assert!(
            read(json!({"model": "m", "thread": {"type": "create"}, "messages": []}))
                .complete(History::default(), 10_000, 0, &|_| None)
                .is_err(),
            "a create is checked as any request"
        );
    }

    // Anthropic's documented streaming example, with thinking and a tool call.
    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"look.\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San Fra\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ncisco\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn a_stream_is_kept_as_the_message_it_makes_however_it_is_split() {
        let expected = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude",
            "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1},
            "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "EqQB"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "San Francisco"}}
            ]
        });
        for cut in (0..STREAM.len()).step_by(7) {
            let mut assembler = MessageAssembler::default();
            assembler.feed(&STREAM.as_bytes()[..cut]);
            assembler.feed(&STREAM.as_bytes()[cut..]);
            assert_eq!(assembler.finished(), Some(expected.clone()), "split at {cut}");
            assert_eq!(assembler.finished(), None);
        }
    }

    #[test]
    fn a_stream_of_odd_events_is_not_kept_and_never_panics() {
        let odd = concat!(
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":\"text\"}\n\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"s\"}}\n\n",
            "data: {\"type\":\"content_block_stop\",\"index\":7}\n\n",
            "data: {\"type\":\"message_delta\",\"delta\":5}\n\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        let mut assembler = MessageAssembler::default();
        assembler.feed(odd.as_bytes());
        assert_eq!(assembler.finished(), None);
    }

    #[test]
    fn a_stream_that_failed_or_never_stopped_is_not_kept() {
        let mut cut_short = MessageAssembler::default();
        cut_short.feed(&STREAM.as_bytes()[..STREAM.len() / 2]);
        assert_eq!(cut_short.finished(), None);

        let mut failed = Keeping::new(Box::new(crate::relay::OpenAiEncoder));
        failed.sent(STREAM.as_bytes());
        failed.error("upstream_error", "broke", &mut Vec::new());
        assert_eq!(failed.finished(), None);

        let mut whole = Keeping::new(Box::new(crate::relay::OpenAiEncoder));
        whole.sent(STREAM.as_bytes());
        assert!(whole.finished().is_some());
    }
}
