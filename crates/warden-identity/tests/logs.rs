//! Log lines name the issuer, kid and reason, and never carry a token or key.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{claims, claims_with, now, Idp, MemStore, TestKey, AUDIENCE};
use warden_identity::{
    generate_api_key, ApiKeyRecord, Authenticator, BuiltinIssuer, BuiltinSettings, OidcSettings,
};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_never_contain_credentials() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("issuer.pem");
    let builtin = BuiltinIssuer::load_or_create(BuiltinSettings::new(&key_path)).expect("issuer");
    let key = TestKey::rsa("kid-under-test");
    let idp = Idp::start(&[&key]).await;
    let store = Arc::new(MemStore::default());
    let api_key = generate_api_key();
    store.add_key(ApiKeyRecord {
        id: api_key.id.clone(),
        name: "agent".into(),
        groups: vec![],
        secret_hash: api_key.secret_hash.clone(),
        expires_at: None,
        revoked: false,
    });
    let settings = OidcSettings::new(idp.issuer.clone(), vec![AUDIENCE.into()]);
    let auth = Authenticator::new(vec![settings], Some(builtin.clone()), store).expect("auth");

    let issued = builtin
        .issue("svc", &[], Duration::from_secs(60), None)
        .expect("issued");
    let secrets: Vec<String> = vec![
        key.token(&claims(&idp.issuer)),
        key.token(&claims_with(&idp.issuer, json!({"exp": now() - 1000}))),
        TestKey::rsa("kid-under-test").token(&claims(&idp.issuer)),
        issued.token.expose().to_owned(),
        api_key.plaintext.expose().to_owned(),
        format!("wdk_{}_{}", api_key.id, "0".repeat(64)),
        "hunter2-password".to_owned(),
    ];
    for s in &secrets {
        let _ = auth.authenticate(s).await;
    }
    idp.set_up(false);
    let _ = auth
        .authenticate(&TestKey::ed25519("x").token(&claims(&idp.issuer)))
        .await;

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
    assert!(logs.contains("credential rejected"), "{logs}");
    assert!(logs.contains("kid-under-test"), "{logs}");
    assert!(logs.contains(&idp.issuer), "{logs}");
    assert!(
        logs.contains("reason=\"expired\"") || logs.contains("reason=expired"),
        "{logs}"
    );
    assert!(logs.contains("bad_signature"), "{logs}");
    for s in &secrets {
        // No token, and no signature (JWT) or secret (API key) part of one. Split API keys
        // at '_' only: base64url signatures may contain '_' themselves.
        let sep = if s.starts_with("wdk_") { '_' } else { '.' };
        let tail = s.rsplit(sep).next().expect("tail");
        assert!(tail.len() >= 16);
        assert!(!logs.contains(s.as_str()), "token in logs");
        assert!(!logs.contains(tail), "credential part {tail:.12}… in logs");
    }
    let pem = std::fs::read_to_string(&key_path).expect("key");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(line), "private key in logs");
    }
}
