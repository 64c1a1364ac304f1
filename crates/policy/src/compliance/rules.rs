//! The rules file: what the compliance officer writes, read into checked [`Rule`]s.
//!
//! ```toml
//! [[rule]]
//! id = "card-numbers-outside"
//! description = "Payment card numbers may not be sent to other companies."  # shown to the sender
//! category = "sensitive data in messages to partner domains"   # as disclosed in the usage policy
//! severity = "high"                  # low | medium | high | critical
//! direction = "outgoing"             # outgoing | incoming | both
//! paths = ["chat", "federation"]     # chat (between local accounts), federation, groupchat
//! users = ["*@corp.example"]         # whose messages (sender when outgoing, recipient when
//!                                    # incoming): JIDs, `*@domain`; none = everybody
//! peers = "external"                 # any | local | external | partner | not-allowed
//! keywords = ["project falcon"]      # words and phrases: case, accents and spacing ignored
//! patterns = ['\bACME-\d{4}\b']      # regular expressions (linear time, no look-around)
//! detectors = ["payment-card", "iban", "email", "project"]
//! links = false                      # any link (http, https, ftp, www., xmpp:)
//! files = false                      # file transfers (XEP-0066 out-of-band data)
//! rate = { messages = 30, per_secs = 10 }   # more than this from one user: flooding
//! actions = ["log", "capture", "block", "alert"]
//! escalate = [{ after = 3, within_secs = 3600, actions = ["terminate", "alert"], lock_minutes = 30 }]
//! ```
//!
//! A rule fires on a message in its scope (direction, path, users, peers) when any of its content
//! conditions (keywords, patterns, detectors, links, files) matches, or, for a rule without
//! content conditions, on every message in scope; `rate` adds the condition that the user sent
//! more than `messages` in the last `per_secs` seconds. Escalation steps replace the actions once
//! the same user has triggered the rule `after` times within `within_secs` (the last step whose
//! count is reached wins).
//!
//! `lock_minutes` goes with an action list that has `terminate` (the rule's own, or a step's):
//! when that list is the one applied, the sender's account is also locked for that many
//! minutes, and every one of its sessions ends.
//!
//! A file is refused whole: every problem is reported with the rule (its id, or its position
//! when it has none), the field and the reason, and the rules in force stay in force.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

/// Most rules in one file.
pub const MAX_RULES: usize = 10_000;
/// Longest lock `lock_minutes` may set: a year.
pub const MAX_LOCK_MINUTES: u32 = 366 * 24 * 60;
/// Most keywords over the whole file, and most patterns.
pub const MAX_KEYWORDS: usize = 100_000;
pub const MAX_PATTERNS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
    Both,
}

impl Direction {
    pub fn outgoing(self) -> bool {
        matches!(self, Direction::Outgoing | Direction::Both)
    }
    pub fn incoming(self) -> bool {
        matches!(self, Direction::Incoming | Direction::Both)
    }
}

/// Where a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Between accounts of this server (1:1).
    Chat,
    /// To or from another server.
    Federation,
    /// In a group chat room.
    Groupchat,
}

/// Which peers a rule is about: the other party of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    Any,
    /// Accounts of this server.
    Local,
    /// Any other domain.
    External,
    /// A federation partner (allowed domain).
    Partner,
    /// A domain federation does not allow.
    NotAllowed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Detector {
    PaymentCard,
    Iban,
    Email,
    /// The configured list of confidential project names.
    Project,
}

impl Detector {
    pub const ALL: [(&'static str, Detector); 4] = [
        ("payment-card", Detector::PaymentCard),
        ("iban", Detector::Iban),
        ("email", Detector::Email),
        ("project", Detector::Project),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("?", |(n, _)| n)
    }
}

/// What happens when a rule fires; several combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Log,
    Capture,
    Warn,
    Mask,
    Block,
    Terminate,
    Quarantine,
    Alert,
}

