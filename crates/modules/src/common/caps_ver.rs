//! The XEP-0115 §5.1 verification string of the server's own disco#info, shared by the stream
//! feature that announces it and by disco#info queries on `node#ver`.

use base64::Engine as _;
use causerie_core::{Core, Identity, IqTarget};
use causerie_xml::Element;
use sha1::{Digest as _, Sha1};

use super::NS_DATA_FORMS;

/// The `node` the server announces in its capabilities (XEP-0115 §4: a URI identifying the
/// software; `.invalid` because the project has no public home yet).
pub(crate) const CAPS_NODE: &str = "https://causerie.invalid";

/// The verification string for these identities, features and extended information forms
/// (XEP-0115 §5.1, XEP-0128).
pub(crate) fn ver<'a>(
    identities: &[Identity],
    features: impl IntoIterator<Item = &'a str>,
    forms: &[Element],
) -> String {
    // The server's identities carry no xml:lang.
    let ids = identities
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
    hash(&verification_input(ids, features, forms))
}

/// The string S of XEP-0115 §5.1 steps 1–7, before hashing. Identities are
/// `(category, type, xml:lang, name)`.
fn verification_input<'a>(
    mut ids: Vec<(&str, &str, &str, &str)>,
    features: impl IntoIterator<Item = &'a str>,
    forms: &[Element],
) -> String {
    // Steps 2–3: identities sorted by category, type, then xml:lang, each written
    // `category/type/lang/name<` with every slash kept even when a part is empty.
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
    // Steps 6–7: extended forms (XEP-0128) sorted by FORM_TYPE; each writes its FORM_TYPE, then its
    // other fields sorted by var, each as `var<` followed by its values, sorted, each with `<`.
    // §5.4 (3.6): a form whose FORM_TYPE is missing or not hidden is ignored.
    let mut typed: Vec<(String, &Element)> = forms
        .iter()
        .filter_map(|form| form_type(form).map(|t| (t, form)))
        .collect();
    typed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (form_type, form) in typed {
        s.push_str(&form_type);
        s.push('<');
        // A field without `var` (e.g. `fixed`) carries no value that could be named; the
        // algorithm has no place for it.
        let mut fields: Vec<(&str, Vec<String>)> = form
            .children()
            .filter(|f| f.is("field", NS_DATA_FORMS))
            .filter_map(|f| f.attr("var").map(|var| (var, f)))
            .filter(|(var, _)| *var != "FORM_TYPE")
            .map(|(var, f)| {
                let values = f
                    .children()
                    .filter(|v| v.is("value", NS_DATA_FORMS))
                    .map(Element::text)
                    .collect();
                (var, values)
            })
            .collect();
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (var, mut values) in fields {
            s.push_str(var);
            s.push('<');
            values.sort_unstable();
            for v in values {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    s
}

/// The value of the form's hidden `FORM_TYPE` field (XEP-0068).
fn form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|f| f.is("field", NS_DATA_FORMS) && f.attr("var") == Some("FORM_TYPE"))
        .filter(|f| f.attr("type") == Some("hidden"))
        .and_then(|f| f.get_child("value", NS_DATA_FORMS))
        .map(Element::text)
}

/// Steps 8–10: SHA-1 of the UTF-8 bytes, then base64 (RFC 4648 §4).
fn hash(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// The server's verification string, from what the modules registered.
pub(crate) fn server_ver(core: &Core) -> String {
    ver(
        core.identities(),
        core.features(IqTarget::Server),
        core.disco_forms(),
    )
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
        assert_eq!(
            ver(&identities, features, &[]),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }

    fn field(var: &str, kind: Option<&str>, values: &[&str]) -> Element {
        let mut f = Element::new("field", NS_DATA_FORMS).with_attr("var", var);
        if let Some(kind) = kind {
            f.set_attr("type", kind);
        }
        for v in values {
            f.push_child(Element::new("value", NS_DATA_FORMS).with_text(*v));
        }
        f
    }

    fn form(fields: Vec<Element>) -> Element {
        fields.into_iter().fold(
            Element::new("x", NS_DATA_FORMS).with_attr("type", "result"),
            Element::with_child,
        )
    }

    fn software_info() -> Element {
        // Fields out of order, values out of order: the algorithm sorts them.
        form(vec![
            field(
                "FORM_TYPE",
                Some("hidden"),
                &["urn:xmpp:dataforms:softwareinfo"],
            ),
            field("software_version", None, &["0.11"]),
            field("ip_version", Some("text-multi"), &["ipv6", "ipv4"]),
            field("os", None, &["Mac"]),
            field("software", None, &["Psi"]),
            field("os_version", None, &["10.5.1"]),
        ])
    }

    #[test]
    fn xep_0115_complex_example() {
        // XEP-0115 §5.3: two identities in two languages and one extended form.
        let ids = vec![
            ("client", "pc", "en", "Psi 0.11"),
            ("client", "pc", "el", "Ψ 0.11"),
        ];
        let features = [
            "http://jabber.org/protocol/caps",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/muc",
        ];
        let s = verification_input(ids, features, &[software_info()]);
        assert_eq!(
            s,
            "client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<\
             http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
             http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<\
             ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
        );
        assert_eq!(hash(&s), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
    }

    #[test]
    fn forms_are_ordered_by_form_type_and_untyped_forms_ignored() {
        let ids = [Identity {
            category: "server".into(),
            kind: "im".into(),
            name: None,
        }];
        let a = form(vec![
            field("FORM_TYPE", Some("hidden"), &["urn:a"]),
            field("x", None, &["1"]),
        ]);
        let b = form(vec![
            field("FORM_TYPE", Some("hidden"), &["urn:b"]),
            field("y", None, &["2"]),
        ]);
        let both = ver(&ids, ["urn:f"], &[a.clone(), b.clone()]);
        assert_eq!(both, ver(&ids, ["urn:f"], &[b.clone(), a.clone()]));
        assert_ne!(both, ver(&ids, ["urn:f"], std::slice::from_ref(&a)));
        assert_ne!(
            ver(&ids, ["urn:f"], &[]),
            ver(&ids, ["urn:f"], std::slice::from_ref(&a))
        );
        assert_eq!(
            verification_input(vec![("server", "im", "", "")], ["urn:f"], &[b, a]),
            "server/im//<urn:f<urn:a<x<1<urn:b<y<2<"
        );
        // §5.4: without a hidden FORM_TYPE, a form does not count.
        let not_hidden = form(vec![
            field("FORM_TYPE", None, &["urn:c"]),
            field("z", None, &["3"]),
        ]);
        let untyped = form(vec![field("z", None, &["3"])]);
        assert_eq!(
            ver(&ids, ["urn:f"], &[not_hidden, untyped]),
            ver(&ids, ["urn:f"], &[])
        );
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
        assert_eq!(
            ver(&a, ["urn:b", "urn:a"], &[]),
            ver(&b, ["urn:a", "urn:b"], &[])
        );
        assert_ne!(ver(&a, ["urn:a"], &[]), ver(&a, ["urn:b"], &[]));
    }
}
