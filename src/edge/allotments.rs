//! The allotments this isolate holds (see `limits::allotment`), per limiter
//! object and set of scopes. Only data lives here; no I/O object crosses requests.

use crate::limits::allotment::Held;
use crate::limits::Scoped;
use std::cell::RefCell;
use std::collections::HashMap;

/// One object's allotments, by the scopes they were granted for.
type ByScopes = Vec<(Vec<Scoped>, Held)>;

thread_local! {
    static HELD: RefCell<HashMap<String, ByScopes>> = RefCell::new(HashMap::new());
}

/// Beyond this many objects, those holding nothing are forgotten (an isolate that
/// saw many keys does not keep a counter for each).
const MAX_OBJECTS: usize = 1_024;

/// Runs `f` on what this isolate holds for `object` with these scopes.
pub fn with<R>(object: &str, scopes: &[Scoped], f: impl FnOnce(&mut Held) -> R) -> R {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if !held.contains_key(object) && held.len() >= MAX_OBJECTS {
            held.retain(|_, sets| sets.iter().any(|(_, h)| h.expires_ms().is_some()));
        }
        let sets = held.entry(object.to_string()).or_default();
        let index = match sets.iter().position(|(s, _)| s.as_slice() == scopes) {
            Some(index) => index,
            None => {
                sets.push((scopes.to_vec(), Held::default()));
                sets.len() - 1
            }
        };
        f(&mut sets[index].1)
    })
}
