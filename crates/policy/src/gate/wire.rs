//! The XML of the extension (xeps/policy-acceptance.md): the policy and receipt elements, the
//! stream feature, the errors, the data form, and the sentences the policy address writes.

use causerie_stanza::{ErrorType, StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::{PolicyVersion, StoredReceipt};
use causerie_xml::Element;

use crate::receipt::{ReceiptFields, SignedReceipt};
use crate::rfc3339;

/// The namespace of the extension, also its disco feature and stream feature.
pub const NS: &str = "urn:causerie:policy:0";
/// `FORM_TYPE` of the acceptance form, and the node of the ad-hoc command.
pub const FORM_TYPE: &str = "urn:causerie:policy:0#accept";
pub const COMMAND_NODE: &str = FORM_TYPE;
/// The name under which the command is listed.
pub const COMMAND_NAME: &str = "Review and accept the usage policy";
pub const NS_DATA: &str = "jabber:x:data";
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
pub const NS_VERSION: &str = "jabber:iq:version";
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";
pub const NS_ROSTER: &str = "jabber:iq:roster";
/// The field of the server's extended disco information that carries the receipt key.
pub const KEY_FIELD: &str = "policy-receipt-key";

/// A chat message from the policy address `localpart@domain` to `to`: the prompts and replies of
/// the usage policy, and the warnings, notes and alerts of the compliance engine.
pub fn from_policy_address(localpart: &str, domain: &str, to: &str, body: &str) -> Element {
    Element::new("message", causerie_stanza::ns::CLIENT)
        .with_attr("type", "chat")
        .with_attr("from", format!("{localpart}@{domain}"))
        .with_attr("to", to)
        .with_child(Element::new("body", causerie_stanza::ns::CLIENT).with_text(body))
}

/// The short code users type: the first four hex digits of the version.
pub fn short(hash: &str) -> &str {
    hash.get(..4).unwrap_or(hash)
}

/// `2025-06-02`.
pub fn date(unix: i64) -> String {
    rfc3339::format(unix)[..10].to_owned()
}

/// `2025-06-02 at 08:14:09 UTC`.
pub fn date_time_words(unix: i64) -> String {
    let t = rfc3339::format(unix);
    format!("{} at {} UTC", &t[..10], &t[11..19])
}

/// `<policy/>` as the stream feature (§4.2).
pub fn feature(v: &PolicyVersion) -> Element {
    Element::new("policy", NS)
        .with_attr("required", "true")
        .with_attr("version", v.hash.as_str())
        .with_attr("short", short(&v.hash))
}

/// `<policy/>` as the answer to a get (§4.4): the text without the front matter, as published.
pub fn policy(v: &PolicyVersion) -> Element {
    let mut categories = Element::new("categories", NS);
    for c in &v.categories {
        categories.push_child(Element::new("category", NS).with_text(c.as_str()));
    }
    Element::new("policy", NS)
        .with_attr("version", v.hash.as_str())
        .with_attr("short", short(&v.hash))
        .with_attr("title", v.title.as_str())
        .with_attr("effective", rfc3339::format(v.effective_at))
        .with_attr("format", v.format.as_str())
        .with_child(categories)
        .with_child(Element::new("text", NS).with_text(v.text.as_str()))
}

/// The account and resource of a receipt as one JID (bare when there was no resource).
pub fn receipt_jid(f: &ReceiptFields) -> String {
    if f.resource.is_empty() {
        format!("{}@{}", f.username, f.domain)
    } else {
        format!("{}@{}/{}", f.username, f.domain, f.resource)
    }
}

/// `<receipt/>` (§4.5). `key` is the fingerprint of the key that signed it.
pub fn receipt(r: &SignedReceipt, key: &str) -> Element {
    let f = &r.fields;
    let mut e = Element::new("receipt", NS)
        .with_attr("seq", f.seq.to_string())
        .with_attr("version", f.policy_hash.as_str())
        .with_attr("method", f.method.as_str())
        .with_attr("accepted", rfc3339::format(f.accepted_at))
        .with_attr("hash", r.hash.as_str())
        .with_attr("prev", f.prev_hash.as_str())
        .with_attr("key", key)
        .with_child(Element::new("jid", NS).with_text(receipt_jid(f)));
    if let Some(a) = &f.remote_addr {
        e.push_child(Element::new("address", NS).with_text(a.as_str()));
    }
    if let Some(c) = &f.client {
        e.push_child(Element::new("client", NS).with_text(c.as_str()));
    }
    e.with_child(Element::new("signature", NS).with_text(r.signature.as_str()))
}

fn version_ref(name: &str, hash: &str) -> Element {
    Element::new(name, NS).with_attr("version", hash)
}

/// How to accept, in the words of an error text (§4.3).
pub fn how_to_accept(short_code: &str, policy_jid: &str, domain: &str) -> String {
    format!(
        "Accept the usage policy first: reply ACCEPT {short_code} to {policy_jid}, or run the \
         command \"{COMMAND_NAME}\" of {domain}."
    )
}

/// The error of every stanza a restricted session may not send (§4.3).
pub fn acceptance_required(hash: &str, text: String) -> StanzaError {
    StanzaError::new(Cond::PolicyViolation)
        .with_type(ErrorType::Auth)
        .with_text(text)
        .with_app(version_ref("acceptance-required", hash))
}

/// A version that is not the one in force (§4.5).
pub fn not_current(current: &str, text: &str) -> StanzaError {
    StanzaError::new(Cond::Conflict)
        .with_type(ErrorType::Cancel)
        .with_text(text)
        .with_app(version_ref("current-version", current))
}

/// Which text a form carries its instructions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormUse {
    Message,
    Command,
}

