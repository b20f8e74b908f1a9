//! `POST /v1/embeddings`: routed like chat (residency, key allow-lists, health,
//! strategy, the key's and team's rate limits) to OpenAI-compatible, Azure and
//! Gemini targets, with failover.

use super::limiter::{self, Combined};
use super::log::{self, Attempt};
use super::{authenticate, body, config_store, health_cache, location, now_ms, random_u64, respond, upstream};
use crate::config::{Config, ProviderKind};
use crate::error::GatewayError;
use crate::gateway::{self, AttemptFailure, Verdict};
use crate::health::Outcome;
use crate::limits::Used;
use crate::protocol::openai::EmbeddingsRequest;
use crate::providers::openai as openai_adapter;
use crate::providers::{gemini, AttemptContext};
use crate::routing::needs::RequestNeeds;
use crate::routing::{self, preferences::Preferences, residency, RouteInput};
use std::rc::Rc;
use worker::{Context, Env, Headers, Request, Response};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rc: &super::RequestContext,
) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&req, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes).await?;
    let request = EmbeddingsRequest::parse(&body)?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let narrowing = header("x-gateway-region").map(|h| residency::parse_narrowing(&h)).transpose()?;
    let allowed = residency::allowed(&config, key, narrowing, &location::client_location(&req))?;
    let health = health_cache::snapshot();
    let preferences = Preferences::default();
    let input = RouteInput {
        config: &config,
        key,
        model: &request.model,
        needs: RequestNeeds { prompt_tokens: request.estimated_tokens(), choices: 1, ..RequestNeeds::default() },
        preferences: &preferences,
        header: &header,
        metadata: None,
        allowed: &allowed,
        health: &health,
        session: None,
        previous: None,
        seed: random_u64(),
    };
    let plan = routing::plan(&input)?;
    if plan.candidates.is_empty() {
        return Err(plan.no_candidates_error());
    }

    let estimate = request.estimated_tokens();
    let lease_ms = limiter::lease_ms(&config.settings);
    let estimated_cost = plan.candidates.first().and_then(|c| c.price).map_or(0, |p| p.cost_micro_usd(estimate, 0));
    let ask = limiter::Ask { reservation_id: &rc.id, tokens: estimate, micro_usd: estimated_cost, lease_ms };
    let (admission, settlements) = match limiter::reserve_for_key(env, &config, key, &plan.model, ask, false).await {
        Combined::Denied { admission, by, to_cancel } => {
            ctx.wait_until(limiter::cancel_all(to_cancel));
            let response = respond::error(&limiter::denial_error(&admission, &by, estimate));
            limiter::headers(&admission, response.headers());
            return Ok(response);
        }
        Combined::Unavailable { to_cancel } => {
            ctx.wait_until(limiter::cancel_all(to_cancel));
            return Err(limiter::unavailable_error());
        }
        Combined::Admitted { admission, settlements, .. } => (admission, limiter::Settlements::from(settlements)),
    };
    let result = serve(&request, &plan, &allowed, key, env, ctx, rc, &config).await;
    let used = match &result {
        Ok((_, used)) => Used { tokens: Some(used.tokens.unwrap_or(estimate)), ..*used },
        Err(_) => Used::NOTHING,
    };
    ctx.wait_until(settlements.run(used));
    let (response, _) = result?;
    if let Some(admission) = &admission {
        limiter::headers(admission, response.headers());
    }
    Ok(response)
}

