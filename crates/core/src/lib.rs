//! The hub of the server: session registry, router, module API, IQ dispatch and the disco registry.
//!
//! Owns: where a stanza goes once a session has handed it over (RFC 6120 §10, RFC 6121 §8 delivery
//! rules for local entities), the inbound pipeline stages that modules join (policy gate, compliance,
//! filters), the IQ handler table (RFC 6120 §8.2.3: every request gets exactly one answer, and an
//! unhandled one gets `service-unavailable`), and the features and identities that service discovery
//! reports. Knows nothing of TLS, sockets, SQL or how a stream was negotiated: sessions reach it through
//! [`SessionHandle`]s, remote domains through the [`RemoteRoute`] trait.

pub mod metrics;
pub mod module;
pub mod registry;
pub mod router;
pub mod session;

pub use module::{
    COMMANDS_NS, Command, Drain, Event, EventListener, FeatureProvider, Identity, IqHandler,
    IqRequest, IqTarget, Module, ModuleRegistry, NonzaHandler, OfflineOutcome, OfflineSink, Reload,
    SessionHook, Stage, StageContext, Verdict,
};
pub use registry::{BindOutcome, Registry};
pub use router::{Core, CoreBuilder, Origin, RemoteRoute};
pub use session::{DeliveryError, OutStanza, Outbound, SessionHandle, SessionInfo, flags};
