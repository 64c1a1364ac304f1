//! Shared roster groups: groups an administrator manages (`causeriectl group …`) whose members
//! see each other in their rosters, as Prosody's `mod_groups` and ejabberd's
//! `mod_shared_roster` offer. The groups live in the database; this module keeps them in memory
//! as one immutable [`Directory`], replaced whole when an administrator changes them.
//!
//! What a member sees, computed when asked and never stored in the roster:
//! - every other member of each of its groups, as an item with `subscription='both'` and the
//!   group's display name as `<group/>` (RFC 6121 §2.1.2.3); a contact in several of its groups
//!   carries each of their names;
//! - presence flows between members as if they were subscribed to each other both ways:
//!   broadcasts (RFC 6121 §4.2.2, §4.4.2, §4.5.2) reach them, initial presence probes them
//!   (§4.2.2, §4.3.1) and probes from them are answered (§4.3.2);
//! - the member's own item for the same contact, when there is one, merges with the shared one:
//!   its name stays, the group names are united, the subscription shows as `both`. The own item
//!   keeps its real RFC 6121 subscription state underneath: subscription stanzas between members
//!   change only that, and when the groups no longer join the two, the own item is what remains.
//!
//! A roster version (RFC 6121 §2.6) is the stored version of the member's own items followed by
//! a digest of what its groups show it (see [`version`]), so a change of the groups changes the
//! version the member sees, and the same groups and items always give the same version.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use causerie_jid::BareJid;
use causerie_storage::SharedGroup;
use causerie_storage::roster::{RosterItem, Subscription};

/// The topic under which the roster module reloads the groups ([`causerie_core::Reload`]).
pub const TOPIC: &str = causerie_storage::groups::RELOAD_TOPIC;

/// One group as the roster uses it.
struct Group {
    name: String,
    /// What members' clients show: the display name, or the name.
    label: String,
    members: BTreeSet<BareJid>,
}

/// What one member's groups show it of one contact: the labels of the groups the two share, in
/// byte order, each once.
pub(crate) type Labels = Vec<String>;

/// The groups at one point in time.
#[derive(Default)]
pub(crate) struct Directory {
    /// By name.
    groups: Vec<Group>,
    /// Member → indexes into `groups`.
    of_member: HashMap<BareJid, Vec<usize>>,
}

impl Directory {
    /// The groups as read from the store. A member that is not a bare JID (written around the
    /// admin operations) is left out with a warning rather than failing every roster.
    pub(crate) fn from_groups(groups: Vec<SharedGroup>) -> Directory {
        let mut dir = Directory::default();
        for g in groups {
            let label = g.label().to_owned();
            let mut members = BTreeSet::new();
            for m in &g.members {
                match BareJid::parse(m) {
                    Ok(j) => {
                        members.insert(j);
                    }
                    Err(e) => {
                        tracing::warn!(group = %g.name, member = %m, error = %e, "a shared group member is not a bare JID; left out")
                    }
                }
            }
            let index = dir.groups.len();
            for m in &members {
                dir.of_member.entry(m.clone()).or_default().push(index);
            }
            dir.groups.push(Group {
                name: g.name,
                label,
                members,
            });
        }
        dir
    }

    /// Whether there is no group at all (the common case, checked first on hot paths).
    pub(crate) fn is_empty(&self) -> bool {
        self.of_member.is_empty()
    }

    /// The contacts `member` shares a group with, by JID string, each with the labels of those
    /// groups.
    pub(crate) fn contacts_of(&self, member: &BareJid) -> BTreeMap<String, (BareJid, Labels)> {
        let mut out: BTreeMap<String, (BareJid, Labels)> = BTreeMap::new();
        let Some(indexes) = self.of_member.get(member) else {
            return out;
        };
        for &i in indexes {
            let g = &self.groups[i];
            for c in g.members.iter().filter(|c| *c != member) {
                let entry = out
                    .entry(c.as_str().to_owned())
                    .or_insert_with(|| (c.clone(), Vec::new()));
                if !entry.1.contains(&g.label) {
                    entry.1.push(g.label.clone());
                }
            }
        }
        for (_, labels) in out.values_mut() {
            labels.sort();
        }
        out
    }