impl Action {
    pub const ALL: [(&'static str, Action); 8] = [
        ("log", Action::Log),
        ("capture", Action::Capture),
        ("warn", Action::Warn),
        ("mask", Action::Mask),
        ("block", Action::Block),
        ("terminate", Action::Terminate),
        ("quarantine", Action::Quarantine),
        ("alert", Action::Alert),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("?", |(n, _)| n)
    }
}

/// "Flooding": more than `messages` within `per_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub messages: u32,
    pub per_secs: u32,
}

/// Stronger actions after repeated matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub after: u32,
    pub within_secs: u32,
    pub actions: Vec<Action>,
    /// With `terminate` among `actions`: also lock the account for this many minutes.
    pub lock_minutes: Option<u32>,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub category: String,
    pub severity: Severity,
    pub direction: Direction,
    pub paths: Vec<Path>,
    /// Bare JIDs (lowercase) and `*@domain` entries; empty for everybody.
    pub users: Vec<String>,
    pub peers: Peers,
    pub keywords: Vec<String>,
    pub patterns: Vec<String>,
    pub detectors: Vec<Detector>,
    pub links: bool,
    pub files: bool,
    pub rate: Option<Rate>,
    pub actions: Vec<Action>,
    /// With `terminate` among `actions`: also lock the account for this many minutes.
    pub lock_minutes: Option<u32>,
    pub escalate: Vec<Step>,
    /// 1-based line of the rule in its file, for messages.
    pub line: usize,
}

impl Rule {
    /// Whether the rule looks at the content of messages.
    pub fn has_content_conditions(&self) -> bool {
        !self.keywords.is_empty()
            || !self.patterns.is_empty()
            || !self.detectors.is_empty()
            || self.links
            || self.files
    }

    /// The escalation step in force for a user, given how often the rule fired for them within
    /// a window of so many seconds (`fired_within`): the last step whose count is reached, or
    /// `None` for the rule's own actions.
    pub fn step_reached(&self, fired_within: impl Fn(u32) -> usize) -> Option<&Step> {
        self.escalate
            .iter()
            .rfind(|s| fired_within(s.within_secs) >= s.after as usize)
    }

    /// How long the account is locked when the actions of `step` (the rule's own for `None`)
    /// apply, in minutes; `None` for no lock.
    pub fn lock_for(&self, step: Option<&Step>) -> Option<u32> {
        match step {
            Some(s) => s.lock_minutes,
            None => self.lock_minutes,
        }
    }

    /// Whether a bare JID is in the rule's `users` scope.
    pub fn covers(&self, bare: &str) -> bool {
        self.users.is_empty()
            || self.users.iter().any(|u| match u.strip_prefix("*@") {
                Some(domain) => bare
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain)),
                None => u.eq_ignore_ascii_case(bare),
            })
    }
}

/// One problem of a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule's id, or `#N` (1-based position) when it has none; empty for the file itself.
    pub rule: String,
    pub field: String,
    pub reason: String,
    pub line: Option<usize>,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match (self.rule.is_empty(), self.field.is_empty()) {
            (true, true) => write!(f, "{}", self.reason),
            (true, false) => write!(f, "{}: {}", self.field, self.reason),
            (false, true) => write!(f, "rule {}: {}", self.rule, self.reason),
            (false, false) => write!(f, "rule {}, {}: {}", self.rule, self.field, self.reason),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<String>,
    description: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    direction: Option<String>,
    paths: Option<Vec<String>>,
    #[serde(default)]
    users: Vec<String>,
    peers: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    detectors: Vec<String>,
    #[serde(default)]
    links: bool,
    #[serde(default)]
    files: bool,
    rate: Option<RawRate>,
    #[serde(default)]
    actions: Vec<String>,
    lock_minutes: Option<u32>,
    #[serde(default)]
    escalate: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    messages: u32,
    per_secs: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: u32,
    within_secs: u32,
    actions: Vec<String>,
    lock_minutes: Option<u32>,
}

