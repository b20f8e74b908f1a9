//! How the health object's tagged enums ([`Outcome`], [`Circuit`], [`ProbeClaim`])
//! are read back from JSON: through one flat struct each, not serde's internally
//! tagged derive, which buffers every object into `Content` first and cost ~30 KB
//! of wasm for these three. The JSON is the derive's own (`{"kind": "success",
//! "latency_ms": 12}`), which `Serialize` still writes: stored state and the
//! messages between isolates and the object are unchanged.

use super::probe::ProbeClaim;
use super::{Circuit, Outcome};
use crate::providers::quota::{QuotaReading, Window};
use crate::tagged::{required, unknown};
use serde::Deserialize;
use serde_json::Value;

/// Every field of every [`Outcome`] variant (`output_tokens` is a count when
/// finished and a window in a quota reading).
#[derive(Deserialize)]
pub(super) struct OutcomeWire {
    kind: String,
    latency_ms: Option<u64>,
    retry_after_ms: Option<u64>,
    duration_ms: Option<u64>,
    output_tokens: Option<Value>,
    tool_calls_valid: Option<bool>,
    requests: Option<Window>,
    tokens: Option<Window>,
    input_tokens: Option<Window>,
    at_ms: Option<u64>,
}

impl TryFrom<OutcomeWire> for Outcome {
    type Error = String;

    fn try_from(wire: OutcomeWire) -> Result<Self, String> {
        Ok(match wire.kind.as_str() {
            "success" => Outcome::Success { latency_ms: required(wire.latency_ms, "latency_ms")? },
            "failure" => Outcome::Failure,
            "rate_limited" => Outcome::RateLimited { retry_after_ms: wire.retry_after_ms },
            "auth_failure" => Outcome::AuthFailure,
            "finished" => Outcome::Finished {
                duration_ms: required(wire.duration_ms, "duration_ms")?,
                output_tokens: match wire.output_tokens {
                    None | Some(Value::Null) => None,
                    Some(count) => Some(count.as_u64().ok_or("invalid type: `output_tokens`, expected u64")?),
                },
                tool_calls_valid: wire.tool_calls_valid,
            },
            "quota" => Outcome::Quota(QuotaReading {
                requests: wire.requests,
                tokens: wire.tokens,
                input_tokens: wire.input_tokens,
                output_tokens: match wire.output_tokens {
                    None | Some(Value::Null) => None,
                    Some(window) => Some(serde_json::from_value(window).map_err(|e| e.to_string())?),
                },
                retry_after_ms: wire.retry_after_ms,
                at_ms: wire.at_ms.unwrap_or_default(),
            }),
            other => {
                let expected = "success, failure, rate_limited, auth_failure, finished or quota";
                return Err(unknown("kind", other, expected));
            }
        })
    }
}

#[derive(Deserialize)]
pub(super) struct CircuitWire {
    state: String,
    until_ms: Option<u64>,
    probe_lease_until_ms: Option<u64>,
    successes: Option<u32>,
}

impl TryFrom<CircuitWire> for Circuit {
    type Error = String;

    fn try_from(wire: CircuitWire) -> Result<Self, String> {
        Ok(match wire.state.as_str() {
            "closed" => Circuit::Closed,
            "open" => Circuit::Open { until_ms: required(wire.until_ms, "until_ms")? },
            "half_open" => Circuit::HalfOpen {
                probe_lease_until_ms: required(wire.probe_lease_until_ms, "probe_lease_until_ms")?,
                successes: required(wire.successes, "successes")?,
            },
            other => return Err(unknown("state", other, "closed, open or half_open")),
        })
    }
}

#[derive(Deserialize)]
pub(super) struct ProbeClaimWire {
    probe: String,
    lease_until_ms: Option<u64>,
    until_ms: Option<u64>,
}

impl TryFrom<ProbeClaimWire> for ProbeClaim {
    type Error = String;

