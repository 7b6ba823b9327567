//! `skill-metrics token …` as users run it.

use infrastructure::testing::TestStore;
use serde_json::Value;
use tests::on_both_backends;

use crate::support::{cli, ok, text};

async fn tokens_are_printed_once_and_never_listed(store: &TestStore) {
    let made = cli(
        store,
        &["token", "create", "laptop", "--scope", "ingest"],
        None,
    );
    let token = ok(&made);
    let token = token.trim();
    assert!(
        token.starts_with("smk_") && !token.contains(' '),
        "stdout is the token alone: {token}"
    );
    assert!(
        text(&made.stderr).contains("shown this once"),
        "{}",
        text(&made.stderr)
    );
    let listed = ok(&cli(store, &["token", "list"], None));
    assert!(
        listed.contains("laptop") && listed.contains("ingest"),
        "{listed}"
    );
    let json: Value =
        serde_json::from_str(&ok(&cli(store, &["token", "list", "--json"], None))).unwrap();
    assert_eq!(json[0]["name"], "laptop");
    assert_eq!(json[0]["scope"], "ingest");
    for out in [listed, json.to_string()] {
        assert!(!out.contains(&token[4..]), "{out}");
    }
    ok(&cli(store, &["token", "revoke", "laptop"], None));
    let json: Value =
        serde_json::from_str(&ok(&cli(store, &["token", "list", "--json"], None))).unwrap();
    assert!(json[0]["revoked_at"].is_string(), "{json}");
    let again = cli(store, &["token", "revoke", "laptop"], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("not found"),
        "{}",
        text(&again.stderr)
    );
    let bad = cli(store, &["token", "create", "x", "--scope", "write"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stdout).is_empty());
}

on_both_backends!(shared: tokens_are_printed_once_and_never_listed);
