//! The built-in issuer: issue → authenticate, key persistence, revocation.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{claims_with, sign_raw, MemStore, TestKey};
use warden_identity::{AuthError, Authenticator, BuiltinIssuer, BuiltinSettings, IdentityError};
use warden_types::CredentialKind;

fn issuer_at(dir: &tempfile::TempDir) -> BuiltinIssuer {
    BuiltinIssuer::load_or_create(BuiltinSettings::new(dir.path().join("keys/issuer.pem")))
        .expect("issuer")
}

fn auth_for(issuer: BuiltinIssuer, store: Arc<MemStore>) -> Authenticator {
    Authenticator::new(vec![], Some(issuer), store).expect("authenticator")
}

#[tokio::test]
async fn issued_tokens_authenticate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer_at(&dir);
    let store = Arc::new(MemStore::default());
    let auth = auth_for(issuer.clone(), store);
    let groups = vec!["agents".to_owned(), "readers".to_owned()];
    let issued = issuer
        .issue(
            "crewai-worker",
            &groups,
            Duration::from_secs(600),
            Some("alice"),
        )
        .expect("issued");
    assert!(!format!("{issued:?}").contains(issued.token.expose()));
    let until = issued
        .expires_at
        .duration_since(SystemTime::now())
        .expect("future");
    assert!(until > Duration::from_secs(590) && until <= Duration::from_secs(600));

    let id = auth
        .authenticate(issued.token.expose())
        .await
        .expect("accepted");
    assert_eq!(id.subject.as_str(), "crewai-worker");
    assert_eq!(id.display_name, "crewai-worker");
    assert_eq!(id.issuer, "warden");
    assert_eq!(id.groups, groups);
    assert_eq!(id.kind, CredentialKind::Builtin);
    assert_eq!(id.actor.as_deref(), Some("alice"));
    assert_eq!(id.token_id.as_deref(), Some(issued.jti.as_str()));
    assert_eq!(id.expires_at, Some(issued.expires_at));

    let plain = issuer
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    let id = auth
        .authenticate(plain.token.expose())
        .await
        .expect("accepted");
    assert!(id.groups.is_empty());
    assert_eq!(id.actor, None);
    assert_ne!(plain.jti, issued.jti);
}

#[tokio::test]
async fn the_key_is_persisted_private_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = issuer_at(&dir);
    let path = dir.path().join("keys/issuer.pem");
    let text = std::fs::read_to_string(&path).expect("key file");
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = first
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");

    // A restart loads the same key: same kid, and old tokens still verify.
    let second = issuer_at(&dir);
    assert_eq!(first.kid(), second.kid());
    assert_eq!(std::fs::read_to_string(&path).expect("key file"), text);
    let auth = auth_for(second, Arc::new(MemStore::default()));
    assert!(auth.authenticate(token.token.expose()).await.is_ok());

    // A different key (another data dir) does not verify it.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let auth = auth_for(issuer_at(&other_dir), Arc::new(MemStore::default()));
    assert_eq!(
        auth.authenticate(token.token.expose()).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn jwks_publishes_the_public_key_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer_at(&dir);
    let jwks = issuer.jwks();
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["kid"], issuer.kid());
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert!(keys[0].get("d").is_none());
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        keys[0]["x"].as_str().expect("x"),
    )
    .expect("x is base64url");
    assert_eq!(x.len(), 32);
    assert!(!format!("{issuer:?}").contains("BEGIN"));
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer_at(&dir);
    let store = Arc::new(MemStore::default());
    let auth = auth_for(issuer.clone(), store.clone());
    let issued = issuer
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    let other = issuer
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    store.revoke_jti(&issued.jti);
    assert_eq!(
        auth.authenticate(issued.token.expose()).await.err(),
        Some(AuthError::Revoked)
    );
    assert!(auth.authenticate(other.token.expose()).await.is_ok());

    store.down.store(true, Ordering::SeqCst);
    let err = auth
        .authenticate(other.token.expose())
        .await
        .expect_err("store down");
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn builtin_tokens_take_the_strict_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer_at(&dir);
    let auth = auth_for(issuer.clone(), Arc::new(MemStore::default()));
    let good = issuer
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    let parts: Vec<&str> = good.token.expose().split('.').collect();

    // Other algorithms are refused for the built-in issuer, whoever signed them.
    let rsa = TestKey::rsa(issuer.kid());
    let c = claims_with("warden", json!({"aud": "urn:warden", "jti": "j"}));
    assert_eq!(
        auth.authenticate(&rsa.token(&c)).await.err(),
        Some(AuthError::AlgorithmNotAllowed("RS256".into()))
    );
    let none = sign_raw(&json!({"alg": "none"}), &c, |_| Vec::new());
    assert_eq!(
        auth.authenticate(&none).await.err(),
        Some(AuthError::AlgorithmNotAllowed("none".into()))
    );
    // An EdDSA token from a foreign key under the builtin's kid fails the signature.
    let foreign = TestKey::ed25519(issuer.kid());
    assert_eq!(
        auth.authenticate(&foreign.token(&c)).await.err(),
        Some(AuthError::BadSignature)
    );

    // Tampering with the claims breaks the signature.
    let forged_claims = json!({"iss": "warden", "aud": "urn:warden", "sub": "root",
                               "groups": ["dba"], "exp": support::now() + 60, "jti": "x"});
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        support::b64_json(&forged_claims),
        parts[2]
    );
    assert_eq!(
        auth.authenticate(&tampered).await.err(),
        Some(AuthError::BadSignature)
    );

    // A builtin token whose issuer differs by a trailing slash is a wrong issuer.
    let other = BuiltinIssuer::load_or_create(BuiltinSettings {
        issuer: "warden/".into(),
        audience: "urn:warden".into(),
        key_path: dir.path().join("keys/issuer.pem"),
    })
    .expect("same key, other issuer name");
    let t = other
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    assert_eq!(
        auth.authenticate(t.token.expose()).await.err(),
        Some(AuthError::WrongIssuer)
    );

    // Another audience is refused.
    let other = BuiltinIssuer::load_or_create(BuiltinSettings {
        issuer: "warden".into(),
        audience: "urn:elsewhere".into(),
        key_path: dir.path().join("keys/issuer.pem"),
    })
    .expect("same key, other audience");
    let t = other
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    assert_eq!(
        auth.authenticate(t.token.expose()).await.err(),
        Some(AuthError::WrongAudience)
    );
}

