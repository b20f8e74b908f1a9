//! Bounds on usage attribution (project, agent, tags), shared by the key
//! records' validation and the per-request parsing in `usage::attribution`.

use super::issue::ConfigIssue;
use super::KeyRecord;

/// Longest project or agent name, and tag value.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest tag key.
pub const MAX_TAG_KEY_CHARS: usize = 32;
/// Most tags on one request (the key's included).
pub const MAX_TAGS: usize = 16;

/// Letters, digits and `._:/@+-`, 1 to `max` characters.
pub fn valid_name(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b))
}

const RULE: &str = "letters, digits and ._:/@+- only";

/// A key's attribution defaults, as requests would be held to them.
pub fn check_key(at: &str, key: &KeyRecord, out: &mut Vec<ConfigIssue>) {
    if key.team_admin && key.team.is_none() {
        out.push(ConfigIssue {
            pointer: format!("{at}/team_admin"),
            message: "a team admin key names its team".into(),
        });
    }
    for (field, value) in [("project", &key.project), ("agent", &key.agent)] {
        if let Some(value) = value.as_deref().filter(|v| !valid_name(v, MAX_NAME_CHARS)) {
            out.push(ConfigIssue {
                pointer: format!("{at}/{field}"),
                message: format!("{value:?}: 1 to {MAX_NAME_CHARS} characters, {RULE}"),
            });
        }
    }
    if key.tags.len() > MAX_TAGS {
        out.push(ConfigIssue { pointer: format!("{at}/tags"), message: format!("at most {MAX_TAGS} tags") });
    }
    for (k, v) in &key.tags {
        if !valid_name(k, MAX_TAG_KEY_CHARS) || !valid_name(v, MAX_NAME_CHARS) {
            out.push(ConfigIssue {
                pointer: format!("{at}/tags/{k}"),
                message: format!(
                    "tag keys 1 to {MAX_TAG_KEY_CHARS} and values 1 to {MAX_NAME_CHARS} characters, {RULE}"
                ),
            });
        }
    }
}
