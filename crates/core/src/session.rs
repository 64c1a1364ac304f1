//! What the core knows of a bound session: its address, presence state and a bounded inbox.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI8, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use causerie_jid::FullJid;
use causerie_stanza::{StanzaKind, StreamError};
use causerie_xml::Element;
use tokio::sync::{Notify, mpsc};

/// A stanza on its way out, shared by every recipient; it is serialized once, by the first writer that
/// needs the bytes, and the others reuse them (presence broadcasts to hundreds of sessions).
#[derive(Debug)]
pub struct OutStanza {
    pub kind: Option<StanzaKind>,
    pub element: Element,
    bytes: OnceLock<Bytes>,
}

impl OutStanza {
    pub fn new(element: Element) -> Arc<OutStanza> {
        Arc::new(OutStanza {
            kind: StanzaKind::of(&element),
            element,
            bytes: OnceLock::new(),
        })
    }

    /// The serialized stanza. Written relative to its own namespace, so the same bytes are correct on a
    /// `jabber:client` and on a `jabber:server` stream: the top element and its content-namespace
    /// children inherit whatever default namespace the receiving stream declared.
    pub fn bytes(&self) -> &Bytes {
        self.bytes.get_or_init(|| {
            let mut out = Vec::with_capacity(256);
            // Stream-level elements of extensions keep their own namespace declaration.
            let parent = if self.kind.is_some() {
                self.element.ns()
            } else {
                ""
            };
            self.element.write_to(&mut out, parent);
            Bytes::from(out)
        })
    }
}

/// What a session's inbox carries.
#[derive(Debug, Clone)]
pub enum Outbound {
    Stanza(Arc<OutStanza>),
    /// Close the stream with this error (resource conflict, kick, policy violation, shutdown). Boxed:
    /// it is rare, and every slot of every inbox is as large as the largest variant.
    Close(Box<StreamError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The session's inbox is full: it is being disconnected, as a client that cannot keep up must not
    /// make the server grow memory.
    #[error("recipient session overloaded")]
    Overloaded,
    #[error("recipient session closed")]
    Closed,
}

/// Per-session feature flags (bits of [`SessionInfo::flag`]); one place so that modules do not need
/// per-session maps for yes/no state.
pub mod flags {
    /// The session asked for its roster: it gets roster pushes (RFC 6121 §2.1.6, "interested resource").
    pub const ROSTER_REQUESTED: u32 = 1;
    /// XEP-0280: carbons enabled.
    pub const CARBONS: u32 = 1 << 1;
    /// XEP-0352: the client said it is inactive.
    pub const CSI_INACTIVE: u32 = 1 << 2;
    /// The session has sent initial presence at least once (RFC 6121 §4.2).
    pub const INITIAL_PRESENCE_SENT: u32 = 1 << 3;
    /// A stage holds the session back (the usage policy is not accepted yet): it may talk only to
    /// the server, and the router treats it as not connected for everybody else — a message to
    /// its full JID goes to the bare JID, an IQ gets `service-unavailable`, presence is dropped.
    pub const RESTRICTED: u32 = 1 << 4;
}

/// Per-session state shared between the session task and the router.
#[derive(Debug)]
pub struct SessionInfo {
    pub id: u64,
    pub jid: FullJid,
    pub peer: Option<SocketAddr>,
    /// When the session was bound, in Unix seconds (administrators' session listings).
    pub connected_at: i64,
    available: AtomicBool,
    priority: AtomicI8,
    overloaded: AtomicBool,
    flags: AtomicU32,
    /// Woken when the router wants the session to go away without using the (full) inbox.
    pub kill: Notify,
}

impl SessionInfo {
    /// Whether the session has sent initial presence and not gone unavailable (RFC 6121 §4.2).
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    pub fn priority(&self) -> i8 {
        self.priority.load(Ordering::Acquire)
    }

    pub fn set_presence(&self, available: bool, priority: i8) {
        self.priority.store(priority, Ordering::Release);
        self.available.store(available, Ordering::Release);
    }

    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Acquire)
    }

    /// Whether a bit of [`flags`] is set.
    pub fn flag(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    /// Sets or clears a bit of [`flags`]; returns whether it was set before.
    pub fn set_flag(&self, flag: u32, on: bool) -> bool {
        let before = if on {
            self.flags.fetch_or(flag, Ordering::AcqRel)
        } else {
            self.flags.fetch_and(!flag, Ordering::AcqRel)
        };
        before & flag != 0
    }
}

/// A cheap-to-clone handle on a bound session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub info: Arc<SessionInfo>,
    tx: mpsc::Sender<Outbound>,
}

impl SessionHandle {
    /// Creates the handle and the receiving end of its inbox (bounded to `queue_len`).
    pub fn new(
        id: u64,
        jid: FullJid,
        peer: Option<SocketAddr>,
        queue_len: usize,
    ) -> (SessionHandle, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(queue_len.max(1));
        let info = Arc::new(SessionInfo {
            id,
            jid,
            peer,
            connected_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            available: AtomicBool::new(false),
            priority: AtomicI8::new(0),
            overloaded: AtomicBool::new(false),
            flags: AtomicU32::new(0),
            kill: Notify::new(),
        });
        (SessionHandle { info, tx }, rx)
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    pub fn jid(&self) -> &FullJid {
        &self.info.jid
    }

    /// Queues without waiting. A full inbox marks the session overloaded and wakes it so that it closes.
    pub fn deliver(&self, out: Outbound) -> Result<(), DeliveryError> {
        match self.tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.info.overloaded.swap(true, Ordering::AcqRel) {
                    tracing::warn!(jid = %self.info.jid, session = self.info.id, "outbound queue full, disconnecting");
                }
                self.info.kill.notify_one();
                Err(DeliveryError::Overloaded)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(DeliveryError::Closed),
        }
    }

    pub fn deliver_stanza(&self, stanza: &Arc<OutStanza>) -> Result<(), DeliveryError> {
        self.deliver(Outbound::Stanza(stanza.clone()))
    }

    /// Asks the session to close with a stream error. Works even when the inbox is full.
    pub fn close(&self, err: StreamError) {
        if self.tx.try_send(Outbound::Close(Box::new(err))).is_err() {
            self.info.overloaded.store(true, Ordering::Release);
            self.info.kill.notify_one();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// How many items wait in the inbox for the session's writer (administrators' statistics).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }
}
