//! The attempt loop, generic over the operation (chat, embeddings): for each
//! candidate of the plan, in order, the residency guard, the provider's secret,
//! the endpoint's capacity, deadlines, retries within the retry budget, failover,
//! and the health outcome of every attempt. It reaches the runtime only through
//! the small ports below, so `cargo test` drives every path with fakes; `edge/`
//! implements them for workerd.

// Ports are implemented once for the single-threaded Workers runtime and once by
// the tests: no `Send` bounds to promise.
#![allow(async_fn_in_trait)]

pub mod admission;
pub mod chat;
pub mod count_tokens;
pub mod embeddings;
mod outcome;
#[cfg(test)]
mod tests;

pub use outcome::{health_outcome, outcome_name, RequestTraits};

use crate::config::Settings;
use crate::error::GatewayError;
use crate::gateway::{self, NextStep};
use crate::health::Outcome;
use crate::providers::{AttemptFailure, HeaderNames, UpstreamRequest};
use crate::routing::residency::AllowedRegions;
use crate::routing::{Candidate, Plan};
use serde::Serialize;

/// Time and chance, which pure code never reads by itself.
pub trait Clock {
    fn now_ms(&self) -> u64;
    /// A number in [0, 1).
    fn random_unit(&self) -> f64;
    async fn sleep(&self, ms: u64);
}

/// The providers' keys, by secret name.
pub trait Secrets {
    fn secret(&self, name: &str) -> Option<String>;
}

/// The isolate's view of endpoint health, and where outcomes are reported.
pub trait HealthView {
    /// Before the first attempt at an endpoint that is recovering (its open period
    /// over): may this request send the half-open probe? False when another caller
    /// holds the probe lease. Healthy endpoints answer true without any I/O.
    async fn claim_probe(&self, candidate: &Candidate<'_>) -> bool;
    fn begin_attempt(&self, provider_id: &str, first_attempt: bool);
    fn record(&self, provider_id: &str, outcome: Outcome);
    /// Takes one same-endpoint retry from the endpoint's retry budget, if any is left.
    fn try_retry(&self, provider_id: &str) -> bool;
}

/// An endpoint's answer to a capacity reservation.
#[derive(Debug)]
pub enum Capacity<H> {
    NotLimited,
    /// Room reserved; the hold is settled with the request's real usage.
    Admitted(H),
    Denied {
        retry_after_ms: u64,
    },
    /// The limiter could not be asked: capacity fails open.
    Unreachable,
}

/// The endpoints' own capacity limiters (the provider's RPM/TPM from the config).
pub trait CapacityPort {
    type Hold;
    async fn reserve_capacity(&self, candidate: &Candidate<'_>) -> Capacity<Self::Hold>;
    /// A reservation that will not be used (its endpoint was never tried).
    fn release(&self, hold: Self::Hold);
}

/// A provider's answer as it arrived: status and headers at once, the body on demand.
pub trait Reply {
    fn status(&self) -> u16;
    fn header(&self, name: &str) -> Option<String>;
    /// The whole body, within `within_ms`.
    async fn body(&mut self, within_ms: u64) -> Result<Vec<u8>, AttemptFailure>;
}

/// Sending one request to a provider, with a deadline for its first byte. `reads`:
/// the answer's headers the caller will look at (its adapter's `answer_headers`).
pub trait Upstream {
    type Reply: Reply;
    async fn send(
        &self,
        request: &UpstreamRequest,
        reads: HeaderNames,
        first_byte_ms: u64,
    ) -> Result<Self::Reply, AttemptFailure>;

    /// Sends a request whose 2xx answer (of `whole`'s content type) will be read whole,
    /// within `whole`'s deadline: a port may read that body with the headers (one
    /// wait, not two); the reply's `body` then gives what was read, whatever it is asked.
    async fn send_whole(
        &self,
        request: &UpstreamRequest,
        reads: HeaderNames,
        first_byte_ms: u64,
        whole: WholeBody,
    ) -> Result<Self::Reply, AttemptFailure> {
        let _ = whole;
        self.send(request, reads, first_byte_ms).await
    }
}

/// A 2xx answer whose body is read whole once its headers came, and how long that
/// may take: the longer of `at_least_ms` and what is left of `until_ms` since the
/// request was sent (at least 1 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WholeBody {
    pub at_least_ms: u64,
    pub until_ms: u64,
    /// Only an answer of this content type (a lowercase prefix) is read so; another
    /// is left for the operation to look at. `None`: any.
    pub content_type: Option<&'static str>,
}

impl WholeBody {
    /// The body's deadline when the headers came `elapsed_ms` after the request was sent.
    pub fn within_ms(self, elapsed_ms: u64) -> u64 {
        self.at_least_ms.max(self.until_ms.saturating_sub(elapsed_ms).max(1))
    }
}

/// Everything the attempt loop needs from the runtime.
pub trait Ports: Clock + Secrets + HealthView + CapacityPort + Upstream {}
impl<T: Clock + Secrets + HealthView + CapacityPort + Upstream> Ports for T {}

/// One attempt at one candidate, as the loop hands it to the operation.
pub struct Target<'a, 'c> {
    pub candidate: &'a Candidate<'c>,
    pub api_key: Option<&'a str>,
    /// The first byte must arrive within this (the request's deadline included).
    pub first_byte_ms: u64,
    /// What is left of the request's deadline when the attempt starts.
    pub request_left_ms: u64,
}

impl Target<'_, '_> {
    /// What the candidate's adapter needs to know about this attempt.
    pub fn context<'t>(&'t self, now_ms: u64, request_id: &'t str) -> crate::providers::AttemptContext<'t> {
        let candidate = self.candidate;
        crate::providers::AttemptContext {
            provider: candidate.provider,
            upstream_model: candidate.upstream_model,
            public_model: candidate.model,
            api_key: self.api_key,
            now_ms,
            request_id,
        }
    }
}

/// What is tried on each candidate: build the request, send it, read the answer.
pub trait Operation<P: Ports> {
    type Answer;

