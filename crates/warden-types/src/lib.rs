//! Newtypes shared by every Warden crate: who a caller is ([`Identity`]), secrets that
//! must never be printed ([`Secret`]), and the names of connections and sessions.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A secret string (password, token, key). Zeroized on drop; `Debug` and `Display`
/// print `***` so that a secret cannot reach a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret's value; call only where the value is actually needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

name_type!(
    /// The name of a configured target connection (the `dbname` a client asks for).
    ConnectionName
);
name_type!(
    /// A stable subject identifier: `sub` of a token, or the name of an API key's identity.
    Subject
);

/// A gateway-unique session identifier (a UUID v4 rendered as text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An access token from a configured OIDC provider.
    Oidc,
    /// A token from Warden's built-in issuer (`warden tokens issue`).
    Builtin,
    /// A Warden API key (`wdk_…`).
    ApiKey,
}

impl CredentialKind {
    /// A short lowercase label, used in audit rows and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Oidc => "oidc",
            CredentialKind::Builtin => "builtin",
            CredentialKind::ApiKey => "api_key",
        }
    }
}

/// An authenticated caller. Built only by `warden-identity` after every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Stable subject (`sub` claim, or the API key's identity name).
    pub subject: Subject,
    /// Human-readable name (`name`/`preferred_username`/`email`, else the subject).
    pub display_name: String,
    /// Issuer URL (or `warden` for the built-in issuer and API keys).
    pub issuer: String,
    /// Groups from the configured claim (or the API key's groups).
    pub groups: Vec<String>,
    /// How the caller authenticated.
    pub kind: CredentialKind,
    /// The party acting through this identity, when the token says so (`act.sub`, `azp`).
    pub actor: Option<String>,
    /// Token identifier (`jti`) or API key id, for revocation.
    pub token_id: Option<String>,
    /// When the credential stops being valid, if it expires.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// True when the identity belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }
}
