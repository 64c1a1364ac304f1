//! Rosters (RFC 6121 §2) and pending inbound subscription requests (RFC 6121 §3.1.3).
//!
//! Items are stored with the subscription state of RFC 6121 Appendix A split into its parts:
//! the `subscription` attribute (none/to/from/both), whether an outbound request is pending
//! (`ask='subscribe'`), whether the contact's inbound request is pending, and a pre-approval
//! (§3.4). Contacts are bare JIDs, already prepared by the caller. Every change bumps the owner's
//! roster version (§2.6), a number that only grows.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Upper bound on an item's `name` and on one group name, in bytes. RFC 6121 §2.1.2.4 lets a
/// server limit group names; the bound only stops a caller bug from storing arbitrary blobs.
pub const MAX_LABEL_BYTES: usize = 1023;

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

/// Rosters and pending inbound subscription requests. Every backend implements the same
/// observable behaviour, checked by [`crate::conformance::roster`].
///
/// Reads of an account that does not exist answer as for an empty roster (no items, version 0,
/// no pending request); every write to one fails with [`StoreError::NotFound`]. Removing the
/// account removes its roster, its version and its pending requests.
#[async_trait]
pub trait RosterStore: Send + Sync {
    /// The whole roster and its current version. An account without items has version 0 unless it
    /// had items before.
    ///
    /// Items come ordered by contact JID, compared byte by byte; the version is the one that
    /// went with exactly these items (both read at one point in time).
    async fn roster(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<(Vec<RosterItem>, u64), StoreError>;
    async fn item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError>;
    /// Inserts or replaces the item for `item.jid`; returns the new roster version. `NotFound` if
    /// the account does not exist.
    ///
    /// The version grows with every call, even one that stores what was already there. A group
    /// named twice in `item.groups` is stored once, at its first place. `InvalidInput` when the
    /// JID is empty or longer than [`crate::MAX_JID_BYTES`], a name or group name is longer than
    /// [`MAX_LABEL_BYTES`], or a text contains U+0000.
    async fn put_item(
        &self,
        username: &str,
        domain: &str,
        item: &RosterItem,
    ) -> Result<u64, StoreError>;
    /// Removes an item; returns the new version, or `None` (and no version change) if there was none.
    /// `NotFound` if the account does not exist.
    async fn remove_item(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<Option<u64>, StoreError>;
    async fn version(&self, username: &str, domain: &str) -> Result<u64, StoreError>;
    async fn count_items(&self, username: &str, domain: &str) -> Result<u64, StoreError>;
    /// Requests waiting for an answer, oldest first.
    async fn pending_in(
        &self,
        username: &str,
        domain: &str,
    ) -> Result<Vec<PendingSubscription>, StoreError>;
    /// Stores (or replaces) the pending request from `p.contact`. A replaced request keeps its
    /// place in the order: the contact has been waiting since its first request. `NotFound` if the
    /// account does not exist; `InvalidInput` for a contact as refused by
    /// [`put_item`](RosterStore::put_item) or a stanza containing U+0000.
    async fn add_pending_in(
        &self,
        username: &str,
        domain: &str,
        p: &PendingSubscription,
    ) -> Result<(), StoreError>;
    /// Forgets the pending request from `contact`; whether there was one. `NotFound` if the
    /// account does not exist.
    async fn remove_pending_in(
        &self,
        username: &str,
        domain: &str,
        contact: &str,
    ) -> Result<bool, StoreError>;
}

/// Checks `item` and returns it as stored: groups without duplicates, first occurrence kept.
pub(crate) fn stored_item(item: &RosterItem) -> Result<RosterItem, StoreError> {
    validate::jid("roster item JID", &item.jid)?;
    if let Some(name) = &item.name {
        validate::text("roster item name", name, Some(MAX_LABEL_BYTES))?;
    }
    let mut groups: Vec<String> = Vec::with_capacity(item.groups.len());
    for group in &item.groups {
        validate::text("roster group name", group, Some(MAX_LABEL_BYTES))?;
        // Linear search: a handful of groups per item is the norm, and a HashSet would cost
        // more than it saves there.
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    Ok(RosterItem {
        groups,
        ..item.clone()
    })
}

pub(crate) fn validate_pending(p: &PendingSubscription) -> Result<(), StoreError> {
    validate::jid("subscription request contact", &p.contact)?;
    validate::text("subscription request stanza", &p.stanza, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(groups: &[&str]) -> RosterItem {
        RosterItem {
            jid: "nurse@example.com".into(),
            name: Some("Nurse".into()),
            subscription: Subscription::Both,
            pending_out: false,
            pending_in: true,
            approved: false,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn subscription_names_round_trip() {
        for s in [
            Subscription::None,
            Subscription::To,
            Subscription::From,
            Subscription::Both,
        ] {
            assert_eq!(Subscription::parse(s.name()), Some(s));
        }
        assert_eq!(Subscription::parse("remove"), None);
    }

    #[test]
    fn duplicate_groups_keep_first_place() {
        let stored = stored_item(&item(&["b", "a", "b", "", "a", "c"])).unwrap();
        assert_eq!(stored.groups, ["b", "a", "", "c"]);
        assert_eq!(stored.name.as_deref(), Some("Nurse"));
    }

    #[test]
    fn bad_items_are_refused() {
        let mut i = item(&[]);
        i.jid = String::new();
        assert!(stored_item(&i).is_err());
        // A backslash and a zero are text; only U+0000 itself is refused.
        let i = item(&[r"x\0y"]);
        assert!(stored_item(&i).is_ok());
        let i = item(&["x\u{0}y"]);
        assert!(stored_item(&i).is_err());
        let mut i = item(&[]);
        i.name = Some("n".repeat(MAX_LABEL_BYTES + 1));
        assert!(stored_item(&i).is_err());
    }
}
