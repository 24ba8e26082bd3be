//! `warden login` (the OIDC device-authorization grant, RFC 8628) and `warden logout`.
//!
//! The gateway's public auth configuration names the issuer, the CLI's public client and
//! the audience; discovery gives the endpoints. The code and URL go to stderr, the tokens
//! to the login cache ([`super::auth`]), never to the terminal.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use super::auth::{self, CachedLogin, TokenAnswer};
use crate::LoginArgs;

/// The scopes asked for: an OpenID login and a refresh token.
const SCOPE: &str = "openid offline_access";

/// The device-code grant type.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628's default polling interval.
const DEFAULT_INTERVAL: u64 = 5;

/// Longest wait for the person to approve, whatever the IdP says.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// A validated device authorization answer.
struct DeviceAuth {
    device_code: warden_types::Secret,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: Duration,
    interval: u64,
}

fn parse_device_auth(v: &Value) -> anyhow::Result<DeviceAuth> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let device_code = s("device_code")
        .filter(|c| !c.is_empty() && c.len() <= 4096 && c.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| anyhow!("no usable device_code"))?;
    let user_code = auth::printable("user_code", s("user_code").unwrap_or(""), 64)?;
    // Some IdPs (Google) spell it verification_url.
    let uri = s("verification_uri")
        .or_else(|| s("verification_url"))
        .unwrap_or("");
    let verification_uri = auth::endpoint_url(
        "verification_uri",
        &auth::printable("verification_uri", uri, 2048)?,
    )?;
    let verification_uri_complete = match s("verification_uri_complete") {
        Some(u) => Some(auth::endpoint_url(
            "verification_uri_complete",
            &auth::printable("verification_uri_complete", u, 2048)?,
        )?),
        None => None,
    };
    let expires_in = v
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|e| *e >= 1)
        .ok_or_else(|| anyhow!("no usable expires_in"))?;
    let interval = match v.get("interval") {
        None | Some(Value::Null) => DEFAULT_INTERVAL,
        Some(i) => i
            .as_u64()
            .ok_or_else(|| anyhow!("unusable interval"))?
            .clamp(1, 60),
    };
    Ok(DeviceAuth {
        device_code: warden_types::Secret::new(device_code),
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: Duration::from_secs(expires_in).min(MAX_WAIT),
        interval,
    })
}

