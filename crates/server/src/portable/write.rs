//! Writing XEP-0227 documents from the store: one `<host/>` per domain, one `<user/>` per
//! account, SCRAM keys and never a password.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use causerie_storage::{AccountRecord, Storage};
use causerie_xml::{Element, Limits, escape_attr};

use super::{NS_CLIENT, NS_PIE, NS_PRIVATE, NS_ROSTER, NS_SCRAM, NS_VCARD, PortableError};

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub hosts: usize,
    pub users: usize,
    pub roster_items: usize,
    pub offline_messages: usize,
    /// Stored documents or stanzas that no longer parse, left out, as `user@domain: what`.
    pub unreadable: Vec<String>,
}

/// Writes every account of `domains` (in that order, accounts in byte order of their names) as
/// one XEP-0227 document to `out`. `progress` is called with the number of accounts written.
pub async fn export(
    storage: &Storage,
    domains: &[String],
    out: &mut (dyn Write + Send),
    progress: &(dyn Fn(usize) + Send + Sync),
) -> Result<ExportReport, PortableError> {
    let io = |e: std::io::Error| PortableError::Write(e.to_string());
    let mut report = ExportReport::default();
    out.write_all(b"<?xml version='1.0' encoding='UTF-8'?>\n")
        .map_err(io)?;
    writeln!(out, "<server-data xmlns='{NS_PIE}'>").map_err(io)?;
    for domain in domains {
        let users = storage
            .users
            .list_users(Some(domain))
            .await
            .map_err(PortableError::Storage)?;
        let mut attr = Vec::new();
        escape_attr(domain, &mut attr);
        write!(out, "  <host jid='").map_err(io)?;
        out.write_all(&attr).map_err(io)?;
        out.write_all(b"'>\n").map_err(io)?;
        report.hosts += 1;
        for user in users {
            // An account removed since the listing is simply not exported.
            let Some(record) = storage
                .transfer
                .export_account(&user.username, &user.domain)
                .await
                .map_err(PortableError::Storage)?
            else {
                continue;
            };
            let element = user_element(&record, &mut report);
            let mut bytes = Vec::with_capacity(1024);
            bytes.extend_from_slice(b"    ");
            element.write_to(&mut bytes, NS_PIE);
            bytes.push(b'\n');
            out.write_all(&bytes).map_err(io)?;
            report.users += 1;
            progress(report.users);
        }
        out.write_all(b"  </host>\n").map_err(io)?;
    }
    out.write_all(b"</server-data>\n").map_err(io)?;
    out.flush().map_err(io)?;
    Ok(report)
}

/// A stored document or stanza back as an element; `None` (and a note in the report) when it
/// does not parse.
fn stored(
    xml: &str,
    default_ns: &str,
    what: &str,
    jid: &str,
    report: &mut ExportReport,
) -> Option<Element> {
    let limits = Limits {
        max_stanza_bytes: xml.len().max(1),
        max_depth: 64,
        ..Limits::default()
    };
    match Element::parse_with_limits(xml.as_bytes(), default_ns, &limits) {
        Ok(el) => Some(el),
        Err(e) => {
            report.unreadable.push(format!("{jid}: {what}: {e}"));
            None
        }
    }
}

fn text_element(name: &str, ns: &str, text: String) -> Element {
    Element::new(name, ns).with_text(text)
}

fn user_element(record: &AccountRecord, report: &mut ExportReport) -> Element {
    let jid = format!("{}@{}", record.username, record.domain);
    let mut user = Element::new("user", NS_PIE).with_attr("name", &record.username);

    // XEP-0227 1.1: SCRAM keys, never the password (which this server does not have).
    for cred in &record.credentials {
        user.push_child(
            Element::new("scram-credentials", NS_SCRAM)
                .with_attr("mechanism", format!("SCRAM-{}", cred.hash))
                .with_child(text_element(
                    "iter-count",
                    NS_SCRAM,
                    cred.iterations.to_string(),
                ))
                .with_child(text_element("salt", NS_SCRAM, B64.encode(&cred.salt)))
                .with_child(text_element(
                    "server-key",
                    NS_SCRAM,
                    B64.encode(&cred.server_key),
                ))
                .with_child(text_element(
                    "stored-key",
                    NS_SCRAM,
                    B64.encode(&cred.stored_key),
                )),
        );
    }

    if !record.roster.is_empty() {
        let mut query = Element::new("query", NS_ROSTER);
        for item in &record.roster {
            let mut el = Element::new("item", NS_ROSTER)
                .with_attr("jid", &item.jid)
                .with_attr("subscription", item.subscription.name());
            if let Some(name) = &item.name {
                el.set_attr("name", name);
            }
            if item.pending_out {
                el.set_attr("ask", "subscribe");
            }
            if item.approved {
                el.set_attr("approved", "true");
            }
            for group in &item.groups {
                el.push_child(text_element("group", NS_ROSTER, group.clone()));
            }
            query.push_child(el);
            report.roster_items += 1;
        }
        user.push_child(query);
    }

    // Inbound requests waiting for an answer, as Prosody and ejabberd write them.
    for p in &record.pending_in {
        let presence = stored(&p.stanza, NS_CLIENT, "subscription request", &jid, report)
            .filter(|el| el.is("presence", NS_CLIENT))
            .unwrap_or_else(|| {
                Element::new("presence", NS_CLIENT)
                    .with_attr("from", &p.contact)
                    .with_attr("type", "subscribe")
            });
        user.push_child(presence);
    }

    if !record.offline.is_empty() {
        let mut messages = Element::new("offline-messages", NS_PIE);
        for m in &record.offline {
            if let Some(el) = stored(&m.stanza, NS_CLIENT, "offline message", &jid, report) {
                messages.push_child(el);
                report.offline_messages += 1;
            }
        }
        user.push_child(messages);
    }

    let mut private = Element::new("query", NS_PRIVATE);
    for (key, value) in &record.data {
        if key == "vcard" {
            if let Some(el) = stored(value, NS_VCARD, "vCard", &jid, report) {
                user.push_child(el);
            }
        } else if let Some(namespace) = key.strip_prefix("private:") {
            let what = format!("private XML {namespace}");
            if let Some(doc) = stored(value, NS_PRIVATE, &what, &jid, report) {
                for child in doc.children() {
                    private.push_child(child.clone());
                }
            }
        }
        // Other documents (the last logout of XEP-0012…) have no place in XEP-0227.
    }
    if private.children().next().is_some() {
        user.push_child(private);
    }
    user
}
