//! Stored conversations: one `ResponseStore` Durable Object per gateway key, created
//! in the key's jurisdiction (an EU-pinned key's conversations stay in the EU),
//! one SQLite row per turn: stored Responses (`responses`) and Anthropic message
//! threads (`thread_turns`). Expired rows are swept on every write.

use super::now_ms;
use super::objects::Stub;
use super::objects::{self, RESPONSE_STORE};
use crate::config::KeyRecord;
use crate::dialects::anthropic_thread::ThreadTurn;
use crate::dialects::openai_responses::stored::{self, Conversation, StoredResponse};
use crate::error::GatewayError;
use crate::usage::query::query_pairs;
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State,
};

/// The longest chain walked when reading a conversation back.
const MAX_TURNS: usize = 10_000;

// Only the entry points it has: each one exported is a future and its glue in the wasm.
#[durable_object(fetch)]
pub struct ResponseStore {
    state: State,
}

#[derive(Serialize, Deserialize)]
struct Id {
    id: String,
}

impl ResponseStore {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body TEXT NOT NULL)",
            None,
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS thread_turns (id TEXT PRIMARY KEY, previous TEXT, expires_at INTEGER NOT NULL, body TEXT NOT NULL)",
            None,
        )?;
        Ok(sql)
    }

    /// A thread's turns, newest first, as the JSON array of their stored texts (read
    /// in one query up the chain, none parsed here: the caller reads them); `null`
    /// when any of them is gone (a thread is continued whole or not at all: the
    /// client then sends it whole again).
    fn thread(sql: &SqlStorage, id: &str) -> Result<String> {
        let rows = sql.exec(
            "WITH RECURSIVE chain(id, depth) AS (SELECT ?, 0 UNION ALL SELECT t.previous, c.depth + 1 FROM thread_turns t JOIN chain c ON t.id = c.id WHERE t.previous IS NOT NULL AND c.depth < ?) SELECT t.body, t.previous FROM chain c LEFT JOIN thread_turns t ON t.id = c.id AND t.expires_at > ? ORDER BY c.depth",
            vec![id.into(), (MAX_TURNS as i64).into(), (now_ms() as i64).into()],
        )?;
        let mut list = String::from("[");
        let mut reached_the_first = false;
        for row in rows.raw() {
            let mut columns = row?.into_iter();
            let Some(SqlStorageValue::String(body)) = columns.next() else { return Ok("null".into()) };
            if list.len() > 1 {
                list.push(',');
            }
            list.push_str(&body);
            // The oldest turn read must be the thread's first (not one past the walk's bound).
            reached_the_first = !matches!(columns.next(), Some(SqlStorageValue::String(_)));
        }
        list.push(']');
        Ok(if reached_the_first { list } else { "null".into() })
    }

    /// Keeps a thread's new turn, and the turns before it as long as it is kept.
    fn put_thread_turn(sql: &SqlStorage, turn: &ThreadTurn, body: String) -> Result<()> {
        let expires_at = turn.expires_at_ms as i64;
        sql.exec("DELETE FROM thread_turns WHERE expires_at <= ?", vec![(now_ms() as i64).into()])?;
        sql.exec(
            "INSERT OR REPLACE INTO thread_turns (id, previous, expires_at, body) VALUES (?, ?, ?, ?)",
            vec![turn.id.clone().into(), turn.previous.clone().into(), expires_at.into(), body.into()],
        )?;
        // The turns before it are kept as long as it is: one walk up the chain in SQL
        // (no turn's body read), bounded like the reads.
        sql.exec(
            "WITH RECURSIVE chain(id, depth) AS (SELECT ?, 0 UNION ALL SELECT t.previous, c.depth + 1 FROM thread_turns t JOIN chain c ON t.id = c.id WHERE t.previous IS NOT NULL AND c.depth < ?) UPDATE thread_turns SET expires_at = ? WHERE id IN (SELECT id FROM chain)",
            vec![turn.previous.clone().into(), (MAX_TURNS as i64).into(), expires_at.into()],
        )?;
        Ok(())
    }

    fn read(sql: &SqlStorage, id: &str) -> Result<Option<StoredResponse>> {
        let body = super::durable::first_text(sql.exec(
            "SELECT body FROM responses WHERE id = ? AND expires_at > ?",
            vec![id.into(), (now_ms() as i64).into()],
        )?)?;
        Ok(body.and_then(|body| crate::json_value::from_str(&body).ok()))
    }

    fn chain(sql: &SqlStorage, id: &str) -> Result<Option<Vec<StoredResponse>>> {
        let mut turns = Vec::new();
        let mut next = Some(id.to_string());
        while let Some(id) = next.take() {
            let Some(turn) = Self::read(sql, &id)? else {
                // The newest turn is missing: nothing to continue. An older one expired:
                // continue with what remains.
                return Ok((!turns.is_empty()).then_some(turns));
            };
            next = turn.previous.clone().filter(|_| turns.len() < MAX_TURNS);
            turns.push(turn);
        }
        Ok(Some(turns))
    }
}

