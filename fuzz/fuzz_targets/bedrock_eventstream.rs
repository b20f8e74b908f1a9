//! The AWS event-stream (binary frame) decoder: any bytes, split anywhere.
#![no_main]
use edge_ai_gateway::providers::bedrock::eventstream::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let mut decoder = Decoder::default();
    let mut messages = Vec::new();
    for chunk in body.chunks(usize::from(split).max(1)) {
        if decoder.feed(chunk, &mut messages).is_err() {
            return;
        }
        for message in messages.drain(..) {
            let _ = message.header(":event-type");
        }
    }
});
