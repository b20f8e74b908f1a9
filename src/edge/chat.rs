//! `POST /v1/chat/completions`: authenticate, plan the targets, try them in order
//! until one answers, and relay the answer (streamed or whole).

use super::log::{self, Attempt, RequestLine};
use super::stream::Pump;
use super::upstream::{self, Sent};
use super::{authenticate, body, config_store, now_ms, respond, RequestContext};
use crate::config::{Config, ResolvedTarget};
use crate::error::GatewayError;
use crate::gateway::{self, AttemptFailure, Verdict};
use crate::protocol::openai::{ChatRequest, CompletionProbe};
use crate::providers::openai as openai_adapter;
use crate::relay::{OpenAiEncoder, OpenAiPassthrough, Relay};
use futures_util::{stream, StreamExt};
use worker::{Context, Env, Headers, Request, Response, ResponseBuilder};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rc: &RequestContext,
) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&req, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes).await?;
    let mut request = ChatRequest::parse(&body)?;
    drop(body);
    let targets = gateway::plan(&config, key, &request.model)?;

    let mut line = RequestLine {
        event: "chat",
        request_id: rc.id.clone(),
        key: key.name.clone(),
        model: request.model.clone(),
        stream: request.is_stream(),
        provider: None,
        region: None,
        attempts: Vec::new(),
        status: 0,
        outcome: "",
        prompt_tokens: None,
        completion_tokens: None,
        duration_ms: 0,
    };
    let result = attempt_all(&config, &targets, &mut request, env, rc, &mut line).await;
    match result {
        Ok(Served::Whole(response)) => {
            log::emit(&finish(line, rc, 200, "complete"));
            Ok(response)
        }
        Ok(Served::Stream(response)) => Ok(response),
        Err(error) => {
            log::emit(&finish(line, rc, error.status, "error"));
            Err(error)
        }
    }
}

fn finish(
    mut line: RequestLine,
    rc: &RequestContext,
    status: u16,
    outcome: &'static str,
) -> RequestLine {
    line.status = status;
    line.outcome = outcome;
    line.duration_ms = now_ms().saturating_sub(rc.started_ms);
    line
}

enum Served {
    Whole(Response),
    /// Logged by the stream itself when it ends.
    Stream(Response),
}

async fn attempt_all(
    config: &Config,
    targets: &[ResolvedTarget<'_>],
    request: &mut ChatRequest,
    env: &Env,
    rc: &RequestContext,
    line: &mut RequestLine,
) -> Result<Served, GatewayError> {
    let settings = &config.settings;
    let deadline = rc.started_ms + settings.request_timeout_ms;
    let mut failures: Vec<(&str, AttemptFailure)> = Vec::new();
    let mut secrets: Vec<String> = Vec::new();

    for (index, target) in targets.iter().enumerate() {
        let left = deadline.saturating_sub(now_ms());
        if left == 0 {
            break;
        }
        let attempt_started = now_ms();
        let api_key = match &target.provider.api_key_secret {
            Some(name) => match env.secret(name) {
                Ok(value) => Some(value.to_string()),
                Err(_) => {
                    record(line, target, "missing_secret", attempt_started);
                    failures.push((target.provider_id, AttemptFailure::MissingSecret));
                    continue;
                }
            },
            None => None,
        };
        if let Some(key) = &api_key {
            secrets.push(key.clone());
        }
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let attempts = index + 1;

        let outcome = attempt_one(
            target,
            request,
            api_key.as_deref(),
            settings.first_byte_timeout_ms.min(left),
            settings.stream_idle_timeout_ms,
        )
        .await;
        match outcome {
            Ok(answer) => {
                record(line, target, "ok", attempt_started);
                line.provider = Some(target.provider_id.to_string());
                line.region = Some(target.provider.region.clone());
                return Ok(answer.into_response(target, attempts, line, rc));
            }
            Err(failure) => {
                record(line, target, outcome_name(&failure), attempt_started);
                if let Verdict::Answer(error) = gateway::judge(&failure, &secret_refs) {
                    return Err(error);
                }
                failures.push((target.provider_id, failure));
            }
        }
    }
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    if failures.is_empty() {
        return Err(GatewayError::new(
            504,
            "server_error",
            "upstream_timeout",
            "The request deadline passed before any provider could be tried.",
        ));
    }
    Err(gateway::exhausted(&request.model, &failures, &secret_refs))
}

fn record(line: &mut RequestLine, target: &ResolvedTarget<'_>, outcome: &str, started: u64) {
    line.attempts.push(Attempt {
        provider: target.provider_id.to_string(),
        outcome: outcome.to_string(),
        ms: now_ms().saturating_sub(started),
    });
}

fn outcome_name(failure: &AttemptFailure) -> &'static str {
    match failure {
        AttemptFailure::MissingSecret => "missing_secret",
        AttemptFailure::Connect => "connect_error",
        AttemptFailure::Timeout => "timeout",
        AttemptFailure::Status { status: 429, .. } => "rate_limited",
        AttemptFailure::Status {
            status: 400..=499, ..
        } => "client_error",
        AttemptFailure::Status { .. } => "server_error",
        AttemptFailure::InvalidResponse(_) => "invalid_response",
        AttemptFailure::StreamError(_) => "stream_error",
    }
}