/// Tries the plan's embedding-capable targets in order; the answer and what it used.
#[allow(clippy::too_many_arguments)]
async fn serve(
    request: &EmbeddingsRequest,
    plan: &routing::Plan<'_>,
    allowed: &residency::AllowedRegions,
    key: &crate::config::KeyRecord,
    env: &Env,
    ctx: &Context,
    rc: &super::RequestContext,
    config: &Rc<Config>,
) -> Result<(Response, Used), GatewayError> {
    let settings = &config.settings;
    let mut failures = Vec::new();
    let mut attempts = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    for candidate in &plan.candidates {
        let kind = candidate.provider.kind;
        if !allowed.permits(candidate.region)
            || !matches!(kind, ProviderKind::Openai | ProviderKind::AzureOpenai | ProviderKind::Gemini)
        {
            continue;
        }
        let api_key = match &candidate.provider.api_key_secret {
            Some(name) => match env.secret(name) {
                Ok(value) => Some(value.to_string()),
                Err(_) => {
                    failures.push((candidate.provider_id, AttemptFailure::MissingSecret));
                    continue;
                }
            },
            None => None,
        };
        secrets.extend(api_key.clone());
        let attempt = AttemptContext {
            provider: candidate.provider,
            upstream_model: candidate.upstream_model,
            public_model: candidate.model,
            api_key: api_key.as_deref(),
            now_ms: now_ms(),
            request_id: &rc.id,
        };
        let up = match kind {
            ProviderKind::Gemini => {
                let dimensions =
                    request.extra.get("dimensions").and_then(|d| d.as_u64()).and_then(|d| u32::try_from(d).ok());
                gemini::embeddings_request(&attempt, &request.input, dimensions)?
            }
            _ => openai_adapter::embeddings_request(
                candidate.provider,
                candidate.upstream_model,
                request,
                api_key.as_deref(),
            )?,
        };
        let started = now_ms();
        let outcome = match upstream::send(&up, settings.first_byte_timeout_ms).await {
            Ok(mut sent) if (200..300).contains(&sent.status()) => {
                sent.read_body(settings.stream_idle_timeout_ms).await
            }
            Ok(mut sent) => Err(sent.failure(settings.first_byte_timeout_ms).await),
            Err(failure) => Err(failure),
        };
        // Gemini's answer in OpenAI's shape (base64 when asked, as the SDKs do by default).
        let outcome = match outcome {
            Ok(answer) if kind == ProviderKind::Gemini => {
                let base64 = request.extra.get("encoding_format").and_then(|v| v.as_str()) == Some("base64");
                gemini::embeddings_response(&attempt, &answer)
                    .ok()
                    .map(|mut v| {
                        if base64 {
                            crate::providers::embeddings_as_base64(&mut v);
                        }
                        v
                    })
                    .and_then(|v| serde_json::to_vec(&v).ok())
                    .ok_or(AttemptFailure::InvalidResponse("the answer has no embeddings"))
            }
            other => other,
        };
        let ms = now_ms().saturating_sub(started);
        match outcome {
            Ok(answer) => {
                health_cache::record(
                    candidate.provider_id,
                    Outcome::Success { latency_ms: ms },
                    &settings.circuit_breaker,
                );
                attempts.push(Attempt {
                    provider: candidate.provider_id.into(),
                    region: candidate.region.into(),
                    outcome: "ok".into(),
                    ms,
                });
                let tokens = total_tokens(&answer);
                let used = Used {
                    tokens,
                    micro_usd: tokens.zip(candidate.price).map(|(t, price)| price.cost_micro_usd(t, 0)),
                };
                if settings.request_log {
                    let cost_usd = tokens.zip(candidate.price).map(|(t, price)| price.cost_usd(t, 0));
                    log::emit(&serde_json::json!({
                        "event": "embeddings", "request_id": rc.id, "key": key.name, "team": key.team,
                        "model": request.model, "provider": candidate.provider_id, "region": candidate.region,
                        "attempts": attempts, "status": 200, "prompt_tokens": tokens, "cost_usd": cost_usd,
                    }));
                }
                health_cache::after_request(env, ctx, config);
                let headers = Headers::new();
                let _ = headers.set("x-gateway-provider", candidate.provider_id);
                let _ = headers.set("x-gateway-region", candidate.region);
                let _ = headers.set("x-gateway-attempts", &attempts.len().to_string());
                return Ok((respond::bytes(200, "application/json", answer, headers), used));
            }
            Err(failure) => {
                attempts.push(Attempt {
                    provider: candidate.provider_id.into(),
                    region: candidate.region.into(),
                    outcome: "failed".into(),
                    ms,
                });
                if !matches!(failure, AttemptFailure::Status { status: 400..=499, .. }) {
                    health_cache::record(candidate.provider_id, Outcome::Failure, &settings.circuit_breaker);
                }
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                if let Verdict::Answer(error) = gateway::judge(&failure, &refs) {
                    return Err(error);
                }
                failures.push((candidate.provider_id, failure));
            }
        }
    }
    health_cache::after_request(env, ctx, config);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    if failures.is_empty() {
        return Err(GatewayError::invalid_request(
            "unsupported_model",
            format!("Model `{}` has no target that serves embeddings.", request.model),
        )
        .with_param("model"));
    }
    Err(gateway::exhausted(&request.model, &failures, &refs))
}

/// `usage.total_tokens` of an embeddings answer (the vectors are skipped, not kept).
fn total_tokens(answer: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Usage {
        total_tokens: Option<u64>,
        prompt_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        usage: Option<Usage>,
    }
    let usage = serde_json::from_slice::<Answer>(answer).ok()?.usage?;
    usage.total_tokens.or(usage.prompt_tokens)
}
