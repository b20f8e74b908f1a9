//! Config versions in KV: each stored document under `config:history:<n>` with its
//! metadata (who, when, revision), and the current document (`config`) naming its
//! version in its own metadata. Numbers, names and pruning are decided in
//! `config::history`; this only reads and writes.

use super::config_store::CONFIG_KEY;
use super::{kv, log};
use crate::config::history::{self, CurrentMeta, VersionMeta, HISTORY_PREFIX};
use crate::error::GatewayError;
use wasm_bindgen::JsValue;
use worker::Env;

fn read_failed() -> GatewayError {
    GatewayError::config_unavailable("the config versions could not be read from KV")
}

fn write_failed() -> GatewayError {
    GatewayError::new(
        503,
        "server_error",
        "config_write_failed",
        "The config could not be written to KV; nothing changed.",
    )
}

/// Every kept version, oldest first.
pub async fn list(env: &Env) -> Result<Vec<VersionMeta>, GatewayError> {
    let namespace = kv::namespace(env)?;
    let mut versions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = kv::list_page(&namespace, HISTORY_PREFIX, cursor.take()).await.map_err(|()| read_failed())?;
        for key in page.keys {
            let meta = key.metadata.and_then(|m| crate::json_value::from_str::<VersionMeta>(&m).ok());
            match meta {
                Some(meta) if history::version_of_key(&key.name) == Some(meta.version) => versions.push(meta),
                _ => log::warn("config_version_unreadable", &key.name),
            }
        }
        match page.cursor.filter(|c| !page.list_complete && !c.is_empty()) {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    crate::order::sort_by_key(&mut versions, |v| v.version);
    Ok(versions)
}

/// The document stored as version `n`.
pub async fn read(env: &Env, version: u64) -> Result<Option<String>, GatewayError> {
    kv::get_text(&kv::namespace(env)?, &history::history_key(version)).await.map_err(|()| read_failed())
}

/// Stores `text` as version `meta.version` and makes it the current document.
/// The current document is written last: if any write fails, the config in force
/// is unchanged (a version written before the failure is removed again).
pub async fn commit(env: &Env, text: &str, meta: &VersionMeta, kept: &[VersionMeta]) -> Result<(), GatewayError> {
    let namespace = kv::namespace(env)?;
    let key = history::history_key(meta.version);
    put(&namespace, &key, text, meta).await?;
    if let Err(error) = put(&namespace, CONFIG_KEY, text, &CurrentMeta { version: meta.version }).await {
        if kv::delete(&namespace, &key).await.is_err() {
            log::warn("config_version_orphaned", &key);
        }
        return Err(error);
    }
    let mut all = kept.to_vec();
    all.push(meta.clone());
    for old in history::beyond_kept(&all) {
        if kv::delete(&namespace, &history::history_key(old)).await.is_err() {
            log::warn("config_version_prune_failed", &old.to_string());
        }
    }
    Ok(())
}

/// Records a document stored before versions were kept, so the first change can be undone.
pub async fn record_initial(env: &Env, text: &str, meta: &VersionMeta) -> Result<(), GatewayError> {
    put(&kv::namespace(env)?, &history::history_key(meta.version), text, meta).await
}

async fn put<M: serde::Serialize>(namespace: &JsValue, key: &str, text: &str, meta: &M) -> Result<(), GatewayError> {
    let meta = serde_json::to_string(meta).map_err(|_| write_failed())?;
    kv::put_with_metadata(namespace, key, text, &meta).await.map_err(|()| write_failed())
}
