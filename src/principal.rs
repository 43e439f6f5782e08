//! Who is running a statement. Every layer below the CLI / Flight boundary receives the
//! principal explicitly; nothing reads it from ambient state.

/// An authenticated user (or the local OS user for the embedded CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    /// Trusted with the server's machine whatever the registry says: the operating-system
    /// user of the embedded CLI (who owns the files anyway), the scheduler, and everyone on a
    /// server started with `--no-auth`. Others are administrators when the registry says so.
    pub trusted: bool,
}

impl Principal {
    /// A user of a server, with the privileges the registry gives them.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trusted: false,
        }
    }

    /// A principal trusted with the server's machine (see [`Principal::trusted`]).
    pub fn trusted(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            trusted: true,
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
