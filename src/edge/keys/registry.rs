//! The `KeyRegistry` Durable Object: the authoritative state of keys made through
//! the admin API (one object). Loads the pure `keys::Registry`, applies one
//! operation, persists, answers. Errors come back in the answer, as 200s.

use crate::edge::now_ms;
use crate::keys::{Op, Registry};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

const STATE_KEY: &str = "registry";

/// What `/apply` answers: the registry after the operation, or why it was refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct Applied {
    pub registry: Registry,
    #[serde(default)]
    pub error: Option<(u16, String, String)>,
}

// Only the entry points it has: each one exported is a future and its glue in the wasm.
#[durable_object(fetch)]
pub struct KeyRegistry {
    state: State,
    registry: RefCell<Option<Registry>>,
}

impl DurableObject for KeyRegistry {
    fn new(state: State, _env: Env) -> Self {
        Self { state, registry: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if self.registry.borrow().is_none() {
            let stored: Option<String> = storage.get(STATE_KEY).await?;
            let loaded = stored.and_then(|text| crate::json_value::from_str(&text).ok()).unwrap_or_default();
            self.registry.borrow_mut().get_or_insert(loaded);
        }
        let current = self.registry.borrow().clone().unwrap_or_default();
        if req.method() != Method::Post {
            return Response::from_json(&current);
        }
        let Some(op) = crate::edge::durable::body::<Op>(&mut req).await else {
            return Response::error("bad operation", 400);
        };
        let mut next = current.clone();
        let answer = match next.apply(op, now_ms()) {
            Ok(()) => {
                let text = serde_json::to_string(&next).map_err(|e| worker::Error::RustError(e.to_string()))?;
                storage.put(STATE_KEY, text).await?;
                *self.registry.borrow_mut() = Some(next.clone());
                Applied { registry: next, error: None }
            }
            Err(e) => Applied { registry: current, error: Some((e.status, e.code.into_owned(), e.message)) },
        };
        Response::from_json(&answer)
    }
}
