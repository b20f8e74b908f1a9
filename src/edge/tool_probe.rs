//! The cron's active tool-calling benchmark (`settings.tool_probe_minutes`, off by
//! default): one fixed request per chat target; its latency and tool-call verdict
//! go to the endpoint's `ProviderHealth` object (the `tool_accuracy` strategy and
//! `/admin/monitor` read it) and a usage record of kind `probe` to the usage store.

use super::durable::Report;
use super::objects::{self, PROVIDER_HEALTH};
use super::{now_ms, random_u64, random_unit, upstream};
use crate::config::{Config, KeyRecord};
use crate::health::{tool_probe, Outcome};
use crate::join::join_all;
use crate::protocol::openai::Usage;
use crate::providers::{self, AttemptContext, AttemptFailure, WholeAnswer};
use crate::usage::{Attribution, UsageRecord};
use serde_json::Value;
use worker::Env;

pub async fn run(env: &Env, config: &Config) {
    let now = now_ms();
    if !tool_probe::due(config.settings.tool_probe_minutes, now) {
        return;
    }
    let probes = tool_probe::targets(config).into_iter().map(|(p, m, public)| probe(env, config, p, m, public));
    let records: Vec<String> =
        join_all(probes).await.into_iter().flatten().filter_map(|r| serde_json::to_string(&r).ok()).collect();
    if let (Ok(queue), false) = (env.queue(super::usage::QUEUE_BINDING), records.is_empty()) {
        if let Err(error) = queue.send_batch(records).await {
            super::log::warn("usage_queue_send_failed", &error.to_string());
        }
    }
}

async fn probe(env: &Env, config: &Config, provider_id: String, model: String, public: String) -> Option<UsageRecord> {
    let provider = config.providers.get(&provider_id)?;
    let api_key = provider.api_key_secret.as_deref().and_then(|name| super::secret(env, name));
    let request_id = format!("probe_{:016x}", random_u64());
    let ctx = AttemptContext {
        provider,
        upstream_model: &model,
        public_model: &public,
        api_key: api_key.as_deref(),
        now_ms: now_ms(),
        request_id: &request_id,
    };
    let adapter = providers::adapter(&provider.kind);
    let mut request = tool_probe::request(&public);
    let upstream = adapter.chat_request(&ctx, &mut request, Some(64)).ok()?;
    let timeout = config.settings.first_byte_timeout_ms;
    let started = now_ms();
    let answer: Result<(u16, Value), AttemptFailure> = async {
        let mut sent = upstream::send(&upstream, adapter.answer_headers(), timeout, None).await?;
        let status = sent.status();
        let raw = sent.read_body(timeout).await?;
        if !(200..300).contains(&status) {
            return Err(adapter.error(status, None, &raw));
        }
        let completion = match adapter.chat_response(&ctx, &raw)? {
            WholeAnswer::Translated(completion) => completion,
            WholeAnswer::Canonical => serde_json::from_slice(&raw).unwrap_or(Value::Null),
        };
        Ok((status, completion))
    }
    .await;
    let latency = now_ms().saturating_sub(started);

    let key = KeyRecord { name: "gateway-probe".into(), ..KeyRecord::default() };
    let mut record = UsageRecord::start(&request_id, started, "probe", &key, Attribution::default());
    record.model = public.clone();
    record.served_model = Some(public.clone());
    record.provider = Some(provider_id.clone());
    record.upstream_model = Some(model.clone());
    record.region = Some(provider.region.clone());
    record.attempts = 1;
    let outcomes = match &answer {
        Ok((status, completion)) => {
            let valid = tool_probe::judge(completion);
            let usage: Option<Usage> = completion.get("usage").and_then(|u| serde_json::from_value(u.clone()).ok());
            let price = config.models.get(&public).and_then(|m| {
                m.targets.iter().find(|t| t.provider == provider_id && t.model == model).and_then(|t| t.price)
            });
            record.account(usage.as_ref(), price.as_ref());
            record.tool_calls_valid = Some(valid);
            record.finish(*status, "complete", latency);
            let finished = Outcome::Finished {
                duration_ms: latency,
                output_tokens: usage.map(|u| u.completion_tokens),
                tool_calls_valid: Some(valid),
            };
            vec![Outcome::Success { latency_ms: latency }, finished]
        }
        Err(failure) => {
            let status = match failure {
                AttemptFailure::Status { status, .. } => *status,
                AttemptFailure::Timeout => 504,
                _ => 502,
            };
            record.finish(status, "error", latency);
            vec![Outcome::Failure]
        }
    };
    let policy = config.settings.circuit_breaker;
    let reports: Vec<Report> =
        outcomes.into_iter().map(|outcome| Report { outcome, jitter: random_unit(), policy }).collect();
    let stub = objects::stub(
        env,
        PROVIDER_HEALTH,
        &format!("endpoint:{provider_id}"),
        None,
        provider.location_hint.as_deref(),
    );
    if let Some(stub) = stub {
        let _: Option<Value> = objects::call(&stub, "/record", Some(&reports)).await;
    }
    Some(record)
}
