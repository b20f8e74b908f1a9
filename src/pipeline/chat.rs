//! The chat operation: one attempt at one candidate, for any client dialect and
//! any provider kind, through their two contracts. Streams are opened through
//! the [`StreamPort`] (the edge's pump) and committed before they count as answered.

use super::outcome::{failure_of, learn_quota};
use super::{Operation, Ports, Reply, RequestTraits, Target, Upstream, WholeBody};
use crate::dialects::{self, ClientCall, ClientDialect, Shape};
use crate::health::{tool_calls, Outcome};
use crate::protocol::openai::{ChatRequest, CompletionProbe, Usage};
use crate::providers::{self, AttemptFailure, NativeBody, StreamWants, WholeAnswer};
use crate::relay::Relay;
use crate::routing::Pace;
use serde_json::Value;

/// What a stream needs watched while it is relayed.
pub struct StreamWatch {
    /// The request's tool definitions, to check the streamed tool calls against.
    pub tools: Option<Value>,
    /// The provider key of this attempt: scrubbed from mid-stream errors.
    pub secrets: Vec<String>,
}

/// Relaying a streamed answer: reads until real content (or a failure before
/// any), and hands back the bytes for the client so far and the rest of the stream.
pub trait StreamPort: Upstream {
    type Stream;
    async fn open_stream(
        &self,
        reply: Self::Reply,
        relay: Relay,
        watch: StreamWatch,
        first_content_ms: u64,
    ) -> Result<(Vec<u8>, Self::Stream), AttemptFailure>;
}

/// A chat answer, ready for the client.
pub enum ChatAnswer<S> {
    /// `kept`: what the dialect keeps of the answer (a stored response).
    Whole {
        body: Vec<u8>,
        usage: Option<Usage>,
        kept: Option<Value>,
        tool_calls_valid: Option<bool>,
    },
    Stream {
        first: Vec<u8>,
        stream: S,
    },
}

pub struct ChatAttempt<'a> {
    pub dialect: &'static dyn ClientDialect,
    pub call: &'a mut ClientCall,
    pub request_id: &'a str,
    /// The id of a message the gateway makes up for dialects that need one.
    pub message_id: &'a str,
    /// The longest silence inside a body being read.
    pub idle_ms: u64,
    /// The gateway's estimate of the prompt's tokens (see `Shape`).
    pub estimated_input_tokens: u64,
    /// A first-byte timeout of the last attempt shows the endpoint is not alive: it was
    /// asked for a stream the client did not ask for, whose headers come at once, or
    /// its learned pace said the whole answer comes well within the deadline.
    timeout_shows_liveness: bool,
}

impl<'a> ChatAttempt<'a> {
    pub fn new(
        dialect: &'static dyn ClientDialect,
        call: &'a mut ClientCall,
        request_id: &'a str,
        message_id: &'a str,
        idle_ms: u64,
    ) -> Self {
        Self {
            dialect,
            call,
            request_id,
            message_id,
            idle_ms,
            estimated_input_tokens: 0,
            timeout_shows_liveness: false,
        }
    }
}

