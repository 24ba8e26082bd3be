use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    let path = Path::new("warden.toml");
    let c = Config::from_toml(path, text)?;
    c.validate(path)?;
    Ok(c)
}

fn messages(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("config should be rejected")
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const GOOD: &str = r#"
[gateway]
postgres_listen = "127.0.0.1:16000"
data_dir = "/tmp/w"

[[identity.oidc]]
issuer = "http://127.0.0.1:4444"
audience = "urn:warden"

[[connections]]
name = "app"
target = "postgres://127.0.0.1:5432/app"
allow_groups = ["agents", "dba"]
username = "app_agent"
password_env = "WARDEN_CONFIG_TEST_PW"
idle_timeout = "5m"

[[connections.roles]]
groups = ["dba"]
username = "app_dba"
password_file = "/dev/null"
"#;

#[test]
fn good_config_parses_with_defaults() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "s3cret");
    let c = parse(GOOD).expect("valid");
    assert_eq!(c.gateway.postgres_listen.port(), 16000);
    assert_eq!(c.gateway.http_listen.port(), 8080);
    assert_eq!(c.identity.oidc[0].groups_claim, "groups");
    assert_eq!(
        c.identity.oidc[0].audience.to_vec(),
        vec!["urn:warden".to_string()]
    );
    let app = c.connection("app").expect("app");
    assert_eq!(app.idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(
        app.password_source().load().unwrap().unwrap().expose(),
        "s3cret"
    );
    assert_eq!(c.store_url(), "sqlite:///tmp/w/warden.db");
    assert_eq!(app.target_url().unwrap().port, 5432);
}

#[test]
fn unknown_key_names_key_and_line() {
    let errs = messages("[gateway]\npostgres_listen = \"127.0.0.1:1\"\nbogus = 1\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("warden.toml:3:"), "{}", errs[0]);
    assert!(errs[0].contains("bogus"), "{}", errs[0]);
}

#[test]
fn wrong_type_names_key() {
    let errs = messages("[[connections]]\nname = 5\n");
    assert!(errs[0].contains("connections[0].name"), "{}", errs[0]);
    assert!(errs[0].contains("warden.toml:2:"), "{}", errs[0]);
}

#[test]
fn syntax_error_has_position() {
    let errs = messages("[gateway\n");
    assert!(errs[0].starts_with("warden.toml:1:"), "{}", errs[0]);
}

#[test]
fn bad_duration_is_reported() {
    let errs = messages(
        "[[connections]]\nname='a'\ntarget='postgres://h/d'\nallow_groups=['g']\nusername='u'\nidle_timeout='soon'\n",
    );
    assert!(
        errs[0].contains("connections[0].idle_timeout"),
        "{}",
        errs[0]
    );
}

#[test]
fn every_semantic_problem_is_reported() {
    let errs = messages(
        r#"
[gateway]
tls_cert = "/x.pem"
max_message_bytes = 10
session_threads = 5000

[[identity.oidc]]
issuer = "ftp://idp"
audience = []
algorithms = ["HS256", "none"]

[[connections]]
name = "bad name!"
target = "postgres://u:hunter2@db/app"
allow_groups = []
password_env = "WARDEN_DEFINITELY_UNSET_VAR"

[[connections]]
name = "dup"
target = "mysql://h/d"
allow_groups = ["g"]
username = "u"
password_env = "A"
password_file = "/b"

[[connections]]
name = "dup"
target = "postgres://h"
allow_groups = ["g"]
username = "u"
credentials = "jit"
"#,
    );
    let all = errs.join("\n");
    for needle in [
        "gateway.tls_cert",
        "gateway.max_message_bytes",
        "gateway.session_threads: must be at most 1024",
        "identity.oidc[0].issuer",
        "identity.oidc[0].audience",
        "\"HS256\" is not allowed",
        "\"none\" is not allowed",
        "connections[0].name",
        "connections[0].target: must not contain a password",
        "connections[0].allow_groups",
        "WARDEN_DEFINITELY_UNSET_VAR is not set",
        "connections[1].target: scheme must be postgres://",
        "connections[1].password_env: set password_env or password_file, not both",
        "connections[2].name: connection \"dup\" is defined twice",
        "connections[2].target: a database name is required",
        "connections[2].jit: credentials = \"jit\" needs a [connections.jit] section",
        "connections[2].username: with credentials = \"jit\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(!all.contains("hunter2"), "password leaked: {all}");
    assert!(all.lines().all(|l| l.starts_with("warden.toml: ")));
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = "a = ".to_string() + &"[".repeat(10_000);
    for text in [
        "",
        "\0\0\0",
        "[[connections]]",
        "[[connections]]\nname='x'\ntarget='postgres://[::1/x'\n",
        &deep,
        "[gateway]\npostgres_listen = \"nope\"\n",
        "[gateway]\nmax_message_bytes = -1\n",
        "[gateway]\nsession_threads = -1\n",
        "[gateway]\nsession_threads = \"all\"\n",
        "[gateway]\nhandshake_timeout = \"99999999999999999999y\"\n",
    ] {
        let _ = parse(text);
    }
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _ in 0..2000 {
        let mut s = GOOD.as_bytes().to_vec();
        for _ in 0..4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng as usize) % s.len();
            s[i] = (rng >> 32) as u8 & 0x7f;
        }
        let _ = parse(&String::from_utf8_lossy(&s));
    }
}

