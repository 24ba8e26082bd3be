//! SCRAM-SHA-256 keys for session roles, and the client side of the exchange that uses them.
//!
//! A session role's secret is a random 256-bit key in place of PBKDF2's SaltedPassword
//! (RFC 5802 §3). The server only ever stores `StoredKey` and `ServerKey`, in the verifier
//! Warden passes to `CREATE ROLE … PASSWORD 'SCRAM-SHA-256$…'`; no password exists in any
//! SQL text, and none exists at all, because none is needed: the client proof needs only
//! `ClientKey`, the server signature check only `ServerKey`.
//!
//! The iteration count written into the verifier is 1. Iterations stretch guessable
//! passwords against offline attack on a stolen verifier; a 256-bit random key cannot be
//! guessed whatever the count, so stretching buys nothing here. It does cost: `CREATE ROLE
//! … PASSWORD` runs PBKDF2 over the empty password with the verifier's count (to refuse
//! empty passwords), which at PostgreSQL's default of 4096 was 3-4 ms of every session's
//! setup on the benchmark machine, and about 0.05 ms at 1.
//!
//! This is hand-written rather than `postgres_protocol`'s SCRAM client because that one
//! starts from a password and keeps copies of it that are never zeroed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// SASL mechanism name.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// Iteration count written into verifiers (see the module docs for why 1).
const ITERATIONS: u32 = 1;
/// gs2 header for "no channel binding".
const GS2_HEADER: &str = "n,,";

type HmacSha256 = Hmac<Sha256>;

/// A session role's secret: `ClientKey` and `ServerKey`, zeroed on drop, never printed.
pub struct ScramKey {
    client_key: Zeroizing<[u8; 32]>,
    server_key: Zeroizing<[u8; 32]>,
    salt: [u8; 16],
}

impl std::fmt::Debug for ScramKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramKey(***)")
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

impl ScramKey {
    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> ScramKey {
        let mut rng = rand::rngs::OsRng;
        let mut salted = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(salted.as_mut());
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        ScramKey {
            client_key: Zeroizing::new(hmac(salted.as_ref(), b"Client Key")),
            server_key: Zeroizing::new(hmac(salted.as_ref(), b"Server Key")),
            salt,
        }
    }

    /// The verifier PostgreSQL stores: `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`.
    /// It cannot be turned back into the key.
    pub fn verifier(&self) -> String {
        let stored: [u8; 32] = Sha256::digest(self.client_key.as_ref()).into();
        format!(
            "{MECHANISM}${ITERATIONS}:{}${}:{}",
            B64.encode(self.salt),
            B64.encode(stored),
            B64.encode(self.server_key.as_ref())
        )
    }

    /// Starts an exchange: returns the client state and the client-first message.
    pub fn start(&self) -> (ScramClient<'_>, Vec<u8>) {
        let mut raw = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let nonce = B64.encode(raw);
        // PostgreSQL takes the user name from the startup packet, not from SCRAM.
        let first_bare = format!("n=,r={nonce}");
        let msg = format!("{GS2_HEADER}{first_bare}").into_bytes();
        (
            ScramClient {
                key: self,
                nonce,
                first_bare,
                expected_server_signature: None,
            },
            msg,
        )
    }
}

/// Errors in the SCRAM exchange: all mean the target cannot be trusted or is misconfigured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// The server's message is not what RFC 5802 allows.
    #[error("malformed SCRAM message from the target: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    #[error("the target's SCRAM nonce does not extend the client's")]
    Nonce,
    /// The server names a salt or iteration count other than the role's verifier has.
    #[error("the target's SCRAM salt or iteration count is not the one Warden set for this role")]
    Parameters,
    /// The server reported an error.
    #[error("the target refused the SCRAM proof: {0}")]
    ServerError(String),
    /// The server's signature is wrong: it does not hold the verifier.
    #[error("the target's SCRAM signature did not verify")]
    Signature,
    /// A message came out of order.
    #[error("SCRAM message out of order")]
    State,
}

/// The client half of one exchange.
pub struct ScramClient<'a> {
    key: &'a ScramKey,
    nonce: String,
    first_bare: String,
    expected_server_signature: Option<Zeroizing<[u8; 32]>>,
}

fn attr(part: Option<&str>, name: char) -> Result<&str, ScramError> {
    let p = part.ok_or(ScramError::Malformed("missing attribute"))?;
    let mut chars = p.chars();
    if chars.next() != Some(name) || chars.next() != Some('=') {
        return Err(ScramError::Malformed("unexpected attribute"));
    }
    Ok(&p[2..])
}