    /// The contacts `member` shares a group with.
    pub(crate) fn contact_jids(&self, member: &BareJid) -> Vec<BareJid> {
        if self.is_empty() {
            return Vec::new();
        }
        self.contacts_of(member)
            .into_values()
            .map(|(j, _)| j)
            .collect()
    }

    /// The labels of the groups `member` and `contact` share (empty when none).
    pub(crate) fn labels_between(&self, member: &BareJid, contact: &BareJid) -> Labels {
        if member == contact {
            return Vec::new();
        }
        let Some(indexes) = self.of_member.get(member) else {
            return Vec::new();
        };
        let mut labels: Labels = Vec::new();
        for &i in indexes {
            let g = &self.groups[i];
            if g.members.contains(contact) && !labels.contains(&g.label) {
                labels.push(g.label.clone());
            }
        }
        labels.sort();
        labels
    }

    /// Whether `a` and `b` share a group.
    pub(crate) fn shares(&self, a: &BareJid, b: &BareJid) -> bool {
        a != b
            && self
                .of_member
                .get(a)
                .is_some_and(|indexes| indexes.iter().any(|&i| self.groups[i].members.contains(b)))
    }

    /// The members whose view may differ between `old` and `new`: those, before or after, of
    /// every group that was added, removed, renamed in display or changed in members.
    pub(crate) fn changed_members(old: &Directory, new: &Directory) -> BTreeSet<BareJid> {
        let by_name = |d: &Directory| -> HashMap<String, usize> {
            d.groups
                .iter()
                .enumerate()
                .map(|(i, g)| (g.name.clone(), i))
                .collect()
        };
        let (old_names, new_names) = (by_name(old), by_name(new));
        let mut out = BTreeSet::new();
        for g in &old.groups {
            let same = new_names.get(&g.name).is_some_and(|&i| {
                let n = &new.groups[i];
                n.label == g.label && n.members == g.members
            });
            if !same {
                out.extend(g.members.iter().cloned());
            }
        }
        for g in &new.groups {
            let same = old_names.get(&g.name).is_some_and(|&i| {
                let o = &old.groups[i];
                o.label == g.label && o.members == g.members
            });
            if !same {
                out.extend(g.members.iter().cloned());
            }
        }
        out
    }
}

/// The roster version a member sees (RFC 6121 §2.6: an opaque string the server chooses): the
/// stored version of its own items, and, when its groups show it anything, `-` and a 64-bit
/// FNV-1a digest of those contacts and labels. Stored versions only grow, so one version string
/// always stands for one roster; an account in no group keeps the plain stored version.
pub(crate) fn version(stored: u64, shared: &BTreeMap<String, (BareJid, Labels)>) -> String {
    if shared.is_empty() {
        return stored.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher, so that
    // a restart does not make every client fetch its roster again.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (jid, (_, labels)) in shared {
        feed(jid.as_bytes());
        for l in labels {
            // Separators that neither a JID nor a label contains (both refuse U+0000).
            feed(b"\0");
            feed(l.as_bytes());
        }
        feed(b"\0\0");
    }
    format!("{stored}-{h:016x}")
}

/// The item a member sees for a contact its groups show it: its own item, if any, merged with
/// the shared one (own name; own groups, then the group labels it lacks; `both`, nothing
/// pending, no pre-approval to show).
pub(crate) fn merged(own: Option<&RosterItem>, contact: &BareJid, labels: &[String]) -> RosterItem {
    let mut groups: Vec<String> = own.map(|i| i.groups.clone()).unwrap_or_default();
    for l in labels {
        if !groups.contains(l) {
            groups.push(l.clone());
        }
    }
    RosterItem {
        jid: contact.as_str().to_owned(),
        name: own.and_then(|i| i.name.clone()),
        subscription: Subscription::Both,
        pending_out: false,
        pending_in: false,
        approved: false,
        groups,
    }
}

