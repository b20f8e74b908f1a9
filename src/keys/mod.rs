//! Keys made through the admin API (`/admin/keys`): the registry's state and its
//! operations, pure. Only SHA-256 hashes are kept; the plaintext and ids come in
//! from the edge (which draws the randomness), the time as an argument. The
//! authoritative registry lives in one `KeyRegistry` Durable Object; isolates poll
//! it in the background and authenticate against its active keys like the
//! config document's own (`Config::with_keys`).

use crate::config::{attribution, Config, KeyRecord};
use crate::error::GatewayError;
use crate::tagged::{required, unknown};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The longest rotation grace period.
pub const MAX_GRACE_MS: u64 = 30 * 86_400_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Bumped by every change; isolates compare it to their copy.
    pub version: u64,
    pub keys: BTreeMap<String, ManagedKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedKey {
    pub id: String,
    pub record: KeyRecord,
    pub hash: String,
    /// Hashes of rotated-out plaintexts, accepted until their time (the grace period).
    #[serde(default)]
    pub previous: Vec<(String, u64)>,
    pub created_ms: u64,
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
    #[serde(default)]
    pub disabled: bool,
}

/// A change to the registry, as the admin API asks the object to apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", try_from = "OpWire")]
pub enum Op {
    Create { key: ManagedKey },
    Update { id: String, record: KeyRecord, expires_at_ms: Option<u64>, disabled: bool },
    Rotate { id: String, hash: String, grace_ms: u64 },
    Delete { id: String },
}

/// Every field of every [`Op`], read flat: serde's internally tagged derive would
/// buffer the object into `Content` and instantiate the key record's deserializer
/// a second time for it. The JSON is the derive's own (`Serialize` writes it).
#[derive(Deserialize)]
struct OpWire {
    op: String,
    key: Option<ManagedKey>,
    id: Option<String>,
    record: Option<KeyRecord>,
    expires_at_ms: Option<u64>,
    disabled: Option<bool>,
    hash: Option<String>,
    grace_ms: Option<u64>,
}

impl TryFrom<OpWire> for Op {
    type Error = String;

    fn try_from(wire: OpWire) -> Result<Self, String> {
        Ok(match wire.op.as_str() {
            "create" => Op::Create { key: required(wire.key, "key")? },
            "update" => Op::Update {
                id: required(wire.id, "id")?,
                record: required(wire.record, "record")?,
                expires_at_ms: wire.expires_at_ms,
                disabled: required(wire.disabled, "disabled")?,
            },
            "rotate" => Op::Rotate {
                id: required(wire.id, "id")?,
                hash: required(wire.hash, "hash")?,
                grace_ms: required(wire.grace_ms, "grace_ms")?,
            },
            "delete" => Op::Delete { id: required(wire.id, "id")? },
            other => return Err(unknown("op", other, "create, update, rotate or delete")),
        })
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::new(404, "invalid_request_error", "key_not_found", format!("No managed key has the id {id:?}."))
}

impl Registry {
    /// Applies one change at `now_ms`; the version moves only when it succeeds.
    pub fn apply(&mut self, op: Op, now_ms: u64) -> Result<(), GatewayError> {
        match op {
            Op::Create { key } => {
                if self.keys.contains_key(&key.id) || self.keys.values().any(|k| k.record.name == key.record.name) {
                    return Err(conflict(&key.record.name));
                }
                self.keys.insert(key.id.clone(), key);
            }
            Op::Update { id, record, expires_at_ms, disabled } => {
                if self.keys.values().any(|k| k.id != id && k.record.name == record.name) {
                    return Err(conflict(&record.name));
                }
                let key = self.keys.get_mut(&id).ok_or_else(|| not_found(&id))?;
                key.record = record;
                key.expires_at_ms = expires_at_ms;
                key.disabled = disabled;
            }
            Op::Rotate { id, hash, grace_ms } => {
                let key = self.keys.get_mut(&id).ok_or_else(|| not_found(&id))?;
                let old = std::mem::replace(&mut key.hash, hash);
                key.previous.retain(|(_, until)| *until > now_ms);
                if grace_ms > 0 {
                    key.previous.push((old, now_ms.saturating_add(grace_ms.min(MAX_GRACE_MS))));
                }
            }
            Op::Delete { id } => {
                self.keys.remove(&id).ok_or_else(|| not_found(&id))?;
            }
        }
        self.version += 1;
        Ok(())
    }

    /// The keys that authenticate at `now_ms`, by hash (a rotating key under both).
    pub fn active(&self, now_ms: u64) -> Vec<(String, KeyRecord)> {
        let mut out = Vec::new();
        for key in self.keys.values().filter(|k| !k.disabled && k.expires_at_ms.is_none_or(|t| now_ms < t)) {
            out.push((key.hash.clone(), key.record.clone()));
            for (hash, until) in &key.previous {
                if now_ms < *until {
                    out.push((hash.clone(), key.record.clone()));
                }
            }
        }
        out
    }

