//! Per-endpoint health: a circuit breaker with a rolling error window, 429
//! cooldowns kept apart from failures, and time-decayed EWMA latency for the
//! `fastest` strategy. Pure: the clock (`now_ms`) and jitter come in as arguments.
//!
//! Parameters follow Envoy's outlier detection and the peers' defaults (see the
//! reliability notes): trip on 5 consecutive failures or ≥ 50% failures over ≥ 20
//! requests in 60 s; open for min(30 s × k, 300 s) + up to 10% jitter; half-open
//! lets one probe through at a time and closes after 2 successes. The tunable part
//! is a setting, [`BreakerPolicy`] in `config`.

pub mod probe;
pub mod quota;
pub mod tool_calls;
pub mod tool_probe;
mod wire;

use crate::config::BreakerPolicy;
use crate::routing::EndpointHealth;
use serde::{Deserialize, Serialize};

pub const BUCKET_MS: u64 = 10_000;
pub const BUCKETS: usize = 6;
pub const MIN_REQUESTS_FOR_RATIO: u32 = 20;
pub const FAILURE_RATIO_TO_OPEN: f64 = 0.5;
pub const AUTH_OPEN_MS: u64 = 300_000;
pub const PROBE_LEASE_MS: u64 = 15_000;
pub const PROBE_SUCCESSES_TO_CLOSE: u32 = 2;
pub const K_DECAY_MS: u64 = 60_000;
pub const DEFAULT_COOLDOWN_MS: u64 = 5_000;
pub const MAX_COOLDOWN_MS: u64 = 60_000;
/// EWMA time constant: a sample's weight halves in about 7 s.
pub const EWMA_TAU_MS: f64 = 10_000.0;

/// What one attempt taught us about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "wire::OutcomeWire")]
pub enum Outcome {
    Success {
        /// Time to the first byte of content (or the whole answer when not streamed).
        latency_ms: u64,
    },
    /// Connect errors, timeouts, 5xx, broken answers: counts against the breaker.
    Failure,
    /// 429: the endpoint is busy, not broken. Cool down; not a breaker failure.
    RateLimited { retry_after_ms: Option<u64> },
    /// 401/403 for the gateway's own key: open at once, for long.
    AuthFailure,
    /// An answer was delivered in full: statistics only, no breaker effect.
    Finished {
        duration_ms: u64,
        output_tokens: Option<u64>,
        /// Did every tool call's arguments parse and match the schema the client sent?
        tool_calls_valid: Option<bool>,
    },
    /// What an answer's rate-limit headers said: learned quota, no breaker effect.
    Quota(crate::providers::quota::QuotaReading),
}

impl Outcome {
    /// Whether recording it reads the jitter (a breaker opening, a cooldown): other
    /// outcomes need no random number.
    pub fn uses_jitter(&self) -> bool {
        matches!(self, Outcome::Failure | Outcome::RateLimited { .. })
    }

    /// Other isolates should hear of it at once (failures, 429s, a window run dry).
    pub fn is_bad_news(&self) -> bool {
        match self {
            Outcome::Success { .. } | Outcome::Finished { .. } => false,
            Outcome::Quota(reading) => reading.exhausted(),
            _ => true,
        }
    }
}

/// Upper bounds (ms) of the latency histogram's buckets; the last is open-ended.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [25, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, u64::MAX];
/// Tool-call counts halve when this many were checked, so accuracy follows recent answers.
pub const TOOL_CALLS_HALVING_AT: u64 = 200;
/// The histogram halves its counts when it reaches this many, so it follows recent traffic.
const HISTOGRAM_HALVING_AT: u32 = 1_000;

/// What the health object learns beyond the breaker: the signals operators and
/// the `fastest` strategy read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Time to first token (or the whole answer when not streamed), by bucket.
    pub latency_histogram: [u32; LATENCY_BUCKETS_MS.len()],
    pub ewma_tokens_per_second: Option<f64>,
    pub tool_calls_checked: u64,
    pub tool_calls_valid: u64,
}

impl Stats {
    fn sample_latency(&mut self, latency_ms: u64) {
        let bucket = LATENCY_BUCKETS_MS.iter().position(|&b| latency_ms <= b).unwrap_or(LATENCY_BUCKETS_MS.len() - 1);
        if let Some(count) = self.latency_histogram.get_mut(bucket) {
            *count += 1;
        }
        if self.latency_histogram.iter().sum::<u32>() >= HISTOGRAM_HALVING_AT {
            for count in &mut self.latency_histogram {
                *count /= 2;
            }
        }
    }

    /// The bucket bound at or below which `p` (0..1) of recent latencies fall.
    pub fn percentile_ms(&self, p: f64) -> Option<u64> {
        let total: u32 = self.latency_histogram.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = (f64::from(total) * p).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (count, bound) in self.latency_histogram.iter().zip(LATENCY_BUCKETS_MS) {
            seen += count;
            if seen >= wanted {
                return Some(bound);
            }
        }
        None
    }

