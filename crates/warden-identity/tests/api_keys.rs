//! API keys against an in-memory credential store.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use support::MemStore;
use warden_identity::{generate_api_key, ApiKeyRecord, AuthError, Authenticator, NewApiKey};
use warden_types::CredentialKind;

fn record(key: &NewApiKey) -> ApiKeyRecord {
    ApiKeyRecord {
        id: key.id.clone(),
        name: "agent-7".into(),
        groups: vec!["agents".into()],
        secret_hash: key.secret_hash.clone(),
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        revoked: false,
    }
}

fn setup() -> (Arc<MemStore>, Authenticator, NewApiKey) {
    let store = Arc::new(MemStore::default());
    let auth = Authenticator::new(vec![], None, store.clone()).expect("no issuers is valid");
    let key = generate_api_key();
    store.add_key(record(&key));
    (store, auth, key)
}

#[tokio::test]
async fn a_valid_key_authenticates() {
    let (_store, auth, key) = setup();
    let id = auth
        .authenticate(key.plaintext.expose())
        .await
        .expect("valid key");
    assert_eq!(id.subject.as_str(), "agent-7");
    assert_eq!(id.display_name, "agent-7");
    assert_eq!(id.groups, vec!["agents"]);
    assert_eq!(id.kind, CredentialKind::ApiKey);
    assert_eq!(id.issuer, "warden");
    assert_eq!(id.token_id.as_deref(), Some(key.id.as_str()));
    assert!(id.expires_at.is_some());
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_id_is_invalid() {
    let (_store, auth, key) = setup();
    let text = key.plaintext.expose();
    // Same id, another secret of the right shape.
    let other = generate_api_key();
    let other_secret = other.plaintext.expose().rsplit('_').next().expect("secret");
    let wrong_secret = format!("wdk_{}_{other_secret}", key.id);
    // Flip the last hex digit.
    let mut flipped = text.to_owned();
    let last = flipped.pop().expect("non-empty");
    flipped.push(if last == '0' { '1' } else { '0' });
    for credential in [wrong_secret, flipped, other.plaintext.expose().to_owned()] {
        let err = auth.authenticate(&credential).await.expect_err("invalid");
        assert_eq!(err, AuthError::ApiKeyInvalid);
        assert_eq!(err.sqlstate(), "28P01");
    }
    // Truncated or mangled keys also say "invalid", not "malformed".
    for credential in [
        &text[..text.len() - 1],
        "wdk_",
        "wdk_x_y",
        &format!("{text}{text}"),
    ] {
        assert_eq!(
            auth.authenticate(credential).await.err(),
            Some(AuthError::ApiKeyInvalid)
        );
    }
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() {
    let (store, auth, key) = setup();
    let mut r = record(&key);
    r.revoked = true;
    store.add_key(r);
    assert_eq!(
        auth.authenticate(key.plaintext.expose()).await.err(),
        Some(AuthError::Revoked)
    );

    let mut r = record(&key);
    r.expires_at = Some(SystemTime::now() - Duration::from_secs(1));
    store.add_key(r);
    assert_eq!(
        auth.authenticate(key.plaintext.expose()).await.err(),
        Some(AuthError::ApiKeyExpired)
    );

    // A revoked key with a wrong secret does not reveal that it is revoked.
    let mut r = record(&key);
    r.revoked = true;
    store.add_key(r);
    let wrong = format!("wdk_{}_{}", key.id, "ab".repeat(32));
    assert_eq!(
        auth.authenticate(&wrong).await.err(),
        Some(AuthError::ApiKeyInvalid)
    );
}

#[tokio::test]
async fn a_key_without_expiry_works_and_a_corrupt_hash_never_matches() {
    let (store, auth, key) = setup();
    let mut r = record(&key);
    r.expires_at = None;
    store.add_key(r);
    let id = auth
        .authenticate(key.plaintext.expose())
        .await
        .expect("valid");
    assert_eq!(id.expires_at, None);

    let mut r = record(&key);
    r.secret_hash = "not hex".into();
    store.add_key(r);
    assert_eq!(
        auth.authenticate(key.plaintext.expose()).await.err(),
        Some(AuthError::ApiKeyInvalid)
    );
}

#[tokio::test]
async fn store_outage_is_reported_as_unavailable() {
    let (store, auth, key) = setup();
    store.down.store(true, Ordering::SeqCst);
    let err = auth
        .authenticate(key.plaintext.expose())
        .await
        .expect_err("store down");
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err:?}");
    assert_eq!(err.sqlstate(), "28000");
    assert!(!err.reason().contains("database is locked"));
}

#[tokio::test]
async fn without_issuers_every_jwt_is_from_an_unknown_issuer() {
    let (_store, auth, _key) = setup();
    let token = support::TestKey::ed25519("k").token(&support::claims("https://idp"));
    assert_eq!(
        auth.authenticate(&token).await.err(),
        Some(AuthError::UnknownIssuer)
    );
}
