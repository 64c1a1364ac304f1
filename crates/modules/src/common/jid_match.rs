//! Whether a blocklist entry covers an address (XEP-0191 §6, consistent with XEP-0016 §2.1):
//! `user@domain/resource` only that resource, `user@domain` any of its resources,
//! `domain/resource` only that address, and `domain` the domain itself, every address at it and
//! every address at one of its subdomains.

use std::collections::HashSet;

use causerie_jid::Jid;

/// Whether any entry of `list` (canonical JID strings) covers `jid`.
///
/// Each form is one set lookup: the address itself (covers the full-JID and `domain/resource`
/// entries), its bare JID, then its domain and each parent domain at a label boundary.
pub(crate) fn blocked(list: &HashSet<String>, jid: &Jid) -> bool {
    if list.is_empty() {
        return false;
    }
    if list.contains(jid.as_str()) {
        return true;
    }
    if jid.node().is_some() && list.contains(jid.to_bare().as_str()) {
        return true;
    }
    let mut domain = jid.domain();
    loop {
        if list.contains(domain) {
            return true;
        }
        match domain.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => domain = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("valid jid")
    }

    #[test]
    fn full_jid_entry_covers_only_that_resource() {
        let l = list(&["romeo@montague.lit/orchard"]);
        assert!(blocked(&l, &jid("romeo@montague.lit/orchard")));
        assert!(!blocked(&l, &jid("romeo@montague.lit/garden")));
        assert!(!blocked(&l, &jid("romeo@montague.lit")));
    }

    #[test]
    fn bare_jid_entry_covers_every_resource() {
        let l = list(&["romeo@montague.lit"]);
        assert!(blocked(&l, &jid("romeo@montague.lit")));
        assert!(blocked(&l, &jid("romeo@montague.lit/orchard")));
        assert!(!blocked(&l, &jid("benvolio@montague.lit")));
        assert!(!blocked(&l, &jid("montague.lit")));
    }

    #[test]
    fn domain_resource_entry_covers_only_that_address() {
        let l = list(&["montague.lit/bot"]);
        assert!(blocked(&l, &jid("montague.lit/bot")));
        assert!(!blocked(&l, &jid("montague.lit")));
        assert!(!blocked(&l, &jid("romeo@montague.lit/bot")));
    }

    #[test]
    fn domain_entry_covers_users_resources_and_subdomains() {
        let l = list(&["montague.lit"]);
        for covered in [
            "montague.lit",
            "montague.lit/x",
            "romeo@montague.lit",
            "romeo@montague.lit/r",
            "chat.montague.lit",
        ] {
            assert!(blocked(&l, &jid(covered)), "{covered}");
        }
        for free in ["capulet.lit", "romeo@notmontague.lit", "lit"] {
            assert!(!blocked(&l, &jid(free)), "{free}");
        }
    }
}