    /// What the request may cause itself (see [`RequestTraits`]).
    fn traits(&self) -> RequestTraits {
        RequestTraits::default()
    }

    async fn attempt(&mut self, ports: &P, target: &Target<'_, '_>) -> Result<Self::Answer, AttemptFailure>;
}

/// What the loop reads but never changes.
pub struct Attempts<'p, 'c> {
    pub plan: &'p Plan<'c>,
    pub allowed: &'p AllowedRegions,
    pub settings: &'p Settings,
    /// When the request arrived (its total deadline counts from here).
    pub request_started_ms: u64,
}

/// A capacity reservation made before the loop (in parallel with the key's
/// limits), valid only for the endpoint it was made for.
pub struct Prereserved<H> {
    pub provider_id: String,
    pub capacity: Capacity<H>,
}

/// One attempt, as the request log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub region: String,
    pub outcome: String,
    pub ms: u64,
}

/// What the loop did, for the log line and the settlements.
pub struct Trail<H> {
    pub attempts: Vec<AttemptRecord>,
    /// Time spent waiting on providers.
    pub upstream_ms: u64,
    /// A capacity limiter could not be reached and was not enforced.
    pub limiter_degraded: bool,
    /// Capacity reservations of the endpoints tried, to settle with the real usage.
    pub holds: Vec<H>,
    /// Candidates outside the allowed regions that the guard refused to send to.
    pub residency_blocked: Vec<String>,
    /// Provider keys read so far: scrubbed from every message that leaves.
    pub secrets: Vec<String>,
}

