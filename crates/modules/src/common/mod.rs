//! Helpers that several modules share without depending on each other: date formatting
//! (XEP-0082), the entity capabilities verification string (XEP-0115 §5.1), blocklist matching
//! (XEP-0191 §6) and the mapping of storage failures to stanza errors. None of them is a protocol
//! feature on its own.

pub(crate) mod caps_ver;
pub(crate) mod datetime;
pub(crate) mod jid_match;

use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::StoreError;

/// XEP-0004 data forms, the payload of XEP-0128 extended disco information.
pub(crate) const NS_DATA_FORMS: &str = "jabber:x:data";

/// The one place where a storage failure becomes what the requester sees (RFC 6120 §8.3.3).
///
/// The store's message can name accounts and database details, so it goes to the log only.
pub(crate) fn store_error(what: &'static str, err: &StoreError) -> StanzaError {
    match err {
        // Writes to an account that is gone (removed while its session was still open).
        StoreError::NotFound(_) => StanzaError::new(Cond::ItemNotFound),
        StoreError::InvalidInput(_) => StanzaError::new(Cond::NotAcceptable),
        _ => {
            tracing::warn!(error = %err, "{what} failed in storage");
            StanzaError::new(Cond::InternalServerError)
        }
    }
}

/// Limits for parsing documents the server stored itself (vCards, private XML, offline
/// messages). They passed the framer's limits when they arrived, which may have been configured
/// higher than the defaults, so reading them back must not be stricter than any configuration.
pub(crate) fn stored_document_limits(len: usize) -> causerie_xml::Limits {
    causerie_xml::Limits {
        max_stanza_bytes: len.saturating_add(1),
        max_depth: 512,
        max_attributes: 2048,
        ..causerie_xml::Limits::default()
    }
}

/// Parses a document stored by [`causerie_xml::Element::to_xml`].
pub(crate) fn parse_stored(xml: &str) -> Option<causerie_xml::Element> {
    match causerie_xml::Element::parse_with_limits(
        xml.as_bytes(),
        "",
        &stored_document_limits(xml.len()),
    ) {
        Ok(el) => Some(el),
        Err(e) => {
            tracing::warn!(error = %e, "a stored document does not parse");
            None
        }
    }
}
