//! Users, roles and privileges (docs/sql-reference.md, "Access control"):
//!
//! ```sql
//! CREATE USER name WITH PASSWORD 'secret' [ADMIN]
//! ALTER USER name [WITH] PASSWORD 'secret'
//! DROP USER [IF EXISTS] name
//! CREATE ROLE [IF NOT EXISTS] name
//! DROP ROLE [IF EXISTS] name
//! GRANT role [, role …] TO user [, user …]
//! REVOKE role [, role …] FROM user [, user …]
//! GRANT privilege [, …] ON [TABLE | VIEW | FEATURE GROUP | FEATURE SET] name [VERSION n]
//!   TO grantee [, …]                     -- privilege: SELECT | READ ONLINE | EXPORT | ALL
//! GRANT CREATE [ON SCHEMA public] TO grantee [, …]
//! REVOKE … FROM grantee [, …]
//! SHOW GRANTS [FOR name]
//! ```
//!
//! sqlparser parses `GRANT`/`REVOKE` into a form DataFusion refuses to plan, so FStore parses
//! them here, before DataFusion sees them. Passwords never reach the registry's history or
//! the logs: the text recorded for these statements is their `Display`, which masks them.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use datafusion::arrow::array::{RecordBatch, StringArray, UInt64Array};
use datafusion::error::Result;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::exec::{SqlSession, StatementResult};
use super::feature_group::Words;
use super::parser::expected;
use crate::error::FStoreError;
use crate::principal::Principal;
use crate::registry::{
    ADMIN_ROLE, Change, Grant, ObjectKind, ObjectRef, PUBLIC, Privilege, RegistryState, Role, User,
};

/// The shortest password `CREATE USER` / `ALTER USER` accept.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// An access-control statement.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessStatement {
    CreateUser {
        name: String,
        password: String,
        admin: bool,
    },
    AlterUserPassword {
        name: String,
        password: String,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
    CreateRole {
        name: String,
        if_not_exists: bool,
    },
    DropRole {
        name: String,
        if_exists: bool,
    },
    /// `GRANT role TO user` (or `REVOKE … FROM` when `revoke`).
    Roles {
        roles: Vec<String>,
        users: Vec<String>,
        revoke: bool,
    },
    /// `GRANT privilege ON object TO grantee` (or `REVOKE`); `object: None` for `CREATE`.
    Privileges {
        privileges: Vec<Privilege>,
        object: Option<ObjectRef>,
        grantees: Vec<String>,
        revoke: bool,
    },
    ShowGrants {
        user: Option<String>,
    },
}

impl std::fmt::Display for AccessStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessStatement::CreateUser { name, admin, .. } => {
                write!(f, "CREATE USER {name} WITH PASSWORD '********'")?;
                if *admin {
                    f.write_str(" ADMIN")?;
                }
                Ok(())
            }
            AccessStatement::AlterUserPassword { name, .. } => {
                write!(f, "ALTER USER {name} PASSWORD '********'")
            }
            AccessStatement::DropUser { name, .. } => write!(f, "DROP USER {name}"),
            AccessStatement::CreateRole { name, .. } => write!(f, "CREATE ROLE {name}"),
            AccessStatement::DropRole { name, .. } => write!(f, "DROP ROLE {name}"),
            AccessStatement::Roles {
                roles,
                users,
                revoke,
            } => {
                let (verb, prep) = if *revoke {
                    ("REVOKE", "FROM")
                } else {
                    ("GRANT", "TO")
                };
                write!(f, "{verb} {} {prep} {}", roles.join(", "), users.join(", "))
            }
            AccessStatement::Privileges {
                privileges,
                object,
                grantees,
                revoke,
            } => {
                let (verb, prep) = if *revoke {
                    ("REVOKE", "FROM")
                } else {
                    ("GRANT", "TO")
                };
                let privileges: Vec<&str> = privileges.iter().map(|p| p.as_sql()).collect();
                write!(f, "{verb} {}", privileges.join(", "))?;
                if let Some(o) = object {
                    write!(f, " ON {} {}", o.kind.as_str().to_uppercase(), o.name)?;
                    if let Some(v) = o.version {
                        write!(f, " VERSION {v}")?;
                    }
                }
                write!(f, " {prep} {}", grantees.join(", "))
            }
            AccessStatement::ShowGrants { user } => match user {
                Some(u) => write!(f, "SHOW GRANTS FOR {u}"),
                None => f.write_str("SHOW GRANTS"),
            },
        }
    }
}

