//! Connection access rules: which connections an identity may open, and as which target
//! role. Evaluated once per session, after identity and before credentials.

use std::collections::HashMap;

use warden_types::Identity;

/// What a connection allows, distilled from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRules {
    /// Connection name.
    pub name: String,
    /// Groups that may open it.
    pub allow_groups: Vec<String>,
    /// Group → target role rules, first match wins.
    pub roles: Vec<RoleMapping>,
    /// Target role when no rule matches.
    pub default_role: Option<String>,
}

/// Members of any of `groups` use target role `role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMapping {
    /// Groups the mapping applies to.
    pub groups: Vec<String>,
    /// Target role.
    pub role: String,
}

/// The decision for an allowed session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Target role to log in as.
    pub role: String,
    /// Index of the matching role rule, or `None` for the connection's default role.
    pub rule: Option<usize>,
    /// The group that let the identity in.
    pub via_group: String,
}

/// Why a session was refused. Messages name only the connection that was asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// No connection has that name.
    #[error("no connection named \"{0}\" is available; ask your Warden administrator for the connection name")]
    UnknownConnection(String),
    /// The identity is in none of the allowed groups.
    #[error("you may not open connection \"{connection}\": it requires membership in {}; you are in {}",
        list(required), if groups.is_empty() { "no groups".to_owned() } else { list(groups) })]
    MissingGroup {
        /// The connection asked for.
        connection: String,
        /// Groups that would allow it.
        required: Vec<String>,
        /// The identity's groups.
        groups: Vec<String>,
    },
    /// Allowed, but no target role applies.
    #[error(
        "connection \"{0}\" has no target role for your groups; ask its administrator to add one"
    )]
    NoRole(String),
}

fn list(groups: &[String]) -> String {
    let quoted: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
    match quoted.len() {
        0 => "no groups".to_owned(),
        1 => format!("group {}", quoted[0]),
        _ => format!("one of the groups {}", quoted.join(", ")),
    }
}

impl AccessDenied {
    /// The SQLSTATE a PostgreSQL client receives.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            // invalid_catalog_name: what PostgreSQL says for an unknown database.
            AccessDenied::UnknownConnection(_) => "3D000",
            AccessDenied::MissingGroup { .. } => "42501",
            AccessDenied::NoRole(_) => "28000",
        }
    }
}

impl ConnectionRules {
    /// The first role rule matching the identity's groups, else the default role.
    fn grant(&self, identity: &Identity, via_group: String) -> Result<Grant, AccessDenied> {
        for (i, m) in self.roles.iter().enumerate() {
            if m.groups.iter().any(|g| identity.in_group(g)) {
                return Ok(Grant {
                    role: m.role.clone(),
                    rule: Some(i),
                    via_group,
                });
            }
        }
        match &self.default_role {
            Some(role) => Ok(Grant {
                role: role.clone(),
                rule: None,
                via_group,
            }),
            None => Err(AccessDenied::NoRole(self.name.clone())),
        }
    }
}

/// All connections' access rules.
#[derive(Clone, Debug, Default)]
pub struct AccessPolicy {
    connections: HashMap<String, ConnectionRules>,
}

impl AccessPolicy {
    /// Builds the policy from each connection's rules.
    pub fn new(rules: impl IntoIterator<Item = ConnectionRules>) -> Self {
        AccessPolicy {
            connections: rules.into_iter().map(|r| (r.name.clone(), r)).collect(),
        }
    }

    /// Names of the connections `identity` may open, sorted.
    pub fn visible_connections(&self, identity: &Identity) -> Vec<String> {
        let mut names: Vec<String> = self
            .connections
            .values()
            .filter(|c| self.decide(identity, &c.name).is_ok())
            .map(|c| c.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The grant for an identity let in by an approved access request rather than its
    /// groups: the role rules still apply, else the connection's default role.
    pub fn decide_granted(
        &self,
        identity: &Identity,
        connection: &str,
    ) -> Result<Grant, AccessDenied> {
        let rules = self
            .connections
            .get(connection)
            .ok_or_else(|| AccessDenied::UnknownConnection(connection.to_owned()))?;
        rules.grant(identity, "access-request".to_owned())
    }

    /// May `identity` open `connection`, and as which target role?
    pub fn decide(&self, identity: &Identity, connection: &str) -> Result<Grant, AccessDenied> {
        let rules = self
            .connections
            .get(connection)
            .ok_or_else(|| AccessDenied::UnknownConnection(connection.to_owned()))?;
        let Some(via_group) = rules
            .allow_groups
            .iter()
            .find(|g| identity.in_group(g))
            .cloned()
        else {
            return Err(AccessDenied::MissingGroup {
                connection: connection.to_owned(),
                required: rules.allow_groups.clone(),
                groups: identity.groups.clone(),
            });
        };
        rules.grant(identity, via_group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_types::{CredentialKind, Subject};

    fn who(groups: &[&str]) -> Identity {
        Identity {
            subject: Subject("u".into()),
            display_name: "u".into(),
            issuer: "i".into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            kind: CredentialKind::Oidc,
            actor: None,
            token_id: None,
            expires_at: None,
        }
    }

    fn policy() -> AccessPolicy {
        AccessPolicy::new([
            ConnectionRules {
                name: "app".into(),
                allow_groups: vec!["agents".into(), "dba".into()],
                roles: vec![RoleMapping {
                    groups: vec!["dba".into()],
                    role: "app_dba".into(),
                }],
                default_role: Some("app_agent".into()),
            },
            ConnectionRules {
                name: "secret-billing".into(),
                allow_groups: vec!["finance".into()],
                roles: vec![],
                default_role: None,
            },
        ])
    }

    #[test]
    fn maps_groups_to_roles() {
        let p = policy();
        assert_eq!(
            p.decide(&who(&["agents"]), "app").unwrap().role,
            "app_agent"
        );
        let g = p.decide(&who(&["agents", "dba"]), "app").unwrap();
        assert_eq!((g.role.as_str(), g.rule), ("app_dba", Some(0)));
        assert_eq!(g.via_group, "agents");
    }

    #[test]
    fn denials_name_the_missing_group_and_nothing_else() {
        let p = policy();
        let e = p.decide(&who(&["analysts"]), "app").unwrap_err();
        assert_eq!(e.sqlstate(), "42501");
        let msg = e.to_string();
        assert!(msg.contains("\"agents\", \"dba\""), "{msg}");
        assert!(msg.contains("\"analysts\""), "{msg}");
        assert!(!msg.contains("billing"), "{msg}");
        let e = p.decide(&who(&["agents"]), "nope").unwrap_err();
        assert_eq!(e.sqlstate(), "3D000");
        assert!(!e.to_string().contains("app"), "{e}");
        assert!(!e.to_string().contains("billing"), "{e}");
        let e = p.decide(&who(&[]), "app").unwrap_err();
        assert!(e.to_string().contains("you are in no groups"), "{e}");
        assert_eq!(
            p.decide(&who(&["finance"]), "secret-billing").unwrap_err(),
            AccessDenied::NoRole("secret-billing".into())
        );
    }

    #[test]
    fn visible_connections_only_lists_allowed() {
        let p = policy();
        assert_eq!(p.visible_connections(&who(&["agents"])), vec!["app"]);
        assert!(p.visible_connections(&who(&["x"])).is_empty());
    }
}
