//! Who is calling and what they may do: the bearer credential (OIDC token, built-in token
//! or API key) checked by the [`Authenticator`](warden_identity::Authenticator), and the
//! roles its groups give under `[api]`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use warden_types::Identity;

use crate::problem::Problem;
use crate::Api;

/// A role under `/api/v1`, from the caller's groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `[api] admin_groups`: everything.
    Admin,
    /// `[api] auditor_groups`: reads sessions, recordings, the audit and every request.
    Auditor,
    /// `[api] approver_groups`, or a group that approves some rule or access request:
    /// sees and decides the requests it is an approver of.
    Approver,
    /// Any authenticated identity: its own requests, the connections it may open.
    User,
}

/// Which groups hold which role.
#[derive(Clone, Debug, Default)]
pub struct RoleGroups {
    /// Admins.
    pub admin: Vec<String>,
    /// Auditors.
    pub auditor: Vec<String>,
    /// Approvers: `[api] approver_groups` and every approver group of a rule or of
    /// access requests.
    pub approver: Vec<String>,
}

/// An authenticated caller and its roles; extracting it answers 401 without a valid
/// credential.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub who: Identity,
    /// Its roles, strongest first; always ends with `user`.
    pub roles: Vec<Role>,
}

impl Caller {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// True for auditors and admins (both read everything).
    pub fn reads_all(&self) -> bool {
        self.is_admin() || self.roles.contains(&Role::Auditor)
    }

    /// 403 unless the caller is an admin.
    pub fn need_admin(&self, api: &Api) -> Result<(), Problem> {
        if self.is_admin() {
            return Ok(());
        }
        Err(forbidden(&api.roles.admin))
    }

    /// 403 unless the caller is an auditor or an admin.
    pub fn need_auditor(&self, api: &Api) -> Result<(), Problem> {
        if self.reads_all() {
            return Ok(());
        }
        let groups: Vec<String> = api
            .roles
            .auditor
            .iter()
            .chain(api.roles.admin.iter())
            .cloned()
            .collect();
        Err(forbidden(&groups))
    }
}

fn forbidden(groups: &[String]) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs membership in one of {groups:?}"),
    )
}

impl RoleGroups {
    /// The roles `who` holds.
    pub fn of(&self, who: &Identity) -> Vec<Role> {
        let any = |gs: &[String]| gs.iter().any(|g| who.in_group(g));
        let mut roles = Vec::new();
        if any(&self.admin) {
            roles.push(Role::Admin);
        }
        if any(&self.auditor) {
            roles.push(Role::Auditor);
        }
        if any(&self.approver) {
            roles.push(Role::Approver);
        }
        roles.push(Role::User);
        roles
    }
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Caller, Problem> {
        let unauthenticated =
            |detail: String| Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthenticated("send Authorization: Bearer <token or API key>".into())
            })?;
        let who = api
            .auth
            .authenticate(token)
            .await
            .map_err(|e| unauthenticated(e.reason()))?;
        let roles = api.roles.of(&who);
        Ok(Caller { who, roles })
    }
}

/// A caller that is an auditor or an admin; 403 otherwise. As an extractor it runs before
/// the path, query and body are parsed, so callers without the role learn nothing from
/// input errors.
pub struct Auditor(pub Caller);

impl FromRequestParts<Api> for Auditor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Auditor, Problem> {
        let caller = Caller::from_request_parts(parts, api).await?;
        caller.need_auditor(api)?;
        Ok(Auditor(caller))
    }
}

/// A caller that is an admin; 403 otherwise (checked before the input, as [`Auditor`]).
pub struct Admin(pub Caller);

impl FromRequestParts<Api> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Admin, Problem> {
        let caller = Caller::from_request_parts(parts, api).await?;
        caller.need_admin(api)?;
        Ok(Admin(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_types::{CredentialKind, Subject};

    fn who(groups: &[&str]) -> Identity {
        Identity {
            subject: Subject("s".into()),
            display_name: "s".into(),
            issuer: "warden".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            kind: CredentialKind::Builtin,
            actor: None,
            token_id: None,
            expires_at: None,
        }
    }

    #[test]
    fn roles_follow_groups_strongest_first_and_always_user() {
        let r = RoleGroups {
            admin: vec!["a".into()],
            auditor: vec!["b".into()],
            approver: vec!["c".into(), "dba".into()],
        };
        assert_eq!(r.of(&who(&[])), [Role::User]);
        assert_eq!(r.of(&who(&["dba"])), [Role::Approver, Role::User]);
        assert_eq!(
            r.of(&who(&["c", "b", "a"])),
            [Role::Admin, Role::Auditor, Role::Approver, Role::User]
        );
    }
}
