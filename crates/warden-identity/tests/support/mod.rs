//! Test support: a loopback OIDC provider (discovery + JWKS over plain HTTP/1.1 with fetch
//! counters and a switch to take it down), signing keys, token builders and an in-memory
//! credential store.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warden_identity::{ApiKeyRecord, CredentialStore, StoreUnavailable};

pub const AUDIENCE: &str = "urn:warden";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).expect("json"))
}

/// `header.payload.signature` with a caller-supplied signing function.
pub fn sign_raw(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, msg).as_ref().to_vec()
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec256(EcdsaKeyPair),
    Ec384(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with its kid.
pub struct TestKey {
    pub kid: String,
    signer: Signer,
}

impl TestKey {
    pub fn rsa(kid: &str) -> TestKey {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).expect("rsa keygen");
        TestKey {
            kid: kid.into(),
            signer: Signer::Rsa(kp),
        }
    }

    pub fn ec256(kid: &str) -> TestKey {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec keygen");
        TestKey {
            kid: kid.into(),
            signer: Signer::Ec256(kp),
        }
    }

    pub fn ec384(kid: &str) -> TestKey {
        let kp = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).expect("ec keygen");
        TestKey {
            kid: kid.into(),
            signer: Signer::Ec384(kp),
        }
    }

    pub fn ed25519(kid: &str) -> TestKey {
        let kp = Ed25519KeyPair::generate().expect("ed keygen");
        TestKey {
            kid: kid.into(),
            signer: Signer::Ed(kp),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(kp) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                json!({"kty": "RSA", "use": "sig", "kid": self.kid, "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec256(kp) | Signer::Ec384(kp) => {
                let point = kp.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "kid": self.kid,
                       "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Signer::Ed(kp) => json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                                      "x": b64(kp.public_key().as_ref())}),
        }
    }

    /// The raw public key bytes (DER RSAPublicKey for RSA).
    pub fn public_bytes(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(kp) => kp.public_key().as_ref().to_vec(),
            Signer::Ec256(kp) | Signer::Ec384(kp) => kp.public_key().as_ref().to_vec(),
            Signer::Ed(kp) => kp.public_key().as_ref().to_vec(),
        }
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(&self) -> &'static str {
        match &self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ec256(_) => "ES256",
            Signer::Ec384(_) => "ES384",
            Signer::Ed(_) => "EdDSA",
        }
    }

    /// Signs `msg` for `alg` (RS*/PS* for RSA keys).
    pub fn sign_bytes(&self, alg: &str, msg: &[u8]) -> Vec<u8> {
        use aws_lc_rs::signature as s;
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(kp) => {
                let padding: &'static dyn s::RsaEncoding = match alg {
                    "RS256" => &s::RSA_PKCS1_SHA256,
                    "RS384" => &s::RSA_PKCS1_SHA384,
                    "RS512" => &s::RSA_PKCS1_SHA512,
                    "PS256" => &s::RSA_PSS_SHA256,
                    "PS384" => &s::RSA_PSS_SHA384,
                    "PS512" => &s::RSA_PSS_SHA512,
                    other => panic!("RSA key cannot sign {other}"),
                };
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, msg, &mut sig).expect("rsa sign");
                sig
            }
            Signer::Ec256(kp) | Signer::Ec384(kp) => {
                kp.sign(&rng, msg).expect("ec sign").as_ref().to_vec()
            }
            Signer::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    /// A token with header `{alg, typ, kid}` signed by this key.
    pub fn token_with(&self, alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "typ": "JWT", "kid": self.kid});
        sign_raw(&header, claims, |m| self.sign_bytes(alg, m))
    }

    /// A token signed with this key's default algorithm.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with(self.default_alg(), claims)
    }
}

/// Valid claims for `issuer`: sub alice, groups [agents], 5 minutes left.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "alice",
        "preferred_username": "alice@example.com",
        "groups": ["agents", "dba"],
        "azp": "crewai-worker",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "jti-1",
    })
}

