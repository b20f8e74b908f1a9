//! Inbound APIs other than the canonical OpenAI one.

pub mod anthropic;
