//! Reading what routing needs from the HTTP request (location, residency
//! headers, session, affinity), once, and asking the pure router for a plan.

use super::js_headers::ClientHeaders;
use super::{affinity, location, random_u64};
use crate::config::{Config, KeyRecord};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use crate::routing::residency::{self, AllowedRegions};
use crate::routing::{self, needs, preferences, Plan, RouteInput};
use serde_json::Value;
use worker::Request;

const MAX_SESSION_ID: usize = 256;

/// Everything routing needs from the HTTP request, read once.
pub struct Routing {
    pub allowed: AllowedRegions,
    pub preferences: preferences::Preferences,
    pub session: Option<String>,
    /// The key of this conversation (from its prefix), for previous-turn affinity.
    pub conversation: Option<String>,
}

/// `held_to`: the regions a continued stored conversation is held to (its data's jurisdiction).
pub fn read_routing(
    req: &Request,
    headers: &ClientHeaders,
    config: &Config,
    key: &KeyRecord,
    request: &mut ChatRequest,
    held_to: Option<&[String]>,
) -> Result<Routing, GatewayError> {
    let header = |name: &str| headers.get(name);
    let location = location::for_residency(req, config);
    let narrowing = header("x-gateway-region").map(|h| residency::parse_narrowing(&h)).transpose()?;
    let mut allowed = residency::allowed(config, key, narrowing, &location)?;
    let preferences = preferences::take(request)?;
    let session = header("x-gateway-session").filter(|s| !s.is_empty() && s.len() <= MAX_SESSION_ID);
    let conversation = routing::session_from_prefix(&key.name, request);
    if let Some(regions) = held_to {
        allowed = allowed.within_conversation(regions)?;
    }
    Ok(Routing { allowed, preferences, session, conversation })
}

pub fn plan_route<'c>(
    headers: &ClientHeaders,
    config: &'c Config,
    key: &KeyRecord,
    request: &ChatRequest,
    routing: &Routing,
    health: &routing::HealthSnapshot,
) -> Result<Plan<'c>, GatewayError> {
    let header = |name: &str| headers.get(name);
    // Only a continuing conversation sticks: a first turn is the strategy's to place.
    let continues = request.messages.iter().any(|m| m.role == "assistant");
    let previous = routing.conversation.as_deref().filter(|_| continues).and_then(affinity::previous);
    let input = RouteInput {
        config,
        key,
        model: &request.model,
        needs: needs::needs(request),
        preferences: &routing.preferences,
        header: &header,
        metadata: request.extra.get("metadata").and_then(Value::as_object),
        allowed: &routing.allowed,
        health,
        session: routing.session.as_deref(),
        previous: previous.as_deref(),
        seed: random_u64(),
    };
    routing::plan(&input)
}
