//! Compiled rules: every keyword of every rule in one automaton, every pattern in one set, the
//! detectors run only when a rule in scope uses them. Evaluation is linear in the length of the
//! message, whatever the rules say.

use std::ops::Range;

use super::detect;
use super::keywords::KeywordSet;
use super::patterns::PatternSet;
use super::rules::{Detector, Path, Peers, Rule, RuleError};
use super::text::fold;

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
    pub bodies: Vec<&'a str>,
    /// Files offered (XEP-0066 out-of-band URLs).
    pub files: Vec<&'a str>,
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

/// A checked, compiled set of rules.
pub struct RuleSet {
    rules: Vec<Rule>,
    keywords: Option<KeywordSet>,
    patterns: Option<PatternSet>,
    projects: Option<KeywordSet>,
    /// The longest `rate` window of any rule: how long senders' message times are kept.
    longest_rate: std::time::Duration,
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
            keywords: None,
            patterns: None,
            projects: None,
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
        let keywords = if keyword_list.is_empty() {
            None
        } else {
            match KeywordSet::new(&keyword_list) {
                Ok(k) => Some(k),
                Err(e) => {
                    let rule = &rules[keyword_list[e.pattern].1];
                    errors.push(RuleError {
                        rule: rule.id.clone(),
                        field: "keywords".into(),
                        reason: format!("`{}`: {}", keyword_list[e.pattern].0, e.reason),
                        line: Some(rule.line),
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
        let uses_projects = rules
            .iter()
            .any(|r| r.detectors.contains(&Detector::Project));
        let projects = if uses_projects && !projects.is_empty() {
            let list: Vec<(String, usize)> = projects.iter().map(|p| (p.clone(), 0)).collect();
            match KeywordSet::new(&list) {
                Ok(k) => Some(k),
                Err(e) => {
                    errors.push(RuleError {
                        rule: String::new(),
                        field: "compliance.project_names".into(),
                        reason: format!("`{}`: {}", list[e.pattern].0, e.reason),
                        line: None,
                    });
                    None
                }
            }
        } else {
            None
        };
        if uses_projects && projects.is_none() && errors.is_empty() {
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
        let longest_rate = rules
            .iter()
            .filter_map(|r| r.rate)
            .map(|r| std::time::Duration::from_secs(u64::from(r.per_secs)))
            .max()
            .unwrap_or_default();
        Ok(RuleSet {
            rules,
            keywords,
            patterns,
            projects,
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

    /// The rules whose scope and content conditions hold for this message. `rate` conditions
    /// are the caller's (they need the sender's history).
    pub fn evaluate(&self, v: &View<'_>) -> Vec<Hit> {
        let mut candidates: Vec<(usize, Side)> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if !r.paths.contains(&v.path) {
                continue;
            }
            if r.direction.outgoing()
                && v.sender_class.local
                && r.covers(v.sender)
                && v.recipient_class.is(r.peers)
            {
                candidates.push((i, Side::Outgoing));
            }
            if r.direction.incoming()
                && v.recipient_class.local
                && r.covers(v.recipient)
                && v.sender_class.is(r.peers)
            {
                candidates.push((i, Side::Incoming));
            }
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        let scan = candidates
            .iter()
            .any(|(i, _)| self.rules[*i].has_content_conditions());
        let found = if scan {
            self.scan(v, &candidates)
        } else {
            Vec::new()
        };
        let mut hits = Vec::new();
        for (i, side) in candidates {
            let r = &self.rules[i];
            if !r.has_content_conditions() {
                hits.push(Hit {
                    rule: i,
                    side,
                    found: Vec::new(),
                });
                continue;
            }
            let mine: Vec<Found> = found
                .iter()
                .filter(|(rule, _)| *rule == i)
                .map(|(_, f)| f.clone())
                .collect();
            if !mine.is_empty() {
                hits.push(Hit {
                    rule: i,
                    side,
                    found: mine,
                });
            }
        }
        hits
    }

    /// Everything the candidate rules look for, as (rule, found) pairs.
    fn scan(&self, v: &View<'_>, candidates: &[(usize, Side)]) -> Vec<(usize, Found)> {
        let wants = |pred: &dyn Fn(&Rule) -> bool| -> Vec<usize> {
            let mut out: Vec<usize> = candidates
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| pred(&self.rules[*i]))
                .collect();
            out.dedup();
            out
        };
        let candidate = |i: usize| candidates.iter().any(|(c, _)| *c == i);
        let cards = wants(&|r| r.detectors.contains(&Detector::PaymentCard));
        let ibans = wants(&|r| r.detectors.contains(&Detector::Iban));
        let emails = wants(&|r| r.detectors.contains(&Detector::Email));
        let projects = wants(&|r| r.detectors.contains(&Detector::Project));
        let links = wants(&|r| r.links);
        let files = wants(&|r| r.files);
        let need_keywords = candidates
            .iter()
            .any(|(i, _)| !self.rules[*i].keywords.is_empty());
        let need_patterns = candidates
            .iter()
            .any(|(i, _)| !self.rules[*i].patterns.is_empty());
        let mut out = Vec::new();
        for (b, body) in v.bodies.iter().enumerate() {
            let folded = (need_keywords || !projects.is_empty()).then(|| fold(body));
            if need_keywords && let (Some(k), Some(folded)) = (&self.keywords, &folded) {
                for h in k.find(folded) {
                    if candidate(h.tag) {
                        let what = format!("keyword `{}`", &body[h.range.clone()]);
                        out.push((
                            h.tag,
                            Found {
                                body: Some(b),
                                range: h.range,
                                what,
                            },
                        ));
                    }
                }
            }
            if need_patterns && let Some(p) = &self.patterns {
                for h in p.find(body) {
                    if candidate(h.tag) {
                        out.push((
                            h.tag,
                            Found {
                                body: Some(b),
                                range: h.range,
                                what: "pattern".to_owned(),
                            },
                        ));
                    }
                }
            }
            let mut detected = |rules: &[usize], ranges: Vec<Range<usize>>, what: &str| {
                for range in ranges {
                    for r in rules {
                        out.push((
                            *r,
                            Found {
                                body: Some(b),
                                range: range.clone(),
                                what: what.to_owned(),
                            },
                        ));
                    }
                }
            };
            // Cheap necessary conditions first: most chat lines have none of what the detectors
            // look for, and skip them at the cost of one pass over the bytes.
            let digits = if cards.is_empty() && ibans.is_empty() {
                0
            } else {
                body.bytes().filter(u8::is_ascii_digit).count()
            };
            if !cards.is_empty() && digits >= detect::MIN_CARD_DIGITS {
                detected(&cards, detect::payment_cards(body), "payment card number");
            }
            if !ibans.is_empty() && digits >= 2 && body.len() >= detect::MIN_IBAN_CHARS {
                detected(&ibans, detect::ibans(body), "IBAN");
            }
            if !emails.is_empty() && body.contains('@') {
                detected(&emails, detect::emails(body), "e-mail address");
            }
            if !links.is_empty()
                && (body.contains(':')
                    || body
                        .as_bytes()
                        .windows(4)
                        .any(|w| w.eq_ignore_ascii_case(b"www.")))
            {
                let ranges = detect::links(body).into_iter().map(|(r, _)| r).collect();
                detected(&links, ranges, "link");
            }
            if !projects.is_empty()
                && let (Some(k), Some(folded)) = (&self.projects, &folded)
            {
                let ranges = k.find(folded).into_iter().map(|h| h.range).collect();
                detected(&projects, ranges, "confidential project name");
            }
        }
        if !files.is_empty() {
            for _ in &v.files {
                for r in &files {
                    out.push((
                        *r,
                        Found {
                            body: None,
                            range: 0..0,
                            what: "file transfer".to_owned(),
                        },
                    ));
                }
            }
        }
        out
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

    fn view<'a>(to: PeerClass, body: &'a str) -> View<'a> {
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
            bodies: vec![body],
            files: Vec::new(),
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
    fn keywords_ignore_case_accents_and_spacing() {
        let s = set(RULES);
        let hits = s.evaluate(&view(LOCAL, "this is TOP\n  Secret, eleve"));
        assert_eq!(hits.len(), 1);
        assert_eq!(s.rules()[hits[0].rule].id, "secret");
        assert_eq!(hits[0].found.len(), 2);
        assert!(s.evaluate(&view(LOCAL, "topsecret")).is_empty());
    }

    #[test]
    fn scope_follows_peers_and_direction() {
        let s = set(RULES);
        let card = "pay with 4111 1111 1111 1111 please";
        assert!(
            s.evaluate(&view(LOCAL, card)).is_empty(),
            "cards-out is for external peers"
        );
        let hits = s.evaluate(&view(PARTNER, card));
        assert_eq!(hits.len(), 1);
        let masked = mask(card, &[hits[0].found[0].range.clone()]);
        assert_eq!(masked, "pay with ******************* please");
        let ids: Vec<&str> = s
            .evaluate(&view(STRANGER, "about project falcon"))
            .iter()
            .map(|h| s.rules()[h.rule].id.as_str())
            .collect();
        assert_eq!(ids, ["cards-out", "strangers"]);
        // Incoming: the recipient must be local.
        let mut incoming = view(LOCAL, "ref ACME-1234");
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
    fn a_bad_pattern_is_reported_with_its_rule() {
        let text = "[[rule]]\nid = \"bad\"\ndescription = \"d\"\ncategory = \"c\"\npatterns = ['(unclosed']\nactions = [\"log\"]\n";
        let e = RuleSet::compile(parse(text).unwrap(), &[]).expect_err("bad regex");
        assert_eq!(e[0].rule, "bad");
        assert_eq!(e[0].field, "patterns");
        let text = "[[rule]]\nid = \"p\"\ndescription = \"d\"\ncategory = \"c\"\ndetectors = [\"project\"]\nactions = [\"log\"]\n";
        let e = RuleSet::compile(parse(text).unwrap(), &[]).expect_err("no names");
        assert!(e[0].reason.contains("project_names"), "{e:?}");
    }

    #[test]
    fn mask_handles_overlaps_and_unicode() {
        assert_eq!(mask("aé b", &[0..3, 1..3]), "** b");
        assert_eq!(mask("abc", &[]), "abc");
        assert_eq!(mask("abcdef", &[4..6, 0..2]), "**cd**");
    }
}
