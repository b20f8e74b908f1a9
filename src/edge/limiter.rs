//! Rate limiters on the hot path: the key's `RateLimiter` object (requests,
//! tokens and concurrency, whole-key and per-model, in one call), the team's
//! when the key has one, and, where the config sets them, each endpoint's
//! capacity limiter. They are called in parallel (one round trip) and settled
//! with the real usage after the answer.

use super::allotments;
use super::objects::{self, RATE_LIMITER};
pub use super::settlement::{cancel_all, Settlement, Settlements};
use super::settlement::{give_back_later, object_key, take_pending};
use crate::config::{Config, KeyRecord};
use crate::error::GatewayError;
use crate::limits::{openai_duration, Admission, Admit, Denial, Scoped};
use worker::{Env, Headers};

pub fn key_name(key: &KeyRecord) -> String {
    format!("key:{}", key.name)
}

pub fn team_name(team: &str) -> String {
    format!("team:{team}")
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
    /// Rate limits fail open (one slow object must not take the gateway down);
    /// budgets fail closed.
    Unreachable,
}

/// How long a request holds its concurrency slot if it never gives it back (its
/// isolate died): its deadline, the longest stream it may relay, and a margin, so
/// a live stream never loses its slot or its settlement.
pub fn lease_ms(settings: &crate::config::Settings) -> u64 {
    settings.request_timeout_ms + settings.max_stream_ms + 30_000
}

/// What one request asks a limiter for.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub reservation_id: &'a str,
    pub tokens: u64,
    pub micro_usd: u64,
    /// The concurrency lease: the request's deadline plus a margin.
    pub lease_ms: u64,
    /// How long the limiter may take to answer before rate limits fail open (and
    /// budgets closed): `settings.limiter_timeout_ms`.
    pub deadline_ms: u64,
}

/// Asks the limiter `name` for room: from this isolate's allotment for it when one
/// covers the request (no round trip), else from the object, which may allot
/// more to a key that is hot here (see `limits::allotment`).
pub async fn reserve(env: &Env, name: &str, jurisdiction: Option<&str>, scopes: Vec<Scoped>, ask: Ask<'_>) -> Reserved {
    if scopes.is_empty() {
        return Reserved::NotLimited;
    }
    let object = object_key(name, jurisdiction);
    let now = super::now_ms();
    let before = allotments::with(&object, &scopes, |held| held.before_call(ask.tokens, ask.micro_usd, now));
    if let Some(unused) = before.lapsed {
        give_back_later(&object, &scopes, unused);
    }
    let from_slot = |object: String, scopes: Vec<Scoped>, (admission, slot): (Admission, _)| {
        let id = ask.reservation_id.to_string();
        Reserved::Admitted(admission, Settlement::from_slot(env, (name, jurisdiction), object, scopes, id, slot))
    };
    if let Some(admitted) = before.admitted {
        return from_slot(object, scopes, admitted);
    }
    let Some(stub) = objects::stub(env, RATE_LIMITER, name, jurisdiction, None) else { return Reserved::Unreachable };
    let admit = Admit {
        scopes,
        reservation_id: ask.reservation_id.to_string(),
        estimated_tokens: ask.tokens,
        estimated_micro_usd: ask.micro_usd,
        lease_ms: ask.lease_ms,
        settle_first: take_pending(&object),
        allot: before.ask,
    };
    let answer = objects::call_once_or_retry(&stub, "/admit", Some(&admit), ask.deadline_ms, admit.is_idempotent());
    let mut answer: Option<Admission> = answer.await;
    let after = allotments::with(&object, &admit.scopes, |held| {
        held.after_call(answer.as_mut(), admit.allot, ask.tokens, ask.micro_usd, now)
    });
    if let Some(unused) = after.replaced {
        give_back_later(&object, &admit.scopes, unused);
    }
    match (answer, after.admitted_instead) {
        (Some(a), _) if a.allowed => {
            let settlement = Settlement::new(stub, object, admit.scopes, admit.reservation_id);
            Reserved::Admitted(a, settlement.with_allotment(after.lapses_ms))
        }
        (Some(_), Some(admitted)) => from_slot(object, admit.scopes, admitted),
        (Some(a), None) => Reserved::Denied(a),
        (None, _) => Reserved::Unreachable,
    }
}

/// A request's reservation id at one endpoint's capacity limiter.
pub fn endpoint_reservation_id(request_id: &str, provider_id: &str) -> String {
    format!("{request_id}@{provider_id}")
}

/// The key's limiter (whole key and every model the request may be served by, in
/// one call) and its team's, asked in parallel. With a firm estimate (the client set
/// `max_tokens`), a request larger than a tokens-per-minute limit is refused
/// without asking: it could never pass.
pub async fn reserve_for_key(
    env: &Env,
    config: &Config,
    key: &KeyRecord,
    models: &[&str],
    ask: Ask<'_>,
    estimate_is_firm: bool,
) -> Combined {
    let key_scopes = key.limit_scopes_for(models);
    let team = key.team.as_deref().and_then(|name| Some((name, config.teams.get(name)?)));
    let team_scopes = team.map(|(_, t)| t.limit_scopes_for(models)).unwrap_or_default();
    if estimate_is_firm {
        let smallest_tpm = key_scopes.iter().chain(&team_scopes).filter_map(|s| s.limits.tokens_per_minute).min();
        if let Some(tpm) = smallest_tpm.filter(|tpm| ask.tokens > *tpm) {
            return Combined::Denied {
                admission: Admission::never_tokens(tpm),
                by: Limiter::Key,
                to_cancel: Vec::new(),
            };
        }
    }
    let has_budget = |scopes: &[Scoped]| scopes.iter().any(|s| s.budget_micro_usd.is_some());
    let (key_budget, team_budget) = (has_budget(&key_scopes), has_budget(&team_scopes));
    let key_limiter = key_name(key);
    let key_reservation = reserve(env, &key_limiter, key.jurisdiction(), key_scopes, ask);
    let team_reservation = async {
        match team {
            Some((name, _)) => {
                let placement = config.team_jurisdiction(name);
                reserve(env, &team_name(name), placement, team_scopes, ask).await
            }
            None => Reserved::NotLimited,
        }
    };
    let (key_reserved, team_reserved) = futures_util::join!(key_reservation, team_reservation);
    let team_limiter = Limiter::Team(team.map(|(name, _)| name.to_string()).unwrap_or_default());
    combine([(key_reserved, Limiter::Key, key_budget), (team_reserved, team_limiter, team_budget)])
}