/// After `CREATE USER`.
pub fn parse_create_user(w: &mut Words) -> Result<AccessStatement> {
    let name = w.ident("a user name")?;
    w.accept("WITH");
    let mut password = None;
    let mut admin = false;
    loop {
        if w.accept("PASSWORD") {
            password = Some(w.string("the password as a quoted string")?);
        } else if w.accept("ADMIN") || w.accept("SUPERUSER") {
            admin = true;
        } else {
            break;
        }
    }
    let Some(password) = password else {
        return Err(expected("PASSWORD 'secret'", w.parser.peek_token_ref()));
    };
    Ok(AccessStatement::CreateUser {
        name,
        password,
        admin,
    })
}

/// After `ALTER USER`.
pub fn parse_alter_user(w: &mut Words) -> Result<AccessStatement> {
    let name = w.ident("a user name")?;
    w.accept("WITH");
    w.expect("PASSWORD")?;
    let password = w.string("the password as a quoted string")?;
    Ok(AccessStatement::AlterUserPassword { name, password })
}

/// After `DROP USER` / `DROP ROLE`.
pub fn parse_drop(w: &mut Words, role: bool) -> Result<AccessStatement> {
    let if_exists = w.accept_seq(&["IF", "EXISTS"]);
    let name = w.ident(if role { "a role name" } else { "a user name" })?;
    Ok(if role {
        AccessStatement::DropRole { name, if_exists }
    } else {
        AccessStatement::DropUser { name, if_exists }
    })
}

/// After `CREATE ROLE`.
pub fn parse_create_role(w: &mut Words) -> Result<AccessStatement> {
    let if_not_exists = w.accept_seq(&["IF", "NOT", "EXISTS"]);
    let name = w.ident("a role name")?;
    Ok(AccessStatement::CreateRole {
        name,
        if_not_exists,
    })
}

/// After `SHOW GRANTS`.
pub fn parse_show_grants(w: &mut Words) -> Result<AccessStatement> {
    let user = if w.accept("FOR") {
        Some(w.ident("a user or role name")?)
    } else {
        None
    };
    Ok(AccessStatement::ShowGrants { user })
}

/// One item of a GRANT list: a privilege, or (without `ON`) a role name.
enum Item {
    Privileges(Vec<Privilege>),
    Name(String),
}

fn item(w: &mut Words) -> Result<Item> {
    if w.accept("SELECT") {
        return Ok(Item::Privileges(vec![Privilege::Select]));
    }
    if w.accept_seq(&["READ", "ONLINE"]) {
        return Ok(Item::Privileges(vec![Privilege::ReadOnline]));
    }
    if w.accept("EXPORT") {
        return Ok(Item::Privileges(vec![Privilege::Export]));
    }
    if w.accept("CREATE") {
        return Ok(Item::Privileges(vec![Privilege::Create]));
    }
    if w.accept("ALL") {
        w.accept("PRIVILEGES");
        return Ok(Item::Privileges(vec![
            Privilege::Select,
            Privilege::ReadOnline,
            Privilege::Export,
        ]));
    }
    Ok(Item::Name(w.ident("a privilege or a role name")?))
}

/// After `GRANT` (`revoke` false) or `REVOKE`.
pub fn parse_grant(w: &mut Words, revoke: bool) -> Result<AccessStatement> {
    let mut privileges = vec![];
    let mut names = vec![];
    loop {
        match item(w)? {
            Item::Privileges(p) => privileges.extend(p),
            Item::Name(n) => names.push(n),
        }
        if !w.parser.consume_token(&Token::Comma) {
            break;
        }
    }
    let object = if w.accept("ON") {
        Some(object(w)?)
    } else {
        None
    };
    w.expect(if revoke { "FROM" } else { "TO" })?;
    let mut grantees = vec![w.ident("a user or role name")?];
    while w.parser.consume_token(&Token::Comma) {
        grantees.push(w.ident("a user or role name")?);
    }
    let object = match object {
        Some(Some(o)) => Some(o),
        _ => None,
    };
    // `GRANT ADMIN TO u` is `GRANT admin TO u` (the built-in role).
    match (privileges.is_empty(), names.is_empty()) {
        (true, false) if object.is_none() => Ok(AccessStatement::Roles {
            roles: names,
            users: grantees,
            revoke,
        }),
        (false, true) => {
            let global = privileges.contains(&Privilege::Create);
            if global && (object.is_some() || privileges.len() > 1) {
                return Err(FStoreError::invalid(
                    "CREATE is granted on its own and globally: GRANT CREATE [ON SCHEMA public] TO …",
                )
                .into());
            }
            if !global && object.is_none() {
                return Err(FStoreError::invalid(format!(
                    "{} is granted ON an object: GRANT … ON FEATURE SET name TO …",
                    privileges[0].as_sql()
                ))
                .into());
            }
            if let Some(o) = &object {
                check_applies(&privileges, o)?;
            }
            privileges.dedup();
            Ok(AccessStatement::Privileges {
                privileges,
                object,
                grantees,
                revoke,
            })
        }
        _ => Err(FStoreError::invalid(
            "GRANT takes either roles (GRANT role TO user) or privileges on an object (GRANT SELECT ON … TO …), not both",
        )
        .into()),
    }
}

