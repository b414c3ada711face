//! The error taxonomy shared by both daemons. Each variant maps to exactly one
//! gRPC status code (feature `grpc`), so callers get precise codes.
use std::fmt;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Kind of object for NotFound / AlreadyExists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Instance,
    Group,
    GroupBvi,
    Evpn,
    Bvi,
    Member,
    Address,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Object::Instance => "instance",
            Object::Group => "group",
            Object::GroupBvi => "group BVI",
            Object::Evpn => "evpn",
            Object::Bvi => "BVI",
            Object::Member => "member",
            Object::Address => "address",
        })
    }
}

/// A vpp-evpn error. Messages are lower-case and name the field or object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request field failed validation (gRPC `INVALID_ARGUMENT`).
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The named object does not exist (`NOT_FOUND`).
    #[error("{what} {} not found", crate::validate::excerpt(.name))]
    NotFound { what: Object, name: String },
    /// The named object exists already (`ALREADY_EXISTS`).
    #[error("{what} {} already exists", crate::validate::excerpt(.name))]
    AlreadyExists { what: Object, name: String },
    /// The system is not in a state that allows the operation
    /// (`FAILED_PRECONDITION`), e.g. a move whose old primary is unreachable.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (VPP, BIRD, a member) cannot be reached (`UNAVAILABLE`).
    #[error("{0}")]
    Unavailable(String),
    /// A dependency did not answer in time (`DEADLINE_EXCEEDED`).
    #[error("{0}")]
    Timeout(String),
    /// A change was refused and rolled back (`ABORTED`), e.g. BIRD rejected
    /// a rendered configuration.
    #[error("{0}")]
    Aborted(String),
    /// Not implemented yet (`UNIMPLEMENTED`). Never a fake success.
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// A bug or an unexpected dependency answer (`INTERNAL`).
    #[error("internal error: {0}")]
    Internal(String),
    /// The authenticated caller may not do this (`PERMISSION_DENIED`); the
    /// message names the identity and what it would need.
    #[error("{0}")]
    PermissionDenied(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: Object, name: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            name: name.into(),
        }
    }

    /// Shorthand for [`Error::AlreadyExists`].
    pub fn exists(what: Object, name: impl Into<String>) -> Self {
        Error::AlreadyExists {
            what,
            name: name.into(),
        }
    }
}

#[cfg(feature = "grpc")]
impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Timeout(_) => Code::DeadlineExceeded,
            Error::Aborted(_) => Code::Aborted,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Internal(_) => Code::Internal,
            Error::PermissionDenied(_) => Code::PermissionDenied,
        };
        // Bounded whatever built the message: a status message travels in
        // HTTP/2 headers, and an oversized one turns into RESOURCE_EXHAUSTED.
        tonic::Status::new(
            code,
            crate::validate::truncate(&e.to_string(), crate::validate::ERROR_MAX_LEN),
        )
    }
}

/// A gRPC status code's canonical name as in the gRPC spec (`NOT_FOUND`,
/// `FAILED_PRECONDITION`, …): what evpnc prints, what the `code` label of
/// the gRPC metrics carries and what evpnr quotes of a member's refusal.
#[cfg(feature = "grpc")]
pub fn code_name(c: tonic::Code) -> &'static str {
    use tonic::Code;
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(all(test, feature = "grpc"))]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_grpc_spec_names() {
        use tonic::Code;
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
        // Every code 0..=16 has its own name.
        let names: std::collections::BTreeSet<_> =
            (0..=16).map(|i| code_name(Code::from_i32(i))).collect();
        assert_eq!(names.len(), 17);
    }

    #[test]
    fn every_variant_maps_to_its_own_code() {
        let cases = [
            (
                Error::invalid("vni", "must be below 2^24"),
                tonic::Code::InvalidArgument,
            ),
            (Error::not_found(Object::Group, "g"), tonic::Code::NotFound),
            (Error::exists(Object::Evpn, "e"), tonic::Code::AlreadyExists),
            (
                Error::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (Error::Unavailable("x".into()), tonic::Code::Unavailable),
            (Error::Timeout("x".into()), tonic::Code::DeadlineExceeded),
            (Error::Aborted("x".into()), tonic::Code::Aborted),
            (Error::Unimplemented("Foo"), tonic::Code::Unimplemented),
            (Error::Internal("x".into()), tonic::Code::Internal),
            (
                Error::PermissionDenied("x".into()),
                tonic::Code::PermissionDenied,
            ),
        ];
        for (e, code) in cases {
            let msg = e.to_string();
            let s: tonic::Status = e.into();
            assert_eq!(s.code(), code);
            assert_eq!(s.message(), msg);
        }
        let s: tonic::Status = Error::Internal("x".repeat(1 << 20)).into();
        assert!(s.message().len() <= crate::validate::ERROR_MAX_LEN);
        assert!(s.message().ends_with('…'));
        let s: tonic::Status = Error::invalid("vni", "must be below 2^24").into();
        assert_eq!(s.message(), "invalid vni: must be below 2^24");
    }
}
