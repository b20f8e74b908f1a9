//! An AI gateway that runs at the edge: one OpenAI-compatible API in front of many
//! model providers, as a Rust-to-wasm Cloudflare Worker.
//!
//! Everything outside `edge` is pure (no clock, randomness or I/O) and tested on
//! the host with `cargo test`; `edge` is the thin layer over the Workers runtime.

pub mod auth;
pub mod auth_throttle;
pub mod config;
pub mod cors;
pub mod dialects;
pub mod error;
pub mod gateway;
pub mod health;
pub mod hex;
pub mod join;
pub mod json_path;
pub mod json_value;
pub mod keys;
pub mod limits;
pub mod order;
pub mod pipeline;
pub mod protocol;
pub mod providers;
pub mod relay;
pub mod routing;
pub mod sse;
pub mod tagged;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod edge;
