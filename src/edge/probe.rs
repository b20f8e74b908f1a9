//! The scheduled handler (cron, every minute): endpoints whose circuit stays open
//! after its open period, because no traffic came to probe them, get one free
//! request (`GET {base_url}/models`), never a paid completion.

use super::durable::Report;
use super::objects::{self, PROVIDER_HEALTH};
use super::{config_store, now_ms, random_unit, upstream};
use crate::config::{Config, Provider};
use crate::health::{Breaker, Circuit, Outcome};
use crate::providers;
use futures_util::future::join_all;
use serde::Deserialize;
use worker::{event, Env, ScheduleContext, ScheduledEvent};

#[derive(Deserialize)]
struct Answer {
    breaker: Breaker,
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let Ok(config) = config_store::load_fresh(&env).await else { return };
    let probes = config.providers.iter().map(|(id, provider)| probe_if_stuck(&env, &config, id, provider));
    join_all(probes).await;
    super::tool_probe::run(&env, &config).await;
    super::usage::expire(&env, now_ms(), config.settings.usage_retention_days).await;
}

async fn probe_if_stuck(env: &Env, config: &Config, id: &str, provider: &Provider) {
    let Some(stub) =
        objects::stub(env, PROVIDER_HEALTH, &format!("endpoint:{id}"), None, provider.location_hint.as_deref())
    else {
        return;
    };
    let Some(answer) = objects::call::<(), Answer>(&stub, "/", None).await else { return };
    let stuck = matches!(answer.breaker.circuit, Circuit::Open { until_ms } if now_ms() >= until_ms);
    if !stuck {
        return;
    }
    let api_key = provider.api_key_secret.as_deref().and_then(|name| super::secret(env, name));
    let Some(probe) = providers::adapter(&provider.kind).probe_request(provider, api_key.as_deref()) else { return };
    let started = now_ms();
    let ok = upstream::get_ok(&probe.url, &probe.headers, config.settings.first_byte_timeout_ms).await;
    let outcome = if ok { Outcome::Success { latency_ms: now_ms().saturating_sub(started) } } else { Outcome::Failure };
    let report = [Report { outcome, jitter: random_unit(), policy: config.settings.circuit_breaker }];
    let _: Option<serde_json::Value> = objects::call(&stub, "/record", Some(&report)).await;
}
