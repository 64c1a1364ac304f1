//! Test tooling: an XMPP client for protocol tests and the load tool, test certificates, and (with the
//! `harness` feature) an in-process server on ephemeral ports.
//!
//! Owns: nothing the server runs in production. The client speaks RFC 6120 (STARTTLS, direct TLS per
//! XEP-0368, SCRAM with channel binding, PLAIN, bind) from scratch so that tests check the server
//! against the specification rather than against itself.

pub mod certs;
pub mod client;
#[cfg(feature = "harness")]
pub mod harness;