impl<P: Ports + StreamPort> Operation<P> for ChatAttempt<'_> {
    type Answer = ChatAnswer<P::Stream>;

    fn traits(&self) -> RequestTraits {
        let mut traits = request_traits(&self.call.request);
        // Asked as a stream upstream, its first byte shows liveness whatever the answer's length.
        traits.slow_first_byte_expected &= !self.timeout_shows_liveness;
        traits
    }

    async fn attempt(&mut self, ports: &P, target: &Target<'_, '_>) -> Result<Self::Answer, AttemptFailure> {
        let candidate = target.candidate;
        let adapter = providers::adapter(&candidate.provider.kind);
        let ctx = target.context(ports.now_ms(), self.request_id);
        let ceiling = candidate.capabilities.max_output_tokens;
        let native = dialects::native_for(self.dialect, self.call, adapter)
            .map(|n| NativeBody { max_output_tokens: ceiling, ..n })
            .and_then(|n| adapter.native_request(&ctx, n));
        let is_native = native.is_some();
        let mut streamed_upstream = false;
        let mut answers_fast = false;
        let request = match native {
            Some(built) => built,
            None => {
                // The client's `max_tokens` fitted to this target's ceiling, for this attempt only.
                let asked = fit_max_tokens(&mut self.call.request, ceiling);
                // A JSON answer that may outlast the first-byte deadline is asked for as
                // a stream (assembled below), so the deadline measures the provider's
                // liveness and not the answer's length. A provider that cannot stream
                // this request (Gemini with n > 1) gets it as it is.
                let outlasts =
                    may_outlast_first_byte(&self.call.request, ceiling, candidate.pace, target.first_byte_ms);
                let streamed = outlasts
                    .then(|| as_stream(&mut self.call.request, |r| adapter.chat_request(&ctx, r, ceiling)))
                    .and_then(Result::ok);
                streamed_upstream = streamed.is_some();
                // Predicted to answer well within the deadline, its silence is the endpoint's too.
                answers_fast = !outlasts;
                let built = match streamed {
                    Some(built) => Ok(built),
                    None => adapter.chat_request(&ctx, &mut self.call.request, ceiling),
                };
                restore_max_tokens(&mut self.call.request, asked);
                built
            }
        }
        .map_err(AttemptFailure::Unservable)?;
        self.timeout_shows_liveness = streamed_upstream || answers_fast;

        let started = ports.now_ms();
        let request_left = target.request_left_ms.saturating_sub(started.saturating_sub(ctx.now_ms));
        // A whole answer is read right after its headers (see below): a JSON one within
        // the idle timeout, one asked as a stream by the gateway within the request's deadline.
        let json_whole = WholeBody { at_least_ms: self.idle_ms, until_ms: target.first_byte_ms, content_type: None };
        let stream_whole =
            WholeBody { at_least_ms: 1, until_ms: request_left, content_type: Some(adapter.stream_content_type()) };
        let reads = adapter.answer_headers();
        let mut reply = match (request.stream, streamed_upstream) {
            (false, _) => ports.send_whole(&request, reads, target.first_byte_ms, json_whole).await?,
            (true, true) => ports.send_whole(&request, reads, target.first_byte_ms, stream_whole).await?,
            (true, false) => ports.send(&request, reads, target.first_byte_ms).await?,
        };
        let quota = learn_quota(ports, candidate.provider_id, adapter, &reply, ports.now_ms());
        if !(200..300).contains(&reply.status()) {
            return Err(failure_of(adapter, &mut reply, &quota, target.first_byte_ms.min(5_000)).await);
        }
        let content_type = reply.header("content-type").unwrap_or_default().to_ascii_lowercase();
        let left = target.first_byte_ms.saturating_sub(ports.now_ms().saturating_sub(started)).max(1);
        let shape = Shape {
            native: is_native,
            upstream_model: candidate.upstream_model,
            public_model: candidate.model,
            message_id: self.message_id,
            created_s: ctx.now_ms / 1000,
            estimated_input_tokens: self.estimated_input_tokens,
        };
        let tools = offered_tools(self.call);
        // The gateway's JSON tool is in translated requests only: a native body is the client's own.
        let json_output = !is_native && self.call.request.asks_json_output();

        let streamed_json = streamed_upstream && content_type.starts_with(adapter.stream_content_type());
        if request.stream && !streamed_upstream {
            if !content_type.starts_with(adapter.stream_content_type()) {
                return Err(AttemptFailure::InvalidResponse(
                    "a stream was asked for but the answer is not an event stream",
                ));
            }
            let wants = StreamWants { raw: is_native, json_output };
            let translator = adapter.stream_translator(&ctx, wants);
            let (encoder, wants_usage) = self.dialect.stream_encoder(self.call, &shape);
            let mut relay = Relay::new(translator, encoder, wants_usage);
            if tools.is_some() {
                relay.collect_tool_calls();
            }
            relay.expect_choices(self.call.request.extra.get("n").and_then(Value::as_u64).unwrap_or(1));
            let secrets = target.api_key.map(str::to_string).into_iter().collect();
            let watch = StreamWatch { tools: tools.cloned(), secrets };
            let (first, stream) = ports.open_stream(reply, relay, watch, left).await?;
            return Ok(ChatAnswer::Stream { first, stream });
        }

        let (raw, answer) = if streamed_json {
            // Liveness is proven: the rest of the stream may take as long as the
            // request's deadline allows. One read of the whole body, one pass of the
            // translator, no per-event crossing into the runtime.
            let within = stream_whole.within_ms(ports.now_ms().saturating_sub(started));
            let body = reply.body(within).await.inspect_err(|failure| {
                // Out of request time while the answer streams: its length, not the endpoint's liveness.
                self.timeout_shows_liveness &= *failure != AttemptFailure::Timeout;
            })?;
            let choices = self.call.request.extra.get("n").and_then(Value::as_u64).unwrap_or(1);
            let completion = providers::assemble_stream(
                adapter.stream_translator(&ctx, StreamWants { raw: false, json_output }),
                &body,
                choices,
            )?;
            // The stream's bytes are no answer of their own: the completion is.
            (Vec::new(), WholeAnswer::Translated(completion))
        } else {
            // Also a whole JSON answer to a stream asked for by the gateway (a
            // provider that ignores `stream`).
            if !content_type.contains("json") {
                return Err(AttemptFailure::InvalidResponse("the answer is not JSON"));
            }
            // The whole body is the "first byte" of a non-streamed answer, but it may
            // take as long as the model needs: bound it by the idle timeout instead.
            let raw = reply.body(json_whole.within_ms(ports.now_ms().saturating_sub(started))).await?;
            let answer = adapter.chat_response(&ctx, &raw)?;
            (raw, answer)
        };
        let usage = usage_of(&raw, &answer)?;
        let valid = tools.and_then(|tools| tool_calls_valid(tools, &raw, &answer));
        let finished = Outcome::Finished {
            duration_ms: ports.now_ms().saturating_sub(started),
            output_tokens: usage.map(|u| u.completion_tokens),
            tool_calls_valid: valid,
        };
        ports.record(candidate.provider_id, finished);
        let encoded = self.dialect.whole_answer(self.call, raw, answer, &shape)?;
        Ok(ChatAnswer::Whole { body: encoded.body, usage, kept: encoded.kept, tool_calls_valid: valid })
    }
}

