//! The key's `RateLimiter` object on the hot path: one call to admit (requests,
//! tokens and concurrency at once), one after the answer to settle.

use super::objects::{self, RATE_LIMITER};
use crate::config::KeyRecord;
use crate::error::GatewayError;
use crate::limits::{openai_duration, Admission, Admit, Decision, Denial};
use serde::Serialize;
use worker::{Env, Headers, Stub};

/// Limiter objects of keys pinned to these policies live in that jurisdiction.
const JURISDICTIONS: [&str; 2] = ["eu", "fedramp"];

fn jurisdiction(key: &KeyRecord) -> Option<&'static str> {
    JURISDICTIONS
        .into_iter()
        .find(|j| !key.regions.is_empty() && key.regions.iter().all(|r| r == j || r.starts_with(&format!("{j}-"))))
}

pub fn stub(env: &Env, key: &KeyRecord) -> Option<Stub> {
    objects::stub(env, RATE_LIMITER, &format!("key:{}", key.name), jurisdiction(key), None)
}

/// `None` when the limiter could not be reached: rate limits fail open (the
/// request goes through, the log line says so), as one slow object must not
/// take the gateway down.
pub async fn admit(stub: &Stub, admit: &Admit) -> Option<Admission> {
    objects::call(stub, "/admit", Some(admit)).await
}

#[derive(Serialize)]
struct Settle<'a> {
    reservation_id: &'a str,
    actual_tokens: Option<u64>,
    limits: crate::limits::Limits,
}

pub async fn settle(stub: &Stub, key: &KeyRecord, reservation_id: &str, actual_tokens: Option<u64>) {
    let body = Settle { reservation_id, actual_tokens, limits: key.limits };
    let _: Option<serde_json::Value> = objects::call(stub, "/settle", Some(&body)).await;
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

/// Settles a reservation after the answer (from `wait_until`, or at stream end).
pub struct Settlement {
    pub stub: Stub,
    pub key: KeyRecord,
    pub reservation_id: String,
}

impl Settlement {
    pub async fn run(self, actual_tokens: Option<u64>) {
        settle(&self.stub, &self.key, &self.reservation_id, actual_tokens).await;
    }
}
