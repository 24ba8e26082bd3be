//! Live sessions of this gateway, so they can be ended from outside: `warden sessions
//! kill` (a request in the store), revocation of the token or API key that opened them,
//! gateway shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use warden_store::Store;

use crate::error::Ended;

struct Entry {
    stop: watch::Sender<Option<Ended>>,
    token_id: Option<String>,
}

/// The live sessions, by id.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Removes a session from the registry when dropped.
pub struct Registered {
    registry: Registry,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session; the receiver reports why it must stop.
    pub fn register(
        &self,
        id: &str,
        token_id: Option<String>,
    ) -> (watch::Receiver<Option<Ended>>, Registered) {
        let (tx, rx) = watch::channel(None);
        self.lock()
            .insert(id.to_owned(), Entry { stop: tx, token_id });
        (
            rx,
            Registered {
                registry: self.clone(),
                id: id.to_owned(),
            },
        )
    }

    /// Ends session `id`; false when it is not live here.
    pub fn stop(&self, id: &str, why: Ended) -> bool {
        match self.lock().get(id) {
            Some(e) => {
                e.stop.send_replace(Some(why));
                true
            }
            None => false,
        }
    }

    /// Ends every live session.
    pub fn stop_all(&self, why: Ended) {
        for e in self.lock().values() {
            e.stop.send_replace(Some(why.clone()));
        }
    }

    /// Whether session `id` is live here.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn token_ids(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| e.token_id.clone().map(|t| (id.clone(), t)))
            .collect()
    }

    /// Every `period`: ends sessions with a kill request in the store, and sessions whose
    /// token or API key was revoked. Store errors are logged and retried next round.
    pub async fn control_loop(self, store: Store, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            if self.is_empty() {
                continue;
            }
            match store.pending_kills().await {
                Ok(kills) => {
                    for (id, by) in kills {
                        if self.stop(&id, Ended::Killed(by)) {
                            if let Err(e) = store.kill_handled(&id).await {
                                tracing::warn!(error = %e, "could not mark a kill handled");
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read kill requests"),
            }
            let tokens = self.token_ids();
            if tokens.is_empty() {
                continue;
            }
            let ids: Vec<String> = tokens.iter().map(|(_, t)| t.clone()).collect();
            match store.revoked_among(&ids).await {
                Ok(revoked) => {
                    for (session, token) in &tokens {
                        if revoked.contains(token) {
                            self.stop(session, Ended::Revoked);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not check revocations"),
            }
        }
    }
}