/// Reads a rules file. `Err` lists every problem found.
pub fn parse(text: &str) -> Result<Vec<Rule>, Vec<RuleError>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        vec![RuleError {
            rule: String::new(),
            field: String::new(),
            reason: e.message().to_owned(),
            line,
        }]
    })?;
    let mut errors = Vec::new();
    if raw.rule.len() > MAX_RULES {
        errors.push(file_error(format!("more than {MAX_RULES} rules")));
    }
    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut ids = HashSet::new();
    for (i, spanned) in raw.rule.into_iter().enumerate() {
        let line = line_of(text, spanned.span().start);
        let raw = spanned.into_inner();
        let name = raw.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let mut check = Checker {
            rule: name,
            line,
            errors: &mut errors,
        };
        if let Some(rule) = check.rule(raw) {
            if !ids.insert(rule.id.clone()) {
                check.err(
                    "id",
                    format!("the id `{}` is used by another rule", rule.id),
                );
            } else {
                rules.push(rule);
            }
        }
    }
    let keywords: usize = rules.iter().map(|r| r.keywords.len()).sum();
    if keywords > MAX_KEYWORDS {
        errors.push(file_error(format!(
            "{keywords} keywords in all; at most {MAX_KEYWORDS}"
        )));
    }
    let patterns: usize = rules.iter().map(|r| r.patterns.len()).sum();
    if patterns > MAX_PATTERNS {
        errors.push(file_error(format!(
            "{patterns} patterns in all; at most {MAX_PATTERNS}"
        )));
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

fn file_error(reason: String) -> RuleError {
    RuleError {
        rule: String::new(),
        field: String::new(),
        reason,
        line: None,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Checker<'a> {
    rule: String,
    line: usize,
    errors: &'a mut Vec<RuleError>,
}

impl Checker<'_> {
    fn err(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(RuleError {
            rule: self.rule.clone(),
            field: field.to_owned(),
            reason: reason.into(),
            line: Some(self.line),
        });
    }

    fn choice<T: Copy>(
        &mut self,
        field: &str,
        value: Option<&str>,
        default: Option<T>,
        known: &[(&str, T)],
    ) -> Option<T> {
        match value {
            None => {
                if default.is_none() {
                    self.err(field, "is required");
                }
                default
            }
            Some(v) => match known.iter().find(|(n, _)| *n == v) {
                Some((_, t)) => Some(*t),
                None => {
                    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                    self.err(
                        field,
                        format!(
                            "unknown value `{v}` (expected one of: {})",
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
        }
    }

    fn text(&mut self, field: &str, value: Option<String>, max: usize) -> Option<String> {
        match value.map(|v| v.trim().to_owned()) {
            None => {
                self.err(field, "is required");
                None
            }
            Some(v) if v.is_empty() => {
                self.err(field, "must not be empty");
                None
            }
            Some(v) if v.len() > max => {
                self.err(field, format!("longer than {max} bytes"));
                None
            }
            Some(v) => Some(v),
        }
    }

    fn actions(&mut self, field: &str, names: &[String]) -> Option<Vec<Action>> {
        if names.is_empty() {
            self.err(field, "at least one action is required");
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for n in names {
            match Action::ALL.iter().find(|(name, _)| name == n) {
                Some((_, a)) if !out.contains(a) => out.push(*a),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = Action::ALL.iter().map(|(n, _)| *n).collect();
                    self.err(
                        field,
                        format!("unknown action `{n}` (expected: {})", known.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        if out.contains(&Action::Block) && out.contains(&Action::Mask) {
            self.err(field, "`block` and `mask` together: a blocked message is not delivered, so there is nothing to mask");
            ok = false;
        }
        if out.contains(&Action::Quarantine) && out.contains(&Action::Block) {
            self.err(field, "`quarantine` and `block` together: choose one");
            ok = false;
        }
        ok.then_some(out)
    }

    /// A `lock_minutes` value, checked against the action list it goes with (`None` when that
    /// list is invalid: its own errors are reported).
    fn lock(
        &mut self,
        field: &str,
        minutes: Option<u32>,
        actions: Option<&[Action]>,
    ) -> Option<u32> {
        let minutes = minutes?;
        if minutes == 0 || minutes > MAX_LOCK_MINUTES {
            self.err(
                field,
                format!("must be between 1 and {MAX_LOCK_MINUTES} (a year)"),
            );
            return None;
        }
        if actions.is_some_and(|a| !a.contains(&Action::Terminate)) {
            self.err(
                field,
                "locks the account of a session that `terminate` ends: add `terminate` to the same actions",
            );
            return None;
        }
        Some(minutes)
    }

    fn rule(&mut self, raw: RawRule) -> Option<Rule> {
        let id = self.text("id", raw.id, 64);
        if let Some(id) = &id
            && !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            self.err("id", "use letters, digits, `-`, `_` and `.` only");
        }
        let description = self.text("description", raw.description, 1000);
        let category = self.text("category", raw.category, 255);
        let severity = self.choice(
            "severity",
            raw.severity.as_deref(),
            Some(Severity::Medium),
            &[
                ("low", Severity::Low),
                ("medium", Severity::Medium),
                ("high", Severity::High),
                ("critical", Severity::Critical),
            ],
        );
        let direction = self.choice(
            "direction",
            raw.direction.as_deref(),
            Some(Direction::Outgoing),
            &[
                ("outgoing", Direction::Outgoing),
                ("incoming", Direction::Incoming),
                ("both", Direction::Both),
            ],
        );
        let known_paths = [
            ("chat", Path::Chat),
            ("federation", Path::Federation),
            ("groupchat", Path::Groupchat),
        ];
        let paths = match raw.paths {
            None => Some(known_paths.iter().map(|(_, p)| *p).collect()),
            Some(list) if list.is_empty() => {
                self.err(
                    "paths",
                    "must name at least one path, or be left out for all",
                );
                None
            }
            Some(list) => {
                let mut out = Vec::new();
                for p in &list {
                    if let Some(p) = self.choice("paths", Some(p), None, &known_paths)
                        && !out.contains(&p)
                    {
                        out.push(p);
                    }
                }
                (out.len() == list.iter().collect::<HashSet<_>>().len()).then_some(out)
            }
        };
        let peers = self.choice(
            "peers",
            raw.peers.as_deref(),
            Some(Peers::Any),
            &[
                ("any", Peers::Any),
                ("local", Peers::Local),
                ("external", Peers::External),
                ("partner", Peers::Partner),
                ("not-allowed", Peers::NotAllowed),
            ],
        );
        let mut users = Vec::new();
        for u in raw.users {
            match user_entry(&u) {
                Ok(entry) => users.push(entry),
                Err(reason) => self.err("users", format!("`{u}`: {reason}")),
            }
        }
        let mut keywords = Vec::new();
        for k in raw.keywords {
            if k.trim().is_empty() {
                self.err("keywords", "an empty keyword would match everything");
            } else if k.len() > 256 {
                self.err(
                    "keywords",
                    format!(
                        "`{}…` is longer than 256 bytes",
                        &k[..k.floor_char_boundary(32)]
                    ),
                );
            } else {
                keywords.push(k);
            }
        }
        let mut patterns = Vec::new();
        for p in raw.patterns {
            if p.is_empty() {
                self.err("patterns", "an empty pattern would match everything");
            } else {
                patterns.push(p);
            }
        }
        let mut detectors = Vec::new();
        for d in &raw.detectors {
            if let Some(d) = self.choice("detectors", Some(d), None, &Detector::ALL)
                && !detectors.contains(&d)
            {
                detectors.push(d);
            }
        }
        let rate = match raw.rate {
            None => None,
            Some(r) if r.messages == 0 || r.per_secs == 0 || r.per_secs > 86_400 => {
                self.err(
                    "rate",
                    "`messages` must be at least 1 and `per_secs` between 1 and 86400",
                );
                None
            }
            Some(r) => Some(Rate {
                messages: r.messages,
                per_secs: r.per_secs,
            }),
        };
        let actions = self.actions("actions", &raw.actions);
        let lock_minutes = self.lock("lock_minutes", raw.lock_minutes, actions.as_deref());
        let mut escalate = Vec::new();
        for (i, step) in raw.escalate.into_iter().enumerate() {
            let field = format!("escalate[{i}]");
            if step.after < 2 || step.within_secs == 0 || step.within_secs > 30 * 86_400 {
                self.err(
                    &field,
                    "`after` must be at least 2 and `within_secs` between 1 and 2592000",
                );
                continue;
            }
            if escalate
                .last()
                .is_some_and(|prev: &Step| prev.after >= step.after)
            {
                self.err(&field, "steps must have increasing `after` counts");
                continue;
            }
            if let Some(actions) = self.actions(&format!("{field}.actions"), &step.actions) {
                let lock_minutes = self.lock(
                    &format!("{field}.lock_minutes"),
                    step.lock_minutes,
                    Some(&actions),
                );
                escalate.push(Step {
                    after: step.after,
                    within_secs: step.within_secs,
                    actions,
                    lock_minutes,
                });
            }
        }
        Some(Rule {
            id: id?,
            description: description?,
            category: category?,
            severity: severity?,
            direction: direction?,
            paths: paths?,
            users,
            peers: peers?,
            keywords,
            patterns,
            detectors,
            links: raw.links,
            files: raw.files,
            rate,
            actions: actions?,
            lock_minutes,
            escalate,
            line: self.line,
        })
    }
}

/// A `users` entry: a bare JID or `*@domain`, lowercased.
fn user_entry(u: &str) -> Result<String, String> {
    let u = u.trim();
    if let Some(domain) = u.strip_prefix("*@") {
        let d = causerie_jid::prepare_domain(domain).map_err(|e| e.to_string())?;
        return Ok(format!("*@{d}"));
    }
    let jid = causerie_jid::BareJid::parse(u).map_err(|e| e.to_string())?;
    if jid.node().is_none() {
        return Err("write `*@domain` for every account of a domain".to_owned());
    }
    Ok(jid.to_string())
}

/// Writes rules back as TOML, in the format [`parse`] reads (used to add and remove rules).
pub fn to_toml(rules: &[Rule]) -> String {
    fn list(items: impl IntoIterator<Item = String>) -> String {
        let items: Vec<String> = items.into_iter().collect();
        format!("[{}]", items.join(", "))
    }
    fn quoted(s: &str) -> String {
        toml::Value::String(s.to_owned()).to_string()
    }
    let mut out = String::new();
    for r in rules {
        out.push_str("[[rule]]\n");
        out.push_str(&format!("id = {}\n", quoted(&r.id)));
        out.push_str(&format!("description = {}\n", quoted(&r.description)));
        out.push_str(&format!("category = {}\n", quoted(&r.category)));
        out.push_str(&format!("severity = \"{}\"\n", r.severity.name()));
        let direction = match r.direction {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
            Direction::Both => "both",
        };
        out.push_str(&format!("direction = \"{direction}\"\n"));
        out.push_str(&format!(
            "paths = {}\n",
            list(r.paths.iter().map(|p| {
                match p {
                    Path::Chat => "\"chat\"",
                    Path::Federation => "\"federation\"",
                    Path::Groupchat => "\"groupchat\"",
                }
                .to_owned()
            }))
        ));
        if !r.users.is_empty() {
            out.push_str(&format!(
                "users = {}\n",
                list(r.users.iter().map(|u| quoted(u)))
            ));
        }
        let peers = match r.peers {
            Peers::Any => "any",
            Peers::Local => "local",
            Peers::External => "external",
            Peers::Partner => "partner",
            Peers::NotAllowed => "not-allowed",
        };
        out.push_str(&format!("peers = \"{peers}\"\n"));
        if !r.keywords.is_empty() {
            out.push_str(&format!(
                "keywords = {}\n",
                list(r.keywords.iter().map(|k| quoted(k)))
            ));
        }
        if !r.patterns.is_empty() {
            out.push_str(&format!(
                "patterns = {}\n",
                list(r.patterns.iter().map(|p| quoted(p)))
            ));
        }
        if !r.detectors.is_empty() {
            out.push_str(&format!(
                "detectors = {}\n",
                list(r.detectors.iter().map(|d| quoted(d.name())))
            ));
        }
        if r.links {
            out.push_str("links = true\n");
        }
        if r.files {
            out.push_str("files = true\n");
        }
        if let Some(rate) = r.rate {
            out.push_str(&format!(
                "rate = {{ messages = {}, per_secs = {} }}\n",
                rate.messages, rate.per_secs
            ));
        }
        out.push_str(&format!(
            "actions = {}\n",
            list(r.actions.iter().map(|a| quoted(a.name())))
        ));
        if let Some(minutes) = r.lock_minutes {
            out.push_str(&format!("lock_minutes = {minutes}\n"));
        }
        if !r.escalate.is_empty() {
            let steps: Vec<String> = r
                .escalate
                .iter()
                .map(|s| {
                    let lock = s
                        .lock_minutes
                        .map(|m| format!(", lock_minutes = {m}"))
                        .unwrap_or_default();
                    format!(
                        "{{ after = {}, within_secs = {}, actions = {}{lock} }}",
                        s.after,
                        s.within_secs,
                        list(s.actions.iter().map(|a| quoted(a.name())))
                    )
                })
                .collect();
            out.push_str(&format!("escalate = [{}]\n", steps.join(", ")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[rule]]
id = "cards"
description = "Payment card numbers may not leave the company."
category = "sensitive data"
severity = "high"
direction = "outgoing"
paths = ["federation"]
users = ["*@Corp.Example", "Alice@corp.example"]
peers = "external"
detectors = ["payment-card", "iban"]
actions = ["log", "capture", "block", "alert"]
escalate = [{ after = 3, within_secs = 3600, actions = ["terminate", "alert"], lock_minutes = 30 }]

[[rule]]
id = "flood"
description = "Too many messages."
category = "flooding"
rate = { messages = 30, per_secs = 10 }
actions = ["warn"]
"#;

    #[test]
    fn a_good_file_reads_and_writes_back_the_same() {
        let rules = parse(GOOD).expect("valid");
        assert_eq!(rules.len(), 2);
        let r = &rules[0];
        assert_eq!(r.users, ["*@corp.example", "alice@corp.example"]);
        assert_eq!(r.line, 2);
        assert_eq!(
            (r.lock_minutes, r.escalate[0].lock_minutes),
            (None, Some(30))
        );
        assert!(r.covers("bob@corp.example") && !r.covers("bob@other.example"));
        assert_eq!(rules[1].direction, Direction::Outgoing);
        assert_eq!(rules[1].paths.len(), 3);
        assert!(!rules[1].has_content_conditions());
        let again = parse(&to_toml(&rules)).expect("written back");
        let strip = |v: Vec<Rule>| {
            v.into_iter()
                .map(|mut r| {
                    r.line = 0;
                    r
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(again), strip(rules));
    }

    #[test]
    fn every_problem_names_the_rule_the_field_and_the_reason() {
        let bad = r#"
[[rule]]
id = "x"
description = "d"
category = "c"
actions = ["blok"]
detectors = ["passport"]

[[rule]]
description = "no id"
category = "c"
actions = ["log"]
keywords = ["  "]

[[rule]]
id = "x"
description = "dup"
category = "c"
actions = ["block", "mask"]
"#;
        let errors = parse(bad).expect_err("invalid");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("rule x, actions: unknown action `blok`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("rule x, detectors: unknown value `passport`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("rule #2, id: is required")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("rule #2, keywords")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|e| e.contains("`block` and `mask`")),
            "{text:?}"
        );
        assert!(errors.iter().all(|e| e.line.is_some()));
    }

    #[test]
    fn unknown_fields_and_broken_toml_are_refused_with_a_line() {
        let e = parse("[[rule]]\nid = \"a\"\nkeyword = [\"x\"]\n").expect_err("unknown field");
        assert!(e[0].reason.contains("keyword"), "{e:?}");
        assert_eq!(e[0].line, Some(3));
        let e = parse("[[rule]\n").expect_err("broken");
        assert_eq!(e[0].line, Some(1));
    }

    #[test]
    fn a_lock_goes_with_terminate_and_is_bounded() {
        let rule = |extra: &str| {
            format!("[[rule]]\nid = \"a\"\ndescription = \"d\"\ncategory = \"c\"\n{extra}\n")
        };
        let ok = parse(&rule(
            "actions = [\"terminate\", \"alert\"]\nlock_minutes = 45\nescalate = [{ after = 2, within_secs = 60, actions = [\"terminate\"], lock_minutes = 1440 }, { after = 4, within_secs = 60, actions = [\"terminate\"] }]",
        ))
        .expect("valid");
        assert_eq!(ok[0].lock_minutes, Some(45));
        let locks: Vec<Option<u32>> = ok[0].escalate.iter().map(|s| s.lock_minutes).collect();
        assert_eq!(locks, [Some(1440), None]);
        let again = parse(&to_toml(&ok)).expect("written back");
        assert_eq!(
            (again[0].lock_minutes, again[0].escalate[0].lock_minutes),
            (Some(45), Some(1440))
        );
        for (extra, field, reason) in [
            (
                "actions = [\"block\"]\nlock_minutes = 30",
                "lock_minutes",
                "add `terminate`",
            ),
            (
                "actions = [\"terminate\"]\nlock_minutes = 0",
                "lock_minutes",
                "between 1 and",
            ),
            (
                &format!(
                    "actions = [\"terminate\"]\nlock_minutes = {}",
                    MAX_LOCK_MINUTES + 1
                ),
                "lock_minutes",
                "between 1 and",
            ),
            (
                "actions = [\"terminate\"]\nescalate = [{ after = 2, within_secs = 60, actions = [\"block\"], lock_minutes = 5 }]",
                "escalate[0].lock_minutes",
                "add `terminate`",
            ),
        ] {
            let e = parse(&rule(extra)).expect_err(extra);
            assert!(
                e.iter()
                    .any(|e| e.field == field && e.reason.contains(reason)),
                "{extra}: {e:?}"
            );
        }
        assert!(parse(&rule("actions = [\"terminate\"]\nlock_minutes = -1")).is_err());
    }

    #[test]
    fn the_step_reached_decides_the_lock() {
        let text = "[[rule]]\nid = \"a\"\ndescription = \"d\"\ncategory = \"c\"\nactions = [\"terminate\"]\nlock_minutes = 5\nescalate = [{ after = 2, within_secs = 60, actions = [\"terminate\"], lock_minutes = 60 }, { after = 3, within_secs = 10, actions = [\"terminate\"] }]\n";
        let r = parse(text).expect("valid").remove(0);
        // Fired once: the rule's own actions.
        assert_eq!(r.lock_for(r.step_reached(|_| 1)), Some(5));
        // Twice within a minute: the first step.
        assert_eq!(r.lock_for(r.step_reached(|_| 2)), Some(60));
        // Three times within a minute but only once within 10 seconds: still the first step.
        let counts = |within: u32| if within == 60 { 3 } else { 1 };
        assert_eq!(r.lock_for(r.step_reached(counts)), Some(60));
        // Three times within 10 seconds: the last step, which locks nothing.
        assert_eq!(r.lock_for(r.step_reached(|_| 3)), None);
    }

    #[test]
    fn escalation_steps_must_grow() {
        let text = r#"
[[rule]]
id = "a"
description = "d"
category = "c"
actions = ["warn"]
escalate = [{ after = 3, within_secs = 60, actions = ["block"] }, { after = 2, within_secs = 60, actions = ["terminate"] }]
"#;
        let e = parse(text).expect_err("decreasing");
        assert!(e[0].to_string().contains("escalate[1]"), "{e:?}");
    }
}
