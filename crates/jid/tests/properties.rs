//! Property tests: display/parse round trips and idempotent normalization.

use causerie_jid::{Jid, prepare_domain, prepare_localpart, prepare_resourcepart};
use proptest::prelude::*;

fn localpart() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._+\\-]{1,20}",
        "[a-zA-Zà-ÿΑ-Ωα-ωА-яＡ-Ｚ０-９]{1,12}",
        any::<String>(),
    ]
}

fn domainpart() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]([a-zA-Z0-9\\-]{0,10}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]{1,8}){0,3}\\.?",
        "[a-zäöüéß]{1,8}\\.[a-z]{2,4}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        Just("[::1]".to_owned()),
        Just("xn--mnchen-3ya.example".to_owned()),
        any::<String>(),
    ]
}

fn resourcepart() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{1,20}", "\\PC{1,12}", any::<String>(),]
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(
        node in proptest::option::of(localpart()),
        domain in domainpart(),
        resource in proptest::option::of(resourcepart()),
    ) {
        if let Ok(jid) = Jid::new(node.as_deref(), &domain, resource.as_deref()) {
            let shown = jid.to_string();
            let reparsed = Jid::parse(&shown).expect("the display form of a JID parses");
            prop_assert_eq!(&reparsed, &jid);
            prop_assert_eq!(reparsed.as_str(), shown.as_str());
            prop_assert_eq!(reparsed.node(), jid.node());
            prop_assert_eq!(reparsed.domain(), jid.domain());
            prop_assert_eq!(reparsed.resource(), jid.resource());
            // Building from the parts agrees with parsing.
            let rebuilt = Jid::new(jid.node(), jid.domain(), jid.resource()).expect("parts rebuild");
            prop_assert_eq!(rebuilt, jid.clone());
            // The bare view agrees with a parsed bare JID.
            let bare = Jid::parse(jid.to_bare().as_str()).expect("bare form parses");
            prop_assert_eq!(bare, jid.to_bare());
        }
    }

    #[test]
    fn parse_never_panics_and_is_idempotent(s in any::<String>()) {
        if let Ok(jid) = Jid::parse(&s) {
            let again = Jid::parse(jid.as_str()).expect("canonical form parses");
            prop_assert_eq!(again.as_str(), jid.as_str());
        }
    }

    #[test]
    fn parse_structured_input_is_idempotent(
        node in localpart(),
        domain in domainpart(),
        resource in resourcepart(),
    ) {
        let s = format!("{node}@{domain}/{resource}");
        if let Ok(jid) = Jid::parse(&s) {
            let again = Jid::parse(jid.as_str()).expect("canonical form parses");
            prop_assert_eq!(again.as_str(), jid.as_str());
        }
    }

    #[test]
    fn preparation_is_idempotent(s in prop_oneof![localpart(), resourcepart(), domainpart()]) {
        if let Ok(once) = prepare_localpart(&s) {
            prop_assert_eq!(prepare_localpart(&once), Ok(once.clone()));
        }
        if let Ok(once) = prepare_resourcepart(&s) {
            prop_assert_eq!(prepare_resourcepart(&once), Ok(once.clone()));
        }
        if let Ok(once) = prepare_domain(&s) {
            prop_assert_eq!(prepare_domain(&once), Ok(once.clone()));
        }
    }
}
