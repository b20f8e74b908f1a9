//! `POST /v1/route/explain`: the plan for a chat request, without sending it.

use super::js_headers::ClientHeaders;
use super::plan::{plan_route, read_routing};
use super::{authenticate, body, config_store, health_cache, respond};
use crate::config::{Config, KeyRecord};
use crate::error::GatewayError;
use crate::protocol::openai::ChatRequest;
use std::rc::Rc;
use worker::{Context, Env, Request, Response};

pub async fn explain(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, GatewayError> {
    let config: Rc<Config> = config_store::current(env, ctx).await?;
    // The key itself, or the admin: as the key named in `x-gateway-explain-as`, or as
    // an unrestricted key when none is named.
    let admin_view: KeyRecord;
    let headers = ClientHeaders::of(&req);
    let key = match authenticate(&headers, &config) {
        Ok(key) => key,
        Err(error) => {
            if super::admin::authorize(&req, env).is_err() {
                return Err(error);
            }
            let named = req.headers().get("x-gateway-explain-as").ok().flatten();
            admin_view = match named {
                Some(name) => config.keys.values().find(|k| k.name == name).cloned().ok_or_else(|| {
                    GatewayError::new(
                        404,
                        "invalid_request_error",
                        "key_not_found",
                        format!("No key is named {name:?}."),
                    )
                })?,
                None => KeyRecord {
                    name: "admin".into(),
                    models: vec!["*".into()],
                    regions: Vec::new(),
                    limits: Default::default(),
                    model_limits: Default::default(),
                    ..KeyRecord::default()
                },
            };
            &admin_view
        }
    };
    let body = body::read_limited(&mut req, config.settings.max_body_bytes, &headers).await?;
    let mut request = ChatRequest::parse(&body)?;
    let routing = read_routing(&req, &headers, &config, key, &mut request, None)?;
    let health = health_cache::snapshot();
    let plan = plan_route(&headers, &config, key, &request, &routing, &health)?;
    let mut answer = serde_json::to_value(&plan).map_err(|e| GatewayError::internal(e.to_string()))?;
    answer["location"] = serde_json::to_value(super::location::client_location(&req)).unwrap_or_default();
    answer["allowed_regions"] = serde_json::to_value(&routing.allowed).unwrap_or_default();
    if plan.candidates.is_empty() {
        answer["error"] = crate::json_value::from_str(&plan.no_candidates_error().to_json()).unwrap_or_default();
    }
    respond::json(200, &answer)
}