/// The acceptance form (§5.8): one fixed field per line of the text, then the categories.
pub fn form(v: &PolicyVersion, usage: FormUse) -> Element {
    let how = match usage {
        FormUse::Message => "submit this form",
        FormUse::Command => "complete the command",
    };
    let mut x = Element::new("x", NS_DATA)
        .with_attr("type", "form")
        .with_child(Element::new("title", NS_DATA).with_text(v.title.as_str()))
        .with_child(Element::new("instructions", NS_DATA).with_text(format!(
            "Read the usage policy, then {how} with the box checked to accept it, or unchecked \
             to decline it. Declining ends this session."
        )))
        .with_child(hidden("FORM_TYPE", FORM_TYPE));
    for line in v.text.lines() {
        x.push_child(fixed(line.trim_end_matches('\r')));
    }
    x.push_child(fixed(""));
    for line in categories_lines(v) {
        x.push_child(fixed(&line));
    }
    x.push_child(hidden("version", &v.hash));
    x.push_child(
        Element::new("field", NS_DATA)
            .with_attr("var", "accept")
            .with_attr("type", "boolean")
            .with_attr("label", "I accept this usage policy")
            .with_child(Element::new("required", NS_DATA)),
    );
    x
}

fn fixed(text: &str) -> Element {
    let value = Element::new("value", NS_DATA);
    let value = if text.is_empty() {
        value
    } else {
        value.with_text(text)
    };
    Element::new("field", NS_DATA)
        .with_attr("type", "fixed")
        .with_child(value)
}

fn hidden(var: &str, value: &str) -> Element {
    Element::new("field", NS_DATA)
        .with_attr("var", var)
        .with_attr("type", "hidden")
        .with_child(Element::new("value", NS_DATA).with_text(value))
}

/// The disclosure of monitoring, one line each.
fn categories_lines(v: &PolicyVersion) -> Vec<String> {
    if v.categories.is_empty() {
        return vec!["This policy discloses no monitoring.".to_owned()];
    }
    let mut out = vec!["This policy discloses the following monitoring:".to_owned()];
    out.extend(v.categories.iter().map(|c| format!("- {c}")));
    out
}