/// Runs `warden login`.
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let gateway = auth::gateway_url(args.gateway.as_deref())?;
    let http = auth::http_client()?;

    // The gateway's configuration, unless the flags say everything it would.
    let flags_complete = args.issuer.is_some() && args.client_id.is_some();
    let config = match auth::fetch_auth_config(&http, &gateway).await {
        Ok(c) => c,
        Err(e) if flags_complete => {
            tracing::debug!(error = %format!("{e:#}"), "no auth config from the gateway; using the flags");
            auth::AuthConfig::default()
        }
        Err(e) => {
            return Err(e.context(
                "cannot learn how to sign in from the gateway (pass --issuer and --client-id to say it yourself)",
            ))
        }
    };
    let issuer = match args.issuer.as_deref() {
        Some(i) => auth::endpoint_url("--issuer", i.trim_end_matches('/'))?,
        None => config.issuer.clone().ok_or_else(|| {
            anyhow!("the gateway at {gateway} has no OIDC sign-in configured ([[identity.oidc]]); ask its operator for a token")
        })?,
    };
    let client_id = match args.client_id.clone() {
        Some(c) => c,
        None => config.cli_client_id.clone().ok_or_else(|| {
            anyhow!("the gateway at {gateway} names no CLI client ([api] cli_client_id); pass --client-id")
        })?,
    };
    let audience = args.audience.clone().or(config.audience.clone());

    // The gateway's discovery URL belongs to the gateway's issuer, not to one given by flag.
    let discovery_url = match &args.issuer {
        Some(_) => None,
        None => config.discovery_url.clone(),
    };
    let endpoints = auth::discover(&http, &issuer, discovery_url.as_deref()).await?;
    let mut form = vec![("client_id", client_id.as_str()), ("scope", SCOPE)];
    if let Some(a) = &audience {
        form.push(("resource", a.as_str()));
    }
    let resp = auth::post_form(&http, &endpoints.device_authorization, &form)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", endpoints.device_authorization))?;
    let (status, body) = auth::read_json(resp).await?;
    if status != 200 {
        let why = body
            .get("error_description")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map(auth::sanitize)
            .unwrap_or_else(|| format!("HTTP {status}"));
        bail!("the identity provider refused to start a device login: {why}");
    }
    let device = parse_device_auth(&body)
        .context("the identity provider's device authorization answer is unusable")?;

    eprintln!(
        "To sign in, open {} and enter the code: {}",
        device.verification_uri, device.user_code
    );
    if let Some(c) = &device.verification_uri_complete {
        eprintln!("(or open {c})");
    }
    eprintln!("Waiting for you to approve…");

    let deadline = Instant::now() + device.expires_in;
    let mut interval = device.interval;
    let tokens = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if Instant::now() >= deadline {
            bail!("the code expired before the sign-in was approved; run `warden login` again");
        }
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", device.device_code.expose()),
            ("client_id", client_id.as_str()),
        ];
        match auth::token_request(&http, &endpoints.token, &form).await? {
            TokenAnswer::Issued(t) => break t,
            TokenAnswer::Error(e) => match e.code.as_str() {
                "authorization_pending" => {}
                // RFC 8628 §3.5: add 5 seconds to the interval for this and later polls.
                "slow_down" => interval = (interval + 5).min(60),
                "access_denied" => bail!("the sign-in was denied at the identity provider"),
                "expired_token" => {
                    bail!("the code expired before the sign-in was approved; run `warden login` again")
                }
                _ => bail!("the identity provider refused the login: {e}"),
            },
        }
    };

    let mut cached = CachedLogin {
        gateway: gateway.clone(),
        issuer,
        client_id,
        audience,
        token_endpoint: endpoints.token,
        revocation_endpoint: endpoints.revocation,
        subject: None,
        postgres_listen: config.postgres_listen,
        access_token: String::new(),
        refresh_token: None,
        expires_at: 0,
        lifetime: 0,
    };
    let has_refresh = tokens.refresh.is_some();
    cached.set_tokens(tokens);
    let path = auth::save(&cached)?;
    eprintln!(
        "Logged in to {gateway} as {}. Tokens cached in {}{}.",
        cached.subject.as_deref().unwrap_or("(unknown subject)"),
        path.display(),
        if has_refresh {
            ""
        } else {
            " (no refresh token: run `warden login` again when it expires)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `warden logout`: deletes the cached tokens and revokes them at the IdP if it offers
/// revocation (best effort: the local copy is gone either way).
pub async fn logout(gateway: Option<String>) -> anyhow::Result<ExitCode> {
    let gateway = auth::gateway_url(gateway.as_deref())?;
    let Some(login) = auth::remove(&gateway)? else {
        eprintln!("Not logged in to {gateway}.");
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(endpoint) = &login.revocation_endpoint {
        let http = auth::http_client()?;
        let mut revoke = vec![(login.access_token.as_str(), "access_token")];
        if let Some(r) = &login.refresh_token {
            // The refresh token first: revoking it usually ends the whole grant.
            revoke.insert(0, (r.as_str(), "refresh_token"));
        }
        for (token, hint) in revoke {
            let form = [
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", login.client_id.as_str()),
            ];
            match auth::post_form(&http, endpoint, &form).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => eprintln!(
                    "warning: the identity provider did not revoke the {hint} (HTTP {})",
                    r.status().as_u16()
                ),
                Err(_) => eprintln!("warning: could not reach {endpoint} to revoke the {hint}"),
            }
        }
    }
    eprintln!("Logged out of {gateway}.");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn device_answers_are_validated() {
        let ok = parse_device_auth(&json!({
            "device_code": "dc", "user_code": "ABCD-EFGH",
            "verification_uri": "http://127.0.0.1:1/device",
            "verification_uri_complete": "http://127.0.0.1:1/device?user_code=ABCD-EFGH",
            "expires_in": 600, "interval": 0
        }))
        .unwrap();
        assert_eq!(ok.interval, 1, "a zero interval must not make us spin");
        assert_eq!(ok.user_code, "ABCD-EFGH");
        for bad in [
            json!({}),
            json!({"device_code": "dc", "user_code": "X\u{1b}]0;pwned\u{7}", "verification_uri": "http://127.0.0.1/d", "expires_in": 5}),
            json!({"device_code": "dc", "user_code": "X", "verification_uri": "http://evil.example/d", "expires_in": 5}),
            json!({"device_code": "dc", "user_code": "X", "verification_uri": "http://127.0.0.1/d"}),
            json!({"device_code": "d c", "user_code": "X", "verification_uri": "http://127.0.0.1/d", "expires_in": 5}),
        ] {
            assert!(parse_device_auth(&bad).is_err(), "{bad} accepted");
        }
    }
}
