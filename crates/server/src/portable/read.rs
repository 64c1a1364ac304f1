//! Reading XEP-0227 documents into account records, checking everything before anything is
//! written: every problem is collected with its file and line, and one problem refuses the
//! whole import.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use causerie_jid::{BareJid, Jid};
use causerie_storage::{
    AccountRecord, PendingSubscription, RosterItem, StoredCredential, Subscription,
    TransferredMessage,
};
use causerie_xml::{Document, DocumentLimits, Element, Located};

use super::{
    Location, NS_CLIENT, NS_DELAY, NS_PIE, NS_PIE_DRAFT, NS_PRIVATE, NS_ROSTER, NS_SCRAM, NS_VCARD,
    NS_XINCLUDE, Password, PlannedAccount, PortableError, Problem, ReadPlan,
};

/// What the reader needs to know about the importing server.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The hosted domains (`server.domains`): a `<host/>` for any other domain is refused.
    pub hosted: Vec<String>,
    /// A localpart no account may have (the usage-policy address), if any.
    pub reserved_localpart: Option<String>,
    /// Bounds on each file.
    pub limits: DocumentLimits,
    /// Most files read, the included ones counted (XInclude, XEP-0227 §5).
    pub max_files: usize,
    /// Deepest chain of inclusions.
    pub max_include_depth: usize,
    /// Most bytes read over all files.
    pub max_total_bytes: u64,
    /// The current time (Unix seconds), for messages without a delay stamp.
    pub now: i64,
}

