//! The embeddings operation: one attempt at one candidate, through the provider
//! contract. Kinds without embeddings are unservable (another target may serve).

use super::outcome::{failure_of, learn_quota};
use super::{Operation, Ports, Reply, Target};
use crate::error::GatewayError;
use crate::protocol::openai::EmbeddingsRequest;
use crate::providers::{self, AttemptFailure};

pub struct EmbeddingsAnswer {
    pub body: Vec<u8>,
    /// `usage.total_tokens` as the provider reported it.
    pub tokens: Option<u64>,
}

pub struct EmbeddingsAttempt<'a> {
    pub request: &'a EmbeddingsRequest,
    pub request_id: &'a str,
    /// The longest wait for a whole body once the first byte came.
    pub idle_ms: u64,
}

impl<P: Ports> Operation<P> for EmbeddingsAttempt<'_> {
    type Answer = EmbeddingsAnswer;

    async fn attempt(&mut self, ports: &P, target: &Target<'_, '_>) -> Result<EmbeddingsAnswer, AttemptFailure> {
        let candidate = target.candidate;
        let adapter = providers::adapter(&candidate.provider.kind);
        let ctx = target.context(ports.now_ms(), self.request_id);
        let request = adapter
            .embeddings_request(&ctx, self.request)
            .unwrap_or_else(|| {
                Err(GatewayError::invalid_request(
                    "unsupported_model",
                    format!("Model `{}` has no target that serves embeddings.", self.request.model),
                )
                .with_param("model"))
            })
            .map_err(AttemptFailure::Unservable)?;
        let mut reply = ports.send(&request, adapter.answer_headers(), target.first_byte_ms).await?;
        let quota = learn_quota(ports, candidate.provider_id, adapter, &reply, ports.now_ms());
        if !(200..300).contains(&reply.status()) {
            return Err(failure_of(adapter, &mut reply, &quota, target.first_byte_ms.min(5_000)).await);
        }
        let raw = reply.body(self.idle_ms.max(target.first_byte_ms)).await?;
        let body = adapter.embeddings_response(&ctx, self.request, raw)?;
        let tokens = total_tokens(&body);
        Ok(EmbeddingsAnswer { body, tokens })
    }
}

/// `usage.total_tokens` of an embeddings answer (the vectors are skipped, not kept).
fn total_tokens(answer: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Usage {
        total_tokens: Option<u64>,
        prompt_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        usage: Option<Usage>,
    }
    let usage = serde_json::from_slice::<Answer>(answer).ok()?.usage?;
    usage.total_tokens.or(usage.prompt_tokens)
}
