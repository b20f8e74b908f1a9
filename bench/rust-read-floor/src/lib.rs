//! A reading floor: the request's body read whole and sent on in a new request to the
//! upstream in the `UP` var (plus the request's path), the answer read whole and answered in
//! a new response. No parsing, no checks: what any workers-rs Worker pays to see the bytes it
//! relays, through web-sys calls as the gateway makes them.
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::*;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let incoming: &web_sys::Request = req.inner();
    let target = format!("{}{}", env.var("UP")?.to_string(), req.url()?.path());
    let body = JsFuture::from(incoming.array_buffer()?).await?;
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    if let Some(authorization) = incoming.headers().get("authorization")? {
        headers.set("authorization", &authorization)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&js_sys::Uint8Array::new(&body));
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let upstream = JsFuture::from(scope.fetch_with_str_and_init(&target, &init)).await?;
    let upstream: web_sys::Response = upstream.unchecked_into();
    let answer = JsFuture::from(upstream.array_buffer()?).await?;
    // Into wasm memory and out again, as the gateway's answer bytes go.
    let mut bytes = js_sys::Uint8Array::new(&answer).to_vec();
    let answer_headers = web_sys::Headers::new()?;
    answer_headers.set("content-type", "application/json")?;
    let answer_init = web_sys::ResponseInit::new();
    answer_init.set_status(upstream.status());
    answer_init.set_headers(&answer_headers);
    Ok(Response::from(web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut bytes), &answer_init)?))
}
