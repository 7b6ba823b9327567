//! API tokens: shown once, stored hashed, scoped, revoked at once.

use domain::Scope;
use infrastructure::testing::TestStore;
use infrastructure::{StoreError, TOKEN_PREFIX};
use sea_orm::{ConnectionTrait, Statement};
use tests::on_both_backends;

/// Every text value stored in `api_tokens`, joined.
async fn stored_text(store: &TestStore) -> String {
    store
        .connection()
        .query_all_raw(Statement::from_string(
            store.backend(),
            "SELECT name || ' ' || scope || ' ' || token_hash AS t FROM api_tokens",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "t").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn a_token_is_shown_once_and_stored_as_a_hash(store: &TestStore) {
    let made = store.create_token("laptop", Scope::Ingest).await.unwrap();
    assert!(made.token.starts_with(TOKEN_PREFIX), "{}", made.token);
    assert_eq!(made.token.len(), TOKEN_PREFIX.len() + 64);
    assert!(!format!("{made:?}").contains(&made.token), "Debug hides it");
    let stored = stored_text(store).await;
    assert!(!stored.contains(&made.token), "the secret is not stored");
    let secret = &made.token[TOKEN_PREFIX.len()..];
    assert!(!stored.contains(secret));
    let listed = store.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].scope),
        ("laptop", Scope::Ingest)
    );
    assert_eq!(listed[0].last_used_at, None);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(secret), "{json}");
    // It authenticates, with its scope, and its use is noted.
    let who = store.authenticate(&made.token).await.unwrap().unwrap();
    assert_eq!((who.name.as_str(), who.scope), ("laptop", Scope::Ingest));
    assert!(store.list_tokens().await.unwrap()[0].last_used_at.is_some());
    // Anything else does not.
    for wrong in ["", "smk_", &made.token[..made.token.len() - 1], secret] {
        assert!(
            store.authenticate(wrong).await.unwrap().is_none(),
            "{wrong:?}"
        );
    }
    assert_ne!(
        store
            .create_token("laptop-2", Scope::Ingest)
            .await
            .unwrap()
            .token,
        made.token,
        "tokens are random"
    );
}

async fn a_revoked_token_authenticates_nothing(store: &TestStore) {
    let made = store.create_token("ci", Scope::Admin).await.unwrap();
    let again = store.create_token("ci", Scope::Read).await.unwrap_err();
    assert!(
        matches!(&again, StoreError::Invalid(e) if e.field == "name"),
        "{again}"
    );
    store.revoke_token("ci").await.unwrap();
    assert!(store.authenticate(&made.token).await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token("ci").await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    // The name is free again; the revoked one stays listed.
    let fresh = store.create_token("ci", Scope::Read).await.unwrap();
    let listed = store.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());
    let who = store.authenticate(&fresh.token).await.unwrap().unwrap();
    assert_eq!(who.scope, Scope::Read);
    assert!(store.authenticate(&made.token).await.unwrap().is_none());
}

async fn bad_names_are_refused_and_nothing_is_written(store: &TestStore) {
    for name in ["", "  ", "a\u{7}b"] {
        let e = store.create_token(name, Scope::Read).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid(v) if v.field == "name"),
            "{e}"
        );
    }
    assert!(store.list_tokens().await.unwrap().is_empty());
}

on_both_backends!(
    a_token_is_shown_once_and_stored_as_a_hash,
    a_revoked_token_authenticates_nothing,
    bad_names_are_refused_and_nothing_is_written,
);