/// A submitted acceptance form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// `type='cancel'`: nothing changes.
    Cancel,
    Answer {
        /// The hidden `version` field, when sent back.
        version: Option<String>,
        accept: bool,
    },
}

/// Why a form is not a usable submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    NotOurs,
    NoAnswer,
}

/// Reads a submitted `jabber:x:data` form of our `FORM_TYPE` (§5.8).
pub fn submission(x: &Element) -> Result<Submission, FormError> {
    let field = |var: &str| {
        x.children()
            .find(|f| f.is("field", NS_DATA) && f.attr("var") == Some(var))
            .and_then(|f| f.get_child("value", NS_DATA))
            .map(|v| v.text())
    };
    if field("FORM_TYPE").as_deref() != Some(FORM_TYPE) {
        return Err(FormError::NotOurs);
    }
    match x.attr("type") {
        Some("cancel") => return Ok(Submission::Cancel),
        Some("submit") => {}
        _ => return Err(FormError::NotOurs),
    }
    // XEP-0004 §3.3: booleans are 0, 1, false or true.
    let accept = match field("accept").as_deref().map(str::trim) {
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        _ => return Err(FormError::NoAnswer),
    };
    Ok(Submission::Answer {
        version: field("version").map(|v| v.trim().to_owned()),
        accept,
    })
}

/// The last line of every prompt.
pub fn instruction(hash: &str) -> String {
    format!("Reply ACCEPT {} to accept, or DECLINE.", short(hash))
}

/// The body of the chat prompt (§6.1).
pub fn prompt_body(v: &PolicyVersion, restricted: bool) -> String {
    let mut body = format!(
        "Usage policy: {} (in force since {})\n\n",
        v.title,
        date(v.effective_at)
    );
    body.push_str(v.text.trim_end());
    body.push_str("\n\n");
    for line in categories_lines(v) {
        body.push_str(&line);
        body.push('\n');
    }
    body.push('\n');
    if restricted {
        body.push_str("Until you accept, you can only talk with this address. ");
    }
    body.push_str("Reply MY POLICY to see what you accepted before.\n");
    body.push_str(&instruction(&v.hash));
    body
}

/// The confirmation of an acceptance.
pub fn accepted_text(v_title: &str, r: &ReceiptFields) -> String {
    format!(
        "Accepted: {v_title}, version {}, on {} (receipt {}). You can now use the service.",
        short(&r.policy_hash),
        date_time_words(r.accepted_at),
        r.seq
    )
}

/// One line of `MY POLICY` about one receipt.
pub fn receipt_line(r: &StoredReceipt, title: Option<&str>) -> String {
    let title = title.map(|t| format!(" ({t})")).unwrap_or_default();
    let from = if r.resource.is_empty() {
        String::new()
    } else {
        format!(" from {}", r.resource)
    };
    format!(
        "You accepted version {}{title} on {}{from}, by {} (receipt {}).",
        short(&r.policy_hash),
        date_time_words(r.accepted_at),
        r.method,
        r.seq
    )
}