    fn try_from(wire: ProbeClaimWire) -> Result<Self, String> {
        Ok(match wire.probe.as_str() {
            "not_needed" => ProbeClaim::NotNeeded,
            "granted" => ProbeClaim::Granted { lease_until_ms: required(wire.lease_until_ms, "lease_until_ms")? },
            "busy" => ProbeClaim::Busy { until_ms: required(wire.until_ms, "until_ms")? },
            other => return Err(unknown("probe", other, "not_needed, granted or busy")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use std::fmt::Debug;

    fn round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(crate::json_value::from_str::<T>(&json).unwrap(), value, "{json}");
    }

    #[test]
    fn every_variant_reads_back_what_serialize_wrote() {
        let window = |remaining| Window { remaining, reset_at_ms: Some(7) };
        for outcome in [
            Outcome::Success { latency_ms: 12 },
            Outcome::Failure,
            Outcome::RateLimited { retry_after_ms: Some(3) },
            Outcome::RateLimited { retry_after_ms: None },
            Outcome::AuthFailure,
            Outcome::Finished { duration_ms: 5, output_tokens: Some(9), tool_calls_valid: Some(false) },
            Outcome::Finished { duration_ms: 5, output_tokens: None, tool_calls_valid: None },
            Outcome::Quota(QuotaReading::default()),
            Outcome::Quota(QuotaReading {
                requests: Some(window(1)),
                tokens: Some(window(2)),
                input_tokens: Some(window(3)),
                output_tokens: Some(window(4)),
                retry_after_ms: Some(5),
                at_ms: 6,
            }),
        ] {
            round_trips(outcome);
        }
        for circuit in [
            Circuit::Closed,
            Circuit::Open { until_ms: 4 },
            Circuit::HalfOpen { probe_lease_until_ms: 8, successes: 1 },
        ] {
            round_trips(circuit);
        }
        for claim in
            [ProbeClaim::NotNeeded, ProbeClaim::Granted { lease_until_ms: 2 }, ProbeClaim::Busy { until_ms: 3 }]
        {
            round_trips(claim);
        }
    }

    #[test]
    fn the_derives_json_still_reads() {
        let read = |json: &str| crate::json_value::from_str::<Outcome>(json);
        assert_eq!(read(r#"{"kind":"rate_limited"}"#).unwrap(), Outcome::RateLimited { retry_after_ms: None });
        assert_eq!(read(r#"{"latency_ms":4,"kind":"success","extra":1}"#).unwrap(), Outcome::Success { latency_ms: 4 });
        assert_eq!(read(r#"{"kind":"quota"}"#).unwrap(), Outcome::Quota(QuotaReading::default()));
        assert_eq!(
            crate::json_value::from_str::<Circuit>(r#"{"state":"half_open","probe_lease_until_ms":1,"successes":0}"#)
                .unwrap(),
            Circuit::HalfOpen { probe_lease_until_ms: 1, successes: 0 }
        );
    }

    #[test]
    fn unknown_tags_missing_fields_and_wrong_types_are_refused() {
        for json in [
            r#"{"kind":"succes","latency_ms":1}"#,
            r#"{"kind":"success"}"#,
            r#"{"latency_ms":1}"#,
            r#"{"kind":"success","latency_ms":"1"}"#,
            r#"{"kind":"finished","duration_ms":1,"output_tokens":"9"}"#,
            r#"{"kind":"quota","output_tokens":5}"#,
        ] {
            assert!(crate::json_value::from_str::<Outcome>(json).is_err(), "{json}");
        }
        assert!(crate::json_value::from_str::<Circuit>(r#"{"state":"open"}"#).is_err());
        assert!(crate::json_value::from_str::<Circuit>(r#"{"state":"ajar","until_ms":1}"#).is_err());
        assert!(crate::json_value::from_str::<ProbeClaim>(r#"{"probe":"granted"}"#).is_err());
    }
}
