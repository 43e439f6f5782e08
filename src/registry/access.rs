//! Who may do what: roles, privileges granted on objects, and owners.
//!
//! The rules, in one place ([`RegistryState::allows`]):
//! - an administrator (a user with `admin`, or a member of the built-in `admin` role) may do
//!   anything;
//! - the creator of a table, view, feature group or feature set owns it: the owner may read,
//!   alter, replace, drop and grant it;
//! - everyone else holds what was granted to them, to a role they are a member of, or to
//!   `public`: `SELECT` (tables, views, feature groups, feature sets — a set's privileges may
//!   be granted on one version), `READ ONLINE` and `EXPORT` (feature sets), and the global
//!   `CREATE` (new tables, views, groups and sets).

use serde::{Deserialize, Serialize};

use super::model::{Change, ChangeRecord, RegistryState, User};
use crate::error::FStoreError;

/// The built-in role whose members administer the server.
pub const ADMIN_ROLE: &str = "admin";
/// The grantee that stands for every user.
pub const PUBLIC: &str = "public";

/// A privilege that can be granted.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Read rows (tables, views, feature groups, feature sets).
    Select,
    /// Look up a feature set's online features.
    ReadOnline,
    /// Export a feature set's training data.
    Export,
    /// Create tables, views, feature groups and feature sets (global).
    Create,
}

impl Privilege {
    pub fn as_sql(&self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::ReadOnline => "READ ONLINE",
            Privilege::Export => "EXPORT",
            Privilege::Create => "CREATE",
        }
    }
}

/// What an object-level privilege applies to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A table or a view (one namespace, as in PostgreSQL's `GRANT … ON TABLE`).
    Table,
    FeatureGroup,
    FeatureSet,
}

impl ObjectKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::FeatureGroup => "feature group",
            ObjectKind::FeatureSet => "feature set",
        }
    }
}

/// A named object, and for feature sets optionally one version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub name: String,
    /// A feature-set version; `None` is every version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl ObjectRef {
    pub fn new(kind: ObjectKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
            version: None,
        }
    }

    pub fn set_version(name: impl Into<String>, version: u64) -> Self {
        Self {
            kind: ObjectKind::FeatureSet,
            name: name.into(),
            version: Some(version),
        }
    }

    /// The object without its version: what owns privileges and has an owner.
    pub fn unversioned(&self) -> ObjectRef {
        ObjectRef::new(self.kind, self.name.clone())
    }

    /// The key of the object's owner in [`RegistryState::owners`].
    pub fn owner_key(&self) -> String {
        self.unversioned().label()
    }

    /// `kind:name[@version]`, how the audit log names it.
    pub fn label(&self) -> String {
        match self.version {
            Some(v) => format!("{}:{}@{v}", self.kind.as_str(), self.name),
            None => format!("{}:{}", self.kind.as_str(), self.name),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}'", self.kind.as_str(), self.name)?;
        if let Some(v) = self.version {
            write!(f, " version {v}")?;
        }
        Ok(())
    }
}

/// One granted privilege: on an object, or global (`object: None`, for `CREATE`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub grantee: String,
    pub privilege: Privilege,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
}

/// A role: a named set of privileges users can be members of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub name: String,
}

impl RegistryState {
    /// Whether `user` administers the server (the registry's view; trusted principals are
    /// administrators whatever it says).
    pub fn is_admin(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.admin || u.roles.iter().any(|r| r == ADMIN_ROLE))
    }

    /// Who owns `object` (its creator), if recorded.
    pub fn owner_of(&self, object: &ObjectRef) -> Option<&str> {
        self.owners.get(&object.owner_key()).map(String::as_str)
    }

    /// Whether `user` owns `object` (or administers the server).
    pub fn owns(&self, user: &str, object: &ObjectRef) -> bool {
        self.is_admin(user) || self.owner_of(object) == Some(user)
    }

    /// Whether `user` holds `privilege` on `object` (`None`: the global privilege).
    pub fn allows(&self, user: &str, privilege: Privilege, object: Option<&ObjectRef>) -> bool {
        if self.is_admin(user) {
            return true;
        }
        if let Some(o) = object
            && self.owner_of(o) == Some(user)
        {
            return true;
        }
        let roles: &[String] = self.users.get(user).map_or(&[], |u| &u.roles);
        let holds = |grantee: &str| {
            grantee == user || grantee == PUBLIC || roles.iter().any(|r| r == grantee)
        };
        self.grants.iter().any(|g| {
            g.privilege == privilege
                && holds(&g.grantee)
                && match (&g.object, object) {
                    (None, None) => true,
                    (Some(granted), Some(wanted)) => {
                        granted.kind == wanted.kind
                            && granted.name == wanted.name
                            // A grant on every version covers each; one on a version covers it.
                            && (granted.version.is_none() || granted.version == wanted.version)
                    }
                    _ => false,
                }
        })
    }

    /// The grants that apply to `user` directly, through a role, or through `public`.
    pub fn grants_of(&self, user: &str) -> Vec<&Grant> {
        let roles: &[String] = self.users.get(user).map_or(&[], |u| &u.roles);
        self.grants
            .iter()
            .filter(|g| g.grantee == user || g.grantee == PUBLIC || roles.contains(&g.grantee))
            .collect()
    }
}

