//! An empty pass-through: the request's method, headers and body stream go to the
//! upstream in the `UP` var (plus the request's path), and the upstream's response
//! comes back as it is. What any workers-rs Worker pays before doing anything.
use worker::*;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let target = format!("{}{}", env.var("UP")?.to_string(), url.path());
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(req.headers().clone());
    if let Some(body) = req.inner().body() {
        init.with_body(Some(body.into()));
    }
    Fetch::Request(Request::new_with_init(&target, &init)?).send().await
}
