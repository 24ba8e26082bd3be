//! The test OIDC provider, driven as the gateway's tests will drive it.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use warden_testkit::{decode_jwt_unverified, unix_now, OidcOptions, OidcProvider};

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn client_credentials_token_is_a_jwt_with_groups() -> Result<()> {
    let idp = OidcProvider::start().await?;
    assert!(idp.issuer().starts_with("http://127.0.0.1:"));

    let token = idp.client_credentials_token(&["agents", "dba"]).await?;
    let (header, claims) = decode_jwt_unverified(&token)?;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    let jwks = idp.jwks().await?;
    assert_eq!(
        kids(&jwks),
        vec![header["kid"].as_str().context("kid")?.to_owned()]
    );

    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["aud"], OidcProvider::AUDIENCE);
    assert_eq!(claims["sub"], OidcProvider::CLIENT_ID);
    assert_eq!(claims["groups"], json!(["agents", "dba"]));
    let exp = claims["exp"].as_u64().context("exp")?;
    let now = unix_now();
    assert!(exp > now && exp <= now + 700, "exp {exp} now {now}");

    let none = idp.client_credentials_token(&[]).await?;
    assert_eq!(decode_jwt_unverified(&none)?.1["groups"], json!([]));

    let other = idp
        .client_credentials_token_for("agent-7", &["agents"])
        .await?;
    let (_, claims) = decode_jwt_unverified(&other)?;
    assert_eq!(claims["sub"], "agent-7");
    assert_eq!(claims["groups"], json!(["agents"]));
    Ok(())
}