/// Who refused a request, for the error message.
pub enum Limiter {
    Key,
    Team(String),
}

/// The key's and the team's limiters together: the request runs only if both admit.
pub enum Combined {
    Admitted {
        admission: Option<Admission>,
        settlements: Vec<Settlement>,
        degraded: bool,
    },
    /// The other limiters' reservations are in `to_cancel`: the request never ran.
    Denied {
        admission: Admission,
        by: Limiter,
        to_cancel: Vec<Settlement>,
    },
    /// A limiter holding a budget could not be reached: budgets fail closed.
    Unavailable {
        to_cancel: Vec<Settlement>,
    },
}

/// Each limiter's answer, who it is, and whether it holds a budget.
pub fn combine(answers: [(Reserved, Limiter, bool); 2]) -> Combined {
    let mut admission: Option<Admission> = None;
    let mut settlements = Vec::new();
    let mut degraded = false;
    let mut denied = None;
    let mut unavailable = false;
    for (reserved, by, holds_budget) in answers {
        match reserved {
            Reserved::Admitted(a, settlement) => {
                settlements.push(settlement);
                match &mut admission {
                    Some(existing) => existing.tighten(&a),
                    None => admission = Some(a),
                }
            }
            Reserved::Denied(a) => {
                denied.get_or_insert((a, by));
            }
            Reserved::Unreachable if holds_budget => unavailable = true,
            Reserved::Unreachable => degraded = true,
            Reserved::NotLimited => {}
        }
    }
    match denied {
        Some((admission, by)) => Combined::Denied { admission, by, to_cancel: settlements },
        None if unavailable => Combined::Unavailable { to_cancel: settlements },
        None => Combined::Admitted { admission, settlements, degraded },
    }
}

/// The answer when a budget's limiter cannot be reached.
pub fn unavailable_error() -> GatewayError {
    GatewayError::new(
        503,
        "server_error",
        "limiter_unavailable",
        "The spending limit could not be checked; retry shortly.",
    )
    .with_retry_after(1)
}

/// OpenAI's `x-ratelimit-*` headers, on successes and on 429s alike.
pub fn headers(admission: &Admission, headers: &Headers) {
    for (name, value) in header_pairs(admission) {
        let _ = headers.set(name, &value);
    }
}

/// The `x-ratelimit-*` headers' names and values, for a response that sets them
/// with its others in one call.
pub fn header_pairs(admission: &Admission) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    let kinds = [
        (
            &admission.requests,
            ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"],
        ),
        (&admission.tokens, ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"]),
    ];
    for (decision, [limit, remaining, reset]) in kinds {
        if let Some(d) = decision {
            pairs.push((limit, d.limit.to_string()));
            pairs.push((remaining, d.remaining.to_string()));
            pairs.push((reset, openai_duration(d.reset_ms)));
        }
    }
    pairs
}

pub fn denial_error(admission: &Admission, by: &Limiter, estimated_tokens: u64) -> GatewayError {
    let retry_s = admission.retry_after_ms.div_ceil(1000).max(1);
    // "of this key", "of team \"research\"", plus "for model gpt-4o" on a model's own limit.
    let mut whose = match by {
        Limiter::Key => "of this key".to_string(),
        Limiter::Team(team) => format!("of team {team:?}"),
    };
    if let Some(model) = admission.denied_scope.as_deref().and_then(crate::limits::scope_model) {
        whose.push_str(&format!(" for model {model}"));
    }
    let (kind, code, message) = match admission.denied_by {
        Some(Denial::Budget) => {
            let usd = |micro: u64| format!("${:.2}", micro as f64 / 1e6);
            let message = match admission.budget {
                Some(b) => format!(
                    "The monthly budget {whose} ({}) is used up ({} spent or reserved); it resets on {}.",
                    usd(b.limit_micro_usd),
                    usd(b.spent_micro_usd),
                    crate::limits::budget::utc_date(b.resets_at_ms)
                ),
                None => format!("The monthly budget {whose} is used up."),
            };
            ("insufficient_quota", "insufficient_quota", message)
        }
        Some(Denial::Tokens) if admission.never => (
            "tokens",
            "rate_limit_exceeded",
            format!(
                "Request too large for the tokens-per-minute limit {whose} (limit {}, requested about {estimated_tokens}); lower max_tokens or the prompt.",
                admission.tokens.map_or(0, |d| d.limit)
            ),
        ),
        Some(Denial::Tokens) => {
            ("tokens", "rate_limit_exceeded", format!("Tokens-per-minute limit {whose} reached; retry in {retry_s} s."))
        }
        Some(Denial::Concurrency) => {
            ("requests", "concurrency_limit_exceeded", format!("Too many concurrent requests {whose}."))
        }
        _ => ("requests", "rate_limit_exceeded", format!("Requests-per-minute limit {whose} reached; retry in {retry_s} s.")),
    };
    let error = GatewayError::new(429, kind, code, message);
    if admission.never {
        error.final_answer()
    } else {
        error.with_retry_after(retry_s)
    }
}
