//! Shared roster groups: groups an administrator manages whose members see each other in their
//! rosters, as Prosody's `mod_groups` and ejabberd's `mod_shared_roster` offer.
//!
//! A group has a name (its identifier for administrators), an optional display name (the
//! `<group/>` its members' clients show, RFC 6121 §2.1.2.3; the name when there is none), an
//! optional description, and members: bare JIDs, local accounts or accounts on other servers.
//! Members are addresses, not accounts: a membership does not belong to an account, so removing
//! an account leaves its memberships in place (the server shows them as they are), and a member
//! on another server is stored like any other. The server keeps the groups in memory and reads
//! them at start and when an administrator changes them.

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// The name under which a running server reads the groups again after a change (the core's
/// reload topic), shared by the admin operations that change them and the roster that uses them.
pub const RELOAD_TOPIC: &str = "shared-groups";

/// Longest group name, in bytes. Names identify groups on the command line; the display name
/// is what users see.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest display name, in bytes: the limit of a roster group name
/// ([`crate::roster::MAX_LABEL_BYTES`]).
pub const MAX_DISPLAY_NAME_BYTES: usize = crate::roster::MAX_LABEL_BYTES;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A group with its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedGroup {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Bare JIDs, in byte order, each once.
    pub members: Vec<String>,
}

impl SharedGroup {
    /// What members' clients show as the group: the display name, or the name.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// Shared roster groups. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::groups`].
///
/// Names and members are stored as given (the caller prepares JIDs, RFC 7622 §3) and compared
/// byte by byte. Lookups by a value that could never be stored (U+0000) find nothing.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates an empty group. `AlreadyExists` when the name is taken; `InvalidInput`, and
    /// nothing written, when the name is empty or longer than [`MAX_NAME_BYTES`], the display
    /// name is empty or longer than [`MAX_DISPLAY_NAME_BYTES`], the description is longer than
    /// [`MAX_DESCRIPTION_BYTES`], or any of them contains U+0000.
    async fn create_group(&self, group: &NewGroup) -> Result<(), StoreError>;
    /// Removes a group with its memberships; `Ok(false)` when there was none.
    async fn remove_group(&self, name: &str) -> Result<bool, StoreError>;
    /// Makes `members` members of the group; returns those that were not members yet, in the
    /// order given, each once. `NotFound` when there is no such group; `InvalidInput`, and
    /// nothing written, when a member is empty, longer than [`crate::MAX_JID_BYTES`] or
    /// contains U+0000.
    async fn add_members(&self, name: &str, members: &[String]) -> Result<Vec<String>, StoreError>;
    /// Ends the membership of `members`; returns those that were members, in the order given,
    /// each once. `NotFound` when there is no such group.
    async fn remove_members(
        &self,
        name: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError>;
    /// Every group with its members, ordered by name (byte order).
    async fn groups(&self) -> Result<Vec<SharedGroup>, StoreError>;
    /// One group with its members.
    async fn group(&self, name: &str) -> Result<Option<SharedGroup>, StoreError>;
}

/// Checks what `create_group` is about to write.
pub(crate) fn validate_group(group: &NewGroup) -> Result<(), StoreError> {
    if group.name.is_empty() {
        return Err(StoreError::InvalidInput("empty group name".to_owned()));
    }
    validate::text("group name", &group.name, Some(MAX_NAME_BYTES))?;
    if let Some(display) = &group.display_name {
        if display.is_empty() {
            return Err(StoreError::InvalidInput(
                "empty group display name".to_owned(),
            ));
        }
        validate::text("group display name", display, Some(MAX_DISPLAY_NAME_BYTES))?;
    }
    if let Some(description) = &group.description {
        validate::text(
            "group description",
            description,
            Some(MAX_DESCRIPTION_BYTES),
        )?;
    }
    Ok(())
}

/// Checks the members about to be added and returns them each once, first occurrence kept.
pub(crate) fn distinct_members(members: &[String]) -> Result<Vec<String>, StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        validate::jid("group member", m)?;
        if seen.insert(m.as_str()) {
            out.push(m.clone());
        }
    }
    Ok(out)
}

/// `members` each once, first occurrence kept, without those that cannot be stored (a removal
/// of those removes nothing).
pub(crate) fn distinct_lookups(members: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    members
        .iter()
        .filter(|m| !m.contains('\0') && seen.insert(m.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> NewGroup {
        NewGroup {
            name: name.into(),
            display_name: None,
            description: None,
            created_at: 0,
        }
    }

    #[test]
    fn group_fields_are_checked() {
        assert!(validate_group(&group("staff")).is_ok());
        assert!(validate_group(&group("")).is_err());
        assert!(validate_group(&group(&"n".repeat(MAX_NAME_BYTES + 1))).is_err());
        assert!(validate_group(&group("a\0b")).is_err());
        let mut g = group("staff");
        g.display_name = Some(String::new());
        assert!(validate_group(&g).is_err());
        g.display_name = Some("Staff".into());
        g.description = Some("d".repeat(MAX_DESCRIPTION_BYTES + 1));
        assert!(validate_group(&g).is_err());
    }

    #[test]
    fn members_are_checked_and_kept_once() {
        let m = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            distinct_members(&m(&["b@x", "a@x", "b@x"])).unwrap(),
            m(&["b@x", "a@x"])
        );
        assert!(distinct_members(&m(&["a@x", ""])).is_err());
        assert!(distinct_members(&m(&["a\0@x"])).is_err());
        assert_eq!(distinct_lookups(&m(&["a@x", "a\0@x", "a@x"])), m(&["a@x"]));
        let g = SharedGroup {
            name: "staff".into(),
            display_name: None,
            description: None,
            created_at: 0,
            members: vec![],
        };
        assert_eq!(g.label(), "staff");
    }
}