#[test]
fn target_urls() {
    let t = TargetUrl::parse("postgresql://agent@[::1]:6000/my%20db").unwrap();
    assert_eq!(t.host, "::1");
    assert_eq!(t.port, 6000);
    assert_eq!(t.database, "my db");
    assert_eq!(t.user.as_deref(), Some("agent"));
    assert!(TargetUrl::parse("postgres://h/d?sslmode=require").is_err());
    assert!(TargetUrl::parse("postgres://h/d?foo=bar").is_err());
    assert!(TargetUrl::parse("postgres:///d").is_err());
    assert!(TargetUrl::parse("postgres://h/d%zz").is_err());
}

#[test]
fn secret_file_is_trimmed() {
    let dir = tempfile_dir();
    let p = dir.join("pw");
    std::fs::write(&p, "pw-from-file\n").unwrap();
    let s = SecretSource::File(p).load().unwrap().unwrap();
    assert_eq!(s.expose(), "pw-from-file");
    let missing = SecretSource::File(dir.join("nope")).load().unwrap_err();
    assert!(missing.contains("cannot read password file"));
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("warden-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn secrets_can_be_skipped_for_offline_commands() {
    let dir = tempfile_dir();
    let p = dir.join("offline.toml");
    std::fs::write(
        &p,
        "[[connections]]\nname='a'\ntarget='postgres://h/d'\nallow_groups=['g']\nusername='u'\npassword_env='WARDEN_OFFLINE_UNSET'\n",
    )
    .unwrap();
    assert!(Config::load(&p).is_err());
    assert!(Config::load_without_secrets(&p).is_ok());
}

const JIT: &str = r#"
[[connections]]
name = "app"
target = "postgres://127.0.0.1:5432/app"
allow_groups = ["agents"]
credentials = "jit"

[connections.jit]
admin_username = "warden_admin"
admin_password_env = "WARDEN_CONFIG_TEST_PW"
grant_roles = ["app_readonly"]
grants = ["GRANT SELECT ON public.orders TO {role}"]
ttl = "15m"
"#;

#[test]
fn jit_connection_parses_with_defaults() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "x");
    let c = parse(JIT).unwrap();
    let j = c.connections[0].jit.as_ref().unwrap();
    assert_eq!(c.connections[0].credentials, CredentialsMode::Jit);
    assert_eq!(j.role_prefix, "warden_");
    assert_eq!(j.connection_limit, 1);
    assert_eq!(j.owned_objects, OwnedObjects::Reassign);
    assert_eq!(j.reassign_target(), "warden_admin");
    assert_eq!(j.ttl, Duration::from_secs(900));
    assert!(j.max_ttl >= j.ttl);
}

#[test]
fn jit_problems_are_reported() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "x");
    let bad = JIT
        .replace(
            "ttl = \"15m\"",
            "ttl = \"1s\"\nmax_ttl = \"0s\"\nrole_prefix = \"pg_x\"\nconnection_limit = 0\nadmin_pool_size = 0\nowned_objects = \"drop\"",
        )
        .replace("TO {role}", "TO someone_else")
        .replace("admin_password_env = \"WARDEN_CONFIG_TEST_PW\"", "admin_password_env = \"WARDEN_DEFINITELY_UNSET_VAR\"")
        .replace("credentials = \"jit\"", "credentials = \"jit\"\nusername = \"u\"");
    let all = messages(&bad).join("\n");
    for needle in [
        "connections[0].jit.ttl",
        "connections[0].jit.max_ttl",
        "connections[0].jit.role_prefix",
        "connections[0].jit.connection_limit",
        "connections[0].jit.admin_pool_size",
        "connections[0].jit.grants: \"GRANT SELECT ON public.orders TO someone_else\" must mention {role}",
        "connections[0].jit.admin_password_env: environment variable WARDEN_DEFINITELY_UNSET_VAR is not set",
        "connections[0].username: with credentials = \"jit\"",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let stray = JIT.replace("credentials = \"jit\"", "username = \"u\"");
    let all = messages(&stray).join("\n");
    assert!(
        all.contains("only used with credentials = \"jit\""),
        "{all}"
    );
    let url_user = JIT.replace("127.0.0.1:5432/app", "someone@127.0.0.1:5432/app");
    let all = messages(&url_user).join("\n");
    assert!(all.contains("must not name a user"), "{all}");
    let nothing = JIT
        .replace("grant_roles = [\"app_readonly\"]", "")
        .replace("grants = [\"GRANT SELECT ON public.orders TO {role}\"]", "");
    let all = messages(&nothing).join("\n");
    assert!(all.contains("jit.grant_roles"), "{all}");
}

