//! Durable Object classes. Their bindings and migrations are part of the
//! deployment shape from the start; the reliability work fills in their logic.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

fn describe(class: &str, state: &State) -> Result<Response> {
    Response::from_json(&serde_json::json!({
        "class": class,
        "id": state.id().to_string(),
        "ready": true,
    }))
}

/// One object per limit key: exact request and token limits.
#[durable_object]
pub struct RateLimiter {
    state: State,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        describe("RateLimiter", &self.state)
    }
}

/// One object per provider endpoint: circuit breaker and latency statistics.
#[durable_object]
pub struct ProviderHealth {
    state: State,
}

impl DurableObject for ProviderHealth {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, _req: Request) -> Result<Response> {
        describe("ProviderHealth", &self.state)
    }
}