/// The access-control part of [`RegistryState::check`] and [`RegistryState::apply`].
impl RegistryState {
    pub(super) fn check_access(&self, change: &Change) -> Result<(), FStoreError> {
        match change {
            Change::CreateUser(u) => {
                // The bootstrap login is called `admin`, like the built-in role (and is in it).
                if self.roles.contains_key(&u.name) || u.name == PUBLIC {
                    Err(FStoreError::already_exists(format!(
                        "'{}' is already a role (users and roles share one namespace)",
                        u.name
                    )))
                } else if self.users.contains_key(&u.name) {
                    Err(FStoreError::already_exists(format!(
                        "user '{}' already exists",
                        u.name
                    )))
                } else {
                    Ok(())
                }
            }
            Change::AlterUserPassword { name, .. } | Change::DropUser { name } => {
                self.user(name).map(|_| ())
            }
            Change::CreateRole(r) => {
                if r.name == ADMIN_ROLE || r.name == PUBLIC || self.roles.contains_key(&r.name) {
                    Err(FStoreError::already_exists(format!(
                        "role '{}' already exists",
                        r.name
                    )))
                } else if self.users.contains_key(&r.name) {
                    Err(FStoreError::already_exists(format!(
                        "'{}' is already a user (users and roles share one namespace)",
                        r.name
                    )))
                } else {
                    Ok(())
                }
            }
            Change::DropRole { name } => self.role(name),
            Change::GrantRole { role, user } | Change::RevokeRole { role, user } => {
                self.user(user)?;
                self.role(role)
            }
            Change::Grant(g) | Change::Revoke(g) => {
                if g.grantee != PUBLIC && !self.users.contains_key(&g.grantee) {
                    self.role(&g.grantee).map_err(|_| {
                        FStoreError::not_found(format!("no user or role '{}'", g.grantee))
                    })?;
                }
                if let Some(o) = &g.object {
                    self.check_object(o)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Applies an access-control record; returns what `fstore.history` shows of it.
    pub(super) fn apply_access(
        &mut self,
        rec: &ChangeRecord,
    ) -> (&'static str, &'static str, String) {
        match &rec.change {
            Change::CreateUser(u) => {
                let mut u = u.clone();
                u.credentials = rec.seq;
                self.users.insert(u.name.clone(), u.clone());
                ("CREATE USER", "user", u.name.clone())
            }
            Change::AlterUserPassword {
                name,
                password_hash,
            } => {
                if let Some(u) = self.users.get_mut(name) {
                    u.password_hash = password_hash.clone();
                    u.credentials = rec.seq;
                }
                ("ALTER USER", "user", name.clone())
            }
            Change::DropUser { name } => {
                self.users.remove(name);
                self.grants.retain(|g| g.grantee != *name);
                ("DROP USER", "user", name.clone())
            }
            Change::CreateRole(r) => {
                self.roles.insert(r.name.clone(), r.clone());
                ("CREATE ROLE", "role", r.name.clone())
            }
            Change::DropRole { name } => {
                self.roles.remove(name);
                self.grants.retain(|g| g.grantee != *name);
                for u in self.users.values_mut() {
                    u.roles.retain(|r| r != name);
                }
                ("DROP ROLE", "role", name.clone())
            }
            Change::GrantRole { role, user } => {
                if let Some(u) = self.users.get_mut(user)
                    && !u.roles.contains(role)
                {
                    u.roles.push(role.clone());
                }
                ("GRANT", "role", format!("{role} TO {user}"))
            }
            Change::RevokeRole { role, user } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.roles.retain(|r| r != role);
                }
                ("REVOKE", "role", format!("{role} FROM {user}"))
            }
            Change::Grant(g) => {
                if !self.grants.contains(g) {
                    self.grants.push(g.clone());
                }
                ("GRANT", "privilege", grant_name(g))
            }
            Change::Revoke(g) => {
                self.grants.retain(|x| x != g);
                ("REVOKE", "privilege", grant_name(g))
            }
            _ => ("", "", String::new()),
        }
    }

    /// The user called `name`, or NotFound.
    pub fn user(&self, name: &str) -> Result<&User, FStoreError> {
        self.users
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("user '{name}' not found")))
    }

