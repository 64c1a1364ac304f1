//! Regular expressions written by administrators, matched against the message as written.
//!
//! The `regex` crate runs in time linear in the message for any pattern (no backtracking, no
//! look-around, no back-references), so no rule can hang the server on a crafted message. What
//! a pattern may cost is bounded when it is compiled: its program may take at most
//! [`PATTERN_SIZE_LIMIT`] bytes (a large Unicode class like `\w{100}` is refused, not
//! silently expanded), and the lazy DFA each search builds may grow to [`PATTERN_DFA_LIMIT`]
//! bytes before it falls back to the slower, still linear, engine.
//!
//! All patterns are compiled into one `RegexSet` as well, which tells in one pass which
//! patterns occur at all; only those are then run again to find where.
//!
//! Patterns are matched against the original text, not the folded one: authors choose with
//! `(?i)` and friends what they want to ignore.

use std::ops::Range;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::MAX_HITS_PER_PATTERN;

/// The largest compiled program of one pattern, in bytes.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The largest lazy-DFA cache of one pattern during a search, in bytes.
pub const PATTERN_DFA_LIMIT: usize = 2 << 20;

/// The largest compiled program of the set of all patterns, in bytes.
pub const SET_SIZE_LIMIT: usize = 64 << 20;

/// The largest lazy-DFA cache of the set of all patterns during a search, in bytes.
pub const SET_DFA_LIMIT: usize = 16 << 20;

/// The most patterns one set may hold.
pub const MAX_PATTERNS: usize = 10_000;

/// Why a list of patterns was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pattern {pattern}: {reason}")]
pub struct PatternError {
    /// The pattern's position in the list given. When the list as a whole is refused, the
    /// first pattern beyond [`MAX_PATTERNS`], or the last one if the set is too large.
    pub pattern: usize,
    pub reason: PatternReason,
}

/// What is wrong with a pattern; the messages of the `regex` crate are kept as it wrote them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternReason {
    #[error("not a valid regular expression: {0}")]
    Syntax(String),
    #[error("too large once compiled (limit {limit} bytes): {message}")]
    TooLarge { limit: usize, message: String },
    #[error("matches an empty text, so it would match any message")]
    MatchesEmpty,
    #[error("more than {limit} patterns")]
    TooMany { limit: usize },
    #[error("the patterns together are too large to compile: {0}")]
    SetTooLarge(String),
}

/// One match of a pattern in a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PatternHit {
    /// The tag given with the pattern.
    pub tag: usize,
    /// The pattern's position in the list given to [`PatternSet::new`].
    pub pattern: usize,
    /// Where it is in the message, in bytes.
    pub range: Range<usize>,
}

/// A compiled list of regular expressions.
#[derive(Clone, Debug)]
pub struct PatternSet {
    set: RegexSet,
    /// Each pattern alone, with its tag, in the order given.
    patterns: Vec<(Regex, usize)>,
}

