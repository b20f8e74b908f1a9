//! One problem in a config document: what validation and the per-part checks
//! (keys' attribution, limits) report.

use std::fmt;

/// One problem in a config document, located by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigIssue {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{pointer}: {}", self.message)
    }
}