/// `ON …`: an object, or `None` for `SCHEMA public` (the global scope of `CREATE`).
fn object(w: &mut Words) -> Result<Option<ObjectRef>> {
    if w.accept("SCHEMA") {
        let schema = w.ident("a schema name")?;
        if schema != crate::engine::USER_SCHEMA {
            return Err(FStoreError::invalid(format!(
                "FStore has one user schema, '{}'",
                crate::engine::USER_SCHEMA
            ))
            .into());
        }
        return Ok(None);
    }
    let kind = if w.accept_seq(&["FEATURE", "GROUP"]) {
        ObjectKind::FeatureGroup
    } else if w.accept_seq(&["FEATURE", "SET"]) {
        ObjectKind::FeatureSet
    } else {
        // TABLE and VIEW name one namespace (PostgreSQL's `ON TABLE` covers views).
        let _ = w.accept("TABLE") || w.accept("VIEW");
        ObjectKind::Table
    };
    let name = w.ident("an object name")?;
    let mut o = ObjectRef::new(kind, name);
    if kind == ObjectKind::FeatureSet && w.accept("VERSION") {
        let t = w.parser.next_token();
        match &t.token {
            Token::Number(n, _) => {
                o.version = Some(n.parse().map_err(|_| expected("a version number", &t))?)
            }
            _ => return Err(expected("a version number", &t)),
        }
    }
    Ok(Some(o))
}

/// `READ ONLINE` and `EXPORT` are feature-set privileges.
fn check_applies(privileges: &[Privilege], o: &ObjectRef) -> Result<()> {
    for p in privileges {
        if matches!(p, Privilege::ReadOnline | Privilege::Export)
            && o.kind != ObjectKind::FeatureSet
        {
            return Err(FStoreError::invalid(format!(
                "{} applies to feature sets, not to a {}",
                p.as_sql(),
                o.kind.as_str()
            ))
            .into());
        }
    }
    Ok(())
}