    /// Share of checked tool calls that were valid.
    pub fn tool_call_validity(&self) -> Option<f64> {
        (self.tool_calls_checked > 0).then(|| self.tool_calls_valid as f64 / self.tool_calls_checked as f64)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Bucket {
    start_ms: u64,
    successes: u32,
    failures: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", try_from = "wire::CircuitWire")]
pub enum Circuit {
    #[default]
    Closed,
    Open {
        until_ms: u64,
    },
    HalfOpen {
        probe_lease_until_ms: u64,
        successes: u32,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breaker {
    pub circuit: Circuit,
    buckets: [Bucket; BUCKETS],
    pub consecutive_failures: u32,
    /// How many times in a row the circuit has opened (backs the open time off).
    pub open_count: u32,
    last_decay_ms: u64,
    pub cooldown_until_ms: u64,
    last_cooldown_ms: u64,
    pub ewma_latency_ms: Option<f64>,
    last_sample_ms: u64,
    pub total_successes: u64,
    pub total_failures: u64,
    pub total_rate_limited: u64,
    #[serde(default)]
    pub stats: Stats,
    /// Remaining quota as the provider's rate-limit headers last said.
    #[serde(default)]
    pub quota: quota::Quota,
}

impl Breaker {
    pub fn record(&mut self, outcome: Outcome, now_ms: u64, jitter: f64) {
        self.record_with(&BreakerPolicy::default(), outcome, now_ms, jitter);
    }

    pub fn record_with(&mut self, policy: &BreakerPolicy, outcome: Outcome, now_ms: u64, jitter: f64) {
        self.decay_open_count(now_ms);
        // An outcome after the open period is a probe's, even if nobody claimed the
        // probe here (the health object hears of attempts other isolates decided on).
        if let Circuit::Open { until_ms } = self.circuit {
            let statistics_only =
                matches!(outcome, Outcome::RateLimited { .. } | Outcome::Finished { .. } | Outcome::Quota(_));
            if now_ms >= until_ms && !statistics_only {
                self.circuit = Circuit::HalfOpen { probe_lease_until_ms: now_ms, successes: 0 };
            }
        }
        match outcome {
            Outcome::Success { latency_ms } => {
                self.bucket(now_ms).successes += 1;
                self.total_successes += 1;
                self.consecutive_failures = 0;
                self.last_cooldown_ms = 0;
                self.sample_latency(latency_ms as f64, now_ms);
                self.stats.sample_latency(latency_ms);
                if let Circuit::HalfOpen { successes, .. } = self.circuit {
                    self.circuit = if successes + 1 >= PROBE_SUCCESSES_TO_CLOSE {
                        self.buckets = Default::default();
                        Circuit::Closed
                    } else {
                        // The next probe may go at once.
                        Circuit::HalfOpen { probe_lease_until_ms: now_ms, successes: successes + 1 }
                    };
                }
            }
            Outcome::Failure => {
                self.bucket(now_ms).failures += 1;
                self.total_failures += 1;
                self.consecutive_failures += 1;
                let trip = match self.circuit {
                    Circuit::HalfOpen { .. } => true,
                    Circuit::Open { .. } => false,
                    Circuit::Closed => {
                        self.consecutive_failures >= policy.consecutive_failures.max(1) || self.ratio_trips(now_ms)
                    }
                };
                if trip {
                    self.open_count += 1;
                    let base = (policy.base_open_ms * u64::from(self.open_count)).min(policy.max_open_ms);
                    self.open(now_ms + base + (base as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as u64);
                }
            }
            Outcome::RateLimited { retry_after_ms } => {
                self.total_rate_limited += 1;
                let wait = retry_after_ms.unwrap_or_else(|| {
                    if self.last_cooldown_ms == 0 {
                        DEFAULT_COOLDOWN_MS
                    } else {
                        (self.last_cooldown_ms * 2).min(MAX_COOLDOWN_MS)
                    }
                });
                self.last_cooldown_ms = wait;
                let until = now_ms + wait + (wait as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as u64;
                self.cooldown_until_ms = self.cooldown_until_ms.max(until);
            }
            Outcome::AuthFailure => {
                self.total_failures += 1;
                self.open(now_ms + AUTH_OPEN_MS);
            }
            Outcome::Quota(reading) => self.quota.learn(&reading),
            Outcome::Finished { duration_ms, output_tokens, tool_calls_valid } => {
                if let (Some(tokens), true) = (output_tokens, duration_ms > 0) {
                    let rate = tokens as f64 * 1000.0 / duration_ms as f64;
                    let previous = self.stats.ewma_tokens_per_second.unwrap_or(rate);
                    self.stats.ewma_tokens_per_second = Some(previous * 0.8 + rate * 0.2);
                }
                if let Some(valid) = tool_calls_valid {
                    self.stats.tool_calls_checked += 1;
                    self.stats.tool_calls_valid += u64::from(valid);
                    // Halved as they grow, so the share follows recent answers.
                    if self.stats.tool_calls_checked >= TOOL_CALLS_HALVING_AT {
                        self.stats.tool_calls_checked /= 2;
                        self.stats.tool_calls_valid /= 2;
                    }
                }
            }
        }
    }

    /// Opening never shortens an existing deadline.
    fn open(&mut self, until_ms: u64) {
        let until_ms = match self.circuit {
            Circuit::Open { until_ms: existing } => existing.max(until_ms),
            _ => until_ms,
        };
        self.circuit = Circuit::Open { until_ms };
    }

    /// May a request go to this endpoint now? In half-open, only the holder of the
    /// probe lease; call `take_probe` when actually sending one.
    pub fn available(&self, now_ms: u64) -> bool {
        if now_ms < self.cooldown_until_ms {
            return false;
        }
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { until_ms } => now_ms >= until_ms,
            Circuit::HalfOpen { probe_lease_until_ms, .. } => now_ms >= probe_lease_until_ms,
        }
    }

    /// Claims the half-open probe (moving Open → HalfOpen when its time has come).
    /// Returns false if the endpoint may not be tried now.
    pub fn take_probe(&mut self, now_ms: u64) -> bool {
        if !self.available(now_ms) {
            return false;
        }
        match self.circuit {
            Circuit::Closed => true,
            Circuit::Open { .. } => {
                self.circuit = Circuit::HalfOpen { probe_lease_until_ms: now_ms + PROBE_LEASE_MS, successes: 0 };
                true
            }
            Circuit::HalfOpen { successes, .. } => {
                self.circuit = Circuit::HalfOpen { probe_lease_until_ms: now_ms + PROBE_LEASE_MS, successes };
                true
            }
        }
    }

    pub fn snapshot(&self, now_ms: u64) -> EndpointHealth {
        let note = if now_ms < self.cooldown_until_ms {
            Some(format!("rate limited, cooling down for {} ms", self.cooldown_until_ms - now_ms))
        } else {
            match self.circuit {
                Circuit::Open { until_ms } if now_ms < until_ms => {
                    Some(format!("circuit open for {} ms", until_ms - now_ms))
                }
                Circuit::HalfOpen { probe_lease_until_ms, .. } if now_ms < probe_lease_until_ms => {
                    Some("circuit half-open, probe in flight".into())
                }
                _ => None,
            }
        };
        EndpointHealth {
            available: self.available(now_ms),
            ewma_latency_ms: self.ewma_latency_ms,
            note,
            quota: self.quota.left(now_ms),
            tool_call_accuracy: self.stats.tool_call_validity(),
            tokens_per_second: self.stats.ewma_tokens_per_second,
        }
    }

    /// Requests and failures in the rolling window.
    pub fn window(&self, now_ms: u64) -> (u32, u32) {
        let live = |b: &&Bucket| now_ms.saturating_sub(b.start_ms) < BUCKET_MS * BUCKETS as u64;
        self.buckets.iter().filter(live).fold((0, 0), |(n, f), b| (n + b.successes + b.failures, f + b.failures))
    }

    fn ratio_trips(&self, now_ms: u64) -> bool {
        let (requests, failures) = self.window(now_ms);
        requests >= MIN_REQUESTS_FOR_RATIO && f64::from(failures) / f64::from(requests) >= FAILURE_RATIO_TO_OPEN
    }

    fn bucket(&mut self, now_ms: u64) -> &mut Bucket {
        let start = now_ms - now_ms % BUCKET_MS;
        let index = ((now_ms / BUCKET_MS) % BUCKETS as u64) as usize;
        let bucket = &mut self.buckets[index];
        if bucket.start_ms != start {
            *bucket = Bucket { start_ms: start, successes: 0, failures: 0 };
        }
        bucket
    }

    fn sample_latency(&mut self, sample: f64, now_ms: u64) {
        self.ewma_latency_ms = Some(match self.ewma_latency_ms {
            None => sample,
            Some(previous) => {
                let dt = now_ms.saturating_sub(self.last_sample_ms) as f64;
                // At least 20% weight per sample, so bursts still move the average.
                let keep = (-dt / EWMA_TAU_MS).exp().min(0.8);
                previous * keep + sample * (1.0 - keep)
            }
        });
        self.last_sample_ms = now_ms;
    }

    /// One step of forgiveness per minute closed, so an old outage stops backing off new ones.
    fn decay_open_count(&mut self, now_ms: u64) {
        if self.circuit != Circuit::Closed || self.open_count == 0 {
            self.last_decay_ms = now_ms;
            return;
        }
        let steps = now_ms.saturating_sub(self.last_decay_ms) / K_DECAY_MS;
        if steps > 0 {
            self.open_count = self.open_count.saturating_sub(steps.min(u64::from(u32::MAX)) as u32);
            self.last_decay_ms = now_ms;
        }
    }
}

#[cfg(test)]
mod tests;
