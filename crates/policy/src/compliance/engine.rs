//! Compiled rules: every keyword of every rule in one automaton, every pattern in one set, the
//! detectors run only when a rule in scope uses them. Evaluation is linear in the length of the
//! message, whatever the rules say.

use std::ops::Range;

use super::detect;
use super::keywords::KeywordSet;
use super::patterns::PatternSet;
use super::rules::{Detector, Direction, Path, Peers, Rule, RuleError};
use super::screen::{self, Screen};
use super::text::fold_for_search;

/// What the server knows of the other party's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerClass {
    /// A domain this server hosts.
    pub local: bool,
    /// Federation with it is allowed (meaningless when local).
    pub allowed: bool,
}

impl PeerClass {
    fn is(self, peers: Peers) -> bool {
        match peers {
            Peers::Any => true,
            Peers::Local => self.local,
            Peers::External => !self.local,
            Peers::Partner => !self.local && self.allowed,
            Peers::NotAllowed => !self.local && !self.allowed,
        }
    }
}

/// A message as the rules see it.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// Bare JIDs.
    pub sender: &'a str,
    pub recipient: &'a str,
    pub path: Path,
    pub sender_class: PeerClass,
    pub recipient_class: PeerClass,
    /// The texts of the `<body/>` elements.
    pub bodies: &'a [&'a str],
    /// Files offered (XEP-0066 out-of-band URLs).
    pub files: &'a [&'a str],
}

/// For whom a rule fired: the sender (outgoing) or the recipient (incoming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Outgoing,
    Incoming,
}

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Which body (index in [`View::bodies`]); `None` for a file or a rule without content
    /// conditions.
    pub body: Option<usize>,
    /// Bytes of that body, for masking.
    pub range: Range<usize>,
    /// What it was, for people: "keyword `falcon`", "payment card", "link"…
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index in [`RuleSet::rules`].
    pub rule: usize,
    pub side: Side,
    pub found: Vec<Found>,
}

/// What a rule looks for, as bits: which scanners a message in its scope needs.
mod need {
    pub const KEYWORDS: u16 = 1;
    pub const PATTERNS: u16 = 1 << 1;
    pub const CARD: u16 = 1 << 2;
    pub const IBAN: u16 = 1 << 3;
    pub const EMAIL: u16 = 1 << 4;
    pub const PROJECT: u16 = 1 << 5;
    pub const LINKS: u16 = 1 << 6;
    pub const FILES: u16 = 1 << 7;
    /// Scanners that need the folded text.
    pub const FOLDED: u16 = KEYWORDS | PROJECT;
}

fn needs_of(r: &Rule) -> u16 {
    let mut n = 0;
    if !r.keywords.is_empty() {
        n |= need::KEYWORDS;
    }
    if !r.patterns.is_empty() {
        n |= need::PATTERNS;
    }
    for d in &r.detectors {
        n |= match d {
            Detector::PaymentCard => need::CARD,
            Detector::Iban => need::IBAN,
            Detector::Email => need::EMAIL,
            Detector::Project => need::PROJECT,
        };
    }
    if r.links {
        n |= need::LINKS;
    }
    if r.files {
        n |= need::FILES;
    }
    n
}

/// Who a found thing is for: one rule (a keyword or a pattern names its rule), or every rule in
/// scope that asks for this kind of scanner (a detector, links, files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum For {
    Rule(usize),
    Kind(u16),
}

/// A checked, compiled set of rules.
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Per rule, the scanners it needs ([`need`] bits); 0 for a rule without content conditions.
    needs: Vec<u16>,
    /// The rules that apply to each [`Path`], in file order, indexed by [`path_index`].
    by_path: [Vec<usize>; 3],
    /// Per path, what the rules without a `users` list need, merged by scope: whether such a
    /// rule is in scope depends only on its direction and peers, so a message checks a few
    /// scopes instead of every rule.
    open_scopes: [Vec<OpenScope>; 3],
    /// Per path, the rules with a `users` list, checked one by one.
    user_scoped: [Vec<usize>; 3],
    /// The rules' keywords, tagged with their rule, and the confidential project names when a
    /// rule uses the `project` detector, tagged [`PROJECT_TAG`]: one automaton, so that a text
    /// is scanned once for both.
    words: Option<KeywordSet>,
    patterns: Option<PatternSet>,
    /// The patterns, the shapes of the detectors in use and a short list of ASCII keywords in
    /// one set, which most messages pass through alone ([`screen_for`]); with the scanners it
    /// stands for, as [`need`] bits.
    screen: Option<Screen>,
    screened: u16,
    /// The longest `rate` window of any rule: how long senders' message times are kept.
    longest_rate: std::time::Duration,
}

