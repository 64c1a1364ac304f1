//! Client-to-server connections: the listeners (STARTTLS on 5222, direct TLS per XEP-0368 on 5223), the
//! negotiation of each client stream (RFC 6120 §4–§7: STARTTLS, SASL, resource binding), and the glue
//! between a bound session and the core.
//!
//! Owns: stream features offered to clients, the SASL exchange with credentials from the user store,
//! login rate limits, resource binding and conflicts, `from` stamping (RFC 6120 §8.1.2.1), the session
//! loop (socket, inbox, timers), and stream closing on errors, timeouts and shutdown. Knows nothing of
//! server-to-server links or what modules do with stanzas.

mod auth;
mod limiter;
mod listener;
mod metrics;
mod negotiate;
mod session;

pub use limiter::AuthLimiter;
pub use listener::{C2sServer, C2sSettings, serve};

/// Random identifiers (stream ids, generated resources): 64 bits, hex-encoded.
pub(crate) fn random_id() -> String {
    causerie_stream::random_hex(8)
}