/// `MY POLICY`: what the account accepted, and what waits (§5.7.4).
pub fn my_policy(
    receipts: &[StoredReceipt],
    versions: &[PolicyVersion],
    pending: Option<&PolicyVersion>,
) -> String {
    let title = |hash: &str| {
        versions
            .iter()
            .find(|v| v.hash == hash)
            .map(|v| v.title.as_str())
    };
    let mut lines: Vec<String> = receipts
        .iter()
        .map(|r| receipt_line(r, title(&r.policy_hash)))
        .collect();
    if lines.is_empty() {
        lines.push("You have not accepted any version of the usage policy.".to_owned());
    }
    match pending {
        Some(v) => lines.push(format!(
            "Version {} ({}, in force since {}) is waiting for your acceptance.",
            short(&v.hash),
            v.title,
            date(v.effective_at)
        )),
        None => lines.push("Nothing is waiting for your acceptance.".to_owned()),
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> PolicyVersion {
        PolicyVersion {
            seq: 1,
            hash: "92ccc18aa59f734e399dd89a0f7b065fa6ee6631b977ea2fa9a77b127f18a386".into(),
            title: "Use of Example Corp messaging".into(),
            text: "Example Corp provides this service for work.\n\n- Every message is archived for seven years.\n".into(),
            format: "markdown".into(),
            effective_at: 1_748_822_400,
            categories: vec!["message archiving".into()],
            domain: None,
            published_at: 1_748_822_400,
            published_by: "test".into(),
        }
    }

    #[test]
    fn prompt_ends_with_the_instruction_and_carries_the_text() {
        let body = prompt_body(&version(), true);
        assert!(body.starts_with(
            "Usage policy: Use of Example Corp messaging (in force since 2025-06-02)\n\nExample Corp"
        ));
        assert!(body.contains("- Every message is archived for seven years.\n\nThis policy discloses the following monitoring:\n- message archiving\n"));
        assert!(body.ends_with("\nReply ACCEPT 92cc to accept, or DECLINE."));
    }

    #[test]
    fn form_has_one_fixed_field_per_line_and_round_trips() {
        let v = version();
        let x = form(&v, FormUse::Message);
        let fixed: Vec<String> = x
            .children()
            .filter(|f| f.attr("type") == Some("fixed"))
            .map(|f| {
                f.get_child("value", NS_DATA)
                    .map(Element::text)
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            fixed,
            [
                "Example Corp provides this service for work.",
                "",
                "- Every message is archived for seven years.",
                "",
                "This policy discloses the following monitoring:",
                "- message archiving"
            ]
        );
        // A client answers by copying the form, setting `accept` and the type.
        let mut answer = x.clone();
        answer.set_attr("type", "submit");
        for f in answer.children_mut() {
            if f.attr("var") == Some("accept") {
                f.push_child(Element::new("value", NS_DATA).with_text("true"));
            }
        }
        assert_eq!(
            submission(&answer),
            Ok(Submission::Answer {
                version: Some(v.hash.clone()),
                accept: true
            })
        );
        let mut no_answer = x.clone();
        no_answer.set_attr("type", "submit");
        assert_eq!(submission(&no_answer), Err(FormError::NoAnswer));
        let mut cancel = x;
        cancel.set_attr("type", "cancel");
        assert_eq!(submission(&cancel), Ok(Submission::Cancel));
    }

    #[test]
    fn receipt_xml_names_every_field() {
        let key = crate::ServerKey::from_secret_bytes(&[7; 32]);
        let r = crate::sign(
            ReceiptFields {
                seq: 3,
                username: "alice".into(),
                domain: "example.com".into(),
                resource: String::new(),
                policy_hash: version().hash,
                method: "chat".into(),
                accepted_at: 1_748_852_049,
                remote_addr: None,
                client: Some("Gajim 1.9.5".into()),
                prev_hash: crate::GENESIS_PREV.into(),
            },
            &key,
        );
        let e = receipt(&r, &key.key_id());
        assert_eq!(
            e.attr("key").map(str::len),
            Some(64),
            "64 hex digits, no spaces"
        );
        assert_eq!(e.attr("accepted"), Some("2025-06-02T08:14:09Z"));
        assert_eq!(e.get_child("jid", NS).unwrap().text(), "alice@example.com");
        assert!(e.get_child("address", NS).is_none());
        assert_eq!(e.get_child("client", NS).unwrap().text(), "Gajim 1.9.5");
        assert_eq!(
            accepted_text("T", &r.fields),
            "Accepted: T, version 92cc, on 2025-06-02 at 08:14:09 UTC (receipt 3). You can now use the service."
        );
    }
}