#[test]
fn issue_validates_its_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = issuer_at(&dir);
    let ttl = Duration::from_secs(60);
    let bad = [
        issuer.issue("", &[], ttl, None),
        issuer.issue(&"x".repeat(300), &[], ttl, None),
        issuer.issue("a\nb", &[], ttl, None),
        issuer.issue("svc", &[String::new()], ttl, None),
        issuer.issue("svc", &[], Duration::from_millis(500), None),
        issuer.issue("svc", &[], ttl, Some("")),
        issuer.issue("svc", &[], Duration::MAX, None),
    ];
    for r in bad {
        assert!(matches!(r, Err(IdentityError::InvalidRequest(_))), "{r:?}");
    }
}

#[test]
fn unusable_key_files_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("key.pem");

    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    set_mode(&path, 0o600);
    let err = BuiltinIssuer::load_or_create(BuiltinSettings::new(&path)).expect_err("garbage");
    assert!(matches!(err, IdentityError::BadKey { .. }), "{err:?}");

    std::fs::write(&path, vec![0u8; 100_000]).expect("write");
    let err = BuiltinIssuer::load_or_create(BuiltinSettings::new(&path)).expect_err("huge");
    assert!(matches!(err, IdentityError::BadKey { .. }), "{err:?}");

    let err = BuiltinIssuer::load_or_create(BuiltinSettings::new(dir.path())).expect_err("a dir");
    assert!(matches!(err, IdentityError::BadKey { .. }), "{err:?}");

    // A readable-by-others key is refused, with the fix in the message.
    let good_dir = tempfile::tempdir().expect("tempdir");
    let good = issuer_at(&good_dir);
    let key_path = good_dir.path().join("keys/issuer.pem");
    #[cfg(unix)]
    {
        set_mode(&key_path, 0o644);
        let err = BuiltinIssuer::load_or_create(BuiltinSettings::new(&key_path)).expect_err("0644");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        set_mode(&key_path, 0o600);
    }
    let again = BuiltinIssuer::load_or_create(BuiltinSettings::new(&key_path)).expect("0600");
    assert_eq!(again.kid(), good.kid());

    assert!(matches!(
        BuiltinIssuer::load_or_create(BuiltinSettings::default()),
        Err(IdentityError::Config(_))
    ));
    let mut s = BuiltinSettings::new(&key_path);
    s.audience.clear();
    assert!(matches!(
        BuiltinIssuer::load_or_create(s),
        Err(IdentityError::Config(_))
    ));
}

#[test]
fn builtin_and_oidc_issuers_must_differ() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = BuiltinSettings::new(dir.path().join("k.pem"));
    s.issuer = "http://127.0.0.1:9".into();
    let issuer = BuiltinIssuer::load_or_create(s).expect("issuer");
    let oidc = warden_identity::OidcSettings::new("http://127.0.0.1:9", vec!["a".into()]);
    let r = Authenticator::new(vec![oidc], Some(issuer), Arc::new(MemStore::default()));
    assert!(matches!(r, Err(IdentityError::Config(_))));
}

fn set_mode(path: &std::path::Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}
