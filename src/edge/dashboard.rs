//! `GET /admin/`: the usage dashboard, one self-contained page (uPlot from npm,
//! bundled by `scripts/build-dashboard.mjs` at build time; no CDN). It opens with
//! the admin token as a bearer or in the `gw_admin` cookie its sign-in page sets;
//! the page then calls the admin API with the token as a bearer. The page is a string
//! in the Worker's JS (`dashboard/dist/page.js`, generated with it), not in the wasm.

use super::{admin, respond};
use crate::auth;
use crate::error::GatewayError;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Env, Headers, Request, Response};

#[wasm_bindgen(module = "/dashboard/dist/page.js")]
extern "C" {
    /// The dashboard page with these headers, its body made in JS from the bundled string.
    #[wasm_bindgen(js_name = dashboardResponse)]
    fn dashboard_response(status: u16, headers: &web_sys::Headers) -> web_sys::Response;
}

const SIGN_IN: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Edge AI gateway: sign in</title>
<style>body{font:14px system-ui,sans-serif;display:grid;place-items:center;height:90vh;background:#f5f6f8}
form{background:#fff;padding:24px;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.1);display:grid;gap:10px}
input,button{font:inherit;padding:6px 8px}</style></head><body>
<form id="sign-in"><b>Edge AI gateway dashboard</b><label for="token">Admin token</label>
<input id="token" type="password" autocomplete="off" required><button type="submit">Open the dashboard</button></form>
<script>document.getElementById("sign-in").addEventListener("submit",function(e){e.preventDefault();
document.cookie="gw_admin="+encodeURIComponent(document.getElementById("token").value)+"; Path=/admin; SameSite=Strict";
location.reload();});</script></body></html>"#;

/// The `gw_admin` cookie's value, if the request carries one.
fn cookie_token(req: &Request) -> Option<String> {
    let cookies = req.headers().get("cookie").ok().flatten()?;
    let value = cookies.split(';').find_map(|c| c.trim().strip_prefix("gw_admin="))?;
    Some(crate::usage::query::percent_decode(value))
}

fn html_headers() -> Headers {
    let headers = Headers::new();
    let _ = headers.set("content-type", "text/html; charset=utf-8");
    let _ = headers.set("cache-control", "no-store");
    let _ = headers.set(
        "content-security-policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'",
    );
    headers
}

pub fn handle(req: &Request, env: &Env) -> Result<Response, GatewayError> {
    let by_bearer = admin::authorize(req, env);
    if let Err(error) = &by_bearer {
        if error.status == 403 {
            return Err(error.clone()); // the admin API is disabled
        }
    }
    let expected = super::secret(env, "ADMIN_TOKEN").unwrap_or_default();
    let by_cookie = cookie_token(req).is_some_and(|t| !expected.is_empty() && auth::secrets_equal(&t, &expected));
    if by_bearer.is_ok() || by_cookie {
        Ok(dashboard_response(200, &html_headers().0).into())
    } else {
        Ok(respond::with_headers(401, SIGN_IN.as_bytes().to_vec(), html_headers()))
    }
}