impl<H> Default for Trail<H> {
    fn default() -> Self {
        Self {
            attempts: Vec::new(),
            upstream_ms: 0,
            limiter_degraded: false,
            holds: Vec::new(),
            residency_blocked: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl<H> Trail<H> {
    fn attempt(&mut self, candidate: &Candidate<'_>, outcome: &str, ms: u64) {
        self.attempts.push(AttemptRecord {
            provider: candidate.provider_id.to_string(),
            region: candidate.region.to_string(),
            outcome: outcome.to_string(),
            ms,
        });
    }

    pub fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

/// Tries the plan's candidates in order until one answers. The answer and the
/// candidate that gave it, or the client's error.
pub async fn run<'p, 'c, P: Ports, O: Operation<P>>(
    ports: &P,
    operation: &mut O,
    scope: &Attempts<'p, 'c>,
    mut prereserved: Option<Prereserved<P::Hold>>,
    trail: &mut Trail<P::Hold>,
) -> Result<(O::Answer, &'p Candidate<'c>), GatewayError> {
    let Attempts { plan, allowed, settings, request_started_ms } = *scope;
    let deadline = request_started_ms.saturating_add(settings.request_timeout_ms);
    let mut failures: Vec<(&str, AttemptFailure)> = Vec::new();
    let mut answer = None;
    // After a provider said the prompt does not fit: only windows larger than this.
    let mut window_above: Option<u64> = None;

    'candidates: for (index, candidate) in plan.candidates.iter().enumerate() {
        // Defense in depth: the plan never holds an endpoint outside the allowed
        // regions, and this check makes sure no code path can send it there.
        if !allowed.permits(candidate.region) {
            trail.residency_blocked.push(candidate.provider_id.to_string());
            continue;
        }
        if window_above.is_some() && gateway::larger_context(window_above, [window_of(candidate)]).is_none() {
            continue;
        }
        let api_key = match &candidate.provider.api_key_secret {
            Some(name) => match ports.secret(name) {
                Some(value) => Some(value),
                None => {
                    trail.attempt(candidate, "missing_secret", 0);
                    failures.push((candidate.provider_id, AttemptFailure::MissingSecret));
                    continue;
                }
            },
            None => None,
        };
        trail.secrets.extend(api_key.clone());

        // A recovering endpoint takes one probe at a time, across isolates: when
        // another caller holds the lease, treat it as still open and go on (unless
        // nothing else is left, as the plan keeps one endpoint rather than refusing).
        let alternatives = plan.candidates.iter().skip(index + 1).any(|c| allowed.permits(c.region));
        if alternatives && !ports.claim_probe(candidate).await {
            trail.attempt(candidate, "probe_in_flight", 0);
            continue;
        }

        // The endpoint's own capacity: spread bursts to the next endpoint before
        // the provider starts answering 429.
        let capacity = match prereserved.take() {
            Some(p) if p.provider_id == candidate.provider_id => p.capacity,
            other => {
                release(ports, other);
                ports.reserve_capacity(candidate).await
            }
        };
        match capacity {
            Capacity::Denied { retry_after_ms } => {
                trail.attempt(candidate, "over_capacity", 0);
                let retry_after_s = Some(retry_after_ms.div_ceil(1000).max(1));
                let failure =
                    AttemptFailure::Status { status: 429, retry_after_s, message: None, code: None, param: None };
                failures.push((candidate.provider_id, failure));
                continue;
            }
            Capacity::Admitted(hold) => trail.holds.push(hold),
            Capacity::Unreachable => trail.limiter_degraded = true,
            Capacity::NotLimited => {}
        }

        let mut attempts_here = 0;
        loop {
            let started = ports.now_ms();
            let left = deadline.saturating_sub(started);
            if left == 0 {
                break 'candidates;
            }
            attempts_here += 1;
            ports.begin_attempt(candidate.provider_id, attempts_here == 1);
            let target = Target {
                candidate,
                api_key: api_key.as_deref(),
                first_byte_ms: settings.first_byte_timeout_ms.min(left),
                request_left_ms: left,
            };
            let result = operation.attempt(ports, &target).await;
            let elapsed = ports.now_ms().saturating_sub(started);
            trail.upstream_ms += elapsed;
            let failure = match result {
                Ok(served) => {
                    ports.record(candidate.provider_id, Outcome::Success { latency_ms: elapsed });
                    trail.attempt(candidate, "ok", elapsed);
                    answer = Some((served, candidate));
                    break 'candidates;
                }
                Err(failure) => failure,
            };
            trail.attempt(candidate, outcome_name(&failure), elapsed);
            let traits = operation.traits();
            if let Some(outcome) = health_outcome(&failure, traits) {
                ports.record(candidate.provider_id, outcome);
            }
            if traits.names_external_resources {
                if let Some(error) = gateway::resource_denied(&failure, &trail.secret_refs()) {
                    // The caller's answer: every other target would fetch the same resource.
                    release(ports, prereserved.take());
                    return Err(error);
                }
            }
            let left = deadline.saturating_sub(ports.now_ms());
            let secrets = trail.secret_refs();
            let step = gateway::next_step(
                &failure,
                attempts_here,
                left,
                settings.first_byte_timeout_ms,
                ports.random_unit(),
                &secrets,
            );
            match step {
                NextStep::Answer(error) => {
                    release(ports, prereserved.take());
                    return Err(error);
                }
                NextStep::LargerContext(error) => {
                    let later = plan.candidates.iter().skip(index + 1).filter(|c| allowed.permits(c.region));
                    if gateway::larger_context(window_of(candidate), later.map(window_of)).is_none() {
                        release(ports, prereserved.take());
                        return Err(error);
                    }
                    window_above = window_of(candidate);
                    failures.push((candidate.provider_id, failure));
                    break;
                }
                // The retry budget is asked only when a retry is wanted: asking spends it.
                NextStep::RetrySameAfter { wait_ms } if ports.try_retry(candidate.provider_id) => {
                    if wait_ms > 0 {
                        ports.sleep(wait_ms).await;
                    }
                }
                _ => {
                    failures.push((candidate.provider_id, failure));
                    break;
                }
            }
        }
    }
    release(ports, prereserved);
    if let Some(answer) = answer {
        return Ok(answer);
    }
    Err(exhausted(plan, allowed, &failures, &trail.secret_refs()))
}

fn window_of(candidate: &Candidate<'_>) -> Option<u64> {
    candidate.capabilities.context_window
}

fn release<P: CapacityPort>(ports: &P, prereserved: Option<Prereserved<P::Hold>>) {
    if let Some(Prereserved { capacity: Capacity::Admitted(hold), .. }) = prereserved {
        ports.release(hold);
    }
}

/// The client's error when no candidate answered.
fn exhausted(
    plan: &Plan<'_>,
    allowed: &AllowedRegions,
    failures: &[(&str, AttemptFailure)],
    secrets: &[&str],
) -> GatewayError {
    if failures.is_empty() {
        return GatewayError::new(
            504,
            "server_error",
            "upstream_timeout",
            "The request deadline passed before any provider could be tried.",
        );
    }
    let mut error = gateway::exhausted(&plan.model, failures, secrets);
    if allowed.is_restricted() && error.status >= 500 {
        // Say plainly that nothing outside the policy was tried.
        error.status = 503;
        error.code = "no_compliant_provider".into();
        error.retry_after_s = error.retry_after_s.or(Some(5));
        error.message = format!(
            "{} Only providers allowed by the residency policy ({}) were tried.",
            error.message,
            allowed.describe()
        );
    }
    error
}
