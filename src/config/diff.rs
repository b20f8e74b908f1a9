//! What a new config document changes compared with the current one (for the
//! dry run `POST /admin/config/validate`), and which limiters it would move to
//! another Durable Object jurisdiction (refused unless accepted: their state stays
//! behind in the old object).

use super::{Config, KeyRecord};
use serde::Serialize;
use std::collections::BTreeMap;

/// Names added, removed and changed in one section of the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Changes {
    fn between<V: PartialEq>(old: &BTreeMap<String, &V>, new: &BTreeMap<String, &V>) -> Changes {
        let mut out = Changes::default();
        for (name, value) in new {
            match old.get(name) {
                None => out.added.push(name.clone()),
                Some(before) if before != value => out.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        out.removed = old.keys().filter(|name| !new.contains_key(*name)).cloned().collect();
        out
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The difference between two documents. Keys are named by their `name`, never by
/// their hash; a key whose hash changed under the same name is `changed` (rotated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub providers: Changes,
    pub models: Changes,
    pub keys: Changes,
    pub teams: Changes,
    /// The names of the settings whose value changes.
    pub settings: Vec<String>,
    pub residency_changed: bool,
    pub revision: RevisionChange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevisionChange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
            && self.models.is_empty()
            && self.keys.is_empty()
            && self.teams.is_empty()
            && self.settings.is_empty()
            && !self.residency_changed
    }
}

/// A key record together with its hash, so a rotated key counts as changed.
#[derive(PartialEq)]
struct HashedKey<'a>(&'a str, &'a KeyRecord);

pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let (old_keys, new_keys) = (named_keys(old), named_keys(new));
    let settings = |config: &Config| match serde_json::to_value(&config.settings) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old_settings, new_settings) = (settings(old), settings(new));
    let mut changed_settings: Vec<String> = new_settings
        .iter()
        .filter(|(name, value)| old_settings.get(*name) != Some(value))
        .map(|(name, _)| name.clone())
        .chain(old_settings.keys().filter(|name| !new_settings.contains_key(*name)).cloned())
        .collect();
    crate::order::sort(&mut changed_settings);
    changed_settings.dedup();
    ConfigDiff {
        providers: Changes::between(&refs(&old.providers), &refs(&new.providers)),
        models: Changes::between(&refs(&old.models), &refs(&new.models)),
        keys: Changes::between(
            &by_name(old_keys.iter().map(|(n, k)| (n.clone(), k))),
            &by_name(new_keys.iter().map(|(n, k)| (n.clone(), k))),
        ),
        teams: Changes::between(&refs(&old.teams), &refs(&new.teams)),
        settings: changed_settings,
        residency_changed: old.residency != new.residency,
        revision: RevisionChange { from: old.revision.clone(), to: new.revision.clone() },
    }
}

fn named_keys(config: &Config) -> Vec<(String, HashedKey<'_>)> {
    config.keys.iter().map(|(hash, key)| (key.name.clone(), HashedKey(hash, key))).collect()
}

fn refs<V>(map: &BTreeMap<String, V>) -> BTreeMap<String, &V> {
    by_name(map.iter().map(|(k, v)| (k.clone(), v)))
}

/// Inserted one by one: collecting into a `BTreeMap` sorts first, one sort
/// instantiation per iterator type.
fn by_name<V>(entries: impl Iterator<Item = (String, V)>) -> BTreeMap<String, V> {
    let mut map = BTreeMap::new();
    for (name, value) in entries {
        map.insert(name, value);
    }
    map
}

/// A key's or team's limiter that a change would move to another jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimiterMove {
    /// `key` or `team`.
    pub scope: &'static str,
    pub name: String,
    /// The jurisdiction of its limiter now and after the change (`null`: global).
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
}

impl LimiterMove {
    pub fn describe(&self) -> String {
        let place = |j: Option<&str>| j.map_or("global".to_string(), |j| format!("the {j} jurisdiction"));
        format!("{} {:?}'s limiter would move from {} to {}", self.scope, self.name, place(self.from), place(self.to))
    }
}

/// The limiters with state (limits or a budget before and after the change) whose
/// jurisdiction changes: a key's `regions`, or a team's membership. A new object
/// would start empty, silently resetting their rate state and this month's spend.
pub fn limiter_moves(old: &Config, new: &Config) -> Vec<LimiterMove> {
    let limited = |k: &KeyRecord| !k.limits.is_empty() || !k.model_limits.is_empty() || k.monthly_budget_usd.is_some();
    let mut out = Vec::new();
    for new_key in new.keys.values().filter(|k| limited(k)) {
        let Some(old_key) = old.keys.values().find(|k| k.name == new_key.name && limited(k)) else { continue };
        if old_key.jurisdiction() != new_key.jurisdiction() {
            out.push(LimiterMove {
                scope: "key",
                name: new_key.name.clone(),
                from: old_key.jurisdiction(),
                to: new_key.jurisdiction(),
            });
        }
    }
    let team_limited =
        |t: &super::Team| !t.limits.is_empty() || !t.model_limits.is_empty() || t.monthly_budget_usd.is_some();
    for (name, team) in &new.teams {
        if !team_limited(team) || !old.teams.get(name).is_some_and(team_limited) {
            continue;
        }
        let (from, to) = (old.team_jurisdiction(name), new.team_jurisdiction(name));
        if from != to {
            out.push(LimiterMove { scope: "team", name: name.clone(), from, to });
        }
    }
    out
}

/// The refusal message for moves that were not accepted.
pub fn moves_refusal(moves: &[LimiterMove]) -> String {
    let list: Vec<String> = moves.iter().map(LimiterMove::describe).collect();
    format!(
        "This change would reset rate-limit and budget state: {}. Its requests in flight and this month's \
         spending stay in the old object. Nothing was stored; repeat with ?accept_limiter_reset=true to accept.",
        list.join("; ")
    )
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
