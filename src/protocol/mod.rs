//! Wire formats as Rust types, and the canonical stream's rules.
//!
//! The canonical form is OpenAI Chat Completions (`openai`); `chunk` builds its
//! answers, `stream` watches them on their way to the client, `assemble` makes a
//! stream one whole answer again, and `anthropic`
//! maps Anthropic's vocabulary to and from it.

pub mod anthropic;
pub mod assemble;
pub mod chunk;
pub mod openai;
pub mod stream;
pub mod tool_calls;

/// Sent upstream on every provider request.
pub const USER_AGENT: &str = concat!("edge-ai-gateway/", env!("CARGO_PKG_VERSION"));

/// Whether a request's `Content-Type` may carry a JSON body: absent, JSON
/// (`application/json`, `…+json`), or `text/plain` (what `fetch` sends for a
/// string body). Forms and anything else are refused with a 415.
pub fn accepts_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else { return true };
    let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media.is_empty() || media == "application/json" || media.ends_with("+json") || media == "text/plain"
}

#[cfg(test)]
mod content_type_tests {
    #[test]
    fn json_bodies_only() {
        for ok in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some("text/plain;charset=UTF-8"),
        ] {
            assert!(super::accepts_content_type(ok), "{ok:?}");
        }
        for refused in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"] {
            assert!(!super::accepts_content_type(Some(refused)), "{refused}");
        }
    }
}
