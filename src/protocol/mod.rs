//! Wire formats as Rust types.

pub mod openai;
