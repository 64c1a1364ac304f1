//! The errors of an operation, in the few kinds its callers act on: the admin API turns a kind
//! into an HTTP status, `causeriectl` into an exit code, a XEP-0133 command into a stanza error.

use causerie_storage::StoreError;
use serde::{Deserialize, Serialize};

use crate::accounts::UserError;

/// What went wrong, as far as the caller needs to know to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The account, session or operation named does not exist.
    NotFound,
    /// What was to be created is already there.
    Exists,
    /// The state changed under the operation (another writer got there first); reading it
    /// again and retrying may succeed.
    Conflict,
    /// The arguments are wrong: a malformed JID, a domain this server does not host, an empty
    /// password, an unknown field.
    BadInput,
    /// The operation needs the running server (sessions, statistics, delivery to online
    /// users) and has none.
    Unavailable,
    /// The caller is known but may not run this operation.
    Forbidden,
    /// The caller is not known (a missing or wrong bearer token).
    Unauthorized,
    /// The database or the server failed; the message says what was attempted.
    Internal,
}

impl ErrorKind {
    /// The name used on the wire (`"not_found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Exists => "exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::BadInput => "bad_input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the request was turned down (as opposed to failing): the audit log says
    /// `refused` for these and `error` for the others.
    pub fn is_refusal(self) -> bool {
        !matches!(self, ErrorKind::Internal)
    }
}

/// An operation that did not happen, with a message for the administrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct AdminError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AdminError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AdminError {
            kind,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AdminError::new(ErrorKind::NotFound, message)
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        AdminError::new(ErrorKind::BadInput, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        AdminError::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AdminError::new(ErrorKind::Internal, message)
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::AlreadyExists(_) => ErrorKind::Exists,
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::InvalidInput(_) => ErrorKind::BadInput,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        };
        AdminError::new(kind, e.to_string())
    }
}

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        let kind = match &e {
            UserError::Exists(_) => ErrorKind::Exists,
            UserError::NotFound(_) => ErrorKind::NotFound,
            UserError::Storage(StoreError::Conflict(_)) => ErrorKind::Conflict,
            UserError::Storage(StoreError::InvalidInput(_)) => ErrorKind::BadInput,
            UserError::Storage(_) => ErrorKind::Internal,
            _ => ErrorKind::BadInput,
        };
        AdminError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_store_and_account_errors() {
        let cases = [
            (StoreError::AlreadyExists("a@b".into()), ErrorKind::Exists),
            (StoreError::NotFound("a@b".into()), ErrorKind::NotFound),
            (StoreError::InvalidInput("x".into()), ErrorKind::BadInput),
            (StoreError::Conflict("x".into()), ErrorKind::Conflict),
            (StoreError::Backend("down".into()), ErrorKind::Internal),
        ];
        for (e, kind) in cases {
            assert_eq!(AdminError::from(e).kind, kind);
        }
        assert_eq!(
            AdminError::from(UserError::EmptyPassword).kind,
            ErrorKind::BadInput
        );
        assert_eq!(
            AdminError::from(UserError::NotHosted("x.example".into())).message,
            "x.example is not a hosted domain of this server"
        );
        assert_eq!(
            serde_json::to_string(&ErrorKind::BadInput).expect("json"),
            "\"bad_input\""
        );
        assert!(ErrorKind::Forbidden.is_refusal());
        assert!(!ErrorKind::Internal.is_refusal());
    }
}
