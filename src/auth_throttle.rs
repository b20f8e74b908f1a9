//! Failed-authentication throttling per client address: after `MAX_FAILURES`
//! wrong gateway keys or admin tokens within a minute, the address is blocked
//! (60 s, doubling for repeat offences up to 15 min). Pure: the edge keeps one
//! state per address in an `AuthThrottle` Durable Object and remembers blocks in
//! the isolate, so a valid key never waits on it.

use serde::{Deserialize, Serialize};

/// Wrong credentials allowed per address in one window before it is blocked.
pub const MAX_FAILURES: u32 = 20;
pub const WINDOW_MS: u64 = 60_000;
pub const BASE_BLOCK_MS: u64 = 60_000;
pub const MAX_BLOCK_MS: u64 = 15 * 60_000;

/// One address's recent failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureState {
    pub window_start_ms: u64,
    pub failures: u32,
    pub blocked_until_ms: u64,
    /// Blocks in a row (each doubles the next); forgotten after a quiet `MAX_BLOCK_MS`.
    pub strikes: u32,
}

impl FailureState {
    /// Records one failed attempt at `now_ms`; returns the end of the block it is
    /// under (or now starts), if any.
    pub fn record_failure(&mut self, now_ms: u64) -> Option<u64> {
        if now_ms < self.blocked_until_ms {
            return Some(self.blocked_until_ms);
        }
        if self.strikes > 0 && now_ms.saturating_sub(self.blocked_until_ms) > MAX_BLOCK_MS {
            self.strikes = 0;
        }
        if now_ms.saturating_sub(self.window_start_ms) >= WINDOW_MS {
            self.window_start_ms = now_ms;
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if self.failures <= MAX_FAILURES {
            return None;
        }
        self.strikes = self.strikes.saturating_add(1);
        let block = BASE_BLOCK_MS.saturating_mul(1u64 << (self.strikes - 1).min(10)).min(MAX_BLOCK_MS);
        self.blocked_until_ms = now_ms.saturating_add(block);
        self.failures = 0;
        self.window_start_ms = now_ms;
        Some(self.blocked_until_ms)
    }

    /// The end of the current block, if `now_ms` is inside one.
    pub fn blocked_until(&self, now_ms: u64) -> Option<u64> {
        (now_ms < self.blocked_until_ms).then_some(self.blocked_until_ms)
    }
}

/// Whether a failed request counts against its address: a wrong gateway key or
/// admin token that was presented (a request without any credential is no guess).
pub fn counts_as_guess(status: u16, code: &str, credential_presented: bool) -> bool {
    status == 401 && matches!(code, "invalid_api_key" | "invalid_admin_token") && credential_presented
}

/// Whole seconds until `until_ms` (at least 1), for `Retry-After`.
pub fn retry_after_s(until_ms: u64, now_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
}

/// Who is throttled: an IPv4 address as is, an IPv6 address by its /64 (one
/// subscriber usually holds a whole /64), `unknown` without an address.
pub fn subject(ip: Option<&str>) -> String {
    let Some(ip) = ip.map(str::trim).filter(|ip| !ip.is_empty()) else {
        return "unknown".into();
    };
    if let Ok(v6) = ip.parse::<std::net::Ipv6Addr>() {
        let s = v6.segments();
        return format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]);
    }
    if let Ok(v4) = ip.parse::<std::net::Ipv4Addr>() {
        return v4.to_string();
    }
    // Not an address (the header is the platform's, so this is only a safeguard).
    "invalid".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_failures_a_minute_pass_and_the_next_one_is_blocked() {
        let mut state = FailureState::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(state.record_failure(1_000 + u64::from(i)), None, "failure {i}");
        }
        assert_eq!(state.record_failure(2_000), Some(2_000 + BASE_BLOCK_MS));
        assert_eq!(state.blocked_until(2_500), Some(2_000 + BASE_BLOCK_MS));
        // Failing while blocked does not extend the block.
        assert_eq!(state.record_failure(3_000), Some(2_000 + BASE_BLOCK_MS));
        assert_eq!(state.blocked_until(2_000 + BASE_BLOCK_MS), None);
    }

    #[test]
    fn failures_spread_over_minutes_are_never_blocked() {
        let mut state = FailureState::default();
        for minute in 0..10u64 {
            for i in 0..MAX_FAILURES {
                assert_eq!(state.record_failure(minute * WINDOW_MS + u64::from(i)), None);
            }
        }
    }

    #[test]
    fn repeat_offences_double_the_block_up_to_the_cap_and_quiet_forgets_them() {
        let mut state = FailureState::default();
        let mut now = 0;
        let mut blocks = Vec::new();
        for _ in 0..6 {
            let until = (0..=MAX_FAILURES).filter_map(|_| state.record_failure(now)).last().unwrap();
            blocks.push(until - now);
            now = until;
        }
        assert_eq!(blocks, vec![60_000, 120_000, 240_000, 480_000, 900_000, 900_000]);
        now += MAX_BLOCK_MS + 1;
        let until = (0..=MAX_FAILURES).filter_map(|_| state.record_failure(now)).last().unwrap();
        assert_eq!(until - now, BASE_BLOCK_MS, "a quiet spell forgets the strikes");
    }

    #[test]
    fn only_wrong_presented_credentials_count() {
        assert!(counts_as_guess(401, "invalid_api_key", true));
        assert!(counts_as_guess(401, "invalid_admin_token", true));
        assert!(!counts_as_guess(401, "invalid_api_key", false), "no credential at all");
        assert!(!counts_as_guess(404, "model_not_found", true));
        assert!(!counts_as_guess(503, "admin_token_too_short", true));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_s(10_001, 0), 11);
        assert_eq!(retry_after_s(10_000, 0), 10);
        assert_eq!(retry_after_s(5, 10), 1);
    }

    #[test]
    fn ipv6_addresses_are_throttled_by_their_64() {
        assert_eq!(subject(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(subject(Some("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(subject(Some("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_eq!(subject(None), "unknown");
        assert_eq!(subject(Some(" ")), "unknown");
        assert_eq!(subject(Some("not an ip")), "invalid");
    }
}
