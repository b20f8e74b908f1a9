//! A provider endpoint, typed per kind: what only one kind has (Azure's API
//! version, Bedrock's signing region) lives in its variant, checked when the
//! document is read. The document keeps one flat object per provider.

use crate::limits::Limits;
use serde::{Deserialize, Serialize};

/// A provider kind, with the settings only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI and every provider that speaks its Chat Completions format
    /// (Groq, Mistral, DeepSeek, Together, Fireworks, OpenRouter, vLLM, Ollama, ...).
    Openai,
    /// Azure OpenAI: deployment URLs, `api-version`, `api-key` header.
    AzureOpenai { api_version: String },
    /// Anthropic Messages API.
    Anthropic,
    /// Google AI Studio (Gemini API).
    Gemini,
    /// AWS Bedrock Converse / ConverseStream, SigV4-signed for `aws_region`.
    Bedrock { aws_region: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProviderDoc", into = "ProviderDoc")]
pub struct Provider {
    pub kind: ProviderKind,
    /// API root including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the Worker secret holding this provider's API key (never the key itself).
    pub api_key_secret: Option<String>,
    /// Where this endpoint processes data, e.g. `us`, `eu`, `eu-de`.
    pub region: String,
    /// Durable Object location hint for this endpoint's health object, near the
    /// provider (`wnam`, `enam`, `sam`, `weur`, `eeur`, `apac`, `oc`, `afr`, `me`).
    pub location_hint: Option<String>,
    /// The provider's own capacity for this endpoint (its RPM/TPM quota), enforced
    /// by the gateway so bursts spread across endpoints before the provider says 429.
    pub limits: Limits,
}

impl Provider {
    /// The AWS region a Bedrock endpoint signs for.
    pub fn signing_region(&self) -> Option<&str> {
        match &self.kind {
            ProviderKind::Bedrock { aws_region } => Some(aws_region),
            _ => None,
        }
    }
}

/// The kind's name as the document writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindName {
    #[serde(alias = "openai_compatible")]
    Openai,
    AzureOpenai,
    Anthropic,
    Gemini,
    Bedrock,
}

/// A provider as the document writes it: one flat object, unknown fields refused.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderDoc {
    kind: KindName,
    base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key_secret: Option<String>,
    region: String,
    /// Bedrock only: the AWS region to sign for, when the base_url does not name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aws_region: Option<String>,
    /// Azure OpenAI only (required there): its `api-version` query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    limits: Limits,
}

impl TryFrom<ProviderDoc> for Provider {
    type Error = String;

    fn try_from(doc: ProviderDoc) -> Result<Self, String> {
        let kind = match doc.kind {
            KindName::Openai => ProviderKind::Openai,
            KindName::Anthropic => ProviderKind::Anthropic,
            KindName::Gemini => ProviderKind::Gemini,
            KindName::AzureOpenai => ProviderKind::AzureOpenai {
                api_version: doc
                    .api_version
                    .clone()
                    .filter(|v| !v.is_empty())
                    .ok_or("azure_openai providers need an api_version, e.g. \"2024-10-21\"")?,
            },
            KindName::Bedrock => ProviderKind::Bedrock {
                aws_region: doc
                    .aws_region
                    .clone()
                    .filter(|r| !r.is_empty())
                    .or_else(|| bedrock_region(&doc.base_url).map(str::to_string))
                    .ok_or(
                        "bedrock providers use https://bedrock-runtime.<aws-region>.amazonaws.com (or set aws_region)",
                    )?,
            },
        };
        if doc.api_version.is_some() && doc.kind != KindName::AzureOpenai {
            return Err("api_version applies to azure_openai providers only".into());
        }
        if doc.aws_region.is_some() && doc.kind != KindName::Bedrock {
            return Err("aws_region applies to bedrock providers only".into());
        }
        Ok(Provider {
            kind,
            base_url: doc.base_url,
            api_key_secret: doc.api_key_secret,
            region: doc.region,
            location_hint: doc.location_hint,
            limits: doc.limits,
        })
    }
}

impl From<Provider> for ProviderDoc {
    fn from(provider: Provider) -> Self {
        let (kind, api_version, aws_region) = match provider.kind {
            ProviderKind::Openai => (KindName::Openai, None, None),
            ProviderKind::AzureOpenai { api_version } => (KindName::AzureOpenai, Some(api_version), None),
            ProviderKind::Anthropic => (KindName::Anthropic, None, None),
            ProviderKind::Gemini => (KindName::Gemini, None, None),
            ProviderKind::Bedrock { aws_region } => (KindName::Bedrock, None, Some(aws_region)),
        };
        ProviderDoc {
            kind,
            base_url: provider.base_url,
            api_key_secret: provider.api_key_secret,
            region: provider.region,
            aws_region,
            api_version,
            location_hint: provider.location_hint,
            limits: provider.limits,
        }
    }
}

/// The AWS region of a Bedrock runtime URL (`https://bedrock-runtime.eu-central-1.amazonaws.com`).
pub fn bedrock_region(base_url: &str) -> Option<&str> {
    let host = base_url.strip_prefix("https://")?.split('/').next()?;
    let region = host.strip_prefix("bedrock-runtime.")?.strip_suffix(".amazonaws.com")?;
    (!region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        .then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(doc: serde_json::Value) -> Result<Provider, String> {
        serde_json::from_value(doc).map_err(|e| e.to_string())
    }

    #[test]
    fn each_kind_reads_its_own_settings() {
        let azure = read(
            serde_json::json!({"kind": "azure_openai", "base_url": "https://r.openai.azure.com", "region": "eu", "api_version": "2024-10-21"}),
        );
        assert_eq!(azure.unwrap().kind, ProviderKind::AzureOpenai { api_version: "2024-10-21".into() });
        let bedrock = read(
            serde_json::json!({"kind": "bedrock", "base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com", "region": "eu"}),
        );
        assert_eq!(bedrock.unwrap().signing_region(), Some("eu-central-1"), "from the URL");
        let compatible =
            read(serde_json::json!({"kind": "openai_compatible", "base_url": "https://x/v1", "region": "us"}));
        assert_eq!(compatible.unwrap().kind, ProviderKind::Openai);
    }

    #[test]
    fn a_kind_missing_or_given_anothers_settings_is_refused() {
        let err =
            read(serde_json::json!({"kind": "azure_openai", "base_url": "https://r", "region": "eu"})).unwrap_err();
        assert!(err.contains("api_version"), "{err}");
        let err =
            read(serde_json::json!({"kind": "bedrock", "base_url": "http://127.0.0.1:1", "region": "eu"})).unwrap_err();
        assert!(err.contains("aws_region"), "{err}");
        let err =
            read(serde_json::json!({"kind": "openai", "base_url": "https://x", "region": "us", "api_version": "1"}))
                .unwrap_err();
        assert!(err.contains("azure_openai providers only"), "{err}");
        assert!(
            read(serde_json::json!({"kind": "openai", "base_url": "https://x", "region": "us", "typo": 1})).is_err()
        );
    }

    #[test]
    fn the_document_form_round_trips() {
        let doc = serde_json::json!({"kind": "bedrock", "base_url": "https://b", "region": "eu", "aws_region": "eu-west-1", "limits": {"requests_per_minute": 5}});
        let provider = read(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&provider).unwrap(), doc);
    }
}