/// Builds the request with the canonical request's stream flag on (and restored after).
fn as_stream<T>(request: &mut ChatRequest, build: impl FnOnce(&mut ChatRequest) -> T) -> T {
    let asked = request.stream.replace(true);
    let built = build(request);
    request.stream = asked;
    built
}

/// A non-streamed answer this short starts fast enough for its first byte to show liveness.
const SHORT_ANSWER_TOKENS: u64 = 512;
/// How long an answer may be when neither the request nor the target bounds it (OpenAI-kind
/// models then write until their own limit: high, to err towards streaming).
const UNBOUNDED_ANSWER_TOKENS: u64 = 16_384;
/// Time to the first token when the endpoint's was not learned yet.
const DEFAULT_FIRST_TOKEN_MS: f64 = 1_000.0;
/// A JSON answer is asked for as JSON only when its predicted length fits this many
/// times within the first-byte deadline (speeds vary between answers and with load).
const PACE_SAFETY_MARGIN: f64 = 2.0;

/// Whether a non-streamed answer may take longer than the first-byte deadline to
/// arrive (a provider sends its headers only when the whole answer is ready), judged
/// from its output bound (`max_tokens`, else the target's `max_output_tokens`, else
/// [`UNBOUNDED_ANSWER_TOKENS`]) and the endpoint's learned pace. Short answers never
/// do; without a learned speed any other may.
pub fn may_outlast_first_byte(request: &ChatRequest, ceiling: Option<u64>, pace: Pace, first_byte_ms: u64) -> bool {
    if request.is_stream() {
        return false;
    }
    let asked = asked_max_tokens(request);
    if asked.is_some_and(|n| n <= SHORT_ANSWER_TOKENS) {
        return false;
    }
    let Some(tokens_per_second) = pace.tokens_per_second.filter(|t| t.is_finite() && *t > 0.0) else {
        return true;
    };
    let bound = asked.into_iter().chain(ceiling).min().unwrap_or(UNBOUNDED_ANSWER_TOKENS);
    let first_token_ms = pace.first_token_ms.filter(|ms| ms.is_finite()).unwrap_or(DEFAULT_FIRST_TOKEN_MS);
    let predicted_ms = first_token_ms + bound as f64 * 1000.0 / tokens_per_second;
    predicted_ms * PACE_SAFETY_MARGIN > first_byte_ms as f64
}

