//! Ordering candidates: weighted shuffles, cheapest by estimated cost, fastest by
//! power of two choices over EWMA latency, and session affinity by rendezvous
//! hashing. Randomness comes in as a seed; nothing here draws its own.

/// SplitMix64: tiny, fast, and good enough for load balancing (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: no modulo bias worth caring about for small n.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A weighted random permutation of `weights.len()` items (weight 0 goes last).
pub fn weighted_order(weights: &[u64], rng: &mut Rng) -> Vec<usize> {
    let mut remaining: Vec<usize> = (0..weights.len()).collect();
    let mut order = Vec::with_capacity(weights.len());
    while !remaining.is_empty() {
        let total: u64 = remaining.iter().map(|&i| weights.get(i).copied().unwrap_or(0)).sum();
        let pick = if total == 0 {
            0
        } else {
            let mut draw = rng.below(total);
            remaining
                .iter()
                .position(|&i| {
                    let w = weights.get(i).copied().unwrap_or(0);
                    if draw < w {
                        true
                    } else {
                        draw -= w;
                        false
                    }
                })
                .unwrap_or(0)
        };
        order.push(remaining.remove(pick));
    }
    order
}

/// Power of two choices: two distinct random candidates, the lower score wins
/// first place; the rest follow by ascending score. Unknown scores count as 0 so
/// new endpoints get measured.
pub fn p2c_order(scores: &[Option<f64>], rng: &mut Rng) -> Vec<usize> {
    let score = |i: usize| scores.get(i).copied().flatten().unwrap_or(0.0);
    let mut rest = crate::order::stable_indexes(scores.len(), &mut |a, b| score(a).total_cmp(&score(b)));
    if scores.len() < 2 {
        return rest;
    }
    let n = scores.len() as u64;
    let a = rng.below(n) as usize;
    let b = (a + 1 + rng.below(n - 1) as usize) % scores.len();
    let winner = if score(b) < score(a) { b } else { a };
    rest.retain(|&i| i != winner);
    let mut order = vec![winner];
    order.extend(rest);
    order
}

/// Highest tool-call accuracy first (stable: ties keep the configured order). An
/// unmeasured endpoint counts as accurate, so it gets measured.
pub fn by_accuracy(accuracies: &[Option<f64>]) -> Vec<usize> {
    let score = |i: usize| accuracies.get(i).copied().flatten().unwrap_or(1.0);
    crate::order::stable_indexes(accuracies.len(), &mut |a, b| score(b).total_cmp(&score(a)))
}

/// Why a candidate sits where `tool_accuracy` put it (explain output).
pub fn accuracy_reason(tools: bool, accuracy: Option<f64>, position: usize) -> String {
    match (tools, accuracy) {
        (false, _) => format!("priority {} (no tools: tool_accuracy keeps the configured order)", position + 1),
        (true, Some(a)) => format!("tool-call accuracy {:.0}%", a * 100.0),
        (true, None) => "tool-call accuracy not measured yet".into(),
    }
}

/// FNV-1a, for rendezvous hashing (stable across isolates and deploys).
pub fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The candidate a session sticks to: the highest rendezvous hash. Every isolate
/// picks the same one, and it only changes when that candidate leaves the set.
pub fn rendezvous(session: &str, candidate_ids: &[String]) -> Option<usize> {
    candidate_ids.iter().enumerate().max_by_key(|(_, id)| fnv1a(&[session, id])).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_accuracy_puts_the_most_accurate_first_and_keeps_ties_in_order() {
        assert_eq!(by_accuracy(&[Some(0.5), Some(0.9), None, Some(0.9)]), vec![2, 1, 3, 0]);
        assert_eq!(by_accuracy(&[]), Vec::<usize>::new());
        assert_eq!(accuracy_reason(true, Some(0.75), 0), "tool-call accuracy 75%");
        assert!(accuracy_reason(false, Some(0.75), 1).starts_with("priority 2"));
    }

    #[test]
    fn weighted_order_follows_weights_over_many_draws() {
        let mut rng = Rng::new(42);
        let weights = [3, 1, 0];
        let mut first = [0u32; 3];
        for _ in 0..10_000 {
            let order = weighted_order(&weights, &mut rng);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "weight 0 always last");
            first[order[0]] += 1;
        }
        // Expect 75% / 25% / 0%.
        assert!((7_200..=7_800).contains(&first[0]), "{first:?}");
        assert!((2_200..=2_800).contains(&first[1]), "{first:?}");
        assert_eq!(first[2], 0);
    }

    #[test]
    fn p2c_prefers_the_faster_endpoint_but_is_a_permutation() {
        let mut rng = Rng::new(7);
        let scores = [Some(400.0), Some(50.0), Some(200.0)];
        let mut first = [0u32; 3];
        for _ in 0..9_000 {
            let order = p2c_order(&scores, &mut rng);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2]);
            first[order[0]] += 1;
        }
        // The slowest only wins when paired with... nothing: it always loses a pair.
        assert_eq!(first[0], 0, "{first:?}");
        // The fastest wins every pair it is drawn in (2 of 3 pairs).
        assert!((5_700..=6_300).contains(&first[1]), "{first:?}");
        assert!((2_700..=3_300).contains(&first[2]), "{first:?}");
    }

    #[test]
    fn p2c_two_candidates_always_picks_the_faster() {
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            assert_eq!(p2c_order(&[Some(90.0), Some(10.0)], &mut rng), vec![1, 0]);
        }
        assert_eq!(p2c_order(&[None], &mut rng), vec![0]);
        assert_eq!(p2c_order(&[], &mut rng), Vec::<usize>::new());
    }

    #[test]
    fn rendezvous_is_stable_and_moves_only_when_its_choice_leaves() {
        let ids: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let chosen = rendezvous("session-1", &ids).unwrap();
        assert_eq!(rendezvous("session-1", &ids), Some(chosen));
        // Removing another candidate keeps the choice.
        let other = (chosen + 1) % 4;
        let fewer: Vec<String> = ids.iter().enumerate().filter(|(i, _)| *i != other).map(|(_, s)| s.clone()).collect();
        assert_eq!(fewer[rendezvous("session-1", &fewer).unwrap()], ids[chosen]);
        // Sessions spread over candidates.
        let mut seen = std::collections::BTreeSet::new();
        for s in 0..64 {
            seen.insert(rendezvous(&format!("s{s}"), &ids).unwrap());
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn rng_is_deterministic_per_seed() {
        let a: Vec<u64> = (0..4).scan(Rng::new(9), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(Rng::new(9), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(3);
        assert!((0..1000).all(|_| r.below(5) < 5));
    }
}
