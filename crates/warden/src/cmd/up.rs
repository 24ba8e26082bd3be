//! `warden up`: the gateway on embedded defaults, with a token printed for the user.

use std::process::ExitCode;
use std::time::Duration;

use warden_config::{Config, ConnectionConfig, MaskingRuleConfig, RuleAction, StatementRuleConfig};

use super::gateway::{apply, init_tracing, Gateway};
use crate::Overrides;

/// Where `warden up` keeps the target password taken from `$DATABASE_URL` (process-local).
const TARGET_PASSWORD_ENV: &str = "WARDEN_UP_TARGET_PASSWORD";
/// The group the quickstart's connection allows, and the printed token carries.
const LOCAL_GROUP: &str = "local-users";
/// The group of the console token `warden up` prints: administrators and approvers, exempt
/// from masking. A different subject from the psql token, since nobody approves their own
/// statement.
const OPERATOR_GROUP: &str = "local-operators";

/// Builds the default configuration for `target` (a postgres URL, password removed):
/// destructive statements held for an operator's approval, and columns named like
/// personal data masked, so the quickstart shows both at once.
pub fn default_config(target: &str, user: &str, has_password: bool) -> Config {
    let mut config = Config::default();
    config.api.admin_groups.push(OPERATOR_GROUP.into());
    config.api.approver_groups.push(OPERATOR_GROUP.into());
    config.connections.push(ConnectionConfig {
        name: "local".into(),
        kind: Default::default(),
        target: target.to_owned(),
        allow_groups: vec![LOCAL_GROUP.into()],
        credentials: Default::default(),
        jit: None,
        username: Some(user.to_owned()),
        password_env: has_password.then(|| TARGET_PASSWORD_ENV.to_owned()),
        password_file: None,
        roles: vec![],
        idle_timeout: None,
        max_session: None,
        rules: vec![StatementRuleConfig {
            action: RuleAction::Review,
            classes: vec!["destructive".into()],
            kinds: vec![],
            tables: vec![],
            functions: vec![],
            groups: vec![],
            except_groups: vec![],
            message: Some("destructive statements need an operator's approval".into()),
            approver_groups: vec![OPERATOR_GROUP.into()],
            approvals: 1,
            timeout: Duration::from_secs(600),
        }],
        webhook: None,
        access_requests: None,
        masking: vec![MaskingRuleConfig {
            name: Some("personal-data".into()),
            columns: ["email", "ssn", "phone", "card_number"]
                .map(|c| format!("*.*.{c}"))
                .to_vec(),
            json_paths: vec![],
            detectors: vec![],
            patterns: vec![],
            strategy: "partial".into(),
            keep_last: None,
            placeholder: None,
            exempt_groups: vec![OPERATOR_GROUP.into()],
            strict: false,
            refuse_in: vec![],
        }],
        masking_key_env: None,
        masking_key_file: None,
        guardrails: None,
    });
    config
}

/// Splits a password out of a URL so it never sits in configuration text.
fn split_target(raw: &str) -> anyhow::Result<(String, String, Option<String>)> {
    let mut url = url_parse(raw)?;
    let password = url.password().map(|p| p.to_owned());
    let _ = url.set_password(None);
    let user = if url.username().is_empty() {
        "postgres".to_owned()
    } else {
        url.username().to_owned()
    };
    let _ = url.set_username("");
    Ok((url.to_string(), user, password))
}

fn url_parse(raw: &str) -> anyhow::Result<url::Url> {
    url::Url::parse(raw).map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid URL: {e}"))
}

