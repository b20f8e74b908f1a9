//! Counting a request's input tokens (Anthropic's `count_tokens`, OpenAI's
//! `responses/input_tokens`): asked of the
//! first candidate whose provider counts, through the same attempt loop as chat
//! (residency guard, secrets, deadlines, failover), but on ports that leave the
//! endpoints' health and capacity alone. A count is a free call with its own
//! provider rate limits: what it meets says nothing about serving the model, and
//! one caller's counting must not move what every tenant's requests are routed by.

use super::outcome::failure_of;
use super::{Capacity, CapacityPort, Clock, HealthView, Operation, Ports, Reply, Secrets, Target, Upstream};
use crate::dialects::{self, ClientCall, ClientDialect};
use crate::error::GatewayError;
use crate::health::Outcome;
use crate::providers::quota::QuotaReading;
use crate::providers::{self, AttemptFailure, HeaderNames, TokenCount, UpstreamRequest};
use crate::routing::Candidate;

pub struct CountTokensAttempt<'a> {
    pub dialect: &'a dyn ClientDialect,
    pub call: &'a ClientCall,
    pub request_id: &'a str,
    /// The longest wait for the whole answer once its first byte came.
    pub idle_ms: u64,
}

impl<P: Ports> Operation<P> for CountTokensAttempt<'_> {
    /// The input tokens, as the provider counted them.
    type Answer = u64;

    async fn attempt(&mut self, ports: &P, target: &Target<'_, '_>) -> Result<u64, AttemptFailure> {
        let adapter = providers::adapter(&target.candidate.provider.kind);
        let ctx = target.context(ports.now_ms(), self.request_id);
        let count =
            TokenCount { request: &self.call.request, native: dialects::native_for(self.dialect, self.call, adapter) };
        let cannot_count = || {
            GatewayError::invalid_request(
                "unsupported_model",
                format!("Model `{}` has no target whose provider counts tokens.", self.call.request.model),
            )
            .with_param("model")
        };
        let request = adapter
            .count_tokens_request(&ctx, count)
            .unwrap_or_else(|| Err(cannot_count()))
            .map_err(AttemptFailure::Unservable)?;
        let mut reply = ports.send(&request, adapter.answer_headers(), target.first_byte_ms).await?;
        if matches!(reply.status(), 404 | 405 | 501) {
            // No count at this endpoint (an OpenAI-compatible API without OpenAI's): another target may count.
            return Err(AttemptFailure::Unservable(cannot_count()));
        }
        if !(200..300).contains(&reply.status()) {
            // The count's rate-limit headers are the count's own: not learned as the endpoint's quota.
            return Err(
                failure_of(adapter, &mut reply, &QuotaReading::default(), target.first_byte_ms.min(5_000)).await
            );
        }
        let body = reply.body(self.idle_ms.max(target.first_byte_ms)).await?;
        adapter.count_tokens_response(&body)
    }
}

/// Ports that send like `P` but record no health outcome, take no probe lease or
/// retry budget, and reserve no endpoint capacity (see the module's comment).
pub struct Unrecorded<'a, P>(pub &'a P);

impl<P: Clock> Clock for Unrecorded<'_, P> {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }

    fn random_unit(&self) -> f64 {
        self.0.random_unit()
    }

    async fn sleep(&self, ms: u64) {
        self.0.sleep(ms).await
    }
}

impl<P: Secrets> Secrets for Unrecorded<'_, P> {
    fn secret(&self, name: &str) -> Option<String> {
        self.0.secret(name)
    }
}

impl<P> HealthView for Unrecorded<'_, P> {
    async fn claim_probe(&self, _candidate: &Candidate<'_>) -> bool {
        true
    }

    fn begin_attempt(&self, _provider_id: &str, _first_attempt: bool) {}

    fn record(&self, _provider_id: &str, _outcome: Outcome) {}

    fn try_retry(&self, _provider_id: &str) -> bool {
        false
    }
}

impl<P> CapacityPort for Unrecorded<'_, P> {
    type Hold = ();

    async fn reserve_capacity(&self, _candidate: &Candidate<'_>) -> Capacity<()> {
        Capacity::NotLimited
    }

    fn release(&self, _hold: ()) {}
}

impl<P: Upstream> Upstream for Unrecorded<'_, P> {
    type Reply = P::Reply;

    async fn send(
        &self,
        request: &UpstreamRequest,
        reads: HeaderNames,
        first_byte_ms: u64,
    ) -> Result<P::Reply, AttemptFailure> {
        self.0.send(request, reads, first_byte_ms).await
    }
}