#[tokio::test]
async fn discovery_and_wrong_client_secret() -> Result<()> {
    let idp = OidcProvider::start().await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let disco: Value = http
        .get(format!("{}/.well-known/openid-configuration", idp.issuer()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(disco["issuer"], idp.issuer());
    assert_eq!(disco["jwks_uri"], idp.jwks_uri());
    assert_eq!(disco["token_endpoint"], idp.token_endpoint());
    assert_eq!(
        disco["device_authorization_endpoint"],
        idp.device_authorization_endpoint()
    );

    let resp = http
        .post(idp.token_endpoint())
        .basic_auth(OidcProvider::CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    Ok(())
}

#[tokio::test]
async fn rotation_publishes_two_keys_and_signs_with_the_new_one() -> Result<()> {
    let idp = OidcProvider::start().await?;
    let before = idp.keys().await?;
    assert_eq!(before.published_kids, vec![before.signing_kid.clone()]);

    let after = idp.rotate().await?;
    assert_ne!(after.signing_kid, before.signing_kid);
    assert_eq!(
        after.published_kids,
        vec![after.signing_kid.clone(), before.signing_kid.clone()]
    );
    assert_eq!(
        kids(&idp.jwks().await?),
        vec![after.signing_kid.clone(), before.signing_kid.clone()]
    );

    let token = idp.client_credentials_token(&["agents"]).await?;
    assert_eq!(decode_jwt_unverified(&token)?.0["kid"], after.signing_kid);

    // A second rotation retires the first key.
    let third = idp.rotate().await?;
    assert_eq!(
        kids(&idp.jwks().await?),
        vec![third.signing_kid, after.signing_kid]
    );
    Ok(())
}

#[tokio::test]
async fn crafted_tokens_carry_what_the_test_asked_for() -> Result<()> {
    let idp = OidcProvider::start().await?;
    let keys = idp.keys().await?;

    let mut claims = idp.valid_claims("mallory", &["dba"]);
    claims["iss"] = json!("https://evil.example");
    claims["exp"] = json!(1);
    let token = idp.sign(json!({}), claims.clone()).await?;
    let (header, got) = decode_jwt_unverified(&token)?;
    assert_eq!(header["kid"], keys.signing_kid);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(got, claims);

    let token = idp
        .sign(json!({"kid": "nope", "alg": "none"}), claims.clone())
        .await?;
    let (header, _) = decode_jwt_unverified(&token)?;
    assert_eq!(header, json!({"alg": "none", "typ": "JWT", "kid": "nope"}));
    assert!(token.ends_with('.'), "alg none has an empty signature");

    let token = idp.sign(json!({"kid": null}), claims.clone()).await?;
    assert!(decode_jwt_unverified(&token)?.0.get("kid").is_none());

    let token = idp.sign_unpublished(Value::Null, claims).await?;
    let kid = decode_jwt_unverified(&token)?.0["kid"].clone();
    assert_eq!(kid, keys.unpublished_kid);
    assert!(!kids(&idp.jwks().await?).contains(&keys.unpublished_kid));

    let err = idp.sign(json!({"alg": "XX999"}), json!({})).await.err();
    assert!(err.is_some_and(|e| e.to_string().contains("unsupported alg")));
    let err = idp
        .sign(json!(["not", "an", "object"]), json!({}))
        .await
        .err();
    assert!(err.is_some_and(|e| e.to_string().contains("header must be a JSON object")));
    // Claims go out verbatim, even when they are not an object.
    let token = idp.sign(json!({}), json!("just a string")).await?;
    assert_eq!(decode_jwt_unverified(&token)?.1, json!("just a string"));
    Ok(())
}

#[tokio::test]
async fn device_flow_approve_and_deny() -> Result<()> {
    let idp = OidcProvider::start().await?;
    idp.set_user_groups("alice", &["dba"]).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let start = || async {
        let v: Value = http
            .post(idp.device_authorization_endpoint())
            .form(&[
                ("client_id", OidcProvider::CLI_CLIENT_ID),
                ("scope", "openid offline_access"),
            ])
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(v)
    };
    let poll = |device_code: String| {
        let http = http.clone();
        let url = idp.token_endpoint();
        async move {
            let v: Value = http
                .post(url)
                .form(&[
                    ("client_id", OidcProvider::CLI_CLIENT_ID),
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &device_code),
                ])
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v)
        }
    };

    let dev = start().await?;
    let device_code = dev["device_code"]
        .as_str()
        .context("device_code")?
        .to_owned();
    let user_code = dev["user_code"].as_str().context("user_code")?.to_owned();
    assert_eq!(
        poll(device_code.clone()).await?["error"],
        "authorization_pending"
    );
    idp.approve_device(&user_code, "alice").await?;
    let tokens = poll(device_code).await?;
    let access = tokens["access_token"].as_str().context("access_token")?;
    assert!(tokens["refresh_token"].is_string());
    let (_, claims) = decode_jwt_unverified(access)?;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], OidcProvider::AUDIENCE);
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["groups"], json!(["dba"]));

    let dev = start().await?;
    let device_code = dev["device_code"]
        .as_str()
        .context("device_code")?
        .to_owned();
    idp.deny_device(dev["user_code"].as_str().context("user_code")?, "bob")
        .await?;
    assert_eq!(poll(device_code).await?["error"], "access_denied");

    assert!(idp.approve_device("NOPE-NOPE", "bob").await.is_err());
    Ok(())
}

#[tokio::test]
async fn restart_keeps_issuer_and_keys() -> Result<()> {
    let mut idp = OidcProvider::start_with(OidcOptions {
        token_ttl_secs: Some(60),
        ..OidcOptions::default()
    })
    .await?;
    let issuer = idp.issuer().to_owned();
    let rotated = idp.rotate().await?;
    let token = idp.client_credentials_token(&[]).await?;
    let (_, claims) = decode_jwt_unverified(&token)?;
    let ttl = claims["exp"].as_u64().context("exp")? - claims["iat"].as_u64().context("iat")?;
    assert_eq!(ttl, 60);

    idp.stop().await?;
    assert!(
        idp.jwks().await.is_err(),
        "provider still answering after stop"
    );
    idp.restart().await?;
    assert_eq!(idp.issuer(), issuer);
    assert_eq!(idp.keys().await?.published_kids, rotated.published_kids);
    Ok(())
}
