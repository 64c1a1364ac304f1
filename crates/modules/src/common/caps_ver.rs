//! The XEP-0115 §5.1 verification string of the server's own disco#info, shared by the stream
//! feature that announces it and by disco#info queries on `node#ver`.

use base64::Engine as _;
use causerie_core::{Core, Identity, IqTarget};
use sha1::{Digest as _, Sha1};

/// The `node` the server announces in its capabilities (XEP-0115 §4: a URI identifying the
/// software; `.invalid` because the project has no public home yet).
pub(crate) const CAPS_NODE: &str = "https://causerie.invalid";

/// The verification string for these identities and features (XEP-0115 §5.1, no data forms).
pub(crate) fn ver<'a>(
    identities: &[Identity],
    features: impl IntoIterator<Item = &'a str>,
) -> String {
    // §5.1 steps 2–3: identities sorted by category, type, then xml:lang (none here), each
    // written `category/type/lang/name<` with every slash kept even when a part is empty.
    let mut ids: Vec<(&str, &str, &str, &str)> = identities
        .iter()
        .map(|i| {
            (
                i.category.as_str(),
                i.kind.as_str(),
                "",
                i.name.as_deref().unwrap_or(""),
            )
        })
        .collect();
    // "i;octet" collation (RFC 4790 §9.3) is plain byte order, which is how `str` compares.
    ids.sort_unstable();
    ids.dedup();
    let mut s = String::new();
    for (category, kind, lang, name) in ids {
        s.push_str(category);
        s.push('/');
        s.push_str(kind);
        s.push('/');
        s.push_str(lang);
        s.push('/');
        s.push_str(name);
        s.push('<');
    }
    // Steps 4–5: features sorted, each followed by `<`.
    let mut feats: Vec<&str> = features.into_iter().collect();
    feats.sort_unstable();
    feats.dedup();
    for f in feats {
        s.push_str(f);
        s.push('<');
    }
    // Step 7–8: SHA-1, then base64 (RFC 4648 §4).
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// The server's verification string, from what the modules registered.
pub(crate) fn server_ver(core: &Core) -> String {
    ver(core.identities(), core.features(IqTarget::Server))
}

/// The disco node under which the server's capabilities can be queried (XEP-0115 §6.2).
pub(crate) fn server_node(core: &Core) -> String {
    format!("{CAPS_NODE}#{}", server_ver(core))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep_0115_simple_example() {
        // XEP-0115 §5.2.
        let identities = [Identity {
            category: "client".into(),
            kind: "pc".into(),
            name: Some("Exodus 0.9.1".into()),
        }];
        let features = [
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/caps",
        ];
        assert_eq!(ver(&identities, features), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let a = [
            Identity {
                category: "server".into(),
                kind: "im".into(),
                name: Some("X".into()),
            },
            Identity {
                category: "pubsub".into(),
                kind: "pep".into(),
                name: None,
            },
        ];
        let b = [a[1].clone(), a[0].clone()];
        assert_eq!(ver(&a, ["urn:b", "urn:a"]), ver(&b, ["urn:a", "urn:b"]));
        assert_ne!(ver(&a, ["urn:a"]), ver(&a, ["urn:b"]));
    }
}