impl ReadOptions {
    /// Defaults for the given hosted domains.
    pub fn new(hosted: Vec<String>) -> ReadOptions {
        ReadOptions {
            hosted,
            reserved_localpart: None,
            limits: DocumentLimits::default(),
            max_files: 100_000,
            max_include_depth: 8,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
            now: unix_now(),
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Most problems listed before the reader stops looking for more.
const MAX_PROBLEMS: usize = 50;

/// Where the walk is: which element kinds are expected next.
#[derive(Clone, Copy)]
enum Level<'a> {
    /// Children of `<server-data/>`: hosts.
    Server,
    /// Children of a `<host/>`: users of that domain (`None` when the host itself was refused).
    Host(Option<&'a str>),
}

pub(crate) struct Reader<'o> {
    opts: &'o ReadOptions,
    problems: Vec<Problem>,
    accounts: Vec<PlannedAccount>,
    seen: HashMap<(String, String), Location>,
    ignored: BTreeMap<String, usize>,
    warnings: Vec<String>,
    files: usize,
    bytes: u64,
}

impl<'o> Reader<'o> {
    pub(crate) fn new(opts: &'o ReadOptions) -> Self {
        Reader {
            opts,
            problems: Vec::new(),
            accounts: Vec::new(),
            seen: HashMap::new(),
            ignored: BTreeMap::new(),
            warnings: Vec::new(),
            files: 0,
            bytes: 0,
        }
    }

    pub(crate) fn finish(self) -> Result<ReadPlan, PortableError> {
        if !self.problems.is_empty() {
            return Err(PortableError::Invalid(self.problems));
        }
        Ok(ReadPlan {
            accounts: self.accounts,
            ignored: self.ignored,
            warnings: self.warnings,
        })
    }

    fn problem(&mut self, file: &str, line: u32, reason: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                at: Location {
                    file: file.to_owned(),
                    line,
                },
                reason: reason.into(),
            });
        }
    }

    fn full(&self) -> bool {
        self.problems.len() >= MAX_PROBLEMS
    }

    fn ignore(&mut self, what: String) {
        *self.ignored.entry(what).or_insert(0) += 1;
    }

    /// Reads a file given by the administrator (XInclude allowed, relative to it).
    pub(crate) fn read_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        if let Some(doc) = self.load(path, &name, 1) {
            self.document(&doc, &name, Some(path), 0);
        }
    }

    /// Reads a document held in memory; XInclude is refused (there is no folder to resolve
    /// names against).
    pub(crate) fn read_bytes(&mut self, name: &str, bytes: &[u8]) {
        self.files += 1;
        match Document::parse(bytes, &self.opts.limits) {
            Ok(doc) => self.document(&doc, name, None, 0),
            Err(e) => self.problem(name, e.line, format!("not well-formed XML: {}", e.error)),
        }
    }

    fn load(&mut self, path: &Path, name: &str, line: u32) -> Option<Document> {
        self.files += 1;
        if self.files > self.opts.max_files {
            self.problem(
                name,
                line,
                format!("more than {} files to read", self.opts.max_files),
            );
            return None;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.problem(name, line, format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        if self.bytes > self.opts.max_total_bytes {
            self.problem(
                name,
                line,
                format!("more than {} bytes to read", self.opts.max_total_bytes),
            );
            return None;
        }
        match Document::parse(&bytes, &self.opts.limits) {
            Ok(doc) => Some(doc),
            Err(e) => {
                self.problem(
                    &path.display().to_string(),
                    e.line,
                    format!("not well-formed XML: {}", e.error),
                );
                None
            }
        }
    }

    fn document(&mut self, doc: &Document, file: &str, path: Option<&Path>, depth: usize) {
        let root = doc.root();
        if is_pie(&root, "server-data") {
            self.children(root, file, path, depth, Level::Server);
        } else if is_pie(&root, "host") {
            // An included host file (XEP-0227 §5.1), or a file holding one host.
            self.host(root, file, path, depth);
        } else {
            self.problem(
                file,
                root.line(),
                format!(
                    "the root element is {}, not XEP-0227's <server-data xmlns='{NS_PIE}'>",
                    describe(&root)
                ),
            );
        }
    }

    fn children(
        &mut self,
        parent: Located<'_>,
        file: &str,
        path: Option<&Path>,
        depth: usize,
        level: Level<'_>,
    ) {
        for child in parent.children() {
            if self.full() {
                return;
            }
            if child.is("include", NS_XINCLUDE) {
                self.include(child, file, path, depth, level);
                continue;
            }
            match level {
                Level::Server if is_pie(&child, "host") => self.host(child, file, path, depth),
                Level::Host(domain) if is_pie(&child, "user") => self.user(child, file, domain),
                _ => self.ignore(describe(&child)),
            }
        }
    }

    /// XEP-0227 §5: `<xi:include href='relative URI'/>` without `parse` or `xpointer`.
    fn include(
        &mut self,
        el: Located<'_>,
        file: &str,
        path: Option<&Path>,
        depth: usize,
        level: Level<'_>,
    ) {
        let line = el.line();
        let Some(path) = path else {
            return self.problem(file, line, "XInclude is only supported in files");
        };
        if el.attr("parse").is_some() || el.attr("xpointer").is_some() {
            return self.problem(
                file,
                line,
                "XInclude with 'parse' or 'xpointer' is not supported",
            );
        }
        let Some(href) = el.attr("href").filter(|h| !h.is_empty()) else {
            return self.problem(file, line, "XInclude without 'href'");
        };
        let Some(relative) = relative_path(href) else {
            return self.problem(
                file,
                line,
                format!("XInclude href '{href}' is not a relative reference to a file"),
            );
        };
        if depth >= self.opts.max_include_depth {
            return self.problem(
                file,
                line,
                format!(
                    "XInclude nested deeper than {} files",
                    self.opts.max_include_depth
                ),
            );
        }
        let target = path.parent().unwrap_or(Path::new(".")).join(relative);
        let name = target.display().to_string();
        let Some(doc) = self.load(&target, file, line) else {
            return;
        };
        let root = doc.root();
        match level {
            Level::Server if is_pie(&root, "host") => {
                self.host(root, &name, Some(&target), depth + 1);
            }
            Level::Server if is_pie(&root, "server-data") => {
                self.children(root, &name, Some(&target), depth + 1, Level::Server);
            }
            Level::Host(domain) if is_pie(&root, "user") => self.user(root, &name, domain),
            _ => self.problem(
                &name,
                root.line(),
                format!(
                    "included from {file}:{line}, but its root element {} does not fit there",
                    describe(&root)
                ),
            ),
        }
    }

    fn host(&mut self, el: Located<'_>, file: &str, path: Option<&Path>, depth: usize) {
        let line = el.line();
        let Some(jid) = el.attr("jid") else {
            self.problem(file, line, "<host/> without 'jid'");
            return self.children(el, file, path, depth, Level::Host(None));
        };
        let domain = match BareJid::parse(jid) {
            Ok(j) if j.node().is_none() => Some(j.domain().to_owned()),
            Ok(_) => {
                self.problem(file, line, format!("host jid '{jid}' is not a domain"));
                None
            }
            Err(e) => {
                self.problem(file, line, format!("host jid '{jid}' is not a JID: {e}"));
                None
            }
        };
        let domain = domain.filter(|d| {
            let hosted = self.opts.hosted.iter().any(|h| h == d);
            if !hosted {
                let list = self.opts.hosted.join(", ");
                self.problem(
                    file,
                    line,
                    format!(
                        "unknown host '{d}': not a hosted domain of this server (server.domains: {list})"
                    ),
                );
            }
            hosted
        });
        self.children(el, file, path, depth, Level::Host(domain.as_deref()));
    }

    fn user(&mut self, el: Located<'_>, file: &str, domain: Option<&str>) {
        let line = el.line();
        let at = Location {
            file: file.to_owned(),
            line,
        };
        let Some(name) = el.attr("name") else {
            return self.problem(file, line, "<user/> without 'name'");
        };
        let username = match causerie_jid::prepare_localpart(name) {
            Ok(u) => u,
            Err(e) => {
                return self.problem(
                    file,
                    line,
                    format!("user name '{name}' is not a localpart: {e}"),
                );
            }
        };
        // The rest is checked even under a refused host, to report every problem at once.
        let domain = domain.unwrap_or("");
        if self.opts.reserved_localpart.as_deref() == Some(username.as_str()) {
            self.problem(
                file,
                line,
                format!(
                    "{username}@{domain} is the usage-policy address of the server (policy.localpart) and cannot be an account"
                ),
            );
        }
        if !domain.is_empty() {
            let key = (domain.to_owned(), username.clone());
            if let Some(first) = self.seen.get(&key) {
                let first = first.to_string();
                self.problem(
                    file,
                    line,
                    format!("duplicate user {username}@{domain} (also at {first})"),
                );
            } else {
                self.seen.insert(key, at.clone());
            }
        }

        let mut record = AccountRecord {
            username: username.clone(),
            domain: domain.to_owned(),
            ..AccountRecord::default()
        };
        let password = el
            .attr("password")
            .filter(|p| !p.is_empty())
            .map(|p| Password(p.to_owned()));
        let mut saw_vcard = false;
        let mut pending: Vec<PendingSubscription> = Vec::new();
        for child in el.children() {
            if child.is("scram-credentials", NS_SCRAM) {
                if let Some(cred) = self.scram(child, file) {
                    if record.credentials.iter().any(|c| c.hash == cred.hash) {
                        self.problem(
                            file,
                            child.line(),
                            format!(
                                "two SCRAM-{} credentials for {username}@{domain}",
                                cred.hash
                            ),
                        );
                    } else {
                        record.credentials.push(cred);
                    }
                }
            } else if child.is("query", NS_ROSTER) {
                record.roster = self.roster(child, file);
            } else if child.is("presence", NS_CLIENT) || is_pie(&child, "presence") {
                if let Some(p) = self.subscription_request(child, file, &username, domain)
                    && !pending.iter().any(|q| q.contact == p.contact)
                {
                    pending.push(p);
                }
            } else if is_pie(&child, "offline-messages") {
                record.offline = self.offline(child, file, domain);
            } else if child.is("vCard", NS_VCARD) {
                if saw_vcard {
                    self.problem(file, child.line(), "a second vCard for the same user");
                }
                saw_vcard = true;
                record.data.push(("vcard".to_owned(), child.to_xml()));
            } else if child.is("query", NS_PRIVATE) {
                self.private(child, file, &mut record.data);
            } else {
                self.ignore(describe(&child));
            }
        }
        // RFC 6121 §3.1.3: a request waiting for an answer shows on the contact's item too.
        for item in &mut record.roster {
            if pending.iter().any(|p| p.contact == item.jid) {
                item.pending_in = true;
            }
        }
        record.pending_in = pending;
        self.accounts.push(PlannedAccount {
            at,
            record,
            password,
        });
    }

    /// `<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>` with
    /// `iter-count`, `salt`, `server-key` and `stored-key` (base64) children.
    ///
    /// ejabberd (23.01 at least) writes the salt and both keys base64-encoded twice, since it
    /// keeps them base64-encoded itself: keys whose one decoding is base64 text that decodes to
    /// exactly the hash's length are taken as such, and the salt is then decoded twice as well.
    fn scram(&mut self, el: Located<'_>, file: &str) -> Option<StoredCredential> {
        let line = el.line();
        let mechanism = el.attr("mechanism").unwrap_or("");
        let Some(hash) = mechanism
            .strip_prefix("SCRAM-")
            .and_then(causerie_sasl::Hash::from_name)
        else {
            self.warnings.push(format!(
                "{file}:{line}: SCRAM credentials for mechanism '{mechanism}' ignored (this server knows SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512)"
            ));
            return None;
        };
        // (text, line) of each child, whitespace removed.
        let mut fields: [Option<(String, u32)>; 4] = Default::default();
        const NAMES: [&str; 4] = ["iter-count", "salt", "server-key", "stored-key"];
        for child in el.children() {
            if child.ns() != NS_SCRAM {
                continue;
            }
            if let Some(i) = NAMES.iter().position(|n| *n == child.name()) {
                let text = child
                    .text()
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                fields[i] = Some((text, child.line()));
            }
        }
        let absent: Vec<&str> = NAMES
            .iter()
            .zip(&fields)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| *n)
            .collect();
        let mut ok = true;
        let mut iterations = 0;
        if let Some((text, iter_line)) = &fields[0] {
            match text.parse::<u32>() {
                Ok(n) if n > 0 => iterations = n,
                _ => {
                    self.problem(
                        file,
                        *iter_line,
                        format!("iter-count '{text}' is not a positive integer"),
                    );
                    ok = false;
                }
            }
        }
        let [_, Some(salt), Some(server_key), Some(stored_key)] = fields else {
            self.problem(
                file,
                line,
                format!("{mechanism} credentials without {}", absent.join(", ")),
            );
            return None;
        };
        if absent.contains(&"iter-count") {
            self.problem(
                file,
                line,
                format!("{mechanism} credentials without iter-count"),
            );
            return None;
        }
        let mut twice = None;
        let mut keys = Vec::with_capacity(2);
        for (name, (text, key_line)) in [("server-key", &server_key), ("stored-key", &stored_key)] {
            match decode_key(text, hash.output_len(), mechanism) {
                Ok((key, double)) => {
                    if twice.is_some_and(|t| t != double) {
                        self.problem(
                            file,
                            *key_line,
                            format!("{name} is encoded unlike the other key"),
                        );
                        ok = false;
                    }
                    twice = Some(double);
                    keys.push(key);
                }
                Err(reason) => {
                    self.problem(file, *key_line, format!("{name} {reason}"));
                    ok = false;
                }
            }
        }
        let salt_bytes = match B64.decode(&salt.0) {
            Ok(v) if twice == Some(true) => B64
                .decode(&v)
                .map_err(|e| format!("is base64 once but not twice, as the keys are: {e}")),
            Ok(v) => Ok(v),
            Err(e) => Err(format!("is not valid base64: {e}")),
        };
        let salt_bytes = match salt_bytes {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                self.problem(file, salt.1, "empty salt");
                return None;
            }
            Err(reason) => {
                self.problem(file, salt.1, format!("salt {reason}"));
                return None;
            }
        };
        let [server_key, stored_key] = <[Vec<u8>; 2]>::try_from(keys).ok()?;
        ok.then(|| StoredCredential {
            hash: hash.name().to_owned(),
            salt: salt_bytes,
            iterations,
            stored_key,
            server_key,
        })
    }

    /// RFC 6121 §2.1.2 items, as a roster get returns them.
    fn roster(&mut self, el: Located<'_>, file: &str) -> Vec<RosterItem> {
        let mut items: Vec<RosterItem> = Vec::new();
        let mut lines: HashMap<String, u32> = HashMap::new();
        for child in el.children() {
            if !child.is("item", NS_ROSTER) {
                self.ignore(describe(&child));
                continue;
            }
            let line = child.line();
            let Some(raw) = child.attr("jid") else {
                self.problem(file, line, "roster item without 'jid'");
                continue;
            };
            let jid = match BareJid::parse(raw) {
                Ok(j) => j.to_string(),
                Err(e) => {
                    self.problem(
                        file,
                        line,
                        format!("roster item jid '{raw}' is not a bare JID: {e}"),
                    );
                    continue;
                }
            };
            let subscription = match child.attr("subscription") {
                None => Subscription::None,
                Some(s) => match Subscription::parse(s) {
                    Some(s) => s,
                    None => {
                        self.problem(
                            file,
                            line,
                            format!("roster item subscription '{s}' is not none, to, from or both"),
                        );
                        continue;
                    }
                },
            };
            let pending_out = match child.attr("ask") {
                None => false,
                Some("subscribe") => true,
                Some(other) => {
                    self.problem(
                        file,
                        line,
                        format!("roster item ask '{other}' is not 'subscribe'"),
                    );
                    continue;
                }
            };
            let approved = matches!(child.attr("approved"), Some("true" | "1"));
            let mut groups = Vec::new();
            for group in child.children() {
                if group.is("group", NS_ROSTER) {
                    groups.push(group.text());
                }
            }
            if let Some(first) = lines.get(&jid) {
                self.problem(
                    file,
                    line,
                    format!("{jid} twice in one roster (also at line {first})"),
                );
                continue;
            }
            lines.insert(jid.clone(), line);
            items.push(RosterItem {
                jid,
                name: child.attr("name").map(str::to_owned),
                subscription,
                pending_out,
                pending_in: false,
                approved,
                groups,
            });
        }
        items.sort_by(|a, b| a.jid.cmp(&b.jid));
        items
    }

    /// A `<presence type='subscribe'/>` kept for the user: an inbound request not yet answered.
    fn subscription_request(
        &mut self,
        el: Located<'_>,
        file: &str,
        username: &str,
        domain: &str,
    ) -> Option<PendingSubscription> {
        let line = el.line();
        if el.attr("type") != Some("subscribe") {
            self.ignore(format!("{} of another type than subscribe", describe(&el)));
            return None;
        }
        let Some(from) = el.attr("from") else {
            self.problem(file, line, "subscription request without 'from'");
            return None;
        };
        let contact = match Jid::parse(from) {
            Ok(j) => j.to_bare(),
            Err(e) => {
                self.problem(
                    file,
                    line,
                    format!("subscription request from '{from}': {e}"),
                );
                return None;
            }
        };
        let mut stanza = Element::new("presence", NS_CLIENT).with_attr("from", contact.as_str());
        if !domain.is_empty() {
            stanza.set_attr("to", format!("{username}@{domain}"));
        }
        stanza.set_attr("type", "subscribe");
        for child in el.children() {
            if child.is("status", NS_CLIENT) || is_pie(&child, "status") {
                let text = child.text();
                if !text.is_empty() {
                    stanza.push_child(Element::new("status", NS_CLIENT).with_text(text));
                }
            } else if child.ns() != NS_CLIENT && child.ns() != NS_PIE && child.ns() != NS_PIE_DRAFT
            {
                stanza.push_child(child.element().clone());
            }
        }
        // Serialized as the roster keeps requests: in jabber:client, without the declaration.
        let mut out = Vec::new();
        stanza.write_to(&mut out, NS_CLIENT);
        Some(PendingSubscription {
            contact: contact.to_string(),
            stanza: String::from_utf8_lossy(&out).into_owned(),
        })
    }

    /// XEP-0227 §4.4 / XEP-0160: messages in `jabber:client`, oldest first.
    fn offline(&mut self, el: Located<'_>, file: &str, domain: &str) -> Vec<TransferredMessage> {
        let mut out = Vec::new();
        for child in el.children() {
            let is_message = child.is("message", NS_CLIENT) || is_pie(&child, "message");
            if !is_message {
                self.ignore(format!("{} in offline-messages", describe(&child)));
                continue;
            }
            let mut message = child.element().clone();
            // A message written without its namespace inherited the file's.
            if message.ns() != NS_CLIENT {
                let from = message.ns().to_owned();
                message.rename_ns(&from, NS_CLIENT);
            }
            let stamp = message
                .children()
                .filter(|c| c.is("delay", NS_DELAY))
                .find_map(|d| d.attr("stamp").map(str::to_owned));
            let stored_at = match &stamp {
                Some(s) => match causerie_policy::rfc3339::parse(s) {
                    Ok(t) => t,
                    Err(e) => {
                        self.problem(
                            file,
                            child.line(),
                            format!("delay stamp '{s}' is not a date-time: {e}"),
                        );
                        continue;
                    }
                },
                None => {
                    // XEP-0160 §3: a stored message carries when and by whom it was delayed.
                    message.push_child(
                        Element::new("delay", NS_DELAY)
                            .with_attr("from", domain)
                            .with_attr("stamp", causerie_policy::rfc3339::format(self.opts.now))
                            .with_text("Offline Storage"),
                    );
                    self.opts.now
                }
            };
            out.push(TransferredMessage {
                stanza: message.to_xml(),
                stored_at,
            });
        }
        out
    }

    /// XEP-0049: one document per namespace, kept as the private storage module keeps them.
    fn private(&mut self, el: Located<'_>, file: &str, data: &mut Vec<(String, String)>) {
        let mut documents: Vec<(String, Element)> = Vec::new();
        for child in el.children() {
            let namespace = child.ns();
            if namespace.is_empty()
                || [NS_CLIENT, NS_PRIVATE, NS_PIE, NS_PIE_DRAFT].contains(&namespace)
            {
                self.problem(
                    file,
                    child.line(),
                    format!(
                        "private XML {} is not in a namespace of its own",
                        describe(&child)
                    ),
                );
                continue;
            }
            match documents.iter_mut().find(|(n, _)| n == namespace) {
                Some((_, doc)) => doc.push_child(child.element().clone()),
                None => documents.push((
                    namespace.to_owned(),
                    Element::new("query", NS_PRIVATE).with_child(child.element().clone()),
                )),
            }
        }
        for (namespace, doc) in documents {
            let key = format!("private:{namespace}");
            if data.iter().any(|(k, _)| *k == key) {
                self.problem(
                    file,
                    el.line(),
                    format!("private XML for {namespace} given twice"),
                );
                continue;
            }
            data.push((key, doc.to_xml()));
        }
    }
}

