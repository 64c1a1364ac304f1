//! The `jabber:iq:roster` payloads (RFC 6121 §2.1): roster items as XML, and the checks a roster
//! set must pass (§2.1.5, §2.3.3, §2.5.3).

use causerie_jid::{BareJid, Jid};
use causerie_storage::roster::RosterItem;
use causerie_xml::Element;

/// The roster namespace (RFC 6121 §2.1).
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// The stream feature that announces roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// The stream feature that announces subscription pre-approval (RFC 6121 §3.4.1).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";

/// Longest `name` attribute accepted, in bytes (RFC 6121 §2.1.2.4 leaves the limit to the server;
/// §2.3.3 says an oversized one gets `not-acceptable`).
pub const MAX_NAME_BYTES: usize = 1023;
/// Longest group name accepted, in bytes (same rule as names, §2.1.2.4).
pub const MAX_GROUP_BYTES: usize = 1023;
/// Most groups one item may be in.
pub const MAX_GROUPS_PER_ITEM: usize = 64;

/// A roster set, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    /// Add the contact or change its name and groups (§2.3, §2.4).
    Update {
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
    },
    /// `subscription='remove'` (§2.5).
    Remove { jid: BareJid },
}

use crate::error::RosterError;

fn bad_request(text: &str) -> RosterError {
    RosterError::BadRequest(text.to_owned())
}

fn not_acceptable(text: &'static str) -> RosterError {
    RosterError::NotAcceptable(text)
}

/// Checks the `<query/>` of a roster set sent by `owner` (RFC 6121 §2.1.5, §2.3.3).
pub fn parse_set(owner: &BareJid, query: &Element) -> Result<RosterChange, RosterError> {
    let mut items = query.children().filter(|c| c.is("item", NS_ROSTER));
    let item = match (items.next(), items.next()) {
        (Some(item), None) => item,
        (None, _) => return Err(bad_request("a roster set carries one item")),
        (Some(_), Some(_)) => return Err(bad_request("a roster set carries exactly one item")),
    };
    let raw = item
        .attr("jid")
        .ok_or_else(|| bad_request("the item has no jid"))?;
    let jid =
        Jid::parse(raw).map_err(|e| bad_request(&format!("the item's jid is not valid: {e}")))?;
    // Subscriptions, and therefore roster items, are between bare JIDs (§3).
    let jid = jid
        .try_into_bare()
        .map_err(|_| bad_request("a roster item's jid is a bare JID"))?;
    if &jid == owner {
        return Err(bad_request("the roster holds contacts, not its owner"));
    }
    match item.attr("subscription") {
        Some("remove") => return Ok(RosterChange::Remove { jid }),
        // §2.1.2.5: in a roster set the server ignores every other defined value.
        None | Some("none" | "to" | "from" | "both") => {}
        Some(_) => return Err(bad_request("unknown subscription value")),
    }
    let name = match item.attr("name") {
        Some(n) if n.len() > MAX_NAME_BYTES => {
            return Err(not_acceptable("the item's name is too long"));
        }
        // An empty name is the same as none (§2.1.2.4 makes the name optional).
        Some("") | None => None,
        Some(n) => Some(n.to_owned()),
    };
    let mut groups: Vec<String> = Vec::new();
    for g in item.children().filter(|c| c.is("group", NS_ROSTER)) {
        let text = g.text();
        if text.is_empty() {
            // RFC 6121 §2.3.3: a zero-length group is not-acceptable (a duplicate is bad-request).
            return Err(not_acceptable("a group name is empty"));
        }
        if text.len() > MAX_GROUP_BYTES {
            return Err(not_acceptable("a group name is too long"));
        }
        if groups.contains(&text) {
            return Err(bad_request("a group appears twice"));
        }
        if groups.len() >= MAX_GROUPS_PER_ITEM {
            return Err(not_acceptable("the item is in too many groups"));
        }
        groups.push(text);
    }
    Ok(RosterChange::Update { jid, name, groups })
}

/// The `<item/>` of a roster result or push (§2.1.2).
pub fn item_element(item: &RosterItem) -> Element {
    let mut el = Element::new("item", NS_ROSTER)
        .with_attr("jid", item.jid.as_str())
        .with_attr(
            "subscription",
            crate::state::visible(item).subscription.name(),
        );
    if let Some(name) = &item.name {
        el.set_attr("name", name.as_str());
    }
    let state = crate::state::visible(item);
    // §2.1.2.2: ask='subscribe' shows a pending outbound request.
    if state.pending_out {
        el.set_attr("ask", "subscribe");
    }
    // §3.4: pre-approval shows as approved='true'.
    if item.approved && !state.has_from() {
        el.set_attr("approved", "true");
    }
    for g in &item.groups {
        el.push_child(Element::new("group", NS_ROSTER).with_text(g.as_str()));
    }
    el
}

