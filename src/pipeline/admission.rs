//! What a request asks the limiters for before it runs: tokens and money.

use crate::routing::Plan;

/// Tokens reserved at admission: the prompt estimate plus the output the request may produce.
pub fn estimated_tokens(plan: &Plan<'_>) -> u64 {
    plan.needs.estimated_total_tokens()
}

/// Money reserved at admission, in micro-dollars: the most expensive candidate
/// the plan may try (failover can land on any of them); the real cost replaces it.
pub fn estimated_cost_micro_usd(plan: &Plan<'_>) -> u64 {
    let prompt = plan.needs.prompt_tokens;
    let output = plan.needs.estimated_output_tokens();
    plan.candidates.iter().filter_map(|c| c.price).map(|price| price.cost_micro_usd(prompt, output)).max().unwrap_or(0)
}
