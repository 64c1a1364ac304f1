//! XMPP addresses (JIDs) as defined by RFC 7622.
//!
//! This crate owns the parsing, preparation and comparison of JIDs: the split into
//! localpart, domainpart and resourcepart (RFC 7622 §3.1), the PRECIS profiles for the
//! localpart (UsernameCaseMapped, RFC 8265 §3.3, plus the extra prohibitions of RFC 7622
//! §3.3.1) and the resourcepart (OpaqueString, RFC 8265 §4.2), and the domainpart rules
//! (RFC 7622 §3.2: IP literals kept as written, domain names processed with IDNA2008 into
//! their U-label form, one trailing dot stripped). It also reports, at debug level, when
//! the older stringprep profiles of RFC 6122 would have prepared a part differently, to
//! help operators migrating data from servers that used them.
//!
//! It knows nothing of stanzas, sessions, storage or the network.
//!
//! A JID is stored as one canonical string behind an `Arc<str>` plus the offsets of its
//! separators: cloning is a reference-count increment, and the bare view of a full JID
//! shares the full JID's storage. Two JIDs are equal exactly when their canonical strings
//! are equal.
//!
//! RFC 7622 §3.5 lists `juliet@example.com/ foo` (a leading space in the resourcepart)
//! among the invalid examples, but no rule in RFC 7622 §3.4 or in the OpaqueString profile
//! it points to forbids the space, and other servers accept it. This crate follows the
//! rules and accepts it: refusing an address that peers consider valid would drop their
//! traffic.

mod error;
mod jid;
mod legacy;
mod prep;

pub use crate::error::{JidError, JidPart};
pub use crate::jid::{BareJid, FullJid, Jid};
pub use crate::legacy::{StringprepDifference, stringprep_differs};
pub use crate::prep::{MAX_PART_LEN, prepare_domain, prepare_localpart, prepare_resourcepart};