#[test]
fn statement_rules_are_checked() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "x");
    let ok = format!(
        "{GOOD}\n[[connections.rules]]\naction = \"deny\"\nclasses = [\"destructive\"]\nexcept_groups = [\"dba\"]\nmessage = \"ask a DBA\"\n"
    );
    let c = parse(&ok).unwrap();
    assert_eq!(c.connections[0].rules[0].action, RuleAction::Deny);
    let bad =
        format!("{GOOD}\n[[connections.rules]]\naction = \"review\"\nclasses = [\"dangerous\"]\n");
    let all = messages(&bad).join("\n");
    assert!(
        all.contains("connections[0].rules[0].approver_groups: a review rule needs"),
        "{all}"
    );
    assert!(
        all.contains("connections[0].rules[0].classes: \"dangerous\" is not one of"),
        "{all}"
    );
    let unknown_action = format!("{GOOD}\n[[connections.rules]]\naction = \"maybe\"\n");
    assert!(parse(&unknown_action).is_err());
}

#[test]
fn review_rules_webhooks_and_access_requests_are_checked() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "x");
    std::env::set_var("WARDEN_CONFIG_TEST_HOOK", "0123456789abcdef0123");
    std::env::set_var("WARDEN_CONFIG_TEST_SHORT_HOOK", "short");
    let ok = format!(
        "{GOOD}\n[[connections.rules]]\naction = \"review\"\nclasses = [\"destructive\"]\napprover_groups = [\"dba\"]\napprovals = 2\ntimeout = \"90s\"\n\
         [connections.webhook]\nurl = \"https://hooks.example/T1\"\nsecret_env = \"WARDEN_CONFIG_TEST_HOOK\"\n\
         [connections.access_requests]\napprover_groups = [\"dba\"]\nmax_duration = \"1h\"\n"
    );
    let c = parse(&ok).unwrap();
    let r = &c.connections[0].rules[0];
    assert_eq!(r.action, RuleAction::Review);
    assert_eq!(r.approvals, 2);
    assert_eq!(r.timeout, std::time::Duration::from_secs(90));
    let w = c.connections[0].webhook.as_ref().unwrap();
    assert_eq!(w.max_attempts, 5);
    let a = c.connections[0].access_requests.as_ref().unwrap();
    assert_eq!(a.max_duration, std::time::Duration::from_secs(3600));
    assert_eq!(a.timeout, std::time::Duration::from_secs(300));

    let bad = format!(
        "{GOOD}\n[[connections.rules]]\naction = \"review\"\napprover_groups = [\"dba\"]\napprovals = 0\ntimeout = \"0s\"\n\
         [[connections.rules]]\naction = \"deny\"\napprover_groups = [\"dba\"]\n\
         [connections.webhook]\nurl = \"ftp://x\"\nsecret_env = \"WARDEN_CONFIG_TEST_SHORT_HOOK\"\nmax_attempts = 0\n\
         [connections.access_requests]\napprover_groups = []\nmax_duration = \"0s\"\n"
    );
    let all = messages(&bad).join("\n");
    for want in [
        "connections[0].rules[0].approvals: must be between 1 and 10",
        "connections[0].rules[0].timeout: must be between 1s and 24h",
        "connections[0].rules[1].approver_groups: only a review rule has approvers",
        "connections[0].webhook.url: must be an http(s) URL",
        "connections[0].webhook.secret_env: the signing secret must be at least 16 bytes",
        "connections[0].webhook.max_attempts: must be between 1 and 20",
        "connections[0].access_requests.approver_groups: list at least one group",
        "connections[0].access_requests.max_duration: must be at least 1s",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert!(
        !all.contains("short"),
        "a secret leaked into an error: {all}"
    );
    let no_secret = format!("{GOOD}\n[connections.webhook]\nurl = \"http://127.0.0.1:9/h\"\n");
    let all = messages(&no_secret).join("\n");
    assert!(all.contains("a webhook needs a signing secret"), "{all}");
}

