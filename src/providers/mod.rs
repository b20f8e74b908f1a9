//! One adapter per provider kind: build the upstream request, read the answer.
//! No I/O here; `edge/` sends what these build.

pub mod openai;

/// A fully built upstream HTTP request (always POST).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    pub stream: bool,
}