    /// Whether `name` is a role (the built-in `admin` role included), or NotFound.
    pub fn role(&self, name: &str) -> Result<(), FStoreError> {
        if name == ADMIN_ROLE || self.roles.contains_key(name) {
            Ok(())
        } else {
            Err(FStoreError::not_found(format!("role '{name}' not found")))
        }
    }

    /// Checks that an object exists (for a feature set, the version too).
    pub fn check_object(&self, o: &ObjectRef) -> Result<(), FStoreError> {
        match o.kind {
            ObjectKind::Table => {
                if self.relations.contains_key(&o.name) {
                    Ok(())
                } else {
                    Err(FStoreError::not_found(format!(
                        "table or view '{}' not found",
                        o.name
                    )))
                }
            }
            ObjectKind::FeatureGroup => self.group(&o.name).map(|_| ()),
            ObjectKind::FeatureSet => match o.version {
                Some(v) => self.feature_set(&format!("{}@{v}", o.name)).map(|_| ()),
                None => self.feature_set(&o.name).map(|_| ()),
            },
        }
    }

    /// Records the creator of a new object as its owner; forgets the owner and the grants of
    /// a dropped one (a re-created object starts with none).
    pub(super) fn track_owners(&mut self, rec: &ChangeRecord) {
        let created = match &rec.change {
            Change::CreateExternalTable(t) => Some(ObjectRef::new(ObjectKind::Table, &t.name)),
            Change::CreateTable(t) => Some(ObjectRef::new(ObjectKind::Table, &t.name)),
            Change::CreateView(v) => Some(ObjectRef::new(ObjectKind::Table, &v.name)),
            Change::CreateFeatureGroup { group, .. } => {
                Some(ObjectRef::new(ObjectKind::FeatureGroup, &group.name))
            }
            Change::CreateFeatureSet(set) => {
                Some(ObjectRef::new(ObjectKind::FeatureSet, &set.name))
            }
            _ => None,
        };
        if let Some(o) = created {
            self.owners
                .entry(o.owner_key())
                .or_insert_with(|| rec.principal.clone());
            return;
        }
        let dropped = match &rec.change {
            Change::Drop { name, .. } => ObjectRef::new(ObjectKind::Table, name),
            Change::DropFeatureGroup { name } => ObjectRef::new(ObjectKind::FeatureGroup, name),
            _ => return,
        };
        self.owners.remove(&dropped.owner_key());
        self.grants.retain(|g| {
            g.object
                .as_ref()
                .is_none_or(|o| o.kind != dropped.kind || o.name != dropped.name)
        });
    }
}

/// How `fstore.history` names a grant: `SELECT ON feature set 'x' TO ana`.
fn grant_name(g: &Grant) -> String {
    match &g.object {
        Some(o) => format!("{} ON {o} TO {}", g.privilege.as_sql(), g.grantee),
        None => format!("{} TO {}", g.privilege.as_sql(), g.grantee),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::User;

    fn user(name: &str, admin: bool, roles: &[&str]) -> User {
        User {
            name: name.into(),
            password_hash: String::new(),
            admin,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            credentials: 0,
        }
    }

    #[test]
    fn admins_owners_and_grantees() {
        let mut s = RegistryState::default();
        s.users.insert("root".into(), user("root", true, &[]));
        s.users
            .insert("boss".into(), user("boss", false, &[ADMIN_ROLE]));
        s.users
            .insert("ana".into(), user("ana", false, &["analysts"]));
        s.users.insert("bob".into(), user("bob", false, &[]));
        let set = ObjectRef::new(ObjectKind::FeatureSet, "fraud");
        let v1 = ObjectRef::set_version("fraud", 1);
        let v2 = ObjectRef::set_version("fraud", 2);
        let t = ObjectRef::new(ObjectKind::Table, "tx");
        s.owners.insert(t.owner_key(), "bob".into());
        s.grants.push(Grant {
            grantee: "analysts".into(),
            privilege: Privilege::Select,
            object: Some(v1.clone()),
        });
        s.grants.push(Grant {
            grantee: PUBLIC.into(),
            privilege: Privilege::ReadOnline,
            object: Some(set.clone()),
        });
        assert!(s.allows("root", Privilege::Export, Some(&v2)));
        assert!(s.allows("boss", Privilege::Create, None));
        assert!(s.allows("ana", Privilege::Select, Some(&v1)));
        assert!(!s.allows("ana", Privilege::Select, Some(&v2)));
        assert!(!s.allows("bob", Privilege::Select, Some(&v1)));
        assert!(s.allows("bob", Privilege::ReadOnline, Some(&v2)));
        assert!(s.allows("bob", Privilege::Select, Some(&t)));
        assert!(!s.allows("ana", Privilege::Select, Some(&t)));
        assert!(!s.allows("ana", Privilege::Create, None));
        assert!(s.owns("bob", &t) && !s.owns("ana", &t) && s.owns("boss", &t));
    }
}