fn is_pie(el: &Element, name: &str) -> bool {
    el.name() == name && (el.ns() == NS_PIE || el.ns() == NS_PIE_DRAFT)
}

/// `<name xmlns='ns'>`, for messages.
fn describe(el: &Element) -> String {
    if el.ns().is_empty() {
        format!("<{}>", el.name())
    } else {
        format!("<{} xmlns='{}'>", el.name(), el.ns())
    }
}

/// A SCRAM key from its base64 text: the key and whether it was encoded twice (see
/// [`Reader::scram`]).
fn decode_key(text: &str, len: usize, mechanism: &str) -> Result<(Vec<u8>, bool), String> {
    let once = B64
        .decode(text)
        .map_err(|e| format!("is not valid base64: {e}"))?;
    if once.len() == len {
        return Ok((once, false));
    }
    if let Ok(twice) = B64.decode(&once)
        && twice.len() == len
    {
        return Ok((twice, true));
    }
    Err(format!(
        "is {} bytes long, but a {mechanism} key has {len}",
        once.len()
    ))
}

/// A relative URI reference naming a file (RFC 3986 §4.2), percent-decoded; `None` for anything
/// with a scheme, an authority, a query or a fragment.
fn relative_path(href: &str) -> Option<PathBuf> {
    if href.contains(['?', '#', '\\']) || href.starts_with('/') {
        return None;
    }
    if let Some(colon) = href.find(':')
        && !href[..colon].contains('/')
    {
        return None;
    }
    let bytes = href.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    if path.is_empty() || path.contains('\0') {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references() {
        assert_eq!(relative_path("a.xml"), Some(PathBuf::from("a.xml")));
        assert_eq!(
            relative_path("host/ju%20liet.xml"),
            Some(PathBuf::from("host/ju liet.xml"))
        );
        assert_eq!(relative_path("../x.xml"), Some(PathBuf::from("../x.xml")));
        for bad in [
            "/etc/passwd",
            "file:a.xml",
            "http://x/a.xml",
            "a.xml#x",
            "a?b",
            "%zz",
            "%00",
        ] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }
}
