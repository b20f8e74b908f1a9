//! Wire formats as Rust types, and the canonical stream's rules.
//!
//! The canonical form is OpenAI Chat Completions (`openai`); `chunk` builds its
//! answers, `stream` watches them on their way to the client, and `anthropic`
//! maps Anthropic's vocabulary to and from it.

pub mod anthropic;
pub mod chunk;
pub mod openai;
pub mod stream;
pub mod tool_calls;

/// Sent upstream on every provider request.
pub const USER_AGENT: &str = concat!("edge-ai-gateway/", env!("CARGO_PKG_VERSION"));
