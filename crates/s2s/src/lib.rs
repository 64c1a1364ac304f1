//! Server-to-server federation (RFC 6120 §3.2; XEP-0368, XEP-0185).
//!
//! This crate owns how a domain reaches its federation peers: which hosts and ports to try
//! for a remote domain (the [`Resolve`] trait, with [`HickoryResolver`] for DNS and
//! [`StaticResolver`] for fixed routes), and the dialback keys of XEP-0185 that a peer
//! asks us to vouch for. It knows nothing of clients or of how stanzas are routed locally;
//! sockets, TLS and stream negotiation are driven by `causerie-stream` and `causerie-tls`.
//!
//! Implemented here: RFC 6120 §3.2 (SRV lookup of `_xmpp-server._tcp` and the fallback to
//! the domain itself on port 5269), XEP-0368 (`_xmpps-server._tcp` records for direct TLS,
//! mixed with the STARTTLS records by priority and weight), RFC 2782 (target ordering by
//! priority and weighted random selection, and the "." target meaning "no service"), and
//! XEP-0185 (dialback key generation and constant-time verification).

pub mod dialback;
pub mod resolve;

pub use dialback::{dialback_key, verify_key};
pub use resolve::{
    HickoryResolver, Resolve, ResolveError, SrvAnswer, SrvRecord, StaticResolver, Target,
    TlsPreference, order_candidates, weighted_order,
};
