//! Identity and policy through the real gateway: a real OIDC provider (npm oidc-provider),
//! a private PostgreSQL with SCRAM authentication, the built-in issuer and API keys.

mod common;

use common::{expect_login_error, psql, raw_login, sqlite_dump, Gateway, Login};
use serde_json::json;
use warden_testkit::{unix_now, OidcProvider, PgCluster};

const TARGET_PW_ENV: &str = "WARDEN_TEST_TARGET_PW";

fn config(idp: &OidcProvider, pg: &PgCluster) -> String {
    format!(
        r#"
[[identity.oidc]]
issuer = "{issuer}"
audience = "urn:warden"
jwks_min_refresh = "1s"

[[connections]]
name = "app"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["agents", "dba"]
username = "postgres"
password_env = "{TARGET_PW_ENV}"

[[connections]]
name = "billing"
target = "postgres://127.0.0.1:{port}/postgres"
allow_groups = ["finance"]
username = "postgres"
password_env = "{TARGET_PW_ENV}"
"#,
        issuer = idp.issuer(),
        port = pg.port()
    )
}

struct World {
    idp: OidcProvider,
    pg: PgCluster,
    gw: Gateway,
}

async fn world() -> World {
    let idp = OidcProvider::start().await.expect("oidc provider");
    let pg = PgCluster::start_scram().await.expect("scram cluster");
    let gw = Gateway::start(
        &config(&idp, &pg),
        &[(TARGET_PW_ENV, pg.superuser_password())],
    )
    .await
    .expect("gateway");
    World { idp, pg, gw }
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_tokens_are_checked_end_to_end() {
    let w = world().await;
    let addr = w.gw.pg;

    // A real client_credentials token from the IdP, through psql, to a SCRAM target.
    let token = w.idp.client_credentials_token(&["agents"]).await.unwrap();
    let out = psql(
        &w.gw.dsn("app", &token),
        &["-c", "select current_user, 40 + 2"],
    )
    .unwrap();
    assert_eq!(out.trim(), "postgres|42");

    let now = unix_now();
    let base = w.idp.valid_claims("agent-7", &["agents"]);
    let with = |patch: serde_json::Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    // Crafted with the IdP's real signing key: accepted as-is.
    let good = w.idp.sign(json!({}), base.clone()).await.unwrap();
    assert!(matches!(
        raw_login(addr, "app", &good).await.unwrap(),
        Login::Ok(_)
    ));

    let expired = w
        .idp
        .sign(json!({}), with(json!({"exp": now - 120})))
        .await
        .unwrap();
    expect_login_error(addr, "app", &expired, "28P01", "expired").await;
    let future = w
        .idp
        .sign(json!({}), with(json!({"nbf": now + 600})))
        .await
        .unwrap();
    expect_login_error(addr, "app", &future, "28P01", "not valid yet").await;
    let wrong_iss = w
        .idp
        .sign(
            json!({}),
            with(json!({"iss": format!("{}/other", w.idp.issuer())})),
        )
        .await
        .unwrap();
    expect_login_error(addr, "app", &wrong_iss, "28P01", "issuer").await;
    let wrong_aud = w
        .idp
        .sign(json!({}), with(json!({"aud": "urn:someone-else"})))
        .await
        .unwrap();
    expect_login_error(addr, "app", &wrong_aud, "28P01", "audience").await;

    // Bad signature: flip a character of the signature segment.
    let mut bad_sig = good.clone();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    expect_login_error(addr, "app", &bad_sig, "28P01", "signature").await;

    let none = w
        .idp
        .sign(json!({"alg": "none"}), base.clone())
        .await
        .unwrap();
    expect_login_error(addr, "app", &none, "28P01", "algorithm").await;
    let hs = w
        .idp
        .sign(json!({"alg": "HS256"}), base.clone())
        .await
        .unwrap();
    expect_login_error(addr, "app", &hs, "28P01", "algorithm").await;

    // Unknown kid: never published, so still refused after a refetch.
    let unpublished = w
        .idp
        .sign_unpublished(json!({}), base.clone())
        .await
        .unwrap();
    expect_login_error(addr, "app", &unpublished, "28P01", "key").await;

    // Rotation: the next token is signed by a key the gateway has not seen; the JWKS cache
    // refetches (rate limit 1s in this config) and accepts it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    w.idp.rotate().await.unwrap();
    let rotated = w.idp.client_credentials_token(&["agents"]).await.unwrap();
    assert!(
        matches!(
            raw_login(addr, "app", &rotated).await.unwrap(),
            Login::Ok(_)
        ),
        "token from the rotated key should be accepted after a JWKS refetch"
    );

    // Garbage in the password field.
    expect_login_error(addr, "app", "not-a-token", "28P01", "").await;
    expect_login_error(addr, "app", "", "28P01", "").await;
    expect_login_error(addr, "app", &"x".repeat(60_000), "28P01", "").await;

    // Policy: the right group is named, other connections are not.
    let agent = w.idp.client_credentials_token(&["agents"]).await.unwrap();
    expect_login_error(addr, "billing", &agent, "42501", "\"finance\"").await;
    match raw_login(addr, "billing", &agent).await.unwrap() {
        Login::Error { message, .. } => assert!(!message.contains("app"), "{message}"),
        Login::Ok(_) => panic!("agent opened billing"),
    }
    expect_login_error(addr, "nope", &agent, "3D000", "no connection named").await;
    let nogroups = w.idp.client_credentials_token(&[]).await.unwrap();
    expect_login_error(addr, "app", &nogroups, "42501", "no groups").await;

    // Every attempt is audited; no credential ever reaches the audit or the logs.
    let audit = sqlite_dump(
        &w.gw.store_path(),
        "select result, reason, connection, client_addr, coalesce(subject,'') from auth_audit order by id",
    )
    .unwrap();
    assert!(audit.lines().count() >= 14, "{audit}");
    assert!(
        audit.contains("allowed|role postgres|app|127.0.0.1:"),
        "{audit}"
    );
    assert!(audit.contains("denied|authentication: expired"), "{audit}");
    assert!(audit.contains("denied|policy: "), "{audit}");
    let logs = w.gw.logs();
    for secret in [
        w.pg.superuser_password(),
        token.as_str(),
        good.as_str(),
        agent.as_str(),
    ] {
        assert!(!audit.contains(secret), "secret in audit");
        assert!(!logs.contains(secret), "secret in gateway logs");
    }
    let sig = good.rsplit('.').next().unwrap();
    assert!(!logs.contains(sig), "token signature in logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn builtin_tokens_and_api_keys() {
    let w = world().await;
    let addr = w.gw.pg;

    let token = w.gw.issue_token("crew-researcher", "agents", "1h").unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT alone on stdout");
    let out = psql(&w.gw.dsn("app", &token), &["-c", "select 1"]).unwrap();
    assert_eq!(out.trim(), "1");

    // API key: issue, use, revoke, refused.
    let out =
        w.gw.cli(&[
            "tokens",
            "issue",
            "--name",
            "etl",
            "--groups",
            "agents",
            "--api-key",
        ])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("wdk_"), "{key}");
    assert!(matches!(
        raw_login(addr, "app", &key).await.unwrap(),
        Login::Ok(_)
    ));
    let mut wrong = key.clone();
    wrong.push('x');
    expect_login_error(addr, "app", &wrong, "28P01", "").await;

    let list = w.gw.cli(&["tokens", "list", "--json"]).unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(
        listed.contains("\"etl\"") && listed.contains("crew-researcher"),
        "{listed}"
    );
    assert!(!listed.contains(&key[4..]), "API key secret listed");
    let key_id = key.split('_').nth(1).unwrap();
    let revoke = w.gw.cli(&["tokens", "revoke", key_id]).unwrap();
    assert!(revoke.status.success());
    expect_login_error(addr, "app", &key, "28P01", "revoked").await;

    // Revoking a built-in token by its jti.
    let (_, claims) = warden_testkit::decode_jwt_unverified(&token).unwrap();
    let jti = claims["jti"].as_str().unwrap();
    assert!(w
        .gw
        .cli(&["tokens", "revoke", jti])
        .unwrap()
        .status
        .success());
    expect_login_error(addr, "app", &token, "28P01", "revoked").await;

    // The store keeps only a hash of the key.
    let rows = sqlite_dump(&w.gw.store_path(), "select * from api_keys").unwrap();
    assert!(!rows.contains(&key[4..]), "plaintext key stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn idp_down_fails_closed_and_recovers() {
    let mut w = world().await;
    let token = w.idp.client_credentials_token(&["agents"]).await.unwrap();
    w.idp.stop().await.unwrap();
    // The gateway has never fetched the JWKS: it cannot decide, so it refuses.
    expect_login_error(w.gw.pg, "app", &token, "28000", "").await;
    w.idp.restart().await.unwrap();
    assert!(matches!(
        raw_login(w.gw.pg, "app", &token).await.unwrap(),
        Login::Ok(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_target_password_is_not_blamed_on_the_client() {
    let idp = OidcProvider::start().await.unwrap();
    let pg = PgCluster::start_scram().await.unwrap();
    let gw = Gateway::start(
        &config(&idp, &pg),
        &[(TARGET_PW_ENV, "definitely-wrong-pw")],
    )
    .await
    .unwrap();
    let token = idp.client_credentials_token(&["agents"]).await.unwrap();
    match raw_login(gw.pg, "app", &token).await.unwrap() {
        Login::Error { code, message } => {
            assert_eq!(code, "08004", "{message}");
            assert!(!message.contains("definitely-wrong-pw"));
        }
        Login::Ok(_) => panic!("login with a wrong target password succeeded"),
    }
    assert!(!gw.logs().contains("definitely-wrong-pw"));
}

#[tokio::test(flavor = "multi_thread")]
async fn several_issuers_tls_always_and_api_keys_off() {
    let idp_a = OidcProvider::start().await.unwrap();
    let idp_b = OidcProvider::start().await.unwrap();
    let config = format!(
        r#"
[gateway]
require_tls = "always"

[identity.api_keys]
enabled = false

[[identity.oidc]]
issuer = "{a}"
audience = "urn:warden"

[[identity.oidc]]
issuer = "{b}"
audience = ["urn:other", "urn:warden"]
groups_claim = "groups"

[[connections]]
name = "app"
target = "postgres://127.0.0.1:5432/postgres"
allow_groups = ["agents"]
username = "postgres"
"#,
        a = idp_a.issuer(),
        b = idp_b.issuer()
    );
    let gw = Gateway::start(&config, &[]).await.unwrap();
    let tls = |token: &str| {
        format!(
            "host=127.0.0.1 port={} dbname=app user=x password={token} sslmode=require",
            gw.pg.port()
        )
    };
    for idp in [&idp_a, &idp_b] {
        let token = idp.client_credentials_token(&["agents"]).await.unwrap();
        assert_eq!(psql(&tls(&token), &["-c", "select 7"]).unwrap().trim(), "7");
    }
    // TLS is required even on loopback in this configuration.
    let token = idp_a.client_credentials_token(&["agents"]).await.unwrap();
    expect_login_error(gw.pg, "app", &token, "28000", "requires TLS").await;

    // API keys are switched off.
    let out = gw
        .cli(&[
            "tokens",
            "issue",
            "--name",
            "k",
            "--groups",
            "agents",
            "--api-key",
        ])
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let err = psql(&tls(&key), &["-c", "select 1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not accept API keys"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn target_md5_and_cleartext_authentication() {
    let idp = OidcProvider::start().await.unwrap();
    for method in ["md5", "password"] {
        let pg = PgCluster::start_with_auth(method).await.unwrap();
        let gw = Gateway::start(
            &config(&idp, &pg),
            &[(TARGET_PW_ENV, pg.superuser_password())],
        )
        .await
        .unwrap();
        let token = idp.client_credentials_token(&["agents"]).await.unwrap();
        let out = psql(&gw.dsn("app", &token), &["-c", "select current_user"]).unwrap();
        assert_eq!(out.trim(), "postgres", "{method}");
        assert!(
            !gw.logs().contains(pg.superuser_password()),
            "{method}: password in logs"
        );
    }
}
