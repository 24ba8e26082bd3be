use super::*;

async fn temp_store() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "warden-store-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    let url = format!("sqlite://{}/nested/warden.db", dir.display());
    (Store::open(&url).await.expect("open"), dir)
}

#[tokio::test]
async fn api_keys_round_trip_and_revoke() {
    let (store, dir) = temp_store().await;
    let groups = vec!["agents".to_string()];
    store
        .insert_api_key("abc123", "crew", &groups, "deadbeef", None)
        .await
        .unwrap();
    let rec = store.api_key("abc123").await.unwrap().expect("found");
    assert_eq!(rec.name, "crew");
    assert_eq!(rec.groups, groups);
    assert_eq!(rec.secret_hash, "deadbeef");
    assert!(!rec.revoked);
    assert!(store.api_key("nope").await.unwrap().is_none());

    assert!(store.revoke("wdk_abc123_whatever").await.unwrap());
    assert!(
        !store.revoke("abc123").await.unwrap(),
        "second revoke is a no-op"
    );
    assert!(store.api_key("abc123").await.unwrap().unwrap().revoked);
    let listed = store.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn tokens_unknown_jti_counts_as_revoked() {
    let (store, dir) = temp_store().await;
    let exp = SystemTime::now() + Duration::from_secs(60);
    store
        .insert_token("jti-1", "bot", &["a".into()], exp)
        .await
        .unwrap();
    assert!(!store.token_revoked("jti-1").await.unwrap());
    assert!(store.token_revoked("jti-unknown").await.unwrap());
    assert!(store.revoke("jti-1").await.unwrap());
    assert!(store.token_revoked("jti-1").await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap()[0].identity, "bot");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn auth_audit_is_appended_and_persists() {
    let (store, dir) = temp_store().await;
    for (i, result) in [AuthResult::Denied, AuthResult::Allowed]
        .into_iter()
        .enumerate()
    {
        store
            .record_auth(&AuthEvent {
                at: 0,
                subject: Some(format!("s{i}")),
                issuer: None,
                credential_kind: Some("oidc".into()),
                connection: Some("app".into()),
                client_addr: "127.0.0.1:5555".into(),
                result,
                reason: "test".into(),
                session_id: None,
            })
            .await
            .unwrap();
    }
    drop(store);
    let url = format!("sqlite://{}/nested/warden.db", dir.display());
    let store = Store::open(&url)
        .await
        .expect("reopen runs migrations idempotently");
    let events = store.auth_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].result, AuthResult::Allowed);
    assert_eq!(events[1].subject.as_deref(), Some("s0"));
    assert!(events[0].at > 0);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn bad_urls_are_refused() {
    assert!(matches!(
        Store::open("postgres://x/y").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
    assert!(Store::open("sqlite:///proc/definitely/not/here.db")
        .await
        .is_err());
}
