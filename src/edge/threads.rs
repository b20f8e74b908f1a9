//! Anthropic's message threads, held by the gateway for every provider: a
//! `continue` is completed from the thread's turns in the key's `ResponseStore`
//! (its jurisdiction) before it is served, each reply is kept as the thread's next
//! turn, and the thread stays held to the regions its first turn was.

use super::chat::Stateful;
use super::stream::{Keep, Kept};
use super::{now_ms, response_store};
use crate::config::{Config, KeyRecord};
use crate::dialects::anthropic_thread::{self as thread, ThreadTurn, Turn};
use crate::dialects::ClientCall;
use crate::error::GatewayError;
use worker::Env;

/// A thread's turn made whole (a `continue` from its stored thread), and how its
/// reply is kept.
pub async fn completed(
    env: &Env,
    key: &KeyRecord,
    config: &Config,
    turn: Turn,
    header: &dyn Fn(&str) -> Option<String>,
) -> Result<(ClientCall, Stateful), GatewayError> {
    let history = match turn.continues() {
        None => thread::History::default(),
        Some(id) => {
            let store = response_store::stub(env, key).ok_or_else(response_store::unavailable)?;
            match response_store::thread(&store, id).await {
                Some(Some(turns)) => thread::history(turns),
                Some(None) => return Err(thread::not_found(id)),
                None => return Err(response_store::unavailable()),
            }
        }
    };
    let (call, kept) = turn.complete(history, config.settings.max_conversation_bytes, now_ms(), header)?;
    let stateful =
        Stateful { conversation_regions: kept.regions.clone(), keep: Some(keeper(env.clone(), key.clone(), kept)) };
    Ok((call, stateful))
}

/// Keeps a thread's turn, with its reply, in the key's store.
fn keeper(env: Env, key: KeyRecord, turn: ThreadTurn) -> Keep {
    Box::new(move |Kept { answer, regions }| {
        Box::pin(async move {
            let Some(turn) = turn.with_reply(&answer, regions) else {
                super::log::warn("thread_turn_not_kept", "the answer is not a message");
                return;
            };
            let kept = match response_store::stub(&env, &key) {
                Some(store) => response_store::put_thread_turn(&store, &turn).await,
                None => false,
            };
            if !kept {
                super::log::warn("thread_turn_not_kept", &turn.id);
            }
        })
    })
}
