//! Learned quota in routing: an endpoint whose providers' rate-limit headers say
//! it has less left than this request needs, until its reset, goes behind the
//! endpoints with room. It is not dropped: it stays the last resort.

use super::needs::RequestNeeds;
use super::{Candidate, Plan, RouteInput};
use serde::{Deserialize, Serialize};

/// What is left of one of an endpoint's rate-limit windows, as learned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    pub remaining: u64,
    /// Until the window is full again (or the reading is no longer believed).
    pub reset_in_ms: u64,
}

/// An endpoint's learned quota, windows still in force only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLeft {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Left>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Left>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Left>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Left>,
}

impl QuotaLeft {
    /// Why the endpoint lacks room for a request with these needs, if it does:
    /// one request, the prompt estimate plus the output it may produce.
    pub fn shortfall(&self, needs: &RequestNeeds) -> Option<String> {
        let checks = [
            (self.requests, 1, "requests"),
            (self.tokens, needs.estimated_total_tokens(), "tokens"),
            (self.input_tokens, needs.prompt_tokens, "input tokens"),
            (self.output_tokens, needs.estimated_output_tokens(), "output tokens"),
        ];
        checks.into_iter().find_map(|(left, needed, what)| {
            let left = left.filter(|l| l.remaining < needed)?;
            Some(format!(
                "learned quota: {} {what} left ({needed} needed) until its reset in {} ms",
                left.remaining, left.reset_in_ms
            ))
        })
    }
}

/// Shows each candidate's learned quota, and moves the ones short of it behind
/// the others (a stable partition: each side keeps its order).
pub fn move_back_short(candidates: &mut Vec<Candidate<'_>>, input: &RouteInput<'_, '_>) {
    let mut any = false;
    for c in candidates.iter_mut() {
        c.quota = input.health.get(c.provider_id).and_then(|h| h.quota);
        c.moved_back = c.quota.and_then(|q| q.shortfall(&input.needs));
        any |= c.moved_back.is_some();
    }
    if any {
        let (room, short): (Vec<_>, Vec<_>) = candidates.drain(..).partition(|c| c.moved_back.is_none());
        candidates.extend(room);
        candidates.extend(short);
    }
}

impl Plan<'_> {
    /// The candidates moved back for their learned quota (for the request log).
    pub fn quota_moved_back(&self) -> Vec<String> {
        self.candidates.iter().filter(|c| c.moved_back.is_some()).map(|c| c.provider_id.to_string()).collect()
    }
}
