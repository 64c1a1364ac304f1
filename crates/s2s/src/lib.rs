//! Server-to-server federation (RFC 6120 §3.2, §4–§6, §13.7.2; XEP-0220, XEP-0178, XEP-0288,
//! XEP-0344, XEP-0368, XEP-0185).
//!
//! This crate owns how the server reaches its federation peers and how peers reach it: which hosts
//! and ports to try for a remote domain (the [`Resolve`] trait, with [`HickoryResolver`] for DNS
//! and [`StaticResolver`] for fixed routes), the pool of outgoing streams (one per pair of local
//! and remote domain, with a bounded queue while it is set up and the RFC 6120 errors when it
//! cannot be), the listeners for incoming streams, authentication both ways (SASL EXTERNAL with
//! certificates checked per RFC 6125, and dialback over TLS as the fallback, verified with the
//! peer's authoritative server), bidirectional streams, and the partner policy that decides which
//! domains may federate at all. It knows nothing of clients: stanzas go to and come from the
//! core's router.
//!
//! Layout: `server.rs` (shared state, pool, the core's remote route), `outbound.rs` (initiating
//! streams and dialback verification requests), `inbound.rs` (listeners and receiving streams),
//! `link.rs` (an authenticated stream at work), `conn.rs` (what both directions share),
//! `policy.rs` (partners and modes), `resolve.rs` (DNS), `dialback.rs` (keys).

mod conn;
pub mod dialback;
mod inbound;
mod link;
mod metrics;
mod outbound;
pub mod policy;
pub mod resolve;
mod server;

pub use dialback::{dialback_key, verify_key};
pub use inbound::serve;
pub use policy::{Decision, FederationPolicy, Mode, PartnerSettings};
pub use resolve::{
    HickoryResolver, Resolve, ResolveError, SrvAnswer, SrvRecord, StaticResolver, Target,
    TlsPreference, order_candidates, weighted_order,
};
pub use server::{
    AuditSink, AuthMethod, Direction, NoAudit, S2s, S2sParts, S2sSettings, StreamAudit, StreamInfo,
};
