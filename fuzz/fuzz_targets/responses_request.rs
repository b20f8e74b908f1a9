//! The Responses dialect: parse, then the canonical call, alone and continuing
//! a stored conversation (its own items replayed as the previous turn).
#![no_main]
use edge_ai_gateway::dialects::openai_responses::ResponsesRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ResponsesRequest::parse(data) else { return };
    let _ = request.to_call(&[]);
    let previous = request.items.clone();
    let _ = request.to_call(&previous);
});