impl ScramClient<'_> {
    /// Takes server-first (`r=…,s=…,i=…`) and returns client-final with the proof.
    pub fn server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        if self.expected_server_signature.is_some() {
            return Err(ScramError::State);
        }
        let text = std::str::from_utf8(data).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut parts = text.split(',');
        let nonce = attr(parts.next(), 'r')?;
        let salt = attr(parts.next(), 's')?;
        let iterations = attr(parts.next(), 'i')?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        if !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(ScramError::Malformed("nonce"));
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("salt"))?;
        if salt != self.key.salt || iterations != ITERATIONS.to_string() {
            return Err(ScramError::Parameters);
        }

        let without_proof = format!("c={},r={nonce}", B64.encode(GS2_HEADER));
        let auth_message = Zeroizing::new(format!("{},{text},{without_proof}", self.first_bare));
        let stored: Zeroizing<[u8; 32]> =
            Zeroizing::new(Sha256::digest(self.key.client_key.as_ref()).into());
        let mut proof = hmac(stored.as_ref(), auth_message.as_bytes());
        for (p, k) in proof.iter_mut().zip(self.key.client_key.iter()) {
            *p ^= k;
        }
        let msg = format!("{without_proof},p={}", B64.encode(proof)).into_bytes();
        proof.zeroize();
        self.expected_server_signature = Some(Zeroizing::new(hmac(
            self.key.server_key.as_ref(),
            auth_message.as_bytes(),
        )));
        Ok(msg)
    }

    /// Checks server-final (`v=…`): the target proves it holds this role's verifier.
    pub fn server_final(self, data: &[u8]) -> Result<(), ScramError> {
        let expected = self.expected_server_signature.ok_or(ScramError::State)?;
        let text = std::str::from_utf8(data).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.chars().take(200).collect()));
        }
        let v = attr(text.split(',').next(), 'v')?;
        let sig = B64
            .decode(v)
            .map_err(|_| ScramError::Malformed("signature"))?;
        if sig.len() == 32 && bool::from(sig.ct_eq(expected.as_ref())) {
            Ok(())
        } else {
            Err(ScramError::Signature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server built from the verifier alone, as PostgreSQL does (auth-scram.c).
    /// Returns the server-final message.
    fn server_side(
        verifier: &str,
        client_first: &[u8],
        client_final_of: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Vec<u8> {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$").unwrap();
        let (params, keys) = rest.split_once('$').unwrap();
        let (iter, salt) = params.split_once(':').unwrap();
        let (stored, server_key) = keys.split_once(':').unwrap();
        let stored = B64.decode(stored).unwrap();
        let server_key = B64.decode(server_key).unwrap();
        let first = std::str::from_utf8(client_first).unwrap();
        let bare = first.strip_prefix("n,,").unwrap();
        let cnonce = bare.strip_prefix("n=,r=").unwrap();
        let server_first = format!("r={cnonce}SERVERNONCE,s={salt},i={iter}");
        let client_final = client_final_of(server_first.as_bytes());
        let cf = String::from_utf8(client_final).unwrap();
        let (without_proof, proof) = cf.rsplit_once(",p=").unwrap();
        let auth = format!("{bare},{server_first},{without_proof}");
        let sig = hmac(&stored, auth.as_bytes());
        let proof = B64.decode(proof).unwrap();
        let client_key: Vec<u8> = proof.iter().zip(sig.iter()).map(|(a, b)| a ^ b).collect();
        let ok = Sha256::digest(&client_key).as_slice() == stored.as_slice();
        assert!(ok, "server rejects the proof");
        format!("v={}", B64.encode(hmac(&server_key, auth.as_bytes()))).into_bytes()
    }

    #[test]
    fn verifier_has_postgres_shape_and_no_key_material() {
        let k = ScramKey::generate();
        let v = k.verifier();
        assert!(v.starts_with("SCRAM-SHA-256$1:"), "{v}");
        assert_eq!(v.matches('$').count(), 2);
        assert!(!v.contains(&B64.encode(k.client_key.as_ref())));
        assert_eq!(format!("{k:?}"), "ScramKey(***)");
        assert_ne!(ScramKey::generate().verifier(), v, "keys are random");
    }

    #[test]
    fn proof_verifies_against_the_verifier() {
        let k = ScramKey::generate();
        let (mut c, first) = k.start();
        let fin = server_side(&k.verifier(), &first, |sf| c.server_first(sf).unwrap());
        c.server_final(&fin).unwrap();
        // A server with another role's verifier cannot sign for this one.
        let (mut c, first) = k.start();
        let other = ScramKey {
            client_key: Zeroizing::new(*k.client_key),
            server_key: Zeroizing::new([7u8; 32]),
            salt: k.salt,
        };
        let fin = server_side(&other.verifier(), &first, |sf| c.server_first(sf).unwrap());
        assert_eq!(c.server_final(&fin), Err(ScramError::Signature));
    }

    #[test]
    fn hostile_server_messages_are_refused() {
        let k = ScramKey::generate();
        let salt = B64.encode(k.salt);
        let (mut c, first) = k.start();
        let cnonce = std::str::from_utf8(&first).unwrap()[8..].to_owned();
        for (bad, want) in [
            (String::new(), ScramError::Malformed("unexpected attribute")),
            ("r=x,s=AAAA,i=1".to_owned(), ScramError::Nonce),
            (
                format!("r={cnonce}"),
                ScramError::Malformed("missing attribute"),
            ),
            (format!("r={cnonce},s={salt},i=1"), ScramError::Nonce),
            (
                format!("r={cnonce}X,s=!!,i=1"),
                ScramError::Malformed("salt"),
            ),
            (format!("r={cnonce}X,s=AAAA,i=1"), ScramError::Parameters),
            (
                format!("r={cnonce}X,s={salt},i=4096"),
                ScramError::Parameters,
            ),
        ] {
            assert_eq!(c.server_first(bad.as_bytes()), Err(want), "{bad:?}");
        }
        assert_eq!(
            c.server_first(&[0xff, 0xfe]),
            Err(ScramError::Malformed("not UTF-8"))
        );
        let fin = c.server_first(format!("r={cnonce}X,s={salt},i=1").as_bytes());
        assert!(fin.is_ok());
        assert_eq!(
            c.server_first(format!("r={cnonce}X,s={salt},i=1").as_bytes()),
            Err(ScramError::State)
        );
        let (c2, _) = k.start();
        assert_eq!(c2.server_final(b"v=AAAA"), Err(ScramError::State));
        assert_eq!(
            c.server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::Signature)
        );
        let (mut c3, first) = k.start();
        let cnonce = std::str::from_utf8(&first).unwrap()[8..].to_owned();
        c3.server_first(format!("r={cnonce}X,s={salt},i=1").as_bytes())
            .unwrap();
        assert_eq!(
            c3.server_final(b"e=invalid-proof"),
            Err(ScramError::ServerError("invalid-proof".into()))
        );
    }
}