/// The rules of one path that have no `users` list and the same direction and peers.
#[derive(Debug, Clone, Copy)]
struct OpenScope {
    direction: Direction,
    peers: Peers,
    /// The union of their needs.
    needs: u16,
    /// One of them has no content condition.
    unconditional: bool,
}

/// The tag of the confidential project names in [`RuleSet::words`]; rules are tagged with their
/// index.
const PROJECT_TAG: usize = usize::MAX;

fn path_index(p: Path) -> usize {
    match p {
        Path::Chat => 0,
        Path::Federation => 1,
        Path::Groupchat => 2,
    }
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// No rules.
    pub fn empty() -> RuleSet {
        RuleSet {
            rules: Vec::new(),
            needs: Vec::new(),
            by_path: Default::default(),
            open_scopes: Default::default(),
            user_scoped: Default::default(),
            words: None,
            patterns: None,
            screen: None,
            screened: 0,
            longest_rate: std::time::Duration::ZERO,
        }
    }

    /// Compiles checked rules; `projects` are the confidential project names of the `project`
    /// detector. A pattern the regular-expression engine refuses is reported with its rule.
    pub fn compile(rules: Vec<Rule>, projects: &[String]) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let mut keyword_list = Vec::new();
        let mut pattern_list = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            keyword_list.extend(r.keywords.iter().map(|k| (k.clone(), i)));
            pattern_list.extend(r.patterns.iter().map(|p| (p.clone(), i)));
        }
        let uses_projects = rules
            .iter()
            .any(|r| r.detectors.contains(&Detector::Project));
        let rule_words = keyword_list.len();
        if uses_projects {
            keyword_list.extend(projects.iter().map(|p| (p.clone(), PROJECT_TAG)));
        }
        let has_projects = keyword_list.len() > rule_words;
        let words = if keyword_list.is_empty() {
            None
        } else {
            match KeywordSet::new(&keyword_list) {
                Ok(k) => Some(k),
                Err(e) => {
                    let (word, tag) = &keyword_list[e.pattern.min(keyword_list.len() - 1)];
                    errors.push(match rules.get(*tag) {
                        Some(rule) => RuleError {
                            rule: rule.id.clone(),
                            field: "keywords".into(),
                            reason: format!("`{word}`: {}", e.reason),
                            line: Some(rule.line),
                        },
                        None => RuleError {
                            rule: String::new(),
                            field: "compliance.project_names".into(),
                            reason: format!("`{word}`: {}", e.reason),
                            line: None,
                        },
                    });
                    None
                }
            }
        };
        let patterns = if pattern_list.is_empty() {
            None
        } else {
            match PatternSet::new(&pattern_list) {
                Ok(p) => Some(p),
                Err(e) => {
                    let rule = &rules[pattern_list[e.pattern].1];
                    errors.push(RuleError {
                        rule: rule.id.clone(),
                        field: "patterns".into(),
                        reason: format!("`{}`: {}", pattern_list[e.pattern].0, e.reason),
                        line: Some(rule.line),
                    });
                    None
                }
            }
        };
        if uses_projects && !has_projects && errors.is_empty() {
            let rule = rules
                .iter()
                .find(|r| r.detectors.contains(&Detector::Project))
                .map(|r| (r.id.clone(), r.line));
            errors.push(RuleError {
                rule: rule.clone().map(|r| r.0).unwrap_or_default(),
                field: "detectors".into(),
                reason:
                    "the `project` detector needs compliance.project_names in the configuration"
                        .into(),
                line: rule.map(|r| r.1),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (screen, screened) = screen_for(&rules, &words, &pattern_list);
        let longest_rate = rules
            .iter()
            .filter_map(|r| r.rate)
            .map(|r| std::time::Duration::from_secs(u64::from(r.per_secs)))
            .max()
            .unwrap_or_default();
        let needs: Vec<u16> = rules.iter().map(needs_of).collect();
        let mut by_path: [Vec<usize>; 3] = Default::default();
        let mut open_scopes: [Vec<OpenScope>; 3] = Default::default();
        let mut user_scoped: [Vec<usize>; 3] = Default::default();
        for (i, r) in rules.iter().enumerate() {
            for p in [Path::Chat, Path::Federation, Path::Groupchat] {
                if !r.paths.contains(&p) {
                    continue;
                }
                let at = path_index(p);
                by_path[at].push(i);
                if !r.users.is_empty() {
                    user_scoped[at].push(i);
                    continue;
                }
                let scopes = &mut open_scopes[at];
                let k = match scopes
                    .iter()
                    .position(|o| o.direction == r.direction && o.peers == r.peers)
                {
                    Some(k) => k,
                    None => {
                        scopes.push(OpenScope {
                            direction: r.direction,
                            peers: r.peers,
                            needs: 0,
                            unconditional: false,
                        });
                        scopes.len() - 1
                    }
                };
                scopes[k].needs |= needs[i];
                scopes[k].unconditional |= needs[i] == 0;
            }
        }
        Ok(RuleSet {
            rules,
            needs,
            by_path,
            open_scopes,
            user_scoped,
            words,
            patterns,
            screen,
            screened,
            longest_rate,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The longest `rate` window of any rule (zero without rate rules).
    pub fn longest_rate(&self) -> std::time::Duration {
        self.longest_rate
    }

    /// Whether rule `r` applies to this message for the sender (outgoing) and for the recipient
    /// (incoming). The path was checked by the index.
    fn sides(r: &Rule, v: &View<'_>) -> (bool, bool) {
        let (outgoing, incoming) = Self::open_sides(r.direction, r.peers, v);
        (
            outgoing && r.covers(v.sender),
            incoming && r.covers(v.recipient),
        )
    }

    /// [`RuleSet::sides`] for a rule without a `users` list.
    fn open_sides(direction: Direction, peers: Peers, v: &View<'_>) -> (bool, bool) {
        let outgoing = direction.outgoing() && v.sender_class.local && v.recipient_class.is(peers);
        let incoming = direction.incoming() && v.recipient_class.local && v.sender_class.is(peers);
        (outgoing, incoming)
    }

    /// The rules whose scope and content conditions hold for this message. `rate` conditions
    /// are the caller's (they need the sender's history).
    ///
    /// Two passes over the rules of the message's path: the first finds which scanners the
    /// rules in scope need (by scope for the rules without a `users` list, by rule for the
    /// others), the text is scanned once for all of them, and only when something
    /// was found (or a rule in scope has no content condition) does the second pass give each
    /// rule what is its. A message that matches nothing allocates nothing here but its folded
    /// text.
    pub fn evaluate(&self, v: &View<'_>) -> Vec<Hit> {
        let at = path_index(v.path);
        let mut wanted = 0u16;
        let mut unconditional = false;
        for o in &self.open_scopes[at] {
            let (outgoing, incoming) = Self::open_sides(o.direction, o.peers, v);
            if outgoing || incoming {
                wanted |= o.needs;
                unconditional |= o.unconditional;
            }
        }
        for &i in &self.user_scoped[at] {
            let (outgoing, incoming) = Self::sides(&self.rules[i], v);
            if outgoing || incoming {
                wanted |= self.needs[i];
                unconditional |= self.needs[i] == 0;
            }
        }
        let found = if wanted == 0 {
            Vec::new()
        } else {
            self.scan(v, wanted)
        };
        if found.is_empty() && !unconditional {
            return Vec::new();
        }
        let mut hits = Vec::new();
        for &i in &self.by_path[at] {
            let (outgoing, incoming) = Self::sides(&self.rules[i], v);
            let needs = self.needs[i];
            let mine = || -> Vec<Found> {
                found
                    .iter()
                    .filter(|(f, _)| match *f {
                        For::Rule(r) => r == i,
                        For::Kind(k) => needs & k != 0,
                    })
                    .map(|(_, f)| f.clone())
                    .collect()
            };
            for (applies, side) in [(outgoing, Side::Outgoing), (incoming, Side::Incoming)] {
                if !applies {
                    continue;
                }
                let found = mine();
                if needs == 0 || !found.is_empty() {
                    hits.push(Hit {
                        rule: i,
                        side,
                        found,
                    });
                }
            }
        }
        hits
    }

    /// Everything the `wanted` scanners find, each with whom it is for. Keyword and pattern
    /// matches are reported for their own rule whether it is in scope or not: the second pass
    /// of [`RuleSet::evaluate`] only hands them to rules in scope.
    fn scan(&self, v: &View<'_>, wanted: u16) -> Vec<(For, Found)> {
        let wants = |bit: u16| wanted & bit != 0;
        let mut out = Vec::new();
        for (b, body) in v.bodies.iter().enumerate() {
            // When the screen says no, the scanners it stands for have nothing to find.
            let screened = self.screened & wanted;
            let skip = match &self.screen {
                Some(screen) if screened != 0 && !screen.passes(body) => screened,
                _ => 0,
            };
            let runs = |bit: u16| wanted & bit & !skip != 0;
            let folded = runs(need::FOLDED).then(|| fold_for_search(body));
            let mut project_ranges = Vec::new();
            if runs(need::KEYWORDS | need::PROJECT)
                && let (Some(k), Some(folded)) = (&self.words, &folded)
            {
                for h in k.find(folded) {
                    if h.tag == PROJECT_TAG {
                        if wants(need::PROJECT) {
                            project_ranges.push(h.range);
                        }
                        continue;
                    }
                    if !wants(need::KEYWORDS) {
                        continue;
                    }
                    let what = format!("keyword `{}`", &body[h.range.clone()]);
                    out.push((
                        For::Rule(h.tag),
                        Found {
                            body: Some(b),
                            range: h.range,
                            what,
                        },
                    ));
                }
            }
            if runs(need::PATTERNS)
                && let Some(p) = &self.patterns
            {
                for h in p.find(body) {
                    out.push((
                        For::Rule(h.tag),
                        Found {
                            body: Some(b),
                            range: h.range,
                            what: "pattern".to_owned(),
                        },
                    ));
                }
            }
            let mut detected = |kind: u16, ranges: Vec<Range<usize>>, what: &str| {
                for range in ranges {
                    out.push((
                        For::Kind(kind),
                        Found {
                            body: Some(b),
                            range,
                            what: what.to_owned(),
                        },
                    ));
                }
            };
            if runs(need::CARD | need::IBAN | need::EMAIL | need::LINKS) {
                // Quick looks at the bytes tell which detectors can find anything: most chat
                // lines hold no card, IBAN, address or link, and skip them all.
                let clues = detect::Clues::of(body);
                if runs(need::CARD) && clues.may_hold_card() {
                    detected(
                        need::CARD,
                        detect::payment_cards(body),
                        "payment card number",
                    );
                }
                if runs(need::IBAN) && clues.may_hold_iban() {
                    detected(need::IBAN, detect::ibans(body), "IBAN");
                }
                if runs(need::EMAIL) && clues.may_hold_email() {
                    detected(need::EMAIL, detect::emails(body), "e-mail address");
                }
                if runs(need::LINKS) && clues.may_hold_link() {
                    let ranges = detect::links(body).into_iter().map(|(r, _)| r).collect();
                    detected(need::LINKS, ranges, "link");
                }
            }
            if !project_ranges.is_empty() {
                detected(need::PROJECT, project_ranges, "confidential project name");
            }
        }
        if wants(need::FILES) {
            for _ in v.files {
                out.push((
                    For::Kind(need::FILES),
                    Found {
                        body: None,
                        range: 0..0,
                        what: "file transfer".to_owned(),
                    },
                ));
            }
        }
        out
    }
}

/// The screen of a rule set (see [`screen`](super::screen)) and the scanners it stands for:
/// the patterns; the ASCII keywords and project names, with the expression that matches any
/// text that is not plain, so that a text the screen refuses is plain and the keywords need
/// not be looked for in its folding; the shapes of the detectors the rules use. Made only when
/// it stands for a keyword or pattern scan and at least one more: for one scan alone, that
/// scan's own first look is as quick.
fn screen_for(
    rules: &[Rule],
    words: &Option<KeywordSet>,
    patterns: &[(String, usize)],
) -> (Option<Screen>, u16) {
    let mut expressions: Vec<&str> = patterns.iter().map(|(p, _)| p.as_str()).collect();
    let mut screened = if patterns.is_empty() {
        0
    } else {
        need::PATTERNS
    };
    let keywords = words
        .as_ref()
        .and_then(|w| screen::keyword_alternation(w.folded_keywords()));
    if let Some(k) = &keywords {
        expressions.push(k);
        expressions.push(screen::NOT_PLAIN);
        screened |= need::FOLDED;
    }
    let detectors: Vec<Detector> = rules.iter().flat_map(|r| r.detectors.clone()).collect();
    let links = rules.iter().any(|r| r.links);
    for (used, bit, shape) in [
        (
            detectors.contains(&Detector::PaymentCard),
            need::CARD,
            detect::CARD_SHAPE,
        ),
        (
            detectors.contains(&Detector::Iban),
            need::IBAN,
            detect::IBAN_SHAPE,
        ),
        (
            detectors.contains(&Detector::Email),
            need::EMAIL,
            detect::EMAIL_SHAPE,
        ),
        (links, need::LINKS, detect::LINK_SHAPE),
    ] {
        if used {
            expressions.push(shape);
            screened |= bit;
        }
    }
    let scans = [
        need::PATTERNS,
        need::FOLDED,
        need::CARD,
        need::IBAN,
        need::EMAIL,
        need::LINKS,
    ]
    .into_iter()
    .filter(|&bit| screened & bit != 0)
    .count();
    if screened & (need::PATTERNS | need::FOLDED) == 0 || scans < 2 {
        return (None, 0);
    }
    match Screen::new(expressions) {
        Some(s) => (Some(s), screened),
        None => (None, 0),
    }
}

/// Replaces the found ranges of a body with `*`, one per character.
pub fn mask(body: &str, ranges: &[Range<usize>]) -> String {
    let mut ranges: Vec<Range<usize>> = ranges
        .iter()
        .filter(|r| r.start < r.end && r.end <= body.len())
        .cloned()
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(body.len());
    let mut at = 0;
    for r in ranges {
        let start = r.start.max(at);
        if start >= r.end {
            continue;
        }
        out.push_str(&body[at..start]);
        out.extend(body[start..r.end].chars().map(|_| '*'));
        at = r.end;
    }
    out.push_str(&body[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::super::rules::parse;
    use super::*;
    use proptest::prelude::*;

    const LOCAL: PeerClass = PeerClass {
        local: true,
        allowed: true,
    };
    const PARTNER: PeerClass = PeerClass {
        local: false,
        allowed: true,
    };
    const STRANGER: PeerClass = PeerClass {
        local: false,
        allowed: false,
    };

    fn set(text: &str) -> RuleSet {
        RuleSet::compile(parse(text).expect("valid"), &["Project Falcon".to_owned()])
            .expect("compiles")
    }

    fn view<'a>(to: PeerClass, body: &'a [&'a str]) -> View<'a> {
        View {
            sender: "alice@corp.example",
            recipient: "bob@elsewhere.example",
            path: if to.local {
                Path::Chat
            } else {
                Path::Federation
            },
            sender_class: LOCAL,
            recipient_class: to,
            bodies: body,
            files: &[],
        }
    }

    const RULES: &str = r#"
[[rule]]
id = "secret"
description = "Confidential words"
category = "keywords"
keywords = ["top secret", "Élève"]
actions = ["block"]

[[rule]]
id = "cards-out"
description = "Cards outside"
category = "sensitive data"
peers = "external"
detectors = ["payment-card", "project"]
actions = ["mask"]

[[rule]]
id = "strangers"
description = "Anything to a domain that is not a partner"
category = "federation"
peers = "not-allowed"
actions = ["log"]

[[rule]]
id = "codes"
description = "Internal codes"
category = "codes"
direction = "incoming"
patterns = ['\bACME-\d{4}\b']
actions = ["capture"]
"#;

    #[test]
    fn keywords_and_project_names_share_one_scan_but_not_their_rules() {
        let s = set(r#"
[[rule]]
id = "falcon-word"
description = "The word falcon"
category = "keywords"
keywords = ["falcon"]
actions = ["log"]

[[rule]]
id = "projects"
description = "Project names"
category = "sensitive data"
detectors = ["project"]
actions = ["log"]
"#);
        let fired = |body: &str| -> Vec<(String, Vec<String>)> {
            s.evaluate(&view(LOCAL, &[body]))
                .into_iter()
                .map(|h| {
                    let found = h.found.iter().map(|f| f.what.clone()).collect();
                    (s.rules()[h.rule].id.clone(), found)
                })
                .collect()
        };
        assert_eq!(
            fired("news on PROJECT  falcon?"),
            [
                (
                    "falcon-word".to_owned(),
                    vec!["keyword `falcon`".to_owned()]
                ),
                (
                    "projects".to_owned(),
                    vec!["confidential project name".to_owned()]
                ),
            ]
        );
        assert_eq!(
            fired("a falcon flew by"),
            [(
                "falcon-word".to_owned(),
                vec!["keyword `falcon`".to_owned()]
            )]
        );
        assert!(fired("nothing here").is_empty());
        // Without a rule that uses the detector, project names are not looked for.
        let words_only = RuleSet::compile(
            parse("[[rule]]\nid = \"w\"\ndescription = \"w\"\ncategory = \"k\"\nkeywords = [\"bird\"]\nactions = [\"log\"]\n")
                .expect("valid"),
            &["Project Falcon".to_owned()],
        )
        .expect("compiles");
        assert!(
            words_only
                .evaluate(&view(LOCAL, &["Project Falcon"]))
                .is_empty()
        );
    }

    #[test]
    fn keywords_ignore_case_accents_and_spacing() {
        let s = set(RULES);
        let hits = s.evaluate(&view(LOCAL, &["this is TOP\n  Secret, eleve"]));
        assert_eq!(hits.len(), 1);
        assert_eq!(s.rules()[hits[0].rule].id, "secret");
        assert_eq!(hits[0].found.len(), 2);
        assert!(s.evaluate(&view(LOCAL, &["topsecret"])).is_empty());
    }

    #[test]
    fn scope_follows_peers_and_direction() {
        let s = set(RULES);
        let card = "pay with 4111 1111 1111 1111 please";
        assert!(
            s.evaluate(&view(LOCAL, &[card])).is_empty(),
            "cards-out is for external peers"
        );
        let hits = s.evaluate(&view(PARTNER, &[card]));
        assert_eq!(hits.len(), 1);
        let masked = mask(card, &[hits[0].found[0].range.clone()]);
        assert_eq!(masked, "pay with ******************* please");
        let ids: Vec<&str> = s
            .evaluate(&view(STRANGER, &["about project falcon"]))
            .iter()
            .map(|h| s.rules()[h.rule].id.as_str())
            .collect();
        assert_eq!(ids, ["cards-out", "strangers"]);
        // Incoming: the recipient must be local.
        let mut incoming = view(LOCAL, &["ref ACME-1234"]);
        assert_eq!(s.evaluate(&incoming).len(), 1);
        incoming.recipient_class = PARTNER;
        incoming.path = Path::Federation;
        assert!(
            s.evaluate(&incoming)
                .iter()
                .all(|h| s.rules()[h.rule].id != "codes")
        );
    }

    #[test]
    fn a_rule_fires_only_on_its_paths() {
        let s = set(r#"
[[rule]]
id = "rooms"
description = "Secrets in rooms"
category = "keywords"
paths = ["groupchat"]
keywords = ["top secret"]
actions = ["block"]

[[rule]]
id = "one-to-one"
description = "Secrets between two people"
category = "keywords"
paths = ["chat", "federation"]
keywords = ["top secret"]
actions = ["log"]
"#);
        let fired = |path: Path, to: PeerClass| -> Vec<String> {
            let mut v = view(to, &["it is top secret"]);
            v.path = path;
            s.evaluate(&v)
                .iter()
                .map(|h| s.rules()[h.rule].id.clone())
                .collect()
        };
        assert_eq!(fired(Path::Groupchat, LOCAL), ["rooms"]);
        assert_eq!(fired(Path::Groupchat, PARTNER), ["rooms"]);
        assert_eq!(fired(Path::Chat, LOCAL), ["one-to-one"]);
        assert_eq!(fired(Path::Federation, PARTNER), ["one-to-one"]);
    }

    #[test]
    fn user_lists_and_scopes_decide_who_a_keyword_fires_for() {
        let s = set(r#"
[[rule]]
id = "alice-only"
description = "d"
category = "c"
users = ["alice@corp.example"]
keywords = ["falcon"]
actions = ["log"]

[[rule]]
id = "partners"
description = "d"
category = "c"
peers = "partner"
keywords = ["falcon", "eagle"]
actions = ["log"]

[[rule]]
id = "everyone-in"
description = "d"
category = "c"
direction = "incoming"
users = ["*@corp.example"]
actions = ["log"]
"#);
        let ids = |v: &View<'_>| -> Vec<(String, Side)> {
            s.evaluate(v)
                .iter()
                .map(|h| (s.rules()[h.rule].id.clone(), h.side))
                .collect()
        };
        let mut to_bob = view(LOCAL, &["the falcon has landed"]);
        to_bob.recipient = "bob@corp.example";
        let mut from_bob = to_bob.clone();
        from_bob.sender = "bob@corp.example";
        from_bob.recipient = "alice@corp.example";
        // Alice is in the first rule's list (outgoing, the default); "partners" is out of
        // scope for a local peer even though its keyword is in the text; the incoming rule has
        // no content condition.
        assert_eq!(
            ids(&to_bob),
            [
                ("alice-only".to_owned(), Side::Outgoing),
                ("everyone-in".to_owned(), Side::Incoming)
            ]
        );
        assert_eq!(ids(&from_bob), [("everyone-in".to_owned(), Side::Incoming)]);
        let partner = view(PARTNER, &["an eagle and a falcon"]);
        let hits = s.evaluate(&partner);
        let ids: Vec<&str> = hits.iter().map(|h| s.rules()[h.rule].id.as_str()).collect();
        assert_eq!(ids, ["alice-only", "partners"]);
        assert_eq!(hits[1].found.len(), 2, "both keywords of `partners`");
        assert_eq!(hits[0].found.len(), 1, "only its own keyword");
        assert!(s.evaluate(&view(PARTNER, &["nothing here"])).is_empty());
    }

    #[test]
    fn a_bad_pattern_is_reported_with_its_rule() {
        let text = "[[rule]]\nid = \"bad\"\ndescription = \"d\"\ncategory = \"c\"\npatterns = ['(unclosed']\nactions = [\"log\"]\n";
        let e = RuleSet::compile(parse(text).unwrap(), &[]).expect_err("bad regex");
        assert_eq!(e[0].rule, "bad");
        assert_eq!(e[0].field, "patterns");
        let text = "[[rule]]\nid = \"p\"\ndescription = \"d\"\ncategory = \"c\"\ndetectors = [\"project\"]\nactions = [\"log\"]\n";
        let e = RuleSet::compile(parse(text).unwrap(), &[]).expect_err("no names");
        assert!(e[0].reason.contains("project_names"), "{e:?}");
    }

    const SCREENED_RULES: &str = r#"
[[rule]]
id = "words"
description = "Words"
category = "keywords"
keywords = ["top secret", "Élève", "c++", "ab", "秘密"]
actions = ["log"]

[[rule]]
id = "codes"
description = "Codes"
category = "codes"
patterns = ['\bAB-\d{4}\b', '(?i)x\s*1']
actions = ["log"]

[[rule]]
id = "data"
description = "Data"
category = "sensitive data"
detectors = ["payment-card", "iban", "email", "project"]
actions = ["log"]
"#;

    #[test]
    fn the_screen_stands_for_patterns_keywords_cards_and_ibans() {
        let s = set(SCREENED_RULES);
        assert!(s.screen.is_some());
        assert_eq!(
            s.screened,
            need::PATTERNS | need::FOLDED | need::CARD | need::IBAN | need::EMAIL
        );
        // Keywords alone: the keyword scan is its own screen.
        let s = set(&RULES.replace("patterns = ['\\bACME-\\d{4}\\b']", "keywords = [\"acme\"]"));
        assert!(s.patterns.is_none());
        assert!(s.screen.is_some(), "keywords and the card shape");
        let s = set(
            "[[rule]]\nid = \"k\"\ndescription = \"d\"\ncategory = \"c\"\nkeywords = [\"x\"]\nactions = [\"log\"]\n",
        );
        assert!(s.screen.is_none());
    }

    /// [`SCREENED_RULES`] and a keyword list too long for the screen to hold whole: it holds
    /// the first words.
    fn long_screened_rules() -> String {
        let fillers: Vec<String> = (0..300).map(|i| format!("\"filler phrase {i}\"")).collect();
        format!(
            "{SCREENED_RULES}\n[[rule]]\nid = \"long\"\ndescription = \"d\"\ncategory = \"c\"\nactions = [\"log\"]\nkeywords = [\"top plans\", {}]\n",
            fillers.join(", ")
        )
    }

    #[test]
    fn a_long_keyword_list_is_screened_by_its_first_words() {
        let s = set(&long_screened_rules());
        assert_eq!(
            s.screened,
            need::PATTERNS | need::FOLDED | need::CARD | need::IBAN | need::EMAIL
        );
        let screen = s.screen.as_ref().expect("a screen");
        assert!(screen.passes("the top floor"));
        assert!(!screen.passes("the topmost floor"));
    }

    /// Texts made of what the rules above look for, in any case, with accents, several spaces
    /// or other white space now and then, glued or apart.
    fn screened_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("top secret"),
                Just("top plans"),
                Just("topsecret"),
                Just("filler phrase 7"),
                Just("_"),
                Just("TOP  Secret"),
                Just("tôp secret"),
                Just("Eleve"),
                Just("élève"),
                Just("秘密"),
                Just("c++"),
                Just("AB"),
                Just("ab-1234"),
                Just("AB-1234"),
                Just("x 1"),
                Just("X\n1"),
                Just("4111 1111 1111 1111"),
                Just("4111-1111-1111-1112"),
                Just("GB82 WEST 1234 5698 7654 32"),
                Just("gb82west12345698765432"),
                Just("ann@example.org"),
                Just("project  falcon"),
                Just("Projéct Falcon"),
                Just("hello"),
                Just("12"),
                Just(" "),
                Just(","),
            ],
            0..10,
        )
        .prop_map(|parts| parts.concat())
    }

    /// The hits of `rules` on `text` with their screen and without it.
    fn with_and_without_screen(rules: &str, text: &str) -> (Vec<Hit>, Vec<Hit>) {
        let screened = set(rules);
        let mut plain = set(rules);
        plain.screen = None;
        plain.screened = 0;
        let bodies = [text];
        let v = view(LOCAL, &bodies);
        (screened.evaluate(&v), plain.evaluate(&v))
    }

    proptest::proptest! {
        /// Whatever the screen lets a scan skip, that scan would have found nothing: the same
        /// rules without their screen give the same hits.
        #[test]
        fn the_screen_hides_nothing(text in screened_text()) {
            let (screened, plain) = with_and_without_screen(SCREENED_RULES, &text);
            proptest::prop_assert_eq!(screened, plain);
        }

        /// The same with a keyword list the screen holds by its first words.
        #[test]
        fn first_words_hide_nothing(text in screened_text()) {
            let (screened, plain) = with_and_without_screen(&long_screened_rules(), &text);
            proptest::prop_assert_eq!(screened, plain);
        }
    }

    #[test]
    fn mask_handles_overlaps_and_unicode() {
        assert_eq!(mask("aé b", &[0..3, 1..3]), "** b");
        assert_eq!(mask("abc", &[]), "abc");
        assert_eq!(mask("abcdef", &[4..6, 0..2]), "**cd**");
    }
}
