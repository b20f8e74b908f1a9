use super::*;
use serde_json::json;

fn key(id: &str, name: &str, hash: &str) -> ManagedKey {
    ManagedKey {
        id: id.into(),
        record: KeyRecord { name: name.into(), models: vec!["*".into()], ..Default::default() },
        hash: hash.into(),
        previous: Vec::new(),
        created_ms: 0,
        expires_at_ms: None,
        disabled: false,
    }
}

fn hashes(r: &Registry, now: u64) -> Vec<String> {
    r.active(now).into_iter().map(|(h, _)| h).collect()
}

#[test]
fn create_rotate_with_grace_expire_disable_delete() {
    let mut r = Registry::default();
    r.apply(Op::Create { key: key("k1", "bot", "h1") }, 0).unwrap();
    assert_eq!((r.version, hashes(&r, 0)), (1, vec!["h1".to_string()]));
    assert_eq!(r.apply(Op::Create { key: key("k2", "bot", "h2") }, 0).unwrap_err().status, 409);

    r.apply(Op::Rotate { id: "k1".into(), hash: "h1b".into(), grace_ms: 1_000 }, 100).unwrap();
    assert_eq!(hashes(&r, 500), vec!["h1b".to_string(), "h1".to_string()], "the old key works during the grace");
    assert_eq!(hashes(&r, 1_100), vec!["h1b".to_string()], "and not after");
    assert_eq!(r.next_change_ms(500), Some(1_100));

    let record = r.keys["k1"].record.clone();
    r.apply(Op::Update { id: "k1".into(), record: record.clone(), expires_at_ms: Some(2_000), disabled: false }, 0)
        .unwrap();
    assert!(hashes(&r, 1_999).contains(&"h1b".to_string()));
    assert!(hashes(&r, 2_000).is_empty(), "expired");
    r.apply(Op::Update { id: "k1".into(), record, expires_at_ms: None, disabled: true }, 0).unwrap();
    assert!(hashes(&r, 0).is_empty(), "disabled");
    r.apply(Op::Delete { id: "k1".into() }, 0).unwrap();
    assert_eq!(r.apply(Op::Delete { id: "k1".into() }, 0).unwrap_err().status, 404);
    assert_eq!(r.version, 5, "failed operations do not move the version");
}

#[test]
fn records_come_from_bodies_and_patches() {
    let body = json!({"name": "bot", "models": ["*"], "team": "t", "project": "p"});
    let record = record_from(None, body.as_object().unwrap().clone()).unwrap();
    assert_eq!((record.team.as_deref(), record.project.as_deref()), (Some("t"), Some("p")));
    let patch = json!({"team": null, "models": ["a"]});
    let patched = record_from(Some(&record), patch.as_object().unwrap().clone()).unwrap();
    assert_eq!((patched.team, patched.models), (None, vec!["a".to_string()]));
    assert_eq!(record_from(None, json!({"name": "x"}).as_object().unwrap().clone()).unwrap_err().status, 400);
    let mut lifecycle = json!({"expires_at": "2026-12-02", "disabled": true}).as_object().unwrap().clone();
    let l = take_lifecycle(&mut lifecycle).unwrap();
    assert_eq!((l.expires_at_ms.flatten().is_some(), l.disabled), (true, Some(true)));
    assert!(lifecycle.is_empty());
}

#[test]
fn keys_are_checked_like_the_documents_own() {
    let config = Config::from_json(
        &json!({"version": 1, "providers": {"p": {"kind": "openai", "base_url": "https://x.example/v1", "region": "us"}},
            "models": {"m": {"targets": [{"provider": "p", "model": "m"}]}}, "teams": {"t": {}},
            "keys": {"a".repeat(64): {"name": "taken", "models": ["*"]}}})
        .to_string(),
    )
    .unwrap();
    let registry = Registry::default();
    let ok = KeyRecord { name: "new".into(), models: vec!["m".into()], team: Some("t".into()), ..Default::default() };
    assert!(check(&ok, &config, &registry, None).is_ok());
    let cases = [
        KeyRecord { name: "taken".into(), ..ok.clone() },
        KeyRecord { models: vec!["nope".into()], ..ok.clone() },
        KeyRecord { team: Some("nope".into()), ..ok.clone() },
        KeyRecord { project: Some("has space".into()), ..ok.clone() },
        KeyRecord { name: String::new(), ..ok.clone() },
    ];
    for bad in cases {
        assert!(check(&bad, &config, &registry, None).is_err(), "{bad:?}");
    }
    let merged = config.with_keys(vec![("b".repeat(64), ok)]);
    assert_eq!(merged.key_by_hash(&"b".repeat(64)).map(|k| k.name.as_str()), Some("new"));
}

#[test]
fn ops_read_back_the_json_they_are_sent_as() {
    let record = KeyRecord { name: "bot".into(), models: vec!["*".into()], ..Default::default() };
    for op in [
        Op::Create { key: key("k1", "bot", "h1") },
        Op::Update { id: "k1".into(), record: record.clone(), expires_at_ms: Some(2_000), disabled: false },
        Op::Update { id: "k1".into(), record, expires_at_ms: None, disabled: true },
        Op::Rotate { id: "k1".into(), hash: "h1b".into(), grace_ms: 1_000 },
        Op::Delete { id: "k1".into() },
    ] {
        let sent = serde_json::to_string(&op).unwrap();
        assert_eq!(crate::json_value::from_str::<Op>(&sent).unwrap(), op, "{sent}");
    }
    for refused in [
        json!({"op": "remove", "id": "k1"}),
        json!({"id": "k1"}),
        json!({"op": "delete"}),
        json!({"op": "rotate", "id": "k1", "hash": "h"}),
        json!({"op": "delete", "id": 5}),
    ] {
        assert!(serde_json::from_value::<Op>(refused.clone()).is_err(), "{refused}");
    }
}

#[test]
fn an_invalid_record_is_explained_without_a_position() {
    let error = record_from(None, json!({"name": "x", "models": "all"}).as_object().unwrap().clone()).unwrap_err();
    assert_eq!(error.status, 400);
    assert!(error.message.starts_with("The key is invalid: invalid type: string \"all\""), "{}", error.message);
    assert!(!error.message.contains(" at line "), "{}", error.message);
}
