//! Who is running a statement. Every layer below the CLI / Flight boundary receives the
//! principal explicitly; nothing reads it from ambient state. Passwords are stored as argon2id
//! hashes made here.

use argon2::{Argon2, PasswordHasher};
use datafusion::error::Result;

use crate::error::{ErrorKind, FStoreError};

/// An authenticated user (or the local OS user for the embedded CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    /// Trusted with the server's machine whatever the registry says: the operating-system
    /// user of the embedded CLI (who owns the files anyway), the scheduler, and everyone on a
    /// server started with `--no-auth`. Others are administrators when the registry says so.
    pub trusted: bool,
    /// The network address the request came from (for the audit log), when there is one.
    pub peer: Option<String>,
    /// The server session the request belongs to (one login: one bearer token), when it
    /// carries a token. Session settings (`SET`) and results waiting for `DoGet` are kept per
    /// session.
    pub session: Option<String>,
}

impl Principal {
    /// A user of a server, with the privileges the registry gives them.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trusted: false,
            peer: None,
            session: None,
        }
    }

    /// A principal trusted with the server's machine (see [`Principal::trusted`]).
    pub fn trusted(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trusted: true,
            peer: None,
            session: None,
        }
    }

    /// The same principal, calling from `peer`.
    pub fn with_peer(mut self, peer: Option<String>) -> Self {
        self.peer = peer;
        self
    }

    /// The same principal, in server session `session`.
    pub fn in_session(mut self, session: Option<String>) -> Self {
        self.session = session;
        self
    }

    /// What keeps one session's requests apart from another's: the user and the session.
    pub fn session_key(&self) -> String {
        match &self.session {
            Some(s) => format!("{}\n{s}", self.name),
            None => self.name.clone(),
        }
    }

    /// The principal of the embedded CLI: the operating-system user running it.
    pub fn local_user() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "local".to_string());
        Self::trusted(user)
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| FStoreError::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(buf)
}

/// Hashes a password for storage (argon2id, random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = random_bytes::<16>()?;
    let hash = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| FStoreError::new(ErrorKind::Internal, format!("cannot hash password: {e}")))?;
    Ok(hash.to_string())
}
