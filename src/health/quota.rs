//! An endpoint's learned quota: the newest reading of each rate-limit window,
//! believed until its reset. Pure: times come in as arguments.

use crate::providers::quota::{QuotaReading, Window};
use crate::routing::quota::{Left, QuotaLeft};
use serde::{Deserialize, Serialize};

/// How long a window read without a reset time is believed.
pub const WITHOUT_RESET_MS: u64 = 10_000;

/// One window as last read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    pub remaining: u64,
    /// Believed until then (the window's reset).
    pub until_ms: u64,
    /// When the answer that said so arrived (the newest reading wins).
    pub observed_at_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Learned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Learned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Learned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Learned>,
}

fn newer(current: Option<Learned>, other: Option<Learned>) -> Option<Learned> {
    match (current, other) {
        (Some(a), Some(b)) => Some(if b.observed_at_ms > a.observed_at_ms { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn learned(window: Option<Window>, at_ms: u64) -> Option<Learned> {
    window.map(|w| Learned {
        remaining: w.remaining,
        until_ms: w.reset_at_ms.unwrap_or(at_ms.saturating_add(WITHOUT_RESET_MS)),
        observed_at_ms: at_ms,
    })
}

fn left(learned: Option<Learned>, now_ms: u64) -> Option<Left> {
    learned.filter(|l| now_ms < l.until_ms).map(|l| Left { remaining: l.remaining, reset_in_ms: l.until_ms - now_ms })
}

impl Quota {
    /// Takes what an answer said; a reading older than what is known (a late
    /// report from another isolate) does not replace it.
    pub fn learn(&mut self, reading: &QuotaReading) {
        let at = reading.at_ms;
        *self = self.newest(&Quota {
            requests: learned(reading.requests, at),
            tokens: learned(reading.tokens, at),
            input_tokens: learned(reading.input_tokens, at),
            output_tokens: learned(reading.output_tokens, at),
        });
    }

    /// Window by window, the newer of two views (this isolate's and the object's).
    pub fn newest(&self, other: &Quota) -> Quota {
        Quota {
            requests: newer(self.requests, other.requests),
            tokens: newer(self.tokens, other.tokens),
            input_tokens: newer(self.input_tokens, other.input_tokens),
            output_tokens: newer(self.output_tokens, other.output_tokens),
        }
    }

    /// What is left now, windows past their reset forgotten; `None` when nothing is known.
    pub fn left(&self, now_ms: u64) -> Option<QuotaLeft> {
        let view = QuotaLeft {
            requests: left(self.requests, now_ms),
            tokens: left(self.tokens, now_ms),
            input_tokens: left(self.input_tokens, now_ms),
            output_tokens: left(self.output_tokens, now_ms),
        };
        (view != QuotaLeft::default()).then_some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ms: u64, requests: u64, reset_in_ms: Option<u64>) -> QuotaReading {
        let window = Window { remaining: requests, reset_at_ms: reset_in_ms.map(|ms| at_ms + ms) };
        QuotaReading { requests: Some(window), at_ms, ..QuotaReading::default() }
    }

    #[test]
    fn a_reading_holds_until_its_reset_then_is_forgotten() {
        let mut quota = Quota::default();
        quota.learn(&reading(1_000, 0, Some(20_000)));
        assert_eq!(quota.left(1_000).unwrap().requests, Some(Left { remaining: 0, reset_in_ms: 20_000 }));
        assert_eq!(quota.left(15_000).unwrap().requests, Some(Left { remaining: 0, reset_in_ms: 6_000 }));
        assert_eq!(quota.left(21_000), None, "the window is full again");
    }

    #[test]
    fn without_a_reset_a_reading_is_believed_briefly() {
        let mut quota = Quota::default();
        quota.learn(&reading(1_000, 3, None));
        assert!(quota.left(1_000 + WITHOUT_RESET_MS - 1).is_some());
        assert_eq!(quota.left(1_000 + WITHOUT_RESET_MS), None);
    }

    #[test]
    fn the_newest_reading_wins_window_by_window() {
        let mut quota = Quota::default();
        quota.learn(&reading(5_000, 0, Some(60_000)));
        quota.learn(&reading(4_000, 100, Some(60_000)));
        assert_eq!(quota.requests.unwrap().remaining, 0, "an older report does not replace a newer one");
        quota.learn(&reading(6_000, 100, Some(60_000)));
        assert_eq!(quota.requests.unwrap().remaining, 100);
        // A reading of tokens only leaves the requests window as it was.
        let tokens = QuotaReading {
            tokens: Some(Window { remaining: 5, reset_at_ms: Some(9_000) }),
            at_ms: 7_000,
            ..QuotaReading::default()
        };
        quota.learn(&tokens);
        assert_eq!((quota.requests.unwrap().remaining, quota.tokens.unwrap().remaining), (100, 5));
        let mut other = Quota::default();
        other.learn(&reading(8_000, 1, Some(1_000)));
        assert_eq!(quota.newest(&other).requests.unwrap().remaining, 1);
        assert_eq!(other.newest(&quota).requests.unwrap().remaining, 1, "either way round");
    }
}
