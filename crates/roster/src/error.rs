//! The errors of roster and presence processing, mapped to RFC 6120 stanza errors in one place.

use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("roster storage failed: {0}")]
    Store(#[from] StoreError),
    /// Adding the contact would take the roster past its configured size.
    #[error("the roster is full ({max} items)")]
    RosterFull { max: usize },
    /// The session has sent directed presence to too many entities not subscribed to it.
    #[error("too many directed presences from one session (at most {max})")]
    TooManyDirected { max: usize },
    /// The work queue of the account is full.
    #[error("roster and presence processing is overloaded")]
    Busy,
    /// Processing was asked for outside an async runtime, or after shutdown.
    #[error("roster and presence processing is not running")]
    NotRunning,
    /// A malformed roster set (RFC 6121 §2.3.3).
    #[error("{0}")]
    BadRequest(String),
    /// A roster set with a value past the server's limits (RFC 6121 §2.3.3).
    #[error("{0}")]
    NotAcceptable(&'static str),
    /// Removing a contact that is not in the roster (RFC 6121 §2.5.3).
    #[error("the contact is not in the roster")]
    NotInRoster,
    /// A JID without a localpart was used where an account is needed.
    #[error("{0} is not an account")]
    NotAnAccount(String),
}

impl RosterError {
    /// The stanza error the requester gets.
    pub fn to_stanza_error(&self) -> StanzaError {
        match self {
            // Storage details are for the log, not for the client.
            RosterError::Store(_) | RosterError::NotRunning | RosterError::NotAnAccount(_) => {
                StanzaError::new(Cond::InternalServerError)
            }
            RosterError::RosterFull { .. } | RosterError::TooManyDirected { .. } => {
                StanzaError::new(Cond::ResourceConstraint).with_text(self.to_string())
            }
            RosterError::BadRequest(text) => {
                StanzaError::new(Cond::BadRequest).with_text(text.as_str())
            }
            RosterError::NotAcceptable(text) => {
                StanzaError::new(Cond::NotAcceptable).with_text(*text)
            }
            RosterError::NotInRoster => StanzaError::new(Cond::ItemNotFound),
            RosterError::Busy => {
                StanzaError::new(Cond::ResourceConstraint).with_text(self.to_string())
            }
        }
    }
}
