//! OIDC tokens against a loopback IdP: verification, rejection of every kind of bad token,
//! discovery, JWKS caching, rotation, rate limiting and outages.

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use support::{claims, claims_with, hmac_sha256, now, sign_raw, Idp, MemStore, TestKey, AUDIENCE};
use warden_identity::{AuthError, Authenticator, OidcSettings};
use warden_types::CredentialKind;

fn settings(idp: &Idp) -> OidcSettings {
    let mut s = OidcSettings::new(idp.issuer.clone(), vec![AUDIENCE.to_owned()]);
    s.http_timeout = Duration::from_secs(5);
    s
}

fn authenticator(settings: OidcSettings) -> Authenticator {
    Authenticator::new(vec![settings], None, Arc::new(MemStore::default())).expect("valid settings")
}

#[tokio::test]
async fn accepts_a_good_token_and_maps_the_identity() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let c = claims(&idp.issuer);
    let exp = c["exp"].as_u64().expect("exp");

    let id = auth.authenticate(&key.token(&c)).await.expect("accepted");
    assert_eq!(id.subject.as_str(), "alice");
    assert_eq!(id.display_name, "alice@example.com");
    assert_eq!(id.issuer, idp.issuer);
    assert_eq!(id.groups, vec!["agents", "dba"]);
    assert_eq!(id.kind, CredentialKind::Oidc);
    assert_eq!(id.actor.as_deref(), Some("crewai-worker"));
    assert_eq!(id.token_id.as_deref(), Some("jti-1"));
    assert_eq!(id.expires_at, Some(UNIX_EPOCH + Duration::from_secs(exp)));
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    // Cached: a second token costs no fetch. Surrounding whitespace is tolerated.
    let again = format!(" {}\n", key.token(&c));
    assert!(auth.authenticate(&again).await.is_ok());
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn accepts_every_supported_key_type_and_algorithm() {
    let rsa = TestKey::rsa("rsa");
    let ec256 = TestKey::ec256("ec256");
    let ec384 = TestKey::ec384("ec384");
    let ed = TestKey::ed25519("ed");
    let idp = Idp::start(&[&rsa, &ec256, &ec384, &ed]).await;
    let auth = authenticator(settings(&idp));
    let c = claims(&idp.issuer);
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let r = auth.authenticate(&rsa.token_with(alg, &c)).await;
        assert!(r.is_ok(), "{alg}: {r:?}");
    }
    for key in [&ec256, &ec384, &ed] {
        let r = auth.authenticate(&key.token(&c)).await;
        assert!(r.is_ok(), "{}: {r:?}", key.default_alg());
    }
    // An EC key named by kid does not verify a token that claims the other curve.
    let t = sign_raw(&json!({"alg": "ES384", "kid": "ec256"}), &c, |m| {
        ec256.sign_bytes("ES256", m)
    });
    assert_eq!(
        auth.authenticate(&t).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn rejects_bad_claims() {
    let key = TestKey::ec256("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let iss = idp.issuer.clone();
    let now = now();
    let cases = [
        (json!({"exp": now - 120}), AuthError::Expired),
        (json!({"nbf": now + 120}), AuthError::NotYetValid),
        (json!({"iat": now + 120}), AuthError::NotYetValid),
        (json!({"aud": "urn:someone-else"}), AuthError::WrongAudience),
        (json!({"aud": ["a", "b"]}), AuthError::WrongAudience),
        (json!({"aud": null}), AuthError::MissingClaim("aud")),
        (json!({"exp": null}), AuthError::MissingClaim("exp")),
        (json!({"sub": null}), AuthError::MissingClaim("sub")),
        (json!({"iss": format!("{iss}/")}), AuthError::WrongIssuer),
        (
            json!({"iss": "https://evil.example"}),
            AuthError::UnknownIssuer,
        ),
        (json!({"iss": null}), AuthError::MissingClaim("iss")),
    ];
    for (changes, expected) in cases {
        let token = key.token(&claims_with(&iss, changes.clone()));
        let got = auth.authenticate(&token).await;
        assert_eq!(got.err(), Some(expected), "{changes}");
    }
    // Within the leeway, and audience arrays, are fine.
    for changes in [
        json!({"exp": now - 10}),
        json!({"nbf": now + 10}),
        json!({"aud": ["other", AUDIENCE]}),
    ] {
        let token = key.token(&claims_with(&iss, changes.clone()));
        assert!(auth.authenticate(&token).await.is_ok(), "{changes}");
    }
}

#[tokio::test]
async fn groups_from_a_dotted_claim_path() {
    let key = TestKey::ed25519("k1");
    let idp = Idp::start(&[&key]).await;
    let mut s = settings(&idp);
    s.groups_claim = "realm_access.roles".into();
    let auth = authenticator(s);
    let c = claims_with(
        &idp.issuer,
        json!({"realm_access": {"roles": ["ops"]}, "act": {"sub": "bob"}}),
    );
    let id = auth.authenticate(&key.token(&c)).await.expect("accepted");
    assert_eq!(id.groups, vec!["ops"]);
    assert_eq!(id.actor.as_deref(), Some("bob"));
}

#[tokio::test]
async fn rejects_bad_signatures() {
    let key = TestKey::rsa("k1");
    let other = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let good = key.token(&claims(&idp.issuer));

    // Tampered payload: same header and signature, groups changed.
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = support::b64_json(&claims_with(&idp.issuer, json!({"groups": ["admin"]})));
    let tampered = parts.join(".");
    assert_eq!(
        auth.authenticate(&tampered).await.err(),
        Some(AuthError::BadSignature)
    );

    // Right kid, wrong key.
    let forged = other.token(&claims(&idp.issuer));
    assert_eq!(
        auth.authenticate(&forged).await.err(),
        Some(AuthError::BadSignature)
    );

    // Signature stripped, or truncated.
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        auth.authenticate(&stripped).await.err(),
        Some(AuthError::BadSignature)
    );
    let truncated = &good[..good.len() - 10];
    assert_eq!(
        auth.authenticate(truncated).await.err(),
        Some(AuthError::BadSignature)
    );

    assert!(auth.authenticate(&good).await.is_ok());
}

#[tokio::test]
async fn alg_none_and_hmac_confusion_are_refused_before_any_key_is_used() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let c = claims(&idp.issuer);

    let none = sign_raw(&json!({"alg": "none", "typ": "JWT"}), &c, |_| Vec::new());
    assert_eq!(
        auth.authenticate(&none).await.err(),
        Some(AuthError::AlgorithmNotAllowed("none".into()))
    );
    // HS256 "signed" with the public key as the HMAC secret: the classic confusion attack.
    let jwk = key.jwk();
    let n = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        jwk["n"].as_str().expect("n"),
    )
    .expect("n is base64url");
    for secret in [key.public_bytes(), n, jwk.to_string().into_bytes()] {
        let hs = sign_raw(&json!({"alg": "HS256", "kid": "k1"}), &c, |m| {
            hmac_sha256(&secret, m)
        });
        assert_eq!(
            auth.authenticate(&hs).await.err(),
            Some(AuthError::AlgorithmNotAllowed("HS256".into()))
        );
    }
    // Nothing was fetched: the allow-list is checked before keys are looked up.
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (0, 0));

    // A narrower allow-list refuses algorithms outside it.
    let ec = TestKey::ec256("ec");
    idp.set_keys(&[&key, &ec]);
    let mut s = settings(&idp);
    s.algorithms = vec!["RS256".into()];
    let narrow = authenticator(s);
    assert_eq!(
        narrow.authenticate(&ec.token(&c)).await.err(),
        Some(AuthError::AlgorithmNotAllowed("ES256".into()))
    );
    assert_eq!(
        narrow
            .authenticate(&key.token_with("PS256", &c))
            .await
            .err(),
        Some(AuthError::AlgorithmNotAllowed("PS256".into()))
    );
    assert!(narrow.authenticate(&key.token(&c)).await.is_ok());
}

