//! Comparison with the older stringprep rules of RFC 6122 (Nodeprep, Resourceprep and
//! Nameprep), which servers such as ejabberd and Prosody applied for years. Accounts,
//! rosters and archives migrated from those servers were keyed by the stringprep output;
//! where PRECIS gives a different string, the operator needs to know.

use crate::error::JidPart;

/// A JID part for which the stringprep profiles of RFC 6122 and the PRECIS rules of
/// RFC 7622 do not agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringprepDifference {
    /// Which part.
    pub part: JidPart,
    /// What Nodeprep / Nameprep / Resourceprep made of the input; `None` when stringprep
    /// refuses the input.
    pub stringprep: Option<String>,
    /// What RFC 7622 makes of it (the caller's prepared value).
    pub precis: String,
}

/// Applies the RFC 6122 stringprep profile of `part` (Nodeprep for the localpart,
/// Nameprep for the domainpart, Resourceprep for the resourcepart) to `input` and returns
/// the difference when its output is not `precis` (the RFC 7622 preparation of the same
/// input), or when stringprep refuses the input.
pub fn stringprep_differs(
    part: JidPart,
    input: &str,
    precis: &str,
) -> Option<StringprepDifference> {
    let legacy = match part {
        JidPart::Localpart => stringprep::nodeprep(input),
        JidPart::Domainpart => stringprep::nameprep(input),
        JidPart::Resourcepart => stringprep::resourceprep(input),
    };
    let legacy = legacy.ok().map(|s| s.into_owned());
    if legacy.as_deref() == Some(precis) {
        return None;
    }
    Some(StringprepDifference {
        part,
        stringprep: legacy,
        precis: precis.to_owned(),
    })
}

/// Emits one debug line when stringprep would have prepared `input` differently. Only
/// called for non-ASCII input (for ASCII both rule sets agree on every string they both
/// accept), and the comparison is only computed when debug logging is on.
pub(crate) fn log_if_different(part: JidPart, input: &str, precis: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    if let Some(diff) = stringprep_differs(part, input, precis) {
        tracing::debug!(
            part = %diff.part,
            stringprep = diff.stringprep.as_deref().unwrap_or("<refused>"),
            precis = %diff.precis,
            "RFC 6122 stringprep would prepare this JID part differently"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prep::{prepare_domain, prepare_localpart, prepare_resourcepart};

    fn diff_localpart(input: &str) -> Option<StringprepDifference> {
        let precis = prepare_localpart(input).unwrap();
        stringprep_differs(JidPart::Localpart, input, &precis)
    }

    #[test]
    fn identical_results_give_none() {
        assert_eq!(diff_localpart("juliet"), None);
        assert_eq!(diff_localpart("Juliet"), None);
        assert_eq!(diff_localpart("café"), None);
        assert_eq!(
            stringprep_differs(JidPart::Resourcepart, "Balcony", "Balcony"),
            None
        );
        assert_eq!(
            stringprep_differs(JidPart::Domainpart, "Example.COM", "example.com"),
            None
        );
    }

    #[test]
    fn case_folding_differs_from_case_mapping() {
        // Nodeprep case-folds ß to "ss"; PRECIS keeps ß (RFC 7622 §3.5 example 7).
        let d = diff_localpart("fußball").unwrap();
        assert_eq!(d.part, JidPart::Localpart);
        assert_eq!(d.stringprep.as_deref(), Some("fussball"));
        assert_eq!(d.precis, "fußball");
        // Nodeprep folds final sigma to σ; PRECIS keeps ς.
        let d = diff_localpart("ς").unwrap();
        assert_eq!(d.stringprep.as_deref(), Some("σ"));
        assert_eq!(d.precis, "ς");
    }

    #[test]
    fn nfkc_versus_width_mapping_in_the_resource() {
        // Resourceprep applies NFKC and so turns fullwidth letters into ASCII; OpaqueString
        // keeps them.
        let precis = prepare_resourcepart("ＡＢ").unwrap();
        let d = stringprep_differs(JidPart::Resourcepart, "ＡＢ", &precis).unwrap();
        assert_eq!(d.stringprep.as_deref(), Some("AB"));
        assert_eq!(d.precis, "ＡＢ");
    }

    #[test]
    fn stringprep_refusal_is_reported() {
        // U+1F37A was unassigned in Unicode 3.2, the version stringprep is frozen at, so
        // Resourceprep refuses it; OpaqueString accepts it.
        let precis = prepare_resourcepart("beer🍺").unwrap();
        let d = stringprep_differs(JidPart::Resourcepart, "beer🍺", &precis).unwrap();
        assert_eq!(d.stringprep, None);
        assert_eq!(d.precis, "beer🍺");
    }

    #[test]
    fn domain_a_labels_differ() {
        // Nameprep keeps an A-label; RFC 7622 wants the U-label.
        let precis = prepare_domain("xn--mnchen-3ya.example").unwrap();
        let d = stringprep_differs(JidPart::Domainpart, "xn--mnchen-3ya.example", &precis).unwrap();
        assert_eq!(d.stringprep.as_deref(), Some("xn--mnchen-3ya.example"));
        assert_eq!(d.precis, "münchen.example");
        // Unicode input agrees.
        assert_eq!(
            stringprep_differs(JidPart::Domainpart, "München.example", "münchen.example"),
            None
        );
    }
}
