//! Error classification shared by every boundary (CLI exit codes, Flight SQL status codes).
//!
//! Inside the engine errors travel as [`DataFusionError`], so that table providers, UDFs and
//! FStore's own statements compose with DataFusion. FStore-specific failures are wrapped in
//! [`FStoreError`] (carried as `DataFusionError::External`), which says what *kind* of failure
//! it is. [`ErrorKind::of`] is the one place that decides how a failure is reported; it must
//! never guess `Internal` for something a user caused.

use datafusion::error::DataFusionError;

/// What kind of failure an error is, independent of where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad SQL, wrong arguments, type errors: the request is wrong.
    InvalidArgument,
    /// A table, view, feature group, … that does not exist.
    NotFound,
    /// Creating something whose name is taken.
    AlreadyExists,
    /// Two writers raced on the registry and this one lost every retry.
    Conflict,
    /// The principal may not do this.
    PermissionDenied,
    /// No or bad credentials.
    Unauthenticated,
    /// Memory limit, concurrency limit, request too large.
    ResourceExhausted,
    /// The query was cancelled.
    Cancelled,
    /// Storage (warehouse, object store) failed or is not usable.
    Unavailable,
    /// Not supported (yet): a well-formed request FStore does not implement.
    Unimplemented,
    /// A bug.
    Internal,
}

/// An FStore failure with its kind and a message meant for the user.
#[derive(Debug, Clone)]
pub struct FStoreError {
    pub kind: ErrorKind,
    pub message: String,
}

impl FStoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unimplemented, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
}

impl std::fmt::Display for FStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FStoreError {}

impl From<FStoreError> for DataFusionError {
    fn from(e: FStoreError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// An `InvalidArgument` failure, as the `DataFusionError` every layer returns: the one
/// constructor for the client's mistakes (bad SQL, wrong arguments, wrong types).
pub fn invalid(message: impl Into<String>) -> DataFusionError {
    FStoreError::invalid(message).into()
}

/// Shorthand: an `Err(DataFusionError)` carrying an [`FStoreError`].
pub fn fail<T>(kind: ErrorKind, message: impl Into<String>) -> datafusion::error::Result<T> {
    Err(FStoreError::new(kind, message).into())
}

impl ErrorKind {
    /// Classifies any error the engine can return.
    pub fn of(err: &DataFusionError) -> ErrorKind {
        match err {
            DataFusionError::External(e) => {
                if let Some(fe) = e.downcast_ref::<FStoreError>() {
                    return fe.kind;
                }
                if let Some(de) = e.downcast_ref::<DataFusionError>() {
                    return ErrorKind::of(de);
                }
                if let Some(os) = e.downcast_ref::<object_store::Error>() {
                    return object_store_kind(os);
                }
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return io_kind(io);
                }
                ErrorKind::Internal
            }
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                ErrorKind::of(inner)
            }
            DataFusionError::Shared(inner) => ErrorKind::of(inner),
            DataFusionError::Collection(errs) => errs
                .first()
                .map(ErrorKind::of)
                .unwrap_or(ErrorKind::Internal),
            DataFusionError::SQL(..) => ErrorKind::InvalidArgument,
            DataFusionError::Plan(msg) => plan_message_kind(msg),
            DataFusionError::SchemaError(e, _) => plan_message_kind(&e.to_string()),
            DataFusionError::NotImplemented(_) => ErrorKind::Unimplemented,
            DataFusionError::ResourcesExhausted(_) => ErrorKind::ResourceExhausted,
            DataFusionError::ObjectStore(os) => object_store_kind(os),
            DataFusionError::IoError(io) => io_kind(io),
            DataFusionError::Execution(msg) => {
                if msg.contains("cancelled") {
                    ErrorKind::Cancelled
                } else {
                    plan_message_kind(msg)
                }
            }
            DataFusionError::ArrowError(..)
            | DataFusionError::ParquetError(..)
            | DataFusionError::Configuration(_) => ErrorKind::InvalidArgument,
            DataFusionError::ExecutionJoin(_) | DataFusionError::Internal(_) => ErrorKind::Internal,
            #[allow(unreachable_patterns)]
            _ => ErrorKind::InvalidArgument,
        }
    }
}

/// The last fallback, for errors DataFusion raises with no kind: its own wording. Missing
/// tables are raised as NotFound by the statement executor (which asks the catalog), FStore's
/// own objects by the code that looks them up; what remains here is the rest of DataFusion
/// (e.g. a missing column or function) and external crates' messages.
fn plan_message_kind(msg: &str) -> ErrorKind {
    let lower = msg.to_ascii_lowercase();
    if (lower.contains("table '") && lower.contains("not found"))
        || lower.contains("doesn't exist")
        || lower.contains("does not exist")
        || lower.contains("no such file")
        || lower.contains("not found")
    {
        ErrorKind::NotFound
    } else if lower.contains("already exists") {
        ErrorKind::AlreadyExists
    } else {
        ErrorKind::InvalidArgument
    }
}

fn object_store_kind(e: &object_store::Error) -> ErrorKind {
    match e {
        object_store::Error::NotFound { .. } => ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
        object_store::Error::Precondition { .. } => ErrorKind::Conflict,
        object_store::Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
        object_store::Error::Unauthenticated { .. } => ErrorKind::Unavailable,
        object_store::Error::NotImplemented { .. } => ErrorKind::Unimplemented,
        object_store::Error::InvalidPath { .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::Unavailable,
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        _ => ErrorKind::Unavailable,
    }
}

/// The message to show a user: DataFusion's wrappers ("External error: …", "Error during
/// planning: …") are noise at the boundary, FStore's own messages are already user-facing.
pub fn user_message(err: &DataFusionError) -> String {
    match err {
        DataFusionError::External(e) => {
            if let Some(fe) = e.downcast_ref::<FStoreError>() {
                return fe.message.clone();
            }
            if let Some(de) = e.downcast_ref::<DataFusionError>() {
                return user_message(de);
            }
            e.to_string()
        }
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", user_message(inner)),
        DataFusionError::Diagnostic(_, inner) => user_message(inner),
        DataFusionError::Shared(inner) => user_message(inner),
        DataFusionError::SQL(e, _) => {
            format!("syntax error: {}", strip_parser_error(&e.to_string()))
        }
        DataFusionError::Plan(msg) => msg.clone(),
        DataFusionError::Execution(msg) => msg.clone(),
        DataFusionError::ResourcesExhausted(msg) => format!("resources exhausted: {msg}"),
        DataFusionError::NotImplemented(msg) => format!("not supported: {msg}"),
        other => other.strip_backtrace(),
    }
}

fn strip_parser_error(s: &str) -> String {
    let s = s.strip_prefix("sql parser error: ").unwrap_or(s);
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstore_errors_keep_their_kind_through_datafusion() {
        let e: DataFusionError = FStoreError::not_found("table 'x' not found").into();
        assert_eq!(ErrorKind::of(&e), ErrorKind::NotFound);
        let wrapped = e.context("while planning");
        assert_eq!(ErrorKind::of(&wrapped), ErrorKind::NotFound);
    }

    #[test]
    fn datafusion_missing_table_is_not_found() {
        let e = DataFusionError::Plan("table 'fstore.public.nope' not found".into());
        assert_eq!(ErrorKind::of(&e), ErrorKind::NotFound);
    }

    #[test]
    fn resources_exhausted_is_classified() {
        let e = DataFusionError::ResourcesExhausted("Failed to allocate".into());
        assert_eq!(ErrorKind::of(&e), ErrorKind::ResourceExhausted);
        assert!(user_message(&e).starts_with("resources exhausted"));
    }
}