impl PatternSet {
    /// Compiles `patterns`, each a regular expression in the `regex` crate's syntax with the
    /// caller's tag.
    pub fn new(patterns: &[(String, usize)]) -> Result<PatternSet, PatternError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(PatternError {
                pattern: MAX_PATTERNS,
                reason: PatternReason::TooMany {
                    limit: MAX_PATTERNS,
                },
            });
        }
        let mut compiled = Vec::with_capacity(patterns.len());
        for (index, (pattern, tag)) in patterns.iter().enumerate() {
            let regex = RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .dfa_size_limit(PATTERN_DFA_LIMIT)
                .build()
                .map_err(|e| PatternError {
                    pattern: index,
                    reason: match e {
                        regex::Error::CompiledTooBig(limit) => PatternReason::TooLarge {
                            limit,
                            message: e.to_string(),
                        },
                        e => PatternReason::Syntax(e.to_string()),
                    },
                })?;
            if regex.is_match("") {
                return Err(PatternError {
                    pattern: index,
                    reason: PatternReason::MatchesEmpty,
                });
            }
            compiled.push((regex, *tag));
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|(p, _)| p))
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(SET_DFA_LIMIT)
            .build()
            .map_err(|e| PatternError {
                pattern: patterns.len().saturating_sub(1),
                reason: PatternReason::SetTooLarge(e.to_string()),
            })?;
        Ok(PatternSet {
            set,
            patterns: compiled,
        })
    }

    /// Every match of every pattern in `text`, ordered by position then by pattern. Matches of
    /// different patterns may overlap; the matches of one pattern are those of
    /// `Regex::find_iter` (leftmost-first, not overlapping), empty ones left out, at most
    /// [`MAX_HITS_PER_PATTERN`] per pattern, so a message flooding one pattern cannot hide
    /// another.
    pub fn find(&self, text: &str) -> Vec<PatternHit> {
        // Most texts match no pattern: one search that may stop early and use the set's
        // literal prefilters says so, before the overlapping search that names every pattern.
        if !self.set.is_match(text) {
            return Vec::new();
        }
        let mut hits = Vec::new();
        for pattern in self.set.matches(text).iter() {
            let (regex, tag) = &self.patterns[pattern];
            let found = regex.find_iter(text).filter(|m| !m.is_empty());
            for m in found.take(MAX_HITS_PER_PATTERN) {
                hits.push(PatternHit {
                    tag: *tag,
                    pattern,
                    range: m.range(),
                });
            }
        }
        hits.sort_by_key(|h| (h.range.start, h.range.end, h.pattern));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(patterns: &[&str]) -> PatternSet {
        let list: Vec<(String, usize)> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), 50 + i))
            .collect();
        PatternSet::new(&list).unwrap()
    }

    fn found(set: &PatternSet, text: &str) -> Vec<(usize, String)> {
        set.find(text)
            .into_iter()
            .map(|h| {
                assert_eq!(h.tag, 50 + h.pattern);
                (h.pattern, text[h.range].to_string())
            })
            .collect()
    }

    fn pairs(list: &[(usize, &str)]) -> Vec<(usize, String)> {
        list.iter().map(|&(i, s)| (i, s.to_string())).collect()
    }

    #[test]
    fn matches_on_the_original_text() {
        let s = set(&[r"(?i)\bproject\s+[a-z]+\b", r"\b[A-Z]{3}-\d{4}\b", r"Élève"]);
        assert_eq!(
            found(&s, "Project  Zeus and ABC-1234, project x; élève Élève"),
            pairs(&[
                (0, "Project  Zeus"),
                (1, "ABC-1234"),
                (0, "project x"),
                (2, "Élève")
            ])
        );
        assert_eq!(found(&s, "nothing here"), vec![]);
        assert!(PatternSet::new(&[]).unwrap().find("text").is_empty());
    }

    #[test]
    fn overlapping_patterns_are_all_reported() {
        let s = set(&[r"top secret", r"secret\w*", r"\btop\b"]);
        assert_eq!(
            found(&s, "a top secrets file"),
            pairs(&[(2, "top"), (0, "top secret"), (1, "secrets")])
        );
    }

    #[test]
    fn unicode_classes_work() {
        let s = set(&[r"\p{Greek}+", r"(?i)straße"]);
        assert_eq!(
            found(&s, "λόγος STRASSE STRAẞE"),
            pairs(&[(0, "λόγος"), (1, "STRAẞE")])
        );
    }

    #[test]
    fn refused_patterns_name_their_position() {
        let list = |v: &[&str]| v.iter().map(|p| (p.to_string(), 0)).collect::<Vec<_>>();
        let err = PatternSet::new(&list(&["ok", "(unclosed"])).unwrap_err();
        assert!(
            matches!(&err, PatternError { pattern: 1, reason: PatternReason::Syntax(message) } if message.contains("unclosed"))
        );
        assert!(
            err.to_string()
                .starts_with("pattern 1: not a valid regular expression")
        );
        let err = PatternSet::new(&list(&["ok", "ok", r"\w{1000}"])).unwrap_err();
        assert!(
            matches!(
                &err,
                PatternError {
                    pattern: 2,
                    reason: PatternReason::TooLarge {
                        limit: PATTERN_SIZE_LIMIT,
                        ..
                    }
                }
            ),
            "{err}"
        );
        for empty in ["", "a*", "(?m)^", "x|"] {
            assert_eq!(
                PatternSet::new(&list(&["ok", empty])).unwrap_err(),
                PatternError {
                    pattern: 1,
                    reason: PatternReason::MatchesEmpty
                },
                "{empty:?}"
            );
        }
        // Look-around and back-references do not exist in a linear-time engine.
        for unsupported in [r"(a)\1", r"a(?=b)"] {
            assert!(matches!(
                PatternSet::new(&list(&[unsupported])),
                Err(PatternError {
                    pattern: 0,
                    reason: PatternReason::Syntax(_)
                })
            ));
        }
    }

    #[test]
    fn empty_matches_are_left_out() {
        // `\b` matches only between characters, never in an empty text, but never has a width.
        let s = set(&[r"\b", r"\d+"]);
        assert_eq!(found(&s, "a 12 b"), pairs(&[(1, "12")]));
    }

    #[test]
    fn hits_per_pattern_are_capped_but_every_pattern_reports() {
        let s = set(&[r"spam", r"secret"]);
        let text = format!("{}secret", "spam ".repeat(MAX_HITS_PER_PATTERN + 10));
        let hits = found(&s, &text);
        assert_eq!(
            hits.iter().filter(|h| h.0 == 0).count(),
            MAX_HITS_PER_PATTERN
        );
        assert_eq!(hits.last(), Some(&(1, "secret".to_string())));
    }

    #[test]
    fn a_pathological_pattern_stays_linear() {
        // The pattern that makes backtracking engines take exponential time.
        let s = set(&[r"(a+)+$"]);
        let text = format!("{}!", "a".repeat(64 * 1024));
        assert_eq!(s.find(&text), vec![]);
        let text = "a".repeat(64 * 1024);
        assert_eq!(s.find(&text).len(), 1);
    }

    proptest! {
        #[test]
        fn agrees_with_each_regex_alone(
            patterns in prop::collection::vec("[ab]{1,3}|[ab]\\+|\\(a\\|b\\)b", 1..5),
            text in "[ab ]{0,30}",
        ) {
            let list: Vec<(String, usize)> =
                patterns.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
            let s = PatternSet::new(&list).unwrap();
            let mut expected = Vec::new();
            for (i, p) in patterns.iter().enumerate() {
                for m in Regex::new(p).unwrap().find_iter(&text) {
                    expected.push((m.start(), m.end(), i));
                }
            }
            expected.sort();
            let got: Vec<_> =
                s.find(&text).into_iter().map(|h| (h.range.start, h.range.end, h.pattern)).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