/// The item a member sees for a contact it has an item for: merged when its groups show the
/// contact too, its own otherwise.
pub(crate) fn merged_or_own(own: &RosterItem, contact: &BareJid, labels: &[String]) -> RosterItem {
    if labels.is_empty() {
        own.clone()
    } else {
        merged(Some(own), contact, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::parse(s).expect("jid")
    }

    fn group(name: &str, display: Option<&str>, members: &[&str]) -> SharedGroup {
        SharedGroup {
            name: name.into(),
            display_name: display.map(Into::into),
            description: None,
            created_at: 0,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn directory() -> Directory {
        Directory::from_groups(vec![
            group("staff", Some("Staff"), &["a@x", "b@x", "r@remote.example"]),
            group("board", None, &["a@x", "c@x", "b@x"]),
            group("broken", None, &["d@x/resource", "not a jid@@"]),
        ])
    }

    #[test]
    fn members_see_each_other_with_every_shared_label() {
        let d = directory();
        let a = d.contacts_of(&jid("a@x"));
        let listed: Vec<(&str, Vec<&str>)> = a
            .iter()
            .map(|(k, (_, l))| (k.as_str(), l.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            listed,
            [
                ("b@x", vec!["Staff", "board"]),
                ("c@x", vec!["board"]),
                ("r@remote.example", vec!["Staff"]),
            ]
        );
        assert!(d.contacts_of(&jid("z@x")).is_empty());
        assert_eq!(d.labels_between(&jid("c@x"), &jid("b@x")), ["board"]);
        assert!(
            d.labels_between(&jid("c@x"), &jid("r@remote.example"))
                .is_empty()
        );
        assert!(d.shares(&jid("r@remote.example"), &jid("b@x")));
        assert!(!d.shares(&jid("a@x"), &jid("a@x")));
        assert!(!d.shares(&jid("c@x"), &jid("r@remote.example")));
        // Members that are not bare JIDs are left out.
        assert!(d.contacts_of(&jid("d@x")).is_empty());
    }

    #[test]
    fn changes_name_exactly_the_members_of_changed_groups() {
        let old = directory();
        let new = Directory::from_groups(vec![
            group("staff", Some("Staff"), &["a@x", "b@x", "r@remote.example"]),
            group("board", None, &["a@x", "e@x"]),
            group("new", None, &["f@x"]),
        ]);
        let changed: Vec<String> = Directory::changed_members(&old, &new)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(changed, ["a@x", "b@x", "c@x", "e@x", "f@x"]);
        let relabelled = Directory::from_groups(vec![
            group(
                "staff",
                Some("Everyone"),
                &["a@x", "b@x", "r@remote.example"],
            ),
            group("board", None, &["a@x", "c@x", "b@x"]),
            group("broken", None, &["d@x/resource", "not a jid@@"]),
        ]);
        assert_eq!(
            Directory::changed_members(&old, &relabelled).len(),
            3,
            "a display name change reaches every member of that group"
        );
        assert!(Directory::changed_members(&old, &directory()).is_empty());
    }

    #[test]
    fn versions_follow_what_the_groups_show() {
        let d = directory();
        let a = d.contacts_of(&jid("a@x"));
        assert_eq!(version(7, &BTreeMap::new()), "7");
        let v = version(7, &a);
        assert!(v.starts_with("7-") && v.len() == 2 + 16, "{v}");
        assert_eq!(v, version(7, &directory().contacts_of(&jid("a@x"))));
        assert_ne!(v, version(8, &a));
        assert_ne!(v, version(7, &d.contacts_of(&jid("b@x"))));
    }

    #[test]
    fn own_items_merge_with_shared_ones() {
        let own = RosterItem {
            jid: "b@x".into(),
            name: Some("Bee".into()),
            subscription: Subscription::None,
            pending_out: true,
            pending_in: true,
            approved: true,
            groups: vec!["Friends".into(), "Staff".into()],
        };
        let m = merged(Some(&own), &jid("b@x"), &["Staff".into(), "board".into()]);
        assert_eq!(m.name.as_deref(), Some("Bee"));
        assert_eq!(m.groups, ["Friends", "Staff", "board"]);
        assert_eq!(m.subscription, Subscription::Both);
        assert!(!m.pending_out && !m.pending_in && !m.approved);
        let bare = merged(None, &jid("c@x"), &["board".into()]);
        assert_eq!(bare.name, None);
        assert_eq!(bare.groups, ["board"]);
        assert_eq!(merged_or_own(&own, &jid("b@x"), &[]), own);
        assert_eq!(
            merged_or_own(&own, &jid("b@x"), &["board".into()]).groups,
            ["Friends", "Staff", "board"]
        );
    }
}
