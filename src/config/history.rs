//! Config versions: every stored document is kept under a numbered KV key
//! (`config:history:000000000007`) with its metadata (who, when, revision), the
//! newest `KEEP_VERSIONS`; the current document's own metadata names its version.
//! Pure: the edge lists, reads and writes; this decides numbers, names and targets.

use serde::{Deserialize, Serialize};

/// How many versions are kept (older ones are deleted after a change).
pub const KEEP_VERSIONS: usize = 20;
/// KV key prefix of the stored versions (zero-padded, so listing is in version order).
pub const HISTORY_PREFIX: &str = "config:history:";
/// The longest `by` and `revision` kept in a version's metadata (KV metadata ≤ 1 KiB).
const MAX_ACTOR: usize = 64;
const MAX_REVISION: usize = 256;

/// What made a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// `PUT /admin/config`.
    Put,
    /// `POST /admin/config/rollback`: a copy of an earlier version.
    Rollback,
    /// The document that was stored before versions were kept (recorded on the first change).
    Initial,
}

/// One stored version, as kept in its KV metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: u64,
    /// When it was stored (Unix milliseconds).
    pub at_ms: u64,
    /// Who stored it: the admin's `x-gateway-actor` header, else `admin`.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub source: ChangeSource,
    /// For a rollback: the version it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<u64>,
    pub bytes: u64,
}

impl VersionMeta {
    pub fn new(version: u64, at_ms: u64, by: &str, revision: Option<&str>, source: ChangeSource, bytes: usize) -> Self {
        VersionMeta {
            version,
            at_ms,
            by: by.to_string(),
            revision: revision.map(|r| truncate(r, MAX_REVISION)),
            source,
            restores: None,
            bytes: bytes as u64,
        }
    }

    /// The entry `GET /admin/config/versions` shows.
    pub fn listing(&self, current: Option<u64>) -> serde_json::Value {
        let mut entry = serde_json::to_value(self).unwrap_or_default();
        entry["at"] = utc_timestamp(self.at_ms).into();
        entry["current"] = (current == Some(self.version)).into();
        entry
    }
}

/// The metadata of the current document (KV key `config`): which version it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentMeta {
    pub version: u64,
}

pub fn history_key(version: u64) -> String {
    format!("{HISTORY_PREFIX}{version:012}")
}

pub fn version_of_key(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(HISTORY_PREFIX)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The number the next stored version gets.
pub fn next_version(versions: &[VersionMeta]) -> u64 {
    versions.iter().map(|v| v.version).max().unwrap_or(0) + 1
}

/// The versions to delete once `versions` (including the new one) are stored: all but
/// the newest `KEEP_VERSIONS`.
pub fn beyond_kept(versions: &[VersionMeta]) -> Vec<u64> {
    let mut numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    // Ascending then reversed: the same sort instantiation as the usage percentiles'.
    numbers.sort_unstable();
    numbers.reverse();
    numbers.into_iter().skip(KEEP_VERSIONS).collect()
}

/// Why a rollback cannot happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackRefusal {
    /// The named version is not kept (never existed or pruned).
    NotKept(u64),
    /// No version older than the current one is kept.
    NoPrevious,
    /// The named version is the current document already.
    AlreadyCurrent(u64),
}

impl RollbackRefusal {
    pub fn message(&self) -> String {
        match self {
            RollbackRefusal::NotKept(n) => {
                format!("Version {n} is not kept (the newest {KEEP_VERSIONS} versions are); see GET /admin/config/versions.")
            }
            RollbackRefusal::NoPrevious => "There is no earlier version to roll back to.".into(),
            RollbackRefusal::AlreadyCurrent(n) => {
                format!("Version {n} is the current config already; nothing changed.")
            }
        }
    }
}