    /// The next time the active set changes by itself (an expiry or a grace period's end).
    pub fn next_change_ms(&self, now_ms: u64) -> Option<u64> {
        let times = self.keys.values().flat_map(|k| k.expires_at_ms.into_iter().chain(k.previous.iter().map(|p| p.1)));
        times.filter(|t| *t > now_ms).min()
    }
}

fn conflict(name: &str) -> GatewayError {
    GatewayError::new(409, "invalid_request_error", "key_name_taken", format!("A key is already named {name:?}."))
}

/// A new or patched key's record as the config document would hold it: known
/// models and team, a unique name, valid attribution defaults.
pub fn check(record: &KeyRecord, config: &Config, registry: &Registry, id: Option<&str>) -> Result<(), GatewayError> {
    let invalid = |param: &str, message: String| {
        GatewayError::invalid_request("invalid_value", message).with_param(param.to_string())
    };
    if !attribution::valid_name(&record.name, 64) {
        return Err(invalid("name", "name: 1 to 64 letters, digits or ._:/@+-".into()));
    }
    if config.keys.values().any(|k| k.name == record.name) {
        return Err(conflict(&record.name));
    }
    if registry.keys.values().any(|k| Some(k.id.as_str()) != id && k.record.name == record.name) {
        return Err(conflict(&record.name));
    }
    if let Some(model) = record.models.iter().find(|m| *m != "*" && !config.models.contains_key(*m)) {
        return Err(invalid("models", format!("models: unknown model {model:?}")));
    }
    if let Some(team) = record.team.as_deref().filter(|t| !config.teams.contains_key(*t)) {
        return Err(invalid("team", format!("team: unknown team {team:?}")));
    }
    let mut issues = Vec::new();
    attribution::check_key("", record, &mut issues);
    if let Some(issue) = issues.first() {
        return Err(invalid("attribution", issue.to_string()));
    }
    Ok(())
}

/// `expires_at` and `disabled` (the registry's own fields) taken out of an admin body.
pub struct Lifecycle {
    pub expires_at_ms: Option<Option<u64>>,
    pub disabled: Option<bool>,
}

pub fn take_lifecycle(body: &mut Map<String, Value>) -> Result<Lifecycle, GatewayError> {
    let expires_at_ms = match body.remove("expires_at") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Number(n)) => Some(n.as_u64()),
        Some(Value::String(s)) => Some(Some(crate::usage::time::parse(&s).ok_or_else(|| {
            GatewayError::invalid_request("invalid_value", "expires_at: a UTC time or Unix milliseconds")
                .with_param("expires_at")
        })?)),
        Some(_) => {
            return Err(GatewayError::invalid_request("invalid_type", "expires_at: a string").with_param("expires_at"))
        }
    };
    let disabled = match body.remove("disabled") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(GatewayError::invalid_request("invalid_type", "disabled: a boolean").with_param("disabled"))
        }
    };
    Ok(Lifecycle { expires_at_ms, disabled })
}

/// A key record from an admin body, or a record with a body's fields replaced (null removes).
pub fn record_from(base: Option<&KeyRecord>, body: Map<String, Value>) -> Result<KeyRecord, GatewayError> {
    let mut merged = match base {
        Some(record) => match serde_json::to_value(record) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    for (field, value) in body {
        if value.is_null() {
            merged.remove(&field);
        } else {
            merged.insert(field, value);
        }
    }
    // Read back from text, as the config document's keys are: from a Value would
    // instantiate the key record's whole deserializer a second time (wasm size).
    let text = Value::Object(merged).to_string();
    crate::json_value::from_str(&text).map_err(|e| {
        let message = e.to_string();
        // The position is in this re-serialized text, not the client's body.
        let message = message.rfind(" at line ").map_or(message.as_str(), |at| &message[..at]);
        GatewayError::invalid_request("invalid_value", format!("The key is invalid: {message}"))
    })
}

/// A managed key as `GET /admin/keys` shows it: never a hash.
pub fn public_view(key: &ManagedKey, now_ms: u64) -> Value {
    let mut view = serde_json::to_value(&key.record).unwrap_or_default();
    view["id"] = Value::from(key.id.clone());
    view["source"] = Value::from("api");
    view["created_at"] = Value::from(crate::usage::time::iso(key.created_ms));
    view["expires_at"] = key.expires_at_ms.map_or(Value::Null, |t| Value::from(crate::usage::time::iso(t)));
    view["disabled"] = Value::from(key.disabled);
    let grace = key.previous.iter().map(|p| p.1).filter(|t| *t > now_ms).max();
    view["previous_key_valid_until"] = grace.map_or(Value::Null, |t| Value::from(crate::usage::time::iso(t)));
    view
}

#[cfg(test)]
mod tests;
