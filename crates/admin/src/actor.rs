//! Who runs an operation, from where, and what they may do.

use serde::{Deserialize, Serialize};

/// What an operation requires and what a caller was granted, in increasing order: a caller
/// granted a level may run every operation that requires it or a lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Look: list and show accounts and sessions, statistics.
    Read,
    /// Act on the running service without changing accounts: disconnect sessions, announce.
    Operate,
    /// Everything: create, change and remove accounts, read the audit log.
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Operate => "operate",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        match s {
            "read" => Some(Permission::Read),
            "operate" => Some(Permission::Operate),
            "admin" => Some(Permission::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of an operation, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who: `unix:alice` (a local user on the admin socket), `token:deploy` (a bearer token on
    /// TCP), `causeriectl:alice` (offline mode), `xmpp:admin@example.com` (an ad-hoc command).
    pub name: String,
    /// From where: a peer address, a process, a full JID; `None` when there is nothing to say.
    pub origin: Option<String>,
    /// What the caller may do.
    pub granted: Permission,
}

impl Actor {
    pub fn new(name: impl Into<String>, origin: Option<String>, granted: Permission) -> Self {
        Actor {
            name: name.into(),
            origin,
            granted,
        }
    }

    /// An administrator's account running an ad-hoc command (XEP-0133): the actor is the
    /// bare JID, the origin the full JID of the session it came from.
    pub fn xmpp(bare: &str, full: &str, granted: Permission) -> Self {
        Actor::new(format!("xmpp:{bare}"), Some(full.to_owned()), granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(Permission::Read < Permission::Operate);
        assert!(Permission::Operate < Permission::Admin);
        for p in [Permission::Read, Permission::Operate, Permission::Admin] {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("root"), None);
        let a = Actor::xmpp(
            "boss@example.com",
            "boss@example.com/desk",
            Permission::Admin,
        );
        assert_eq!(a.name, "xmpp:boss@example.com");
        assert_eq!(a.origin.as_deref(), Some("boss@example.com/desk"));
    }
}
