//! Which endpoint served each conversation's previous turn, in this isolate, so the
//! next turn goes there while it is healthy and allowed (provider prompt caches
//! stay warm). Bounded: forgotten wholesale when full.

use std::cell::RefCell;
use std::collections::HashMap;

const CAPACITY: usize = 10_000;

thread_local! {
    static SERVED: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

pub fn previous(conversation: &str) -> Option<String> {
    SERVED.with(|s| s.borrow().get(conversation).cloned())
}

pub fn remember(conversation: &str, endpoint: String) {
    SERVED.with(|s| {
        let mut served = s.borrow_mut();
        if served.len() >= CAPACITY && !served.contains_key(conversation) {
            served.clear();
        }
        served.insert(conversation.to_string(), endpoint);
    });
}
