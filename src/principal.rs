//! Who is running a statement. Every layer below the CLI / Flight boundary receives the
//! principal explicitly; nothing reads it from ambient state.

/// An authenticated user (or the local OS user for the embedded CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
}

impl Principal {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The principal of the embedded CLI: the operating-system user running it.
    pub fn local_user() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "local".to_string());
        Self::new(user)
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}
