//! The one mapping from engine errors to gRPC status codes (see `error::ErrorKind`).

use arrow_flight::error::FlightError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

use crate::error::{ErrorKind, user_message};

/// The gRPC code of an error kind.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
    }
}

/// A status for an engine error, with the message a user should see.
pub fn status(err: &DataFusionError) -> Status {
    let kind = ErrorKind::of(err);
    if kind == ErrorKind::Internal {
        tracing::error!(error = %err, "internal error");
    }
    Status::new(
        code_of(kind),
        crate::warehouse::one_line(&user_message(err)),
    )
}

/// A status for an error raised while encoding or decoding a Flight stream.
pub fn flight_status(err: FlightError) -> Status {
    match err {
        FlightError::Tonic(s) => *s,
        FlightError::ExternalError(e) => match e.downcast::<DataFusionError>() {
            Ok(df) => status(&df),
            Err(other) => Status::internal(other.to_string()),
        },
        FlightError::Arrow(e) => status(&DataFusionError::ArrowError(Box::new(e), None)),
        other => Status::invalid_argument(other.to_string()),
    }
}

/// Converts engine results inside handlers: `engine_call().map_err(into_status)?`.
pub fn into_status(err: DataFusionError) -> Status {
    status(&err)
}