#[tokio::test]
async fn construction_refuses_hmac_none_and_duplicates_and_does_no_io() {
    let store = Arc::new(MemStore::default());
    let base = OidcSettings::new("http://127.0.0.1:9", vec![AUDIENCE.into()]);
    for algs in [
        vec!["HS256"],
        vec!["RS256", "HS384"],
        vec!["none"],
        vec!["RS257"],
    ] {
        let mut s = base.clone();
        s.algorithms = algs.iter().map(|a| a.to_string()).collect();
        let r = Authenticator::new(vec![s], None, store.clone());
        assert!(r.is_err(), "{algs:?}");
    }
    let mut no_aud = base.clone();
    no_aud.audiences.clear();
    assert!(Authenticator::new(vec![no_aud], None, store.clone()).is_err());
    let mut slash = base.clone();
    slash.issuer.push('/');
    assert!(Authenticator::new(vec![base.clone(), slash], None, store.clone()).is_err());
    // The IdP at port 9 is not there; construction must still succeed.
    assert!(Authenticator::new(vec![base], None, store).is_ok());
}

#[tokio::test]
async fn unknown_kid_is_refetched_after_rotation() {
    let old = TestKey::ec256("old");
    let new = TestKey::ed25519("new");
    let idp = Idp::start(&[&old]).await;
    let mut s = settings(&idp);
    // Generous windows so that a loaded machine does not blur "within" and "after".
    s.jwks_min_refresh = Duration::from_millis(1000);
    let auth = authenticator(s);
    let c = claims(&idp.issuer);

    assert!(auth.authenticate(&old.token(&c)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    // The IdP rotates. Within the rate limit the new kid is unknown and nothing is fetched.
    idp.set_keys(&[&new]);
    assert_eq!(
        auth.authenticate(&new.token(&c)).await.err(),
        Some(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 1);

    // After it, the unknown kid triggers one refetch and the token is accepted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.authenticate(&new.token(&c)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
    assert!(auth.authenticate(&new.token(&c)).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);
    // Discovery is not repeated for a JWKS refetch.
    assert_eq!(idp.discovery_fetches(), 1);

    // The old key is gone from the cache.
    assert_eq!(
        auth.authenticate(&old.token(&c)).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn refetch_rate_limit_holds_for_sequential_and_concurrent_callers() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    idp.set_jwks_delay(Duration::from_millis(200));
    let mut s = settings(&idp);
    s.jwks_min_refresh = Duration::from_secs(3600);
    let auth = Arc::new(authenticator(s));
    let good = key.token(&claims(&idp.issuer));

    // Twenty concurrent first uses share one discovery and one JWKS fetch.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (auth, good) = (auth.clone(), good.clone());
        tasks.spawn(async move { auth.authenticate(&good).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.expect("task").is_ok());
    }
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    // Unknown kids, many of them, concurrent and sequential: no further fetch.
    let stranger = TestKey::ed25519("stranger");
    let bad = stranger.token(&claims(&idp.issuer));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (auth, bad) = (auth.clone(), bad.clone());
        tasks.spawn(async move { auth.authenticate(&bad).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.expect("task").err(), Some(AuthError::UnknownKey));
    }
    for i in 0..20 {
        let t = TestKey::ed25519(&format!("k{i}")).token(&claims(&idp.issuer));
        assert_eq!(
            auth.authenticate(&t).await.err(),
            Some(AuthError::UnknownKey)
        );
    }
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let key = TestKey::rsa("k1");
    let next = TestKey::ec256("k2");
    let idp = Idp::start(&[&key]).await;
    let mut s = settings(&idp);
    s.jwks_min_refresh = Duration::from_millis(50);
    let auth = Arc::new(authenticator(s));
    assert!(auth
        .authenticate(&key.token(&claims(&idp.issuer)))
        .await
        .is_ok());
    assert_eq!(idp.jwks_fetches(), 1);

    tokio::time::sleep(Duration::from_millis(100)).await;
    idp.set_keys(&[&key, &next]);
    idp.set_jwks_delay(Duration::from_millis(200));
    let t = next.token(&claims(&idp.issuer));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (auth, t) = (auth.clone(), t.clone());
        tasks.spawn(async move { auth.authenticate(&t).await });
    }
    while let Some(r) = tasks.join_next().await {
        assert!(r.expect("task").is_ok());
    }
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn stale_keys_are_refreshed_after_max_age() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let mut s = settings(&idp);
    s.jwks_max_age = Duration::from_millis(1000);
    s.jwks_min_refresh = Duration::from_millis(10);
    let auth = authenticator(s);
    let good = key.token(&claims(&idp.issuer));
    assert!(auth.authenticate(&good).await.is_ok());
    assert!(auth.authenticate(&good).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.authenticate(&good).await.is_ok());
    assert_eq!(idp.jwks_fetches(), 2);

    // A key removed by the IdP is dropped at the next refresh.
    idp.set_keys(&[]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        auth.authenticate(&good).await.err(),
        Some(AuthError::UnknownKey)
    );
    assert_eq!(idp.jwks_fetches(), 3);
}

#[tokio::test]
async fn idp_down_fails_closed_then_recovers() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    idp.set_up(false);
    let auth = authenticator(settings(&idp));
    let good = key.token(&claims(&idp.issuer));

    for _ in 0..2 {
        let err = auth.authenticate(&good).await.expect_err("IdP is down");
        assert!(matches!(err, AuthError::IdpUnavailable(_)), "{err:?}");
        assert_eq!(err.sqlstate(), "28000");
    }
    // Each new attempt retried discovery.
    assert_eq!(idp.discovery_fetches(), 2);

    idp.set_up(true);
    assert!(auth.authenticate(&good).await.is_ok());
}

#[tokio::test]
async fn jwks_outage_keeps_serving_cached_keys() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let mut s = settings(&idp);
    s.jwks_max_age = Duration::from_millis(100);
    s.jwks_min_refresh = Duration::from_millis(10);
    let auth = authenticator(s);
    let good = key.token(&claims(&idp.issuer));
    assert!(auth.authenticate(&good).await.is_ok());
    idp.set_up(false);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(auth.authenticate(&good).await.is_ok());
    // But an unknown kid cannot be resolved while the IdP is down.
    let t = TestKey::ed25519("new").token(&claims(&idp.issuer));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = auth.authenticate(&t).await.expect_err("unknown kid");
    assert!(matches!(err, AuthError::IdpUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unreachable_idp_is_unavailable() {
    // Bind a port, then free it, so nothing listens there.
    let addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr")
    };
    let issuer = format!("http://{addr}");
    let mut s = OidcSettings::new(issuer.clone(), vec![AUDIENCE.into()]);
    s.http_timeout = Duration::from_secs(2);
    let auth = authenticator(s);
    let token = TestKey::ed25519("k").token(&claims(&issuer));
    let err = auth.authenticate(&token).await.expect_err("nobody listens");
    assert!(matches!(err, AuthError::IdpUnavailable(_)), "{err:?}");
    assert!(!err.reason().contains(&addr.to_string()));
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    idp.set_discovery_issuer("https://impostor.example");
    let auth = authenticator(settings(&idp));
    let err = auth
        .authenticate(&key.token(&claims(&idp.issuer)))
        .await
        .expect_err("mismatch");
    assert!(
        matches!(err, AuthError::IdpUnavailable(ref d) if d.contains("impostor")),
        "{err:?}"
    );
    assert_eq!(idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn encryption_keys_and_hostile_jwks_are_not_used() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let mut enc = key.jwk();
    enc["use"] = json!("enc");
    idp.set_jwks(json!({"keys": [enc, {"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}));
    let auth = authenticator(settings(&idp));
    let token = key.token(&claims(&idp.issuer));
    assert_eq!(
        auth.authenticate(&token).await.err(),
        Some(AuthError::UnknownKey)
    );

    // An oversized JWKS is not read.
    let idp3 = Idp::start(&[&key]).await;
    idp3.set_jwks(json!({"keys": [key.jwk()], "pad": "x".repeat(2 * 1024 * 1024)}));
    let auth3 = authenticator(settings(&idp3));
    let err = auth3
        .authenticate(&key.token(&claims(&idp3.issuer)))
        .await
        .expect_err("too big");
    assert!(
        matches!(err, AuthError::IdpUnavailable(ref d) if d.contains("larger")),
        "{err:?}"
    );

    // A JWKS that is not JSON makes the IdP unavailable rather than panicking.
    let idp2 = Idp::start(&[]).await;
    idp2.set_jwks(json!("not a jwks"));
    let auth2 = authenticator(settings(&idp2));
    let err = auth2
        .authenticate(&key.token(&claims(&idp2.issuer)))
        .await
        .expect_err("bad jwks");
    assert!(matches!(err, AuthError::IdpUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn tokens_without_kid_use_the_only_fitting_key() {
    let key = TestKey::ed25519("k1");
    let idp = Idp::start(&[&key, &TestKey::rsa("r1")]).await;
    let auth = authenticator(settings(&idp));
    let c = claims(&idp.issuer);
    let no_kid = sign_raw(&json!({"alg": "EdDSA"}), &c, |m| key.sign_bytes("EdDSA", m));
    assert!(auth.authenticate(&no_kid).await.is_ok());
    idp.set_keys(&[&key, &TestKey::ed25519("k2")]);
    let auth = authenticator(settings(&idp));
    assert_eq!(
        auth.authenticate(&no_kid).await.err(),
        Some(AuthError::UnknownKey)
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_panic_or_fetch() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let good = key.token(&claims(&idp.issuer));
    let parts: Vec<&str> = good.split('.').collect();
    let cases = vec![
        String::new(),
        "   ".into(),
        "garbage".into(),
        "hunter2".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        "a".repeat(1024 * 1024),
        format!(
            "{}.{}.{}",
            "a".repeat(400_000),
            "b".repeat(400_000),
            "c".repeat(400_000)
        ),
        format!("{}.{}.{}", "*&^%", parts[1], parts[2]),
        format!("{}.{}.{}", support::b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", support::b64(b"[\"alg\"]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            support::b64(b"\xff\xfe\x00"),
            parts[2]
        ),
        format!("{}.{}.{}", parts[0], support::b64(b"42"), parts[2]),
        "\u{0}\u{1}.\u{2}.\u{3}".into(),
        "eyJ.eyJ.sig".into(),
    ];
    for case in &cases {
        let err = auth.authenticate(case).await.expect_err("malformed");
        assert_eq!(err, AuthError::Malformed, "{:.60}", case);
        assert_eq!(err.sqlstate(), "28P01");
    }
    assert_eq!(idp.jwks_fetches(), 0);
}

#[tokio::test]
async fn errors_never_echo_the_token() {
    let key = TestKey::rsa("k1");
    let idp = Idp::start(&[&key]).await;
    let auth = authenticator(settings(&idp));
    let now = now();
    let tokens = [
        key.token(&claims_with(&idp.issuer, json!({"exp": now - 1000}))),
        key.token(&claims_with(&idp.issuer, json!({"aud": "x"}))),
        TestKey::rsa("k1").token(&claims(&idp.issuer)),
        key.token(&claims_with(&idp.issuer, json!({"iss": "https://other"}))),
    ];
    for token in &tokens {
        let err = auth.authenticate(token).await.expect_err("rejected");
        let sig = token.rsplit('.').next().expect("sig");
        for text in [err.reason(), err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(sig), "{text}");
            assert!(!text.contains(token.as_str()));
        }
    }
}