/// A provider's answer, checked and ready to relay.
enum Answer {
    Whole {
        body: Vec<u8>,
        usage: Option<crate::protocol::openai::Usage>,
    },
    Stream {
        first: Vec<u8>,
        pump: Box<Pump>,
    },
}

async fn attempt_one(
    target: &ResolvedTarget<'_>,
    request: &mut ChatRequest,
    api_key: Option<&str>,
    first_byte_ms: u64,
    idle_ms: u64,
) -> Result<Answer, AttemptFailure> {
    let up = openai_adapter::chat_request(target.provider, target.upstream_model, request, api_key)
        .map_err(|_| AttemptFailure::InvalidResponse("the request could not be encoded"))?;
    let started = now_ms();
    let mut sent: Sent = upstream::send(&up, first_byte_ms).await?;
    let status = sent.response.status_code();
    if !(200..300).contains(&status) {
        return Err(upstream::failure_from_status(&mut sent, first_byte_ms).await);
    }
    let content_type = upstream::content_type(&sent.response);
    let left = first_byte_ms
        .saturating_sub(now_ms().saturating_sub(started))
        .max(1);
    if up.stream {
        if !content_type.starts_with("text/event-stream") {
            return Err(AttemptFailure::InvalidResponse(
                "a stream was asked for but the answer is not an event stream",
            ));
        }
        let body = sent
            .response
            .stream()
            .map_err(|_| AttemptFailure::InvalidResponse("the answer has no body"))?;
        let relay = Relay::new(
            Box::new(OpenAiPassthrough::default()),
            Box::new(OpenAiEncoder),
            request.wants_stream_usage(),
        );
        let mut pump = Pump::new(body, sent.abort, relay, idle_ms);
        let first = pump.until_committed(left).await?;
        Ok(Answer::Stream {
            first,
            pump: Box::new(pump),
        })
    } else {
        if !content_type.contains("json") {
            return Err(AttemptFailure::InvalidResponse("the answer is not JSON"));
        }
        // The whole body is the "first byte" of a non-streamed answer, but it may
        // take as long as the model needs: bound it by the idle timeout instead.
        let body = upstream::read_body(&mut sent.response, idle_ms.max(left)).await?;
        let probe: CompletionProbe = serde_json::from_slice(&body)
            .map_err(|_| AttemptFailure::InvalidResponse("the answer is not a chat completion"))?;
        Ok(Answer::Whole {
            body,
            usage: probe.usage,
        })
    }
}

impl Answer {
    fn into_response(
        self,
        target: &ResolvedTarget<'_>,
        attempts: usize,
        line: &mut RequestLine,
        rc: &RequestContext,
    ) -> Served {
        let headers = Headers::new();
        let _ = headers.set("x-gateway-provider", target.provider_id);
        let _ = headers.set("x-gateway-region", &target.provider.region);
        let _ = headers.set("x-gateway-attempts", &attempts.to_string());
        match self {
            Answer::Whole { body, usage } => {
                line.prompt_tokens = usage.map(|u| u.prompt_tokens);
                line.completion_tokens = usage.map(|u| u.completion_tokens);
                Served::Whole(respond::bytes(200, "application/json", body, headers))
            }
            Answer::Stream { first, mut pump } => {
                let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
                let _ = headers.set("cache-control", "no-cache");
                let mut logged = RequestLine {
                    attempts: std::mem::take(&mut line.attempts),
                    ..finish_copy(line)
                };
                logged.status = 200;
                pump.set_log_line(logged, rc.started_ms);
                let rest = stream::unfold(pump, |mut pump| async move {
                    pump.next_chunk()
                        .await
                        .map(|chunk| (Ok::<Vec<u8>, worker::Error>(chunk), pump))
                });
                let body =
                    stream::once(async move { Ok::<Vec<u8>, worker::Error>(first) }).chain(rest);
                let response = ResponseBuilder::new()
                    .with_status(200)
                    .with_headers(headers)
                    .from_stream(body);
                Served::Stream(response.unwrap_or_else(|_| {
                    respond::error(&GatewayError::internal("could not start the stream"))
                }))
            }
        }
    }
}

fn finish_copy(line: &RequestLine) -> RequestLine {
    RequestLine {
        event: line.event,
        request_id: line.request_id.clone(),
        key: line.key.clone(),
        model: line.model.clone(),
        stream: line.stream,
        provider: line.provider.clone(),
        region: line.region.clone(),
        attempts: Vec::new(),
        status: line.status,
        outcome: line.outcome,
        prompt_tokens: None,
        completion_tokens: None,
        duration_ms: 0,
    }
}
