//! Stored responses, as the edge's per-key store keeps them: one row per turn,
//! chained by `previous`, so a conversation is read back whole and its size,
//! retention and regions are known without re-reading every turn.

use super::output;
use crate::error::GatewayError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stored turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub id: String,
    /// The response this one continued.
    pub previous: Option<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    /// This turn's own input items.
    pub input_items: Vec<Value>,
    /// The response as kept: with the provider's reasoning blocks.
    pub response: Value,
    /// Whether the client asked to see the reasoning blocks.
    pub include_encrypted: bool,
    /// The regions the conversation is held to, when its first turn was restricted.
    pub regions: Option<Vec<String>>,
    /// Bytes of the whole conversation up to and including this turn.
    pub conversation_bytes: u64,
}

impl StoredResponse {
    /// The response as the client saw it.
    pub fn client_view(&self) -> Value {
        output::for_client(self.response.clone(), self.include_encrypted)
    }

    /// This turn's items: its input, then its output.
    pub fn items(&self) -> impl Iterator<Item = &Value> {
        let output = self.response.get("output").and_then(Value::as_array).into_iter().flatten();
        self.input_items.iter().chain(output)
    }
}

/// A conversation read back for continuing it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Every item, oldest first: each turn's input and output.
    pub items: Vec<Value>,
    pub bytes: u64,
    pub regions: Option<Vec<String>>,
}

/// A conversation from its turns, newest first (as the chain is walked).
pub fn conversation(newest_first: &[StoredResponse]) -> Conversation {
    let items = newest_first.iter().rev().flat_map(|turn| turn.items().cloned()).collect();
    let newest = newest_first.first();
    Conversation {
        items,
        bytes: newest.map_or(0, |t| t.conversation_bytes),
        regions: newest_first.iter().rev().find_map(|t| t.regions.clone()),
    }
}

/// The stored response an output item was made in: its id is derived from the
/// response's (`msg_X`, `rs_X`, `fc_X_n` are `resp_X`'s; see `output::Frame`).
pub fn response_of_item(item_id: &str) -> Option<String> {
    let suffix = match item_id.split_once('_')? {
        ("msg" | "rs", rest) => rest,
        ("fc", rest) => rest.rsplit_once('_').filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit())).map(|(x, _)| x)?,
        _ => return None,
    };
    (!suffix.is_empty()).then(|| format!("resp_{suffix}"))
}

/// The regions items from these turns are held to: the regions every restricted one
/// allows (none restricted: `None`); an empty list when they share none.
pub fn held_regions<'a>(sets: impl IntoIterator<Item = &'a Option<Vec<String>>>) -> Option<Vec<String>> {
    sets.into_iter().flatten().fold(None, |held: Option<Vec<String>>, set| {
        Some(match held {
            None => set.clone(),
            Some(held) => held.into_iter().filter(|r| set.contains(r)).collect(),
        })
    })
}

/// The size a conversation reaches with a new turn, or the error when it passes the cap.
pub fn grown_size(previous_bytes: u64, turn_bytes: u64, cap: u64) -> Result<u64, GatewayError> {
    let total = previous_bytes.saturating_add(turn_bytes);
    if total > cap {
        return Err(GatewayError::invalid_request(
            "conversation_too_large",
            format!(
                "The stored conversation would reach {total} bytes, over this gateway's limit of {cap}; start a new one (without previous_response_id) or send the context yourself with store: false."
            ),
        )
        .with_param("previous_response_id"));
    }
    Ok(total)
}

/// The answer when a stored response is not there (never stored, another key's, expired or deleted).
pub fn not_found(id: &str, param: Option<&str>) -> GatewayError {
    let error = GatewayError::new(
        if param.is_some() { 400 } else { 404 },
        "invalid_request_error",
        "previous_response_not_found",
        format!("No stored response with id '{id}' (responses made with store: false are not kept)."),
    );
    match param {
        Some(param) => error.with_param(param.to_string()),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(id: &str, previous: Option<&str>, input: &str, answer: &str, bytes: u64) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            previous: previous.map(str::to_string),
            created_at_ms: 1,
            expires_at_ms: 2,
            input_items: vec![json!({"role": "user", "content": input})],
            response: json!({"id": id, "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}]}),
            include_encrypted: false,
            regions: (id == "resp_1").then(|| vec!["eu".to_string()]),
            conversation_bytes: bytes,
        }
    }

    #[test]
    fn an_items_id_names_the_response_it_was_made_in() {
        assert_eq!(response_of_item("msg_0a1b").as_deref(), Some("resp_0a1b"));
        assert_eq!(response_of_item("rs_0a1b").as_deref(), Some("resp_0a1b"));
        assert_eq!(response_of_item("fc_0a1b_2").as_deref(), Some("resp_0a1b"));
        for other in ["fc_0a1b", "fc_0a1b_x", "msg_", "call_1", "resp_0a1b", "plain"] {
            assert_eq!(response_of_item(other), None, "{other}");
        }
    }

    #[test]
    fn referenced_turns_hold_a_request_to_the_regions_they_share() {
        let eu = Some(vec!["eu".to_string(), "ch".to_string()]);
        let ch = Some(vec!["ch".to_string()]);
        assert_eq!(held_regions([&None, &None]), None);
        assert_eq!(held_regions([&None, &eu]), eu);
        assert_eq!(held_regions([&eu, &None, &ch]), ch);
        assert_eq!(held_regions([&ch, &Some(vec!["us".to_string()])]), Some(Vec::new()));
    }

    #[test]
    fn a_conversation_reads_oldest_first_and_keeps_its_first_regions() {
        let chain = [turn("resp_2", Some("resp_1"), "b", "B", 200), turn("resp_1", None, "a", "A", 100)];
        let conversation = conversation(&chain);
        let texts: Vec<String> = conversation
            .items
            .iter()
            .map(|i| {
                i["content"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i["content"][0]["text"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(texts, ["a", "A", "b", "B"]);
        assert_eq!((conversation.bytes, conversation.regions), (200, Some(vec!["eu".to_string()])));
    }

    #[test]
    fn a_conversation_has_a_size_cap() {
        assert_eq!(grown_size(100, 50, 1_000).unwrap(), 150);
        let err = grown_size(990, 50, 1_000).unwrap_err();
        assert_eq!((err.status, err.code.as_ref()), (400, "conversation_too_large"));
        assert_eq!(not_found("resp_x", Some("previous_response_id")).status, 400);
        assert_eq!(not_found("resp_x", None).status, 404);
    }
}
