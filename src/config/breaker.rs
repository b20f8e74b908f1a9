//! `settings.circuit_breaker`: when `health`'s breaker opens an endpoint, and for how long.
//! (Envoy's outlier-detection defaults; see the reliability notes.)

use serde::{Deserialize, Serialize};

const CONSECUTIVE_FAILURES_TO_OPEN: u32 = 5;
const BASE_OPEN_MS: u64 = 30_000;
const MAX_OPEN_MS: u64 = 300_000;

/// The breaker's tunables (from `settings.circuit_breaker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: u32,
    /// First open period; the k-th opening in a row stays open k times as long.
    pub base_open_ms: u64,
    pub max_open_ms: u64,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: CONSECUTIVE_FAILURES_TO_OPEN,
            base_open_ms: BASE_OPEN_MS,
            max_open_ms: MAX_OPEN_MS,
        }
    }
}
