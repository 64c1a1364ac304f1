//! Rosters (RFC 6121 §2) and pending inbound subscription requests (RFC 6121 §3.1.3).
//!
//! Items are stored with the subscription state of RFC 6121 Appendix A split into its parts:
//! the `subscription` attribute (none/to/from/both), whether an outbound request is pending
//! (`ask='subscribe'`), whether the contact's inbound request is pending, and a pre-approval
//! (§3.4). Contacts are bare JIDs, already prepared by the caller. Every change bumps the owner's
//! roster version (§2.6), a number that only grows.

use async_trait::async_trait;

use crate::StoreError;

/// The `subscription` attribute of a roster item (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subscription {
    None,
    To,
    From,
    Both,
}

impl Subscription {
    pub fn name(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Subscription> {
        match s {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }
}

/// One roster item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: String,
    /// The user's name for the contact (`name` attribute), if any.
    pub name: Option<String>,
    pub subscription: Subscription,
    /// The user asked to subscribe to the contact and has no answer yet (`ask='subscribe'`).
    pub pending_out: bool,
    /// The contact asked to subscribe to the user and has no answer yet.
    pub pending_in: bool,
    /// The user pre-approved the contact's subscription request (RFC 6121 §3.4).
    pub approved: bool,
    /// Group names, without duplicates, in the order given.
    pub groups: Vec<String>,
}

/// A subscription request from a contact the user has not answered, kept to be delivered again at
/// the next login (RFC 6121 §3.1.3, §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSubscription {
    /// The requesting contact's bare JID.
    pub contact: String,
    /// The `<presence type='subscribe'/>` as received, serialized, to redeliver it unchanged
    /// (it may carry a status message or a nickname).
    pub stanza: String,
}

#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The whole roster and its current version. An account without items has version 0 unless it
    /// had items before.
    async fn roster(&self, username: &str, domain: &str) -> Result<(Vec<RosterItem>, u64), StoreError>;
    async fn item(&self, username: &str, domain: &str, contact: &str) -> Result<Option<RosterItem>, StoreError>;
    /// Inserts or replaces the item for `item.jid`; returns the new roster version. `NotFound` if
    /// the account does not exist.
    async fn put_item(&self, username: &str, domain: &str, item: &RosterItem) -> Result<u64, StoreError>;
    /// Removes an item; returns the new version, or `None` (and no version change) if there was none.
    async fn remove_item(&self, username: &str, domain: &str, contact: &str) -> Result<Option<u64>, StoreError>;
    async fn version(&self, username: &str, domain: &str) -> Result<u64, StoreError>;
    async fn count_items(&self, username: &str, domain: &str) -> Result<u64, StoreError>;
    /// Requests waiting for an answer, oldest first.
    async fn pending_in(&self, username: &str, domain: &str) -> Result<Vec<PendingSubscription>, StoreError>;
    /// Stores (or replaces) the pending request from `p.contact`.
    async fn add_pending_in(&self, username: &str, domain: &str, p: &PendingSubscription) -> Result<(), StoreError>;
    /// Forgets the pending request from `contact`; whether there was one.
    async fn remove_pending_in(&self, username: &str, domain: &str, contact: &str) -> Result<bool, StoreError>;
}
