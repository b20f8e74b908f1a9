//! The `USAGE_QUEUE` consumer: inserts a batch's records into D1 and rolls them
//! up, in one transaction. Never returns `Err` (that resets the wasm instance):
//! a failed batch is retried by the queue, and redelivery inserts nothing twice.

use super::d1;
use crate::edge::log;
use crate::usage::{record, store};
use std::cell::Cell;
use worker::{event, Context, Env, MessageBatch};

thread_local! {
    /// Test hook (binding `USAGE_FAULT=fail_first_batch_midway`): the first batch
    /// this isolate sees commits half its rows, then fails, as a consumer killed mid-batch.
    static FAULT_USED: Cell<bool> = const { Cell::new(false) };
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let mut records = Vec::new();
    for message in batch.raw_iter() {
        let Some(text) = message.body().as_string() else {
            log::warn("usage_message_unreadable", "dropped");
            continue;
        };
        for record in record::unpack_lines(&text) {
            match record {
                Ok(record) => records.push(record),
                Err(()) => log::warn("usage_message_unreadable", "dropped"),
            }
        }
    }
    let Ok(db) = d1::database(&env) else {
        log::warn("usage_store_unbound", "the D1 binding USAGE is missing; records kept in the queue");
        batch.retry_all();
        return Ok(());
    };
    let fault = crate::edge::config_store::test_hook(&env, "USAGE_FAULT");
    if fault.as_deref() == Some("fail_first_batch_midway") && !FAULT_USED.with(|used| used.replace(true)) {
        let _ = run(&db, vec![store::insert_all(&records[..records.len() / 2])]).await;
        log::warn("usage_fault_injected", "half the batch inserted, then failed");
        batch.retry_all();
        return Ok(());
    }
    // The rows in a few statements, then the rollups, in one batch (one transaction).
    let mut statements: Vec<store::Statement> = records.chunks(store::ROWS_PER_INSERT).map(store::insert_all).collect();
    statements.extend(store::rollup());
    match run(&db, statements).await {
        Ok(()) => batch.ack_all(),
        Err(error) => {
            log::warn("usage_insert_failed", &error.to_string());
            batch.retry_all();
        }
    }
    Ok(())
}

async fn run(db: &worker::D1Database, statements: Vec<store::Statement>) -> worker::Result<()> {
    let prepared = statements.iter().map(|s| d1::prepare(db, s)).collect::<worker::Result<Vec<_>>>()?;
    db.batch(prepared).await?;
    Ok(())
}

/// Deletes raw rows past the retention (from the cron).
pub async fn expire(env: &Env, now_ms: u64, retention_days: u64) {
    let Ok(db) = d1::database(env) else { return };
    let statement = store::expire(now_ms, retention_days);
    if let Err(error) = run(&db, vec![statement]).await {
        log::warn("usage_expiry_failed", &error.to_string());
    }
}
