//! Rate limiters on the hot path: the key's `RateLimiter` object (requests,
//! tokens and concurrency in one call) and, where the config sets them, each
//! endpoint's capacity limiter; settled with the real usage after the answer.

use super::objects::{self, RATE_LIMITER};
use crate::config::KeyRecord;
use crate::error::GatewayError;
use crate::limits::{openai_duration, Admission, Admit, Decision, Denial, Limits};
use serde::Serialize;
use worker::{Env, Headers, Stub};

/// Limiter objects of keys pinned to these policies live in that jurisdiction.
const JURISDICTIONS: [&str; 2] = ["eu", "fedramp"];

pub fn jurisdiction(key: &KeyRecord) -> Option<&'static str> {
    JURISDICTIONS
        .into_iter()
        .find(|j| !key.regions.is_empty() && key.regions.iter().all(|r| r == j || r.starts_with(&format!("{j}-"))))
}

pub fn key_name(key: &KeyRecord) -> String {
    format!("key:{}", key.name)
}

/// The capacity limiter of a provider endpoint.
pub fn endpoint_name(provider_id: &str) -> String {
    format!("endpoint:{provider_id}")
}

/// The outcome of asking one limiter for room.
pub enum Reserved {
    NotLimited,
    Admitted(Admission, Settlement),
    Denied(Admission),
    /// Rate limits fail open: one slow object must not take the gateway down.
    Unreachable,
}

pub async fn reserve(
    env: &Env,
    name: &str,
    jurisdiction: Option<&str>,
    limits: Limits,
    reservation_id: &str,
    estimated_tokens: u64,
    lease_ms: u64,
) -> Reserved {
    let Some(stub) = objects::stub(env, RATE_LIMITER, name, jurisdiction, None) else { return Reserved::Unreachable };
    let admit = Admit { limits, reservation_id: reservation_id.to_string(), estimated_tokens, lease_ms };
    match objects::call::<_, Admission>(&stub, "/admit", Some(&admit)).await {
        Some(a) if a.allowed => {
            Reserved::Admitted(a, Settlement { stub, limits, reservation_id: reservation_id.to_string() })
        }
        Some(a) => Reserved::Denied(a),
        None => Reserved::Unreachable,
    }
}

/// Endpoint capacity checks for the attempt loop; the first candidate's was made
/// up front, in parallel with the key's.
pub struct Capacity {
    pub first: Option<Reserved>,
    pub estimate: u64,
    pub lease_ms: u64,
}

impl Capacity {
    pub async fn reserve(
        &mut self,
        env: &Env,
        candidate: &crate::routing::Candidate<'_>,
        request_id: &str,
    ) -> Reserved {
        if let Some(first) = self.first.take() {
            return first;
        }
        if candidate.provider.limits.is_empty() {
            return Reserved::NotLimited;
        }
        let id = format!("{request_id}@{}", candidate.provider_id);
        let name = endpoint_name(candidate.provider_id);
        reserve(env, &name, None, candidate.provider.limits, &id, self.estimate, self.lease_ms).await
    }
}

#[derive(Serialize)]
struct Settle<'a> {
    reservation_id: &'a str,
    actual_tokens: Option<u64>,
    limits: Limits,
}

/// Settles a reservation after the answer (from `wait_until`, or at stream end).
pub struct Settlement {
    stub: Stub,
    limits: Limits,
    reservation_id: String,
}

impl Settlement {
    pub async fn run(self, actual_tokens: Option<u64>) {
        let body = Settle { reservation_id: &self.reservation_id, actual_tokens, limits: self.limits };
        let _: Option<serde_json::Value> = objects::call(&self.stub, "/settle", Some(&body)).await;
    }
}

/// Every reservation one request holds (its key's, and each endpoint's it used).
#[derive(Default)]
pub struct Settlements(Vec<Settlement>);

impl Settlements {
    pub fn push(&mut self, settlement: Settlement) {
        self.0.push(settlement);
    }

    pub async fn run(self, actual_tokens: Option<u64>) {
        futures_util::future::join_all(self.0.into_iter().map(|s| s.run(actual_tokens))).await;
    }
}

/// OpenAI's `x-ratelimit-*` headers, on successes and on 429s alike.
pub fn headers(admission: &Admission, headers: &Headers) {
    let set = |kind: &str, decision: &Option<Decision>| {
        if let Some(d) = decision {
            let _ = headers.set(&format!("x-ratelimit-limit-{kind}"), &d.limit.to_string());
            let _ = headers.set(&format!("x-ratelimit-remaining-{kind}"), &d.remaining.to_string());
            let _ = headers.set(&format!("x-ratelimit-reset-{kind}"), &openai_duration(d.reset_ms));
        }
    };
    set("requests", &admission.requests);
    set("tokens", &admission.tokens);
}

pub fn denial_error(admission: &Admission, estimated_tokens: u64) -> GatewayError {
    let retry_s = admission.retry_after_ms.div_ceil(1000).max(1);
    let (kind, code, message) = match admission.denied_by {
        Some(Denial::Tokens) if admission.never => (
            "tokens",
            "rate_limit_exceeded",
            format!(
                "Request too large for the tokens-per-minute limit (limit {}, requested about {estimated_tokens}); lower max_tokens or the prompt.",
                admission.tokens.map_or(0, |d| d.limit)
            ),
        ),
        Some(Denial::Tokens) => ("tokens", "rate_limit_exceeded", format!("Tokens-per-minute limit reached; retry in {retry_s} s.")),
        Some(Denial::Concurrency) => ("requests", "concurrency_limit_exceeded", "Too many concurrent requests for this key.".to_string()),
        _ => ("requests", "rate_limit_exceeded", format!("Requests-per-minute limit reached; retry in {retry_s} s.")),
    };
    let error = GatewayError::new(429, kind, code, message);
    if admission.never {
        error.final_answer()
    } else {
        error.with_retry_after(retry_s)
    }
}
