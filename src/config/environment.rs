//! What the deployment decides rather than the document: Worker vars, read by
//! the edge and passed to validation.

/// What the deployment (not the document) decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Environment {
    /// `ALLOW_HTTP_PROVIDERS = "true"`: set by `scripts/dev` and the tests, never in
    /// production. Without it `http://` provider URLs are refused whatever the document says.
    pub allow_http_providers: bool,
}

impl Environment {
    /// Local development and tests: mock providers on `http://127.0.0.1`.
    pub const DEVELOPMENT: Environment = Environment { allow_http_providers: true };
}
