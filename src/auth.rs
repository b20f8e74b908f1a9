//! Gateway keys: read from the request headers, hashed with SHA-256 and looked up
//! in constant time. The plaintext key is never stored or logged.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Lowercase hex SHA-256 of `input`.
pub fn sha256_hex(input: &str) -> String {
    crate::hex::encode(&Sha256::digest(input.as_bytes()))
}

/// The presented gateway key: `Authorization: Bearer <key>` first, then `x-api-key`
/// (what the Anthropic SDK sends). Empty values count as absent.
pub fn presented_key<'a>(authorization: Option<&'a str>, x_api_key: Option<&'a str>) -> Option<&'a str> {
    let from_bearer = authorization.and_then(|value| {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    from_bearer.or(x_api_key.map(str::trim)).filter(|k| !k.is_empty())
}

/// Compares the digest against every stored digest without an early exit, so the
/// time taken says nothing about how close a guess was.
pub fn find_by_hash<'a, V>(records: &'a BTreeMap<String, V>, presented_hash: &str) -> Option<&'a V> {
    let mut found = None;
    for (stored, record) in records {
        if bool::from(stored.as_bytes().ct_eq(presented_hash.as_bytes())) {
            found = Some(record);
        }
    }
    found
}

/// Constant-time equality of two secrets of any length (compares their digests).
pub fn secrets_equal(presented: &str, expected: &str) -> bool {
    let a = Sha256::digest(presented.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The shortest `ADMIN_TOKEN` the admin API accepts: shorter tokens can be guessed.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Whether an `ADMIN_TOKEN` is long enough to authorize anything.
pub fn admin_token_usable(token: &str) -> bool {
    token.trim().chars().count() >= MIN_ADMIN_TOKEN_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bearer_is_preferred_and_scheme_is_case_insensitive() {
        assert_eq!(presented_key(Some("Bearer gw_a"), Some("gw_b")), Some("gw_a"));
        assert_eq!(presented_key(Some("bearer  gw_a "), None), Some("gw_a"));
        assert_eq!(presented_key(None, Some("gw_b")), Some("gw_b"));
        assert_eq!(presented_key(Some("Basic abc"), Some("gw_b")), Some("gw_b"));
    }

    #[test]
    fn missing_or_empty_keys_are_absent() {
        assert_eq!(presented_key(None, None), None);
        assert_eq!(presented_key(Some("Bearer "), None), None);
        assert_eq!(presented_key(Some("Bearer"), Some("  ")), None);
    }

    #[test]
    fn lookup_finds_only_exact_hash() {
        let mut records = BTreeMap::new();
        records.insert(sha256_hex("gw_right"), "team-a");
        assert_eq!(find_by_hash(&records, &sha256_hex("gw_right")), Some(&"team-a"));
        assert_eq!(find_by_hash(&records, &sha256_hex("gw_wrong")), None);
        assert_eq!(find_by_hash(&records, ""), None);
    }

    #[test]
    fn admin_tokens_shorter_than_32_characters_are_unusable() {
        assert!(!admin_token_usable("dev-admin-token"));
        assert!(!admin_token_usable(&format!("{}   ", "x".repeat(31))));
        assert!(admin_token_usable(&"x".repeat(32)));
    }

    #[test]
    fn secrets_equal_is_exact() {
        assert!(secrets_equal("admin-token", "admin-token"));
        assert!(!secrets_equal("admin-token", "admin-token2"));
        assert!(!secrets_equal("", "x"));
    }
}
