//! The administrative operations of the server, in one registry: each has a name, typed
//! arguments (a JSON object), a JSON result, whether it changes something, whether it needs
//! the running server, and the permission it requires.
//!
//! Three callers run the same operations through [`Registry::execute`]: the admin API (HTTP
//! and JSON on a local socket, `causerie-http`), `causeriectl` when the server is not running
//! (against the database, [`Context::offline`]), and ad-hoc commands (XEP-0133 Service
//! Administration, [`adhoc`]) for administrators' accounts, with an [`Actor::xmpp`] caller. The registry
//! checks the permission, refuses what needs the server when there is none, decodes the
//! arguments, and writes one audit event for every attempt at a change: who (the actor), what
//! (the operation and its subject), when, from where (the actor's origin), and how it ended.
//!
//! Errors come in the few kinds callers act on ([`ErrorKind`]); the API maps them to HTTP
//! statuses, `causeriectl` to exit codes, the XEP-0133 commands to stanza errors.
//!
//! Knows nothing of HTTP, sockets or command lines.

pub mod accounts;
mod actor;
pub mod adhoc;
mod context;
mod error;
pub mod ops;
mod registry;

pub use actor::{Actor, Permission};
pub use context::{Context, Live, Probe, S2sQueue, S2sStream};
pub use error::{AdminError, ErrorKind};
pub use registry::{Done, OpInfo, Operation, Registry, Reply};

impl Registry {
    /// Every operation of this crate.
    pub fn standard() -> Registry {
        let mut reg = Registry::new();
        ops::register_all(&mut reg);
        reg
    }
}

#[cfg(test)]
mod tests;
