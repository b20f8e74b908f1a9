//! The SSE decoder: any bytes, split anywhere, with a small line limit.
#![no_main]
use edge_ai_gateway::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let mut decoder = SseDecoder::new(4096);
    let mut events = Vec::new();
    let step = usize::from(split).max(1);
    for chunk in body.chunks(step) {
        if decoder.feed(chunk, &mut events).is_err() {
            return;
        }
        events.clear();
    }
    decoder.finish(&mut events);
});
