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
mod negotiate;
mod session;

pub use limiter::AuthLimiter;
pub use listener::{C2sServer, C2sSettings, serve};

/// Random identifiers (stream ids, generated resources): 64 bits from the OS, hex-encoded.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // The OS generator failing is not something a connection can fix; fall back to the clock so the
        // id stays unique enough to tell streams apart (ids are not secrets).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.as_nanos() as u64).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