impl SqlSession<'_> {
    /// Runs an access-control statement.
    pub(super) async fn run_access(
        &self,
        a: &AccessStatement,
        principal: &Principal,
    ) -> Result<StatementResult> {
        let state = self.registry().state();
        let admin = self.is_admin(principal);
        let text = a.to_string();
        let require_admin = |what: &str| -> Result<()> {
            if admin {
                Ok(())
            } else {
                Err(FStoreError::permission_denied(format!(
                    "{what} needs the ADMIN privilege; '{principal}' does not hold it"
                ))
                .into())
            }
        };
        let changes: Vec<Change> = match a {
            AccessStatement::CreateUser {
                name,
                password,
                admin: make_admin,
            } => {
                require_admin("CREATE USER")?;
                check_password(password)?;
                vec![Change::CreateUser(User {
                    name: name.clone(),
                    password_hash: crate::principal::hash_password(password)?,
                    admin: *make_admin,
                    roles: vec![],
                    credentials: 0,
                })]
            }
            AccessStatement::AlterUserPassword { name, password } => {
                if name != &principal.name {
                    require_admin("ALTER USER of another user")?;
                }
                check_password(password)?;
                state.user(name)?;
                vec![Change::AlterUserPassword {
                    name: name.clone(),
                    password_hash: crate::principal::hash_password(password)?,
                }]
            }
            AccessStatement::DropUser { name, if_exists } => {
                require_admin("DROP USER")?;
                if *if_exists && !state.users.contains_key(name) {
                    return self.done(None);
                }
                if name == &principal.name {
                    return Err(FStoreError::invalid("a user cannot drop themselves").into());
                }
                vec![Change::DropUser { name: name.clone() }]
            }
            AccessStatement::CreateRole {
                name,
                if_not_exists,
            } => {
                require_admin("CREATE ROLE")?;
                if *if_not_exists && state.role(name).is_ok() {
                    return self.done(None);
                }
                vec![Change::CreateRole(Role { name: name.clone() })]
            }
            AccessStatement::DropRole { name, if_exists } => {
                require_admin("DROP ROLE")?;
                if name == ADMIN_ROLE {
                    return Err(FStoreError::invalid(
                        "the built-in role 'admin' cannot be dropped",
                    )
                    .into());
                }
                if *if_exists && state.role(name).is_err() {
                    return self.done(None);
                }
                vec![Change::DropRole { name: name.clone() }]
            }
            AccessStatement::Roles {
                roles,
                users,
                revoke,
            } => {
                require_admin(if *revoke {
                    "REVOKE of a role"
                } else {
                    "GRANT of a role"
                })?;
                let mut out = vec![];
                for role in roles {
                    for user in users {
                        out.push(if *revoke {
                            Change::RevokeRole {
                                role: role.clone(),
                                user: user.clone(),
                            }
                        } else {
                            Change::GrantRole {
                                role: role.clone(),
                                user: user.clone(),
                            }
                        });
                    }
                }
                out
            }
            AccessStatement::Privileges {
                privileges,
                object,
                grantees,
                revoke,
            } => {
                match object {
                    None => require_admin("GRANT CREATE")?,
                    Some(o) => {
                        state.check_object(o)?;
                        if !state.owns(&principal.name, &o.unversioned()) && !admin {
                            return Err(FStoreError::permission_denied(format!(
                                "only the owner of {o} ({}) or an administrator may grant or revoke privileges on it",
                                state.owner_of(&o.unversioned()).unwrap_or("unknown")
                            ))
                            .into());
                        }
                    }
                }
                let mut out = vec![];
                for privilege in privileges {
                    for grantee in grantees {
                        let g = Grant {
                            grantee: grantee.clone(),
                            privilege: *privilege,
                            object: object.clone(),
                        };
                        if *revoke {
                            if state.grants.contains(&g) {
                                out.push(Change::Revoke(g));
                            }
                        } else if !state.grants.contains(&g) {
                            out.push(Change::Grant(g));
                        }
                    }
                }
                out
            }
            AccessStatement::ShowGrants { user } => {
                let who = user.clone().unwrap_or_else(|| principal.name.clone());
                if who != principal.name && !admin {
                    return Err(FStoreError::permission_denied(format!(
                        "SHOW GRANTS FOR another user needs the ADMIN privilege; '{principal}' does not hold it"
                    ))
                    .into());
                }
                return self.rows(show_grants(&state, &who)?);
            }
        };
        for change in changes {
            self.registry().commit(principal, &text, change).await?;
        }
        self.sync().await?;
        self.done(None)
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(FStoreError::invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ))
        .into());
    }
    Ok(())
}

/// `SHOW GRANTS [FOR name]`: what `who` holds, how (directly, through a role or `public`,
/// or as owner), one row per privilege and object.
fn show_grants(state: &RegistryState, who: &str) -> Result<RecordBatch> {
    let mut rows: Vec<[Option<String>; 5]> = vec![];
    if state.is_admin(who) {
        rows.push([
            Some("ADMIN".into()),
            None,
            None,
            None,
            Some(ADMIN_ROLE.into()),
        ]);
    }
    for (key, owner) in &state.owners {
        if owner == who
            && let Some((kind, name)) = key.split_once(':')
        {
            rows.push([
                Some("OWNER".into()),
                Some(kind.into()),
                Some(name.into()),
                None,
                Some("owner".into()),
            ]);
        }
    }
    let direct_or_role = |g: &Grant| {
        if g.grantee == who {
            "direct".to_string()
        } else if g.grantee == PUBLIC {
            PUBLIC.to_string()
        } else {
            format!("role {}", g.grantee)
        }
    };
    let is_role = state.roles.contains_key(who);
    for g in state.grants_of(who) {
        if is_role && g.grantee != who {
            continue;
        }
        rows.push([
            Some(g.privilege.as_sql().into()),
            g.object.as_ref().map(|o| o.kind.as_str().into()),
            g.object.as_ref().map(|o| o.name.clone()),
            g.object
                .as_ref()
                .and_then(|o| o.version)
                .map(|v| v.to_string()),
            Some(direct_or_role(g)),
        ]);
    }
    let col = |i: usize| -> Arc<StringArray> {
        Arc::new(rows.iter().map(|r| r[i].clone()).collect::<StringArray>())
    };
    let versions: UInt64Array = rows
        .iter()
        .map(|r| r[3].as_ref().and_then(|v| v.parse().ok()))
        .collect();
    let schema = Schema::new(vec![
        Field::new("privilege", DataType::Utf8, false),
        Field::new("object_kind", DataType::Utf8, true),
        Field::new("object_name", DataType::Utf8, true),
        Field::new("version", DataType::UInt64, true),
        Field::new("granted_through", DataType::Utf8, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![col(0), col(1), col(2), Arc::new(versions), col(4)],
    )?)
}