impl DurableObject for ResponseStore {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.sql()?;
        let id =
            query_pairs(&req.inner().url()).into_iter().find(|(k, _)| k == "id").map(|(_, v)| v).unwrap_or_default();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/put") => {
                // Stored as it came (the edge serialized it): read only for its id and expiry.
                let body = req.text().await?;
                let Ok(turn) = crate::json_value::from_str::<StoredResponse>(&body) else {
                    return Response::error("bad turn", 400);
                };
                sql.exec("DELETE FROM responses WHERE expires_at <= ?", vec![(now_ms() as i64).into()])?;
                sql.exec(
                    "INSERT OR REPLACE INTO responses (id, expires_at, body) VALUES (?, ?, ?)",
                    vec![turn.id.clone().into(), (turn.expires_at_ms as i64).into(), body.into()],
                )?;
                Response::from_json(&Id { id: turn.id })
            }
            (Method::Get, "/get") => Response::from_json(&Self::read(&sql, &id)?),
            (Method::Get, "/chain") => Response::from_json(&Self::chain(&sql, &id)?.map(|t| stored::conversation(&t))),
            (Method::Post, "/thread/put") => {
                // Stored as it came: read only for its id, chain and expiry.
                let body = req.text().await?;
                let Some(turn) = crate::json_value::from_str(&body).ok().and_then(ThreadTurn::from_json) else {
                    return Response::error("bad turn", 400);
                };
                Self::put_thread_turn(&sql, &turn, body)?;
                Response::from_json(&Id { id: turn.id })
            }
            (Method::Get, "/thread") => Response::ok(Self::thread(&sql, &id)?),
            (Method::Post, "/delete") => {
                let Some(Id { id }) = super::durable::body(&mut req).await else {
                    return Response::error("bad id", 400);
                };
                let existed = Self::read(&sql, &id)?.is_some();
                sql.exec("DELETE FROM responses WHERE id = ?", vec![id.into()])?;
                Response::from_json(&existed)
            }
            _ => Response::error("not found", 404),
        }
    }
}

/// The store could not be reached (a retry may find it).
pub fn unavailable() -> GatewayError {
    GatewayError::new(
        503,
        "server_error",
        "store_unavailable",
        "Stored conversations could not be reached; retry shortly.",
    )
    .with_retry_after(1)
}

/// The key's store, in the key's jurisdiction.
pub fn stub(env: &Env, key: &KeyRecord) -> Option<Stub> {
    objects::stub(env, RESPONSE_STORE, &format!("responses:{}", key.name), key.jurisdiction(), None)
}

/// `Some(None)`: not stored; `None`: the store could not be reached.
pub async fn get(stub: &Stub, id: &str) -> Option<Option<StoredResponse>> {
    objects::call::<(), _>(stub, &format!("/get?id={}", query(id)), None).await
}

pub async fn conversation(stub: &Stub, id: &str) -> Option<Option<Conversation>> {
    objects::call::<(), _>(stub, &format!("/chain?id={}", query(id)), None).await
}

pub async fn put(stub: &Stub, turn: &StoredResponse) -> bool {
    objects::call::<_, Id>(stub, "/put", Some(turn)).await.is_some()
}

/// A thread's turns up to reply `id`, newest first. `Some(None)`: not kept (whole).
pub async fn thread(stub: &Stub, id: &str) -> Option<Option<Vec<ThreadTurn>>> {
    let turns: Option<Vec<serde_json::Value>> =
        objects::call::<(), _>(stub, &format!("/thread?id={}", query(id)), None).await?;
    // A turn that does not read back is a thread not kept whole.
    Some(turns.and_then(|turns| turns.into_iter().map(ThreadTurn::from_json).collect()))
}

pub async fn put_thread_turn(stub: &Stub, turn: &ThreadTurn) -> bool {
    objects::call::<_, Id>(stub, "/thread/put", Some(turn)).await.is_some()
}

pub async fn delete(stub: &Stub, id: &str) -> Option<bool> {
    objects::call(stub, "/delete", Some(&Id { id: id.to_string() })).await
}

/// Response ids are ours (`resp_` and hex), but a client may send anything.
fn query(id: &str) -> String {
    crate::providers::openai::percent_encode(id)
}