/// The smallest output limit the request sets, if any.
fn asked_max_tokens(request: &ChatRequest) -> Option<u64> {
    MAX_TOKEN_FIELDS.iter().filter_map(|f| request.extra.get(*f).and_then(Value::as_u64)).min()
}

/// What a chat request may cause itself: external resources it names, and whether
/// its first byte can be expected fast.
pub fn request_traits(request: &ChatRequest) -> RequestTraits {
    let external = |part: &Value| match part.get("type").and_then(Value::as_str) {
        Some("image_url") => part["image_url"]["url"].as_str().is_some_and(|url| !url.starts_with("data:")),
        Some("file" | "input_file") => true,
        _ => false,
    };
    let names_external_resources =
        request.messages.iter().filter_map(|m| m.rest.get("content").and_then(Value::as_array)).flatten().any(external);
    let slow_first_byte_expected =
        !request.is_stream() && asked_max_tokens(request).is_none_or(|n| n > SHORT_ANSWER_TOKENS);
    RequestTraits { names_external_resources, slow_first_byte_expected }
}

const MAX_TOKEN_FIELDS: [&str; 2] = ["max_tokens", "max_completion_tokens"];

/// Lowers the request's output limits to `ceiling`; what they were, to restore.
fn fit_max_tokens(request: &mut ChatRequest, ceiling: Option<u64>) -> Vec<(&'static str, Value)> {
    let Some(ceiling) = ceiling else { return Vec::new() };
    let mut asked = Vec::new();
    for field in MAX_TOKEN_FIELDS {
        if let Some(value) = request.extra.get_mut(field) {
            if value.as_u64().is_some_and(|n| n > ceiling) {
                asked.push((field, std::mem::replace(value, ceiling.into())));
            }
        }
    }
    asked
}

fn restore_max_tokens(request: &mut ChatRequest, asked: Vec<(&'static str, Value)>) {
    for (field, value) in asked {
        request.extra.insert(field.into(), value);
    }
}

/// The output limit a target really got when the client asked for more than its
/// ceiling (reported in `x-gateway-max-tokens-fitted`).
pub fn fitted_max_tokens(asked: Option<u64>, ceiling: Option<u64>) -> Option<u64> {
    asked.zip(ceiling).and_then(|(asked, ceiling)| (asked > ceiling).then_some(ceiling))
}

/// The request's tool definitions, when it offers any.
fn offered_tools(call: &ClientCall) -> Option<&Value> {
    call.request.extra.get("tools").filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
}

/// The answer's usage, from the translation or from the provider's own completion.
fn usage_of(raw: &[u8], answer: &WholeAnswer) -> Result<Option<Usage>, AttemptFailure> {
    Ok(match answer {
        WholeAnswer::Translated(completion) => {
            completion.get("usage").and_then(|u| serde_json::from_value(u.clone()).ok())
        }
        WholeAnswer::Canonical => {
            serde_json::from_slice::<CompletionProbe>(raw)
                .map_err(|_| AttemptFailure::InvalidResponse("the answer is not a chat completion"))?
                .usage
        }
    })
}

/// Whether every tool call of the answer is valid (a full parse: only when tools were offered).
fn tool_calls_valid(tools: &Value, raw: &[u8], answer: &WholeAnswer) -> Option<bool> {
    let parsed;
    let completion = match answer {
        WholeAnswer::Translated(completion) => completion,
        WholeAnswer::Canonical => {
            parsed = serde_json::from_slice::<Value>(raw).ok()?;
            &parsed
        }
    };
    tool_calls::all_valid(Some(tools), &tool_calls::from_completion(completion))
}