#[test]
fn masking_rules_are_checked() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "x");
    std::env::set_var("WARDEN_CONFIG_TEST_MASK_KEY", "0123456789abcdef0123");
    std::env::set_var("WARDEN_CONFIG_TEST_SHORT_MASK_KEY", "tiny-secret");
    let ok = format!(
        "{}\
         [[connections.masking]]\ncolumns = [\"public.customers.email\", \"public.customers.ssn\"]\nexempt_groups = [\"dba\"]\nstrict = true\nrefuse_in = [\"where\", \"order_by\"]\n\
         [[connections.masking]]\njson_paths = [\"public.customers.profile:$.contact.email\"]\nstrategy = \"hash\"\n\
         [[connections.masking]]\ncolumns = [\"*.*.*\"]\ndetectors = [\"payment_card\", \"emp\"]\npatterns = [{{ name = \"emp\", regex = \"E-[0-9]{{6}}\" }}]\nstrategy = \"partial\"\nkeep_last = 2\n",
        with_key("WARDEN_CONFIG_TEST_MASK_KEY")
    );
    let c = parse(&ok).unwrap();
    let m = &c.connections[0].masking;
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].strategy, "redact");
    assert!(m[0].strict);
    assert_eq!(m[1].strategy, "hash");
    assert_eq!(m[2].keep_last, Some(2));

    let bad = format!(
        "{}\
         [[connections.masking]]\nstrategy = \"shred\"\n\
         [[connections.masking]]\ncolumns = [\"customers.email\"]\nrefuse_in = [\"select\"]\nkeep_last = 3\n\
         [[connections.masking]]\njson_paths = [\"public.customers.profile\", \"public.customers.profile:contact\"]\n\
         [[connections.masking]]\ncolumns = [\"*.*.*\"]\ndetectors = [\"dna\"]\npatterns = [{{ name = \"x\", regex = \"(\" }}]\n",
        with_key("WARDEN_CONFIG_TEST_SHORT_MASK_KEY")
            .replace("[[connections.roles]]", "[connections.guardrails]\nmax_rows = 0\n\n[[connections.roles]]")
    );
    let all = messages(&bad).join("\n");
    for want in [
        "connections[0].masking[0].columns: a masking rule needs columns or json_paths",
        "connections[0].masking[0].strategy: \"shred\" is not one of",
        "connections[0].masking[1].columns: \"customers.email\" is not schema.table.column",
        "connections[0].masking[1].refuse_in: \"select\" is not one of",
        "connections[0].masking[1].keep_last: only the partial strategy",
        "connections[0].masking[2].json_paths: \"public.customers.profile\" is not",
        "connections[0].masking[2].json_paths: \"public.customers.profile:contact\"",
        "connections[0].masking[3].detectors: \"dna\" is not one of",
        "connections[0].masking[3].patterns:",
        "connections[0].masking_key_env: the masking key must be at least 16 bytes",
        "connections[0].guardrails.max_rows: must be at least 1",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert!(!all.contains("tiny-secret"), "a secret leaked: {all}");
}

fn with_key(var: &str) -> String {
    GOOD.replace(
        "idle_timeout = \"5m\"\n",
        &format!("idle_timeout = \"5m\"\nmasking_key_env = \"{var}\"\n"),
    )
}

#[test]
fn api_roles_and_sign_in_clients() {
    std::env::set_var("WARDEN_CONFIG_TEST_PW", "s3cret");
    let c = parse(GOOD).expect("valid");
    assert_eq!(c.api.approver_groups, ["warden-approvers"]);
    assert_eq!(c.api.console_client_id, None);
    let with = GOOD.replacen(
        "[[identity.oidc]]",
        "[api]\nconsole_client_id = \"warden-console\"\ncli_client_id = \"warden-cli\"\napprover_groups = [\"dba\"]\n\n[[identity.oidc]]",
        1,
    );
    let c = parse(&with).expect("valid");
    assert_eq!(c.api.console_client_id.as_deref(), Some("warden-console"));
    assert_eq!(c.api.cli_client_id.as_deref(), Some("warden-cli"));
    assert_eq!(c.api.approver_groups, ["dba"]);
    let empty = GOOD.replacen(
        "[[identity.oidc]]",
        "[api]\nconsole_client_id = \" \"\n\n[[identity.oidc]]",
        1,
    );
    let errs = messages(&empty);
    assert!(
        errs.iter().any(|e| e.contains("api.console_client_id")),
        "{errs:?}"
    );
}
