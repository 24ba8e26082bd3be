//! Cancel keys: the gateway hands each client its own (process id, secret) and maps it to
//! the target backend's key, so a CancelRequest reaches the right backend and a client can
//! never cancel another session's query by guessing the target's keys.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::RngCore;

/// Where and how to cancel one session's running query.
#[derive(Clone, Debug)]
pub struct CancelTarget {
    /// Target host.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// The backend's process id.
    pub process_id: i32,
    /// The backend's secret key.
    pub secret_key: Vec<u8>,
    /// The session's held statement, which a cancel withdraws instead.
    pub hold: std::sync::Arc<crate::hold::HoldSignal>,
}

/// The key a client was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientKey {
    /// Gateway-chosen process id.
    pub process_id: i32,
    /// Gateway-chosen secret.
    pub secret_key: [u8; 4],
}

#[derive(Default)]
struct Inner {
    by_pid: HashMap<i32, ([u8; 4], CancelTarget)>,
}

/// All live sessions' cancel keys.
#[derive(Clone, Default)]
pub struct CancelRegistry {
    inner: Arc<Mutex<Inner>>,
}

impl CancelRegistry {
    /// Registers a session and returns the key to give its client. Dropping the guard
    /// unregisters it.
    pub fn register(&self, target: CancelTarget) -> CancelGuard {
        let mut rng = rand::thread_rng();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            // Positive, like a real PostgreSQL pid, so clients that print it are not confused.
            let pid = (rng.next_u32() >> 1) as i32;
            if pid == 0 || inner.by_pid.contains_key(&pid) {
                continue;
            }
            let mut secret = [0u8; 4];
            rng.fill_bytes(&mut secret);
            inner.by_pid.insert(pid, (secret, target));
            return CancelGuard {
                registry: self.clone(),
                key: ClientKey {
                    process_id: pid,
                    secret_key: secret,
                },
            };
        }
    }

    /// Finds the backend for a client's cancel key; the secret is compared in constant time.
    pub fn lookup(&self, process_id: i32, secret_key: &[u8]) -> Option<CancelTarget> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (secret, target) = inner.by_pid.get(&process_id)?;
        let equal = secret_key.len() == secret.len()
            && secret
                .iter()
                .zip(secret_key)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        equal.then(|| target.clone())
    }

    /// Number of registered sessions.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_pid
            .len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a session's cancel key registered while alive.
pub struct CancelGuard {
    registry: CancelRegistry,
    /// The key given to the client.
    pub key: ClientKey,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        let mut inner = self
            .registry
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        inner.by_pid.remove(&self.key.process_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> CancelTarget {
        CancelTarget {
            host: "127.0.0.1".into(),
            port: 5432,
            process_id: 42,
            secret_key: vec![1, 2, 3, 4],
            hold: Default::default(),
        }
    }

    #[test]
    fn lookup_needs_the_exact_secret_and_guard_unregisters() {
        let reg = CancelRegistry::default();
        let guard = reg.register(target());
        let k = guard.key;
        assert!(k.process_id > 0);
        assert_eq!(
            reg.lookup(k.process_id, &k.secret_key).unwrap().process_id,
            42
        );
        let mut wrong = k.secret_key;
        wrong[0] ^= 1;
        assert!(reg.lookup(k.process_id, &wrong).is_none());
        assert!(reg.lookup(k.process_id, &k.secret_key[..3]).is_none());
        assert!(reg
            .lookup(k.process_id.wrapping_add(1), &k.secret_key)
            .is_none());
        drop(guard);
        assert!(reg.lookup(k.process_id, &k.secret_key).is_none());
        assert!(reg.is_empty());
    }
}