/// `claims` with fields replaced (`null` removes a field).
pub fn claims_with(issuer: &str, changes: Value) -> Value {
    let mut c = claims(issuer);
    if let (Some(map), Some(changes)) = (c.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

struct IdpState {
    jwks: Value,
    up: bool,
    discovery_issuer: Option<String>,
    jwks_delay: Duration,
}

/// A loopback OIDC provider serving discovery and JWKS.
pub struct Idp {
    pub issuer: String,
    state: Arc<Mutex<IdpState>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Idp {
    pub async fn start(keys: &[&TestKey]) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(IdpState {
            jwks: jwks(keys),
            up: true,
            discovery_issuer: None,
            jwks_delay: Duration::ZERO,
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery_fetches = Arc::new(AtomicUsize::new(0));
        let task = {
            let (state, issuer) = (state.clone(), issuer.clone());
            let (jf, df) = (jwks_fetches.clone(), discovery_fetches.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut sock, _)) = listener.accept().await else {
                        continue;
                    };
                    let (state, issuer, jf, df) =
                        (state.clone(), issuer.clone(), jf.clone(), df.clone());
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buf);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let (up, disc_iss, jwks, delay) = {
                            let s = state.lock().expect("lock");
                            (
                                s.up,
                                s.discovery_issuer.clone(),
                                s.jwks.to_string(),
                                s.jwks_delay,
                            )
                        };
                        let reply = if path == "/.well-known/openid-configuration" {
                            df.fetch_add(1, Ordering::SeqCst);
                            if up {
                                let doc = json!({
                                    "issuer": disc_iss.unwrap_or_else(|| issuer.clone()),
                                    "jwks_uri": format!("{issuer}/jwks"),
                                });
                                response("200 OK", &doc.to_string())
                            } else {
                                response("503 Service Unavailable", "{}")
                            }
                        } else if path == "/jwks" {
                            jf.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(delay).await;
                            if up {
                                response("200 OK", &jwks)
                            } else {
                                response("503 Service Unavailable", "{}")
                            }
                        } else {
                            response("404 Not Found", "{}")
                        };
                        let _ = sock.write_all(reply.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    });
                }
            })
        };
        Idp {
            issuer,
            state,
            jwks_fetches,
            discovery_fetches,
            task,
        }
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.set_jwks(jwks(keys));
    }

    pub fn set_jwks(&self, doc: Value) {
        self.state.lock().expect("lock").jwks = doc;
    }

    pub fn set_up(&self, up: bool) {
        self.state.lock().expect("lock").up = up;
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.state.lock().expect("lock").discovery_issuer = Some(issuer.to_owned());
    }

    pub fn set_jwks_delay(&self, delay: Duration) {
        self.state.lock().expect("lock").jwks_delay = delay;
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.discovery_fetches.load(Ordering::SeqCst)
    }
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// An in-memory credential store with a switch to make it fail.
#[derive(Default)]
pub struct MemStore {
    pub keys: Mutex<HashMap<String, ApiKeyRecord>>,
    pub revoked_jtis: Mutex<HashSet<String>>,
    pub down: AtomicBool,
}

impl MemStore {
    pub fn add_key(&self, record: ApiKeyRecord) {
        self.keys
            .lock()
            .expect("lock")
            .insert(record.id.clone(), record);
    }

    pub fn revoke_jti(&self, jti: &str) {
        self.revoked_jtis
            .lock()
            .expect("lock")
            .insert(jti.to_owned());
    }

    fn check_up(&self) -> Result<(), StoreUnavailable> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreUnavailable("database is locked".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl CredentialStore for MemStore {
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreUnavailable> {
        self.check_up()?;
        Ok(self.keys.lock().expect("lock").get(key_id).cloned())
    }

    async fn token_revoked(&self, jti: &str) -> Result<bool, StoreUnavailable> {
        self.check_up()?;
        Ok(self.revoked_jtis.lock().expect("lock").contains(jti))
    }
}
