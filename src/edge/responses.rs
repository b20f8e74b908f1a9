//! `/v1/responses`: the Responses dialect served through the chat core, with
//! stored conversations in the key's `ResponseStore` (its jurisdiction):
//! `previous_response_id` continues one on any provider, `store: false` keeps
//! nothing; `GET`/`DELETE /v1/responses/{id}` and `…/input_items`; and
//! `POST /v1/responses/input_tokens`, the count.

use super::chat::{self, Stateful};
use super::count_tokens::Counted;
use super::stream::{Keep, Kept};
use super::{authenticate, body, config_store, respond, response_store, RequestContext};
use crate::config::KeyRecord;
use crate::dialects::openai_responses::stored::{self, StoredResponse};
use crate::dialects::openai_responses::ResponsesRequest;
use crate::error::GatewayError;
use crate::json;
use serde_json::Value;
use worker::{Context, Env, Method, Request, Response};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

pub async fn create(mut req: Request, env: &Env, ctx: &Context, rc: &RequestContext) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let mut request = ResponsesRequest::parse(&body)?;
    let (previous, conversation) = continued(env, key, &mut request).await?;
    let size = stored::grown_size(conversation.bytes, body.len() as u64, config.settings.max_conversation_bytes)?;
    let call = request.to_call(&conversation.items)?;
    let keep = request.store().then(|| {
        let turn = StoredResponse {
            // The id is the answer's own (set when it is kept): one derivation, the dialect's.
            id: String::new(),
            previous,
            created_at_ms: rc.started_ms,
            expires_at_ms: rc.started_ms + config.settings.response_retention_days * DAY_MS,
            input_items: request.items.clone(),
            response: Value::Null,
            include_encrypted: crate::dialects::openai_responses::output::includes_encrypted_reasoning(&request.body),
            regions: conversation.regions.clone(),
            conversation_bytes: size,
        };
        keeper(env.clone(), key.clone(), turn)
    });
    let stateful = Stateful { conversation_regions: conversation.regions, keep };
    chat::serve(&req, env, ctx, rc, &config, key, call, stateful).await
}

/// `POST /v1/responses/input_tokens`: the input tokens the same body would send to
/// the model (a stored conversation it continues included, and held to its regions),
/// counted by the first target whose provider counts; nothing is stored.
pub async fn input_tokens(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rc: &RequestContext,
) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&rc.headers, &config)?;
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &rc.headers).await?;
    let mut request = ResponsesRequest::parse(&body)?;
    drop(body);
    let (_, conversation) = continued(env, key, &mut request).await?;
    let call = request.to_call(&conversation.items)?;
    let dialect = &crate::dialects::OpenAiResponses;
    let counted = Counted::of(&req, env, ctx, rc, &config, key, dialect, call, conversation.regions).await?;
    counted.answer(|input_tokens| json!({"object": "response.input_tokens", "input_tokens": input_tokens}))
}

/// The stored conversation a request continues (`previous_response_id`, and items
/// named by reference, resolved in place), and the previous response's id.
async fn continued(
    env: &Env,
    key: &KeyRecord,
    request: &mut ResponsesRequest,
) -> Result<(Option<String>, stored::Conversation), GatewayError> {
    let (previous, mut conversation) = match request.previous_response_id() {
        Some(id) => {
            let store = response_store::stub(env, key).ok_or_else(response_store::unavailable)?;
            match response_store::conversation(&store, id).await {
                Some(Some(conversation)) => (Some(id.to_string()), conversation),
                Some(None) => return Err(stored::not_found(id, Some("previous_response_id"))),
                None => return Err(response_store::unavailable()),
            }
        }
        None => (None, Default::default()),
    };
    // Items named by reference (as the AI SDK sends a stored response's items) are read
    // from the key's store, and hold this request to their regions as a conversation does.
    let referenced = request.referenced_responses()?;
    if !referenced.is_empty() {
        let store = response_store::stub(env, key).ok_or_else(response_store::unavailable)?;
        let mut turns = Vec::new();
        for id in &referenced {
            match response_store::get(&store, id).await {
                Some(Some(turn)) => turns.push(turn),
                Some(None) => {}
                None => return Err(response_store::unavailable()),
            }
        }
        request.resolve_references(&turns)?;
        let sets = std::iter::once(&conversation.regions).chain(turns.iter().map(|t| &t.regions));
        conversation.regions = stored::held_regions(sets);
    }
    Ok((previous, conversation))
}

/// Stores a completed turn in the key's store.
fn keeper(env: Env, key: crate::config::KeyRecord, mut turn: StoredResponse) -> Keep {
    Box::new(move |Kept { answer, regions }| {
        Box::pin(async move {
            let Some(id) = answer.get("id").and_then(serde_json::Value::as_str) else {
                super::log::warn("response_not_stored", "the answer has no id");
                return;
            };
            turn.id = id.to_string();
            turn.conversation_bytes += answer.get("output").map_or(0, |o| o.to_string().len() as u64);
            turn.response = answer;
            turn.regions = turn.regions.take().or(regions);
            let stored = match response_store::stub(&env, &key) {
                Some(store) => response_store::put(&store, &turn).await,
                None => false,
            };
            if !stored {
                super::log::warn("response_not_stored", &turn.id);
            }
        })
    })
}

/// `GET` or `DELETE /v1/responses/{id}`, and `GET /v1/responses/{id}/input_items`.
pub async fn by_id(req: Request, env: &Env, ctx: &Context, path: &str) -> Result<Response, GatewayError> {
    let config = config_store::current(env, ctx).await?;
    let key = authenticate(&super::js_headers::ClientHeaders::of(&req), &config)?;
    let rest = path.trim_start_matches("/v1/responses/");
    let (id, input_items) = match rest.strip_suffix("/input_items") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let method = req.method();
    let allowed = if input_items { "GET" } else { "GET or DELETE" };
    if id.is_empty() || id.contains('/') {
        return Err(GatewayError::route_not_found(method.as_ref(), path));
    }
    let store = response_store::stub(env, key).ok_or_else(response_store::unavailable)?;
    match (method, input_items) {
        (Method::Get, false) => {
            let turn = response_store::get(&store, id).await.ok_or_else(response_store::unavailable)?;
            let turn = turn.ok_or_else(|| stored::not_found(id, None))?;
            respond::json(200, &turn.client_view())
        }
        (Method::Delete, false) => {
            match response_store::delete(&store, id).await.ok_or_else(response_store::unavailable)? {
                true => respond::json(200, &json!({"id": id, "object": "response", "deleted": true})),
                false => Err(stored::not_found(id, None)),
            }
        }
        (Method::Get, true) => {
            let turn = response_store::get(&store, id).await.ok_or_else(response_store::unavailable)?;
            let turn = turn.ok_or_else(|| stored::not_found(id, None))?;
            let mut items = match &turn.previous {
                Some(previous) => {
                    response_store::conversation(&store, previous).await.flatten().unwrap_or_default().items
                }
                None => Vec::new(),
            };
            items.extend(turn.input_items.iter().cloned());
            // Newest first, as OpenAI lists them by default.
            items.reverse();
            let id_of = |item: Option<&Value>| item.and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
            let list = json!({"object": "list", "first_id": id_of(items.first()), "last_id": id_of(items.last()),
                              "has_more": false, "data": items});
            respond::json(200, &list)
        }
        (m, _) => Err(GatewayError::method_not_allowed(m.as_ref(), path, allowed)),
    }
}
