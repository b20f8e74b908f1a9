//! Who a request is for: project, agent and tags, from the `x-gateway-project`,
//! `x-gateway-agent` and `x-gateway-tags` headers, the body's `metadata` object
//! (`project`, `agent`, `tags`) and `user` field (the agent when nothing else names
//! one and it is a valid name), on top of the key's defaults. Bounded, so a client
//! cannot bloat the store.

use crate::config::KeyRecord;
use crate::error::GatewayError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use crate::config::attribution::{valid_name, MAX_NAME_CHARS, MAX_TAGS, MAX_TAG_KEY_CHARS};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// What the request itself says, before the key's defaults apply.
#[derive(Debug, Default)]
struct Asked {
    project: Option<(String, &'static str)>,
    agent: Option<(String, &'static str)>,
    tags: Vec<(String, String, &'static str)>,
}

/// The request's attribution: what it asks for (headers first, then `metadata`,
/// then `user`), over the key's defaults. On a key with `fixed_attribution`, a
/// request may add tags but not change the key's project, agent or tag values.
pub fn resolve(
    header: &dyn Fn(&str) -> Option<String>,
    body: Option<&Map<String, Value>>,
    key: &KeyRecord,
) -> Result<Attribution, GatewayError> {
    let asked = asked(header, body)?;
    let mut out = Attribution { project: key.project.clone(), agent: key.agent.clone(), tags: key.tags.clone() };
    let fixed = key.fixed_attribution;
    if let Some((project, from)) = asked.project {
        set(&mut out.project, project, fixed, "project", from)?;
    }
    if let Some((agent, from)) = asked.agent {
        set(&mut out.agent, agent, fixed, "agent", from)?;
    }
    for (k, v, from) in asked.tags {
        match out.tags.get(&k) {
            Some(old) if fixed && key.tags.contains_key(&k) && *old != v => {
                return Err(fixed_error(&format!("tag {k:?}"), from));
            }
            _ => {
                out.tags.insert(k, v);
            }
        }
    }
    if out.tags.len() > MAX_TAGS {
        return Err(invalid(format!("At most {MAX_TAGS} tags per request (the key's included)."), "x-gateway-tags"));
    }
    Ok(out)
}

fn set(
    slot: &mut Option<String>,
    value: String,
    fixed: bool,
    what: &str,
    from: &'static str,
) -> Result<(), GatewayError> {
    if fixed && slot.as_ref().is_some_and(|current| *current != value) {
        return Err(fixed_error(what, from));
    }
    *slot = Some(value);
    Ok(())
}

fn asked(header: &dyn Fn(&str) -> Option<String>, body: Option<&Map<String, Value>>) -> Result<Asked, GatewayError> {
    let metadata = body.and_then(|b| b.get("metadata")).and_then(Value::as_object);
    let meta = |name: &str| metadata.and_then(|m| m.get(name)).and_then(Value::as_str).map(str::to_string);
    let present = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let project = match present(header("x-gateway-project")) {
        Some(p) => Some((p, "x-gateway-project")),
        None => present(meta("project")).map(|p| (p, "metadata.project")),
    };
    let agent = match present(header("x-gateway-agent")) {
        Some(a) => Some((a, "x-gateway-agent")),
        None => match present(meta("agent")) {
            Some(a) => Some((a, "metadata.agent")),
            // `user` is the client's own field (any opaque id; Claude Code's is a JSON text):
            // it names the agent only when it is a valid name, and is never a 400.
            None => present(body.and_then(|b| b.get("user")).and_then(Value::as_str).map(str::to_string))
                .filter(|u| valid_name(u, MAX_NAME_CHARS))
                .map(|u| (u, "user")),
        },
    };
    let mut asked = Asked { project, agent, tags: Vec::new() };
    for (value, from) in [&asked.project, &asked.agent].into_iter().flatten() {
        check_name(value, from, MAX_NAME_CHARS)?;
    }
    for (text, from) in [(meta("tags"), "metadata.tags"), (header("x-gateway-tags"), "x-gateway-tags")] {
        if let Some(text) = text {
            for (k, v) in parse_tags(&text, from)? {
                asked.tags.retain(|(old, _, _)| *old != k);
                asked.tags.push((k, v, from));
            }
        }
    }
    Ok(asked)
}

/// `k=v,k2=v2` (spaces around items ignored; empty items skipped).
pub fn parse_tags(text: &str, from: &'static str) -> Result<Vec<(String, String)>, GatewayError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| invalid(format!("Tags are comma-separated k=v pairs; {item:?} has no '='."), from))?;
        let (k, v) = (k.trim(), v.trim());
        check_name(k, from, MAX_TAG_KEY_CHARS)?;
        check_name(v, from, MAX_NAME_CHARS)?;
        out.retain(|(old, _)| old != k);
        out.push((k.to_string(), v.to_string()));
        if out.len() > MAX_TAGS {
            return Err(invalid(format!("At most {MAX_TAGS} tags per request."), from));
        }
    }
    Ok(out)
}

fn check_name(value: &str, from: &'static str, max: usize) -> Result<(), GatewayError> {
    if valid_name(value, max) {
        return Ok(());
    }
    let shown: String = value.chars().take(max + 1).collect();
    Err(invalid(format!("{from}: {shown:?} must be 1 to {max} characters of letters, digits and ._:/@+-"), from))
}

fn invalid(message: String, param: &'static str) -> GatewayError {
    GatewayError::invalid_request("invalid_attribution", message).with_param(param)
}

fn fixed_error(what: &str, from: &'static str) -> GatewayError {
    invalid(format!("This key fixes its {what}; the request may not change it (from {from})."), from)
}