/// The version a rollback restores: the named one, or the newest version older
/// than the current one (so rolling back twice walks further back).
pub fn rollback_target(
    versions: &[VersionMeta],
    current: Option<u64>,
    named: Option<u64>,
) -> Result<u64, RollbackRefusal> {
    if let Some(n) = named {
        if current == Some(n) {
            return Err(RollbackRefusal::AlreadyCurrent(n));
        }
        return versions.iter().any(|v| v.version == n).then_some(n).ok_or(RollbackRefusal::NotKept(n));
    }
    // Without a known current version, the newest kept one is taken to be current.
    let current = current.or_else(|| versions.iter().map(|v| v.version).max());
    versions
        .iter()
        .map(|v| v.version)
        .filter(|n| current.is_some_and(|c| *n < c))
        .max()
        .ok_or(RollbackRefusal::NoPrevious)
}

/// Who made a change, from the optional `x-gateway-actor` header: printable ASCII,
/// at most 64 characters; `admin` when absent or unusable.
pub fn actor(header: Option<&str>) -> String {
    let cleaned: String =
        header.unwrap_or("").trim().chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(MAX_ACTOR).collect();
    if cleaned.trim().is_empty() {
        "admin".into()
    } else {
        cleaned.trim().to_string()
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time in milliseconds.
pub fn utc_timestamp(ms: u64) -> String {
    let seconds = ms / 1000 % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        crate::limits::budget::utc_date(ms),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: u64) -> VersionMeta {
        VersionMeta::new(version, 1_000 * version, "ops", Some("r"), ChangeSource::Put, 10)
    }

    #[test]
    fn keys_sort_in_version_order_and_parse_back() {
        assert_eq!(history_key(7), "config:history:000000000007");
        assert!(history_key(9) < history_key(10));
        assert_eq!(version_of_key(&history_key(123)), Some(123));
        assert_eq!(version_of_key("config:history:"), None);
        assert_eq!(version_of_key("config:history:12a"), None);
        assert_eq!(version_of_key("config"), None);
    }

    #[test]
    fn the_next_version_follows_the_newest_and_only_twenty_are_kept() {
        assert_eq!(next_version(&[]), 1);
        let versions: Vec<_> = (1..=23).map(meta).collect();
        assert_eq!(next_version(&versions), 24);
        let mut gone = beyond_kept(&versions);
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 2, 3]);
        assert!(beyond_kept(&versions[..20]).is_empty());
    }

    #[test]
    fn rollback_goes_to_the_previous_version_or_the_named_one() {
        let versions: Vec<_> = (3..=6).map(meta).collect();
        assert_eq!(rollback_target(&versions, Some(6), None), Ok(5));
        assert_eq!(rollback_target(&versions, Some(5), None), Ok(4));
        assert_eq!(rollback_target(&versions, None, None), Ok(5), "the newest is taken as current");
        assert_eq!(rollback_target(&versions, Some(6), Some(3)), Ok(3));
        assert_eq!(rollback_target(&versions, Some(6), Some(2)), Err(RollbackRefusal::NotKept(2)));
        assert_eq!(rollback_target(&versions, Some(6), Some(6)), Err(RollbackRefusal::AlreadyCurrent(6)));
        assert_eq!(rollback_target(&versions, Some(3), None), Err(RollbackRefusal::NoPrevious));
        assert_eq!(rollback_target(&[], None, None), Err(RollbackRefusal::NoPrevious));
    }

    #[test]
    fn actors_are_short_printable_names() {
        assert_eq!(actor(None), "admin");
        assert_eq!(actor(Some("  ")), "admin");
        assert_eq!(actor(Some("ci: deploy #42\n")), "ci: deploy #42");
        assert_eq!(actor(Some(&"x".repeat(100))).len(), 64);
        assert_eq!(actor(Some("ünïcode")), "ncode");
    }

    #[test]
    fn metadata_stays_small_and_lists_with_a_timestamp() {
        let long = "é".repeat(1000);
        let m = VersionMeta::new(1, 1_764_606_000_000, &actor(Some(&long)), Some(&long), ChangeSource::Rollback, 5);
        assert!(serde_json::to_string(&m).unwrap().len() < 1024, "fits KV metadata");
        let listed = m.listing(Some(1));
        assert_eq!(listed["at"], "2025-12-01T16:20:00Z");
        assert_eq!(listed["current"], true);
        assert_eq!(listed["source"], "rollback");
    }
}
