//! Reports by users: a contact or a message reported with XEP-0377 (a `<report/>` inside a
//! XEP-0191 block request, which the blocking module then carries out), or with `REPORT JID
//! [what happened]` sent to the policy address from any client. A report becomes evidence like
//! a rule match (direction `report`, with the recent messages between the two users for
//! context) and the security officers are told at once.

use causerie_jid::BareJid;
use causerie_xml::Element;

/// XEP-0377 (versions 0.3 and later).
pub const NS_REPORTING: &str = "urn:xmpp:reporting:1";
/// XEP-0377 0.1–0.2, still sent by some clients: the reason is a child element.
const NS_REPORTING_0: &str = "urn:xmpp:reporting:0";
const NS_BLOCKING: &str = "urn:xmpp:blocking";
const NS_SID: &str = "urn:xmpp:sid:0";
/// Longest free text kept from a report.
const MAX_TEXT_BYTES: usize = 4096;

/// One report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub reported: BareJid,
    /// `spam`, `abuse`, or `other`.
    pub reason: String,
    pub text: Option<String>,
    /// Ids of the reported messages (XEP-0359 stanza ids), when the client named them.
    pub messages: Vec<String>,
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The reports in a block request (`<iq type='set'><block xmlns='urn:xmpp:blocking'>`).
pub fn from_block(iq: &Element) -> Vec<Report> {
    if iq.attr("type") != Some("set") {
        return Vec::new();
    }
    let Some(block) = iq.get_child("block", NS_BLOCKING) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in block.children().filter(|c| c.is("item", NS_BLOCKING)) {
        let Some(jid) = item.attr("jid").and_then(|j| BareJid::parse(j).ok()) else {
            continue;
        };
        let report = item
            .children()
            .find(|c| c.name() == "report" && matches!(c.ns(), NS_REPORTING | NS_REPORTING_0));
        let Some(report) = report else { continue };
        let reason = match report.attr("reason") {
            Some("urn:xmpp:reporting:spam") => "spam",
            Some("urn:xmpp:reporting:abuse") => "abuse",
            Some(_) => "other",
            None if report.get_child("spam", NS_REPORTING_0).is_some() => "spam",
            None if report.get_child("abuse", NS_REPORTING_0).is_some() => "abuse",
            None => "other",
        };
        let text = report
            .children()
            .find(|c| c.name() == "text" || c.name() == "body")
            .map(|t| cut(t.text()))
            .filter(|t| !t.trim().is_empty());
        let messages = report
            .children()
            .filter(|c| c.is("stanza-id", NS_SID))
            .filter_map(|c| c.attr("id").map(str::to_owned))
            .collect();
        out.push(Report {
            reported: jid,
            reason: reason.to_owned(),
            text,
            messages,
        });
    }
    out
}

/// `REPORT JID [what happened]` typed to the policy address: the report, or why not.
pub fn from_chat(body: &str) -> Result<Report, &'static str> {
    let mut words = body.trim().splitn(3, char::is_whitespace);
    let _command = words.next();
    let jid = words
        .next()
        .ok_or("Write REPORT followed by the address you report, then what happened.")?;
    let reported = BareJid::parse(jid.trim_start_matches("xmpp:"))
        .ok()
        .filter(|j| j.node().is_some())
        .ok_or("That is not an address: write REPORT name@domain, then what happened.")?;
    let text = words
        .next()
        .map(|t| cut(t.trim().to_owned()))
        .filter(|t| !t.is_empty());
    Ok(Report {
        reported,
        reason: "other".to_owned(),
        text,
        messages: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_in_a_block_request() {
        let iq = Element::new("iq", "jabber:client")
            .with_attr("type", "set")
            .with_child(
                Element::new("block", NS_BLOCKING)
                    .with_child(
                        Element::new("item", NS_BLOCKING)
                            .with_attr("jid", "Spammer@Example.com")
                            .with_child(
                                Element::new("report", NS_REPORTING)
                                    .with_attr("reason", "urn:xmpp:reporting:spam")
                                    .with_child(
                                        Element::new("stanza-id", NS_SID)
                                            .with_attr("by", "example.com")
                                            .with_attr("id", "m-1"),
                                    )
                                    .with_child(
                                        Element::new("text", NS_REPORTING).with_text("ads"),
                                    ),
                            ),
                    )
                    .with_child(
                        Element::new("item", NS_BLOCKING).with_attr("jid", "plain@example.com"),
                    ),
            );
        let r = from_block(&iq);
        assert_eq!(r.len(), 1, "a block without a report is not a report");
        assert_eq!(r[0].reported.as_str(), "spammer@example.com");
        assert_eq!(
            (r[0].reason.as_str(), r[0].text.as_deref()),
            ("spam", Some("ads"))
        );
        assert_eq!(r[0].messages, ["m-1"]);
        let mut get = iq.clone();
        get.set_attr("type", "get");
        assert!(from_block(&get).is_empty());
    }

    #[test]
    fn reports_typed_in_a_chat() {
        let r = from_chat("report bob@corp.example he keeps sending me insults").unwrap();
        assert_eq!(r.reported.as_str(), "bob@corp.example");
        assert_eq!(r.text.as_deref(), Some("he keeps sending me insults"));
        assert!(from_chat("REPORT").is_err());
        assert!(from_chat("REPORT not a jid@@").is_err());
    }
}