/// The `<item subscription='remove'/>` of a push for a removed contact (§2.5.2).
pub fn removed_element(jid: &str) -> Element {
    Element::new("item", NS_ROSTER)
        .with_attr("jid", jid)
        .with_attr("subscription", "remove")
}

/// A `<query/>` with a version and these items.
pub fn query(version: &str, items: impl IntoIterator<Item = Element>) -> Element {
    let mut q = Element::new("query", NS_ROSTER).with_attr("ver", version);
    for i in items {
        q.push_child(i);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use causerie_stanza::StanzaErrorCondition as Cond;
    use causerie_storage::roster::Subscription;

    fn owner() -> BareJid {
        BareJid::parse("juliet@example.com").expect("jid")
    }

    fn set(item: Element) -> Element {
        Element::new("query", NS_ROSTER).with_child(item)
    }

    fn item(jid: &str) -> Element {
        Element::new("item", NS_ROSTER).with_attr("jid", jid)
    }

    fn group(name: &str) -> Element {
        Element::new("group", NS_ROSTER).with_text(name)
    }

    fn cond(r: Result<RosterChange, RosterError>) -> Cond {
        match r {
            Err(e) => e.to_stanza_error().condition,
            Ok(c) => panic!("accepted: {c:?}"),
        }
    }

    #[test]
    fn accepts_a_well_formed_update() {
        let q = set(item("Romeo@Example.com")
            .with_attr("name", "Romeo")
            .with_child(group("Friends")));
        let change = parse_set(&owner(), &q).expect("valid");
        assert_eq!(
            change,
            RosterChange::Update {
                jid: BareJid::parse("romeo@example.com").expect("jid"),
                name: Some("Romeo".into()),
                groups: vec!["Friends".into()],
            }
        );
        // A subscription value other than "remove" is ignored (§2.1.2.5).
        let q = set(item("romeo@example.com").with_attr("subscription", "both"));
        assert!(matches!(
            parse_set(&owner(), &q),
            Ok(RosterChange::Update { .. })
        ));
        let q = set(item("romeo@example.com").with_attr("subscription", "remove"));
        assert!(matches!(
            parse_set(&owner(), &q),
            Ok(RosterChange::Remove { .. })
        ));
    }

    #[test]
    fn refuses_malformed_sets() {
        let o = owner();
        let two = Element::new("query", NS_ROSTER)
            .with_child(item("a@x"))
            .with_child(item("b@x"));
        assert_eq!(cond(parse_set(&o, &two)), Cond::BadRequest);
        assert_eq!(
            cond(parse_set(&o, &Element::new("query", NS_ROSTER))),
            Cond::BadRequest
        );
        assert_eq!(
            cond(parse_set(&o, &set(Element::new("item", NS_ROSTER)))),
            Cond::BadRequest
        );
        assert_eq!(cond(parse_set(&o, &set(item("a@@x")))), Cond::BadRequest);
        assert_eq!(cond(parse_set(&o, &set(item("a@x/r")))), Cond::BadRequest);
        assert_eq!(
            cond(parse_set(&o, &set(item("juliet@example.com")))),
            Cond::BadRequest
        );
        assert_eq!(
            cond(parse_set(
                &o,
                &set(item("a@x").with_attr("subscription", "bogus"))
            )),
            Cond::BadRequest
        );
        assert_eq!(
            cond(parse_set(&o, &set(item("a@x").with_child(group(""))))),
            Cond::NotAcceptable
        );
        assert_eq!(
            cond(parse_set(
                &o,
                &set(item("a@x").with_child(group("g")).with_child(group("g")))
            )),
            Cond::BadRequest
        );
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            cond(parse_set(
                &o,
                &set(item("a@x").with_attr("name", long.as_str()))
            )),
            Cond::NotAcceptable
        );
        assert_eq!(
            cond(parse_set(&o, &set(item("a@x").with_child(group(&long))))),
            Cond::NotAcceptable
        );
        let mut many = item("a@x");
        for i in 0..=MAX_GROUPS_PER_ITEM {
            many.push_child(group(&format!("g{i}")));
        }
        assert_eq!(cond(parse_set(&o, &set(many))), Cond::NotAcceptable);
    }

    #[test]
    fn item_xml_shows_ask_and_approved() {
        let it = RosterItem {
            jid: "romeo@example.net".into(),
            name: Some("R".into()),
            subscription: Subscription::None,
            pending_out: true,
            pending_in: true,
            approved: true,
            groups: vec!["G".into()],
        };
        let el = item_element(&it);
        assert_eq!(el.attr("subscription"), Some("none"));
        assert_eq!(el.attr("ask"), Some("subscribe"));
        assert_eq!(el.attr("approved"), Some("true"));
        assert_eq!(el.attr("name"), Some("R"));
        assert_eq!(el.children().count(), 1);
        let both = RosterItem {
            subscription: Subscription::Both,
            ..it
        };
        let el = item_element(&both);
        assert_eq!(el.attr("ask"), None);
        assert_eq!(el.attr("approved"), None);
    }
}
