//! The compliance engine: rules that scan messages and act on them, with sealed,
//! tamper-evident evidence.
//!
//! - [`rules`]: the rules file, checked whole; [`engine`]: the compiled rule set and its
//!   evaluation; [`stage`]: the module of the core that applies the actions, writes evidence
//!   and reloads the rules; [`evidence`]: the signed hash chain of evidence records;
//!   [`seal`]: evidence payloads encrypted to the compliance officer's key; [`webhook`]:
//!   alerts posted as JSON to an HTTP endpoint, from a bounded queue off the message path;
//!   [`review`]: the review decisions of quarantined messages carried out; [`lock`]: accounts
//!   locked by `terminate` with `lock_minutes`.
//!
//! The text matching underneath, with no I/O and no knowledge of rules files, stanzas or
//! actions:
//!
//! - [`text`]: the folded, searchable form of a body (case, accents, compatibility forms and
//!   white space ignored) and the map from folded ranges back to the original text.
//! - [`keywords`]: word lists, matched on folded text at word boundaries by one Aho-Corasick
//!   automaton.
//! - [`patterns`]: administrators' regular expressions, matched on the original text by the
//!   `regex` crate.
//! - [`screen`]: one pass over the text as written for every pattern, the detectors' shapes and
//!   a short list of ASCII keywords, which lets the commonest message, matching nothing, skip
//!   those scans.
//! - [`detect`]: built-in detectors that validate what they find: payment cards (Luhn), IBANs
//!   (ISO 13616, MOD 97-10), e-mail addresses, links.
//!
//! Every search runs in time linear in the message, whatever an administrator wrote: neither
//! automaton backtracks, and each pattern's compiled size is bounded when it is loaded. Every
//! range reported is a byte range of the original body, on character boundaries, so that an
//! action can quote or redact exactly what was found.
//!
//! Standards: Unicode UAX #15 (normalization forms), UAX #44 (general categories), ISO 13616-1
//! and ISO 7064 (IBAN), ISO/IEC 7812-1 (card numbers, Luhn), RFC 5322 §3.4.1 and RFC 6531
//! (addresses), RFC 3986 (URIs), RFC 5122 (`xmpp:` URIs).

pub mod detect;
pub mod engine;
pub mod evidence;
pub mod keywords;
pub mod lock;
pub mod patterns;
pub mod report;
pub mod review;
pub mod rules;
pub mod screen;
pub mod seal;
pub mod stage;
pub mod text;
pub mod webhook;

pub use keywords::{KeywordError, KeywordHit, KeywordReason, KeywordSet};
pub use patterns::{PatternError, PatternHit, PatternReason, PatternSet};
pub use stage::{Compliance, ComplianceOptions};
pub use text::{Folded, fold};

/// The most occurrences one keyword or pattern reports in one message. Each reports its own,
/// so a message that repeats one word many times cannot push another out of the results.
pub const MAX_HITS_PER_PATTERN: usize = 1024;
