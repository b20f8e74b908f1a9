//! The pipeline's ports on the Workers runtime: the clock and randomness, Worker
//! secrets, the isolate's health cache, endpoint capacity limiters, `fetch`, and
//! the stream pump. No decisions here: the pipeline makes them.

use super::limiter::{self, Ask, Reserved, Settlement};
use super::stream::Pump;
use super::upstream::{self, Sent};
use super::{health_cache, now_ms, random_unit};
use crate::config::Settings;
use crate::health::Outcome;
use crate::limits::Scoped;
use crate::pipeline::chat::{StreamPort, StreamWatch};
use crate::pipeline::{Capacity, CapacityPort, Clock, HealthView, Reply, Secrets, Upstream, WholeBody};
use crate::providers::{AttemptFailure, HeaderNames, UpstreamRequest};
use crate::relay::Relay;
use crate::routing::Candidate;
use worker::{Context, Env};

pub struct EdgePorts<'a> {
    pub env: &'a Env,
    pub ctx: &'a Context,
    pub settings: &'a Settings,
    pub request_id: &'a str,
    /// Tokens a capacity reservation asks for.
    pub estimated_tokens: u64,
}

impl Clock for EdgePorts<'_> {
    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn random_unit(&self) -> f64 {
        random_unit()
    }

    async fn sleep(&self, ms: u64) {
        super::timer::sleep_ms(u32::try_from(ms).unwrap_or(u32::MAX)).await;
    }
}

impl Secrets for EdgePorts<'_> {
    fn secret(&self, name: &str) -> Option<String> {
        super::secret(self.env, name)
    }
}

impl HealthView for EdgePorts<'_> {
    async fn claim_probe(&self, candidate: &Candidate<'_>) -> bool {
        let hint = candidate.provider.location_hint.as_deref();
        health_cache::claim_probe(self.env, candidate.provider_id, hint, self.settings.limiter_timeout_ms).await
    }

    fn begin_attempt(&self, provider_id: &str, first_attempt: bool) {
        health_cache::begin(provider_id, first_attempt);
    }

    fn record(&self, provider_id: &str, outcome: Outcome) {
        health_cache::record(provider_id, outcome, &self.settings.circuit_breaker);
    }

    fn try_retry(&self, provider_id: &str) -> bool {
        health_cache::try_retry(provider_id)
    }
}

impl CapacityPort for EdgePorts<'_> {
    type Hold = Settlement;

    async fn reserve_capacity(&self, candidate: &Candidate<'_>) -> Capacity<Settlement> {
        if candidate.provider.limits.is_empty() {
            return Capacity::NotLimited;
        }
        let id = limiter::endpoint_reservation_id(self.request_id, candidate.provider_id);
        let ask = Ask {
            reservation_id: &id,
            tokens: self.estimated_tokens,
            micro_usd: 0,
            lease_ms: limiter::lease_ms(self.settings),
            deadline_ms: self.settings.limiter_timeout_ms,
        };
        let scopes = vec![Scoped::whole(candidate.provider.limits)];
        capacity(limiter::reserve(self.env, &limiter::endpoint_name(candidate.provider_id), None, scopes, ask).await)
    }

    fn release(&self, hold: Settlement) {
        crate::edge::in_background(self.ctx, hold.cancel());
    }
}

/// A limiter's answer as the pipeline's capacity answer.
pub fn capacity(reserved: Reserved) -> Capacity<Settlement> {
    match reserved {
        Reserved::NotLimited => Capacity::NotLimited,
        Reserved::Admitted(_, settlement) => Capacity::Admitted(settlement),
        Reserved::Denied(admission) => Capacity::Denied { retry_after_ms: admission.retry_after_ms },
        Reserved::Unreachable => Capacity::Unreachable,
    }
}

impl Reply for Sent {
    fn status(&self) -> u16 {
        Sent::status(self)
    }

    fn header(&self, name: &str) -> Option<String> {
        Sent::header(self, name)
    }

    async fn body(&mut self, within_ms: u64) -> Result<Vec<u8>, AttemptFailure> {
        self.read_body(within_ms).await
    }
}

impl Upstream for EdgePorts<'_> {
    type Reply = Sent;

    async fn send(
        &self,
        request: &UpstreamRequest,
        reads: HeaderNames,
        first_byte_ms: u64,
    ) -> Result<Sent, AttemptFailure> {
        upstream::send(request, reads, first_byte_ms, None).await
    }

    async fn send_whole(
        &self,
        request: &UpstreamRequest,
        reads: HeaderNames,
        first_byte_ms: u64,
        whole: WholeBody,
    ) -> Result<Sent, AttemptFailure> {
        upstream::send(request, reads, first_byte_ms, Some(whole)).await
    }
}

impl StreamPort for EdgePorts<'_> {
    type Stream = Box<Pump>;

    async fn open_stream(
        &self,
        reply: Sent,
        relay: Relay,
        watch: StreamWatch,
        first_content_ms: u64,
    ) -> Result<(Vec<u8>, Box<Pump>), AttemptFailure> {
        let body = reply.reader().ok_or(AttemptFailure::InvalidResponse("the answer has no body"))?;
        let mut pump = Box::new(Pump::new(body, reply.abort, relay, self.settings.stream_idle_timeout_ms));
        pump.set_breaker_policy(self.settings.circuit_breaker);
        if let Some(tools) = watch.tools {
            pump.check_tool_calls(tools);
        }
        pump.scrub_secrets(watch.secrets);
        pump.until_committed(first_content_ms).await
    }
}
