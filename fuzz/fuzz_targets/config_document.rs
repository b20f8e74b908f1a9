//! The config validator (production and development environments), and the
//! diff and limiter moves between any two valid documents.
#![no_main]
use edge_ai_gateway::config::{diff, Config, Environment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::from_json(text);
    let Ok(config) = Config::from_json_in(text, &Environment::DEVELOPMENT) else { return };
    let _ = config.to_json_pretty();
    let reference = Config::from_json_in(include_str!("../../config/default.json"), &Environment::DEVELOPMENT)
        .expect("the default config is valid");
    let _ = diff::diff(&reference, &config);
    let _ = diff::limiter_moves(&reference, &config);
    let _ = diff::limiter_moves(&config, &reference);
});