/// Runs the quickstart.
pub async fn run(overrides: Overrides, token_ttl: Duration) -> anyhow::Result<ExitCode> {
    init_tracing();
    let raw = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/postgres".to_owned());
    let (target, user, password) = split_target(&raw)?;
    if let Some(pw) = password {
        // Only this process sees it; the configuration names the variable, not the value.
        std::env::set_var(TARGET_PASSWORD_ENV, pw);
    }
    let mut config = default_config(
        &target,
        &user,
        std::env::var_os(TARGET_PASSWORD_ENV).is_some(),
    );
    apply(&mut config, &overrides);
    config
        .validate(std::path::Path::new("<warden up defaults>"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let gw = Gateway::build(&config).await?;
    let who = std::env::var("USER").unwrap_or_else(|_| "you".into());
    let issuer = gw
        .issuer()
        .ok_or_else(|| anyhow::anyhow!("the built-in issuer is disabled"))?;
    let groups = vec![LOCAL_GROUP.to_owned()];
    let token = issuer.issue(&who, &groups, token_ttl, None)?;
    gw.store
        .insert_token(&token.jti, &who, &groups, token.expires_at)
        .await?;

    let operator = format!("{who}-operator");
    let operator_groups = vec![OPERATOR_GROUP.to_owned()];
    let console_token = issuer.issue(&operator, &operator_groups, token_ttl, None)?;
    gw.store
        .insert_token(
            &console_token.jti,
            &operator,
            &operator_groups,
            console_token.expires_at,
        )
        .await?;

    let target_url = config.connections[0]
        .target_url()
        .map_err(|e| anyhow::anyhow!(e))?;
    let reachable = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((target_url.host.as_str(), target_url.port)),
    )
    .await;
    let target_note = match reachable {
        Ok(Ok(_)) => format!(
            "target {}:{} is reachable",
            target_url.host, target_url.port
        ),
        Ok(Err(e)) => format!(
            "WARNING: target {}:{} is not reachable ({e}); start PostgreSQL or set DATABASE_URL",
            target_url.host, target_url.port
        ),
        Err(_) => format!(
            "WARNING: target {}:{} did not answer within 2s; start PostgreSQL or set DATABASE_URL",
            target_url.host, target_url.port
        ),
    };
    let secret = token.token;
    let console_secret = console_token.token;
    gw.serve(move |pg, http| {
        println!("Warden is up.");
        println!("  data directory : {}", config.gateway.data_dir.display());
        println!("  connection     : local -> {target} as {user} ({target_note})");
        println!("  health/metrics : http://{http}/healthz  http://{http}/metrics");
        // The token rides in the fragment, which browsers never send to a server; the
        // console moves it to session storage and clears the address bar.
        println!(
            "  console        : http://{http}/#token={}  (as {operator}, group {OPERATOR_GROUP}: approves, sees unmasked)",
            console_secret.expose()
        );
        println!();
        println!("Connect (token for {who}, group {LOCAL_GROUP}, valid {}):", humantime::format_duration(token_ttl));
        println!(
            "  psql \"host={} port={} dbname=local user={who} sslmode=require password={}\"",
            pg.ip(),
            pg.port(),
            secret.expose()
        );
        println!();
        println!("Try next (in that psql):");
        println!("  - a masked column:  create table people (name text, email text); insert into people values ('Ada', 'ada@example.com'); select * from people;");
        println!("  - a held DROP:      drop table people;   -- waits until you approve it in the console, or: warden reviews approve ID");
        println!("  - a bad token is refused:   psql \"dbname=local host={} port={} password=nope\"", pg.ip(), pg.port());
        println!("  - a token for an agent:      warden tokens issue --name my-agent --groups {LOCAL_GROUP} --ttl 1h");
        println!("  - the audit of every login:  sqlite3 {}/warden.db 'select * from auth_audit'", config.gateway.data_dir.display());
        println!("Stop with Ctrl-C.");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_split_out_of_database_url() {
        let (t, u, p) = split_target("postgres://alice:s3cret@db.local:5433/app").unwrap();
        assert_eq!(t, "postgres://db.local:5433/app");
        assert_eq!(u, "alice");
        assert_eq!(p.as_deref(), Some("s3cret"));
        let (t, u, p) = split_target("postgres://127.0.0.1:5432/postgres").unwrap();
        assert_eq!(
            (t.as_str(), u.as_str(), p),
            ("postgres://127.0.0.1:5432/postgres", "postgres", None)
        );
        assert!(split_target("::nope").is_err());
    }

    #[test]
    fn default_config_is_valid() {
        let c = default_config("postgres://127.0.0.1:5432/postgres", "postgres", false);
        c.validate(std::path::Path::new("x")).unwrap();
    }
}
