//! Word lists: every keyword and phrase of every rule, compiled into one Aho-Corasick automaton
//! and searched in one pass over the folded message, so the time is linear in the message
//! whatever the number of keywords. Because overlapping matches are all reported, the constant
//! is the number of keywords that can end at one place, which is small for real word lists and
//! at most one per keyword length ([`MAX_KEYWORD_BYTES`]) even for a list made to nest (`-`,
//! `--`, `---`…).
//!
//! Keywords are folded like messages (see [`text`](super::text)), so matching ignores case,
//! accents, compatibility forms and the kind and amount of white space between the words of a
//! phrase; white space around a keyword is ignored. A match counts only at word boundaries: the
//! folded characters just before and after it must not be alphanumeric (`char::is_alphanumeric`),
//! except on a side where the keyword itself ends with a character that is not, so that `$$$`
//! or `#secret` match wherever they appear.
//!
//! Most texts hold no keyword. When every keyword starts with a letter or a digit and is at
//! least four bytes long, an ASCII text is first looked at word by word: the first four bytes of
//! each word against a small table of the keywords' first four bytes (`WordStarts`); the
//! automaton walks the text only when one of them is there.
//!
//! Scripts written without spaces between words (Chinese, Japanese, Thai) have no such
//! boundaries inside a sentence: a keyword in them matches only where it stands apart from other
//! letters, and a regular expression is the tool for those.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ops::Range;

use aho_corasick::automaton::Automaton;
use aho_corasick::{Anchored, Input, MatchKind, dfa, nfa};

use super::MAX_HITS_PER_PATTERN;
use super::detect::{is_digit, is_letter};
use super::text::{Folded, fold};

/// The most keyword text (bytes, after folding) compiled into a full DFA; beyond it the
/// automaton is a contiguous NFA. A full DFA takes one table lookup per byte, but its table
/// grows with the keywords (a row of every byte class for every state: 1,000 phrases make
/// megabytes), and the walk of a message, one dependent load per byte, then misses the
/// processor's caches, which the other work of the server has filled in between: measured on
/// the compliance bench, a thousand phrases cost the server 18 % more CPU time per message as a
/// DFA and 3 % as a contiguous NFA, whose sparse states stay in cache, although the NFA runs
/// more instructions.
const DFA_MAX_BYTES: usize = 2 * 1024;

/// The longest keyword, in bytes once folded.
pub const MAX_KEYWORD_BYTES: usize = 256;

/// The most keywords one set may hold.
pub const MAX_KEYWORDS: usize = 100_000;

/// Why a keyword list was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("keyword {pattern}: {reason}")]
pub struct KeywordError {
    /// The keyword's position in the list given. When the list as a whole is refused, the
    /// first keyword beyond [`MAX_KEYWORDS`], or the last one if the automaton cannot be built.
    pub pattern: usize,
    pub reason: KeywordReason,
}

/// What is wrong with a keyword.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeywordReason {
    #[error("empty once case, accents and white space are folded")]
    Empty,
    #[error("{len} bytes once folded; the limit is {limit} bytes")]
    TooLong { len: usize, limit: usize },
    #[error("more than {limit} keywords")]
    TooMany { limit: usize },
    #[error("the keyword list cannot be compiled: {0}")]
    Build(String),
}

/// One occurrence of a keyword in a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeywordHit {
    /// The tag given with the keyword.
    pub tag: usize,
    /// The keyword's position in the list given to [`KeywordSet::new`].
    pub pattern: usize,
    /// Where it is in the original message, in bytes.
    pub range: Range<usize>,
}

/// A compiled list of keywords.
#[derive(Clone, Debug)]
pub struct KeywordSet {
    automaton: Engine,
    /// One per distinct folded keyword, indexed by the automaton's pattern id.
    keywords: Vec<Keyword>,
    /// The folded text of each, in the same order.
    texts: Vec<String>,
    /// The first look at an ASCII text, when every keyword allows one (see [`WordStarts`]).
    starts: Option<WordStarts>,
}

/// Where a keyword can begin, for a first look that reads a few bytes per word instead of
/// walking the automaton over every byte. A keyword that starts with a letter or a digit
/// matches only at a word start (a letter or digit with none just before it), so when every
/// keyword does and is at least [`WordStarts::KEY`] bytes long, a text in which no word starts
/// with the first bytes of a keyword holds none. Those first bytes are kept as bits of a small
/// table (8 KiB, hashed, so a bit may stand for other bytes too: a false yes costs the walk,
/// never a miss), which stays in the processor's cache. Only for ASCII texts, where a letter or
/// a digit is one byte.
#[derive(Clone, Debug)]
struct WordStarts {
    bits: Box<[u64]>,
}

impl WordStarts {
    /// How many first bytes of a word are looked up.
    const KEY: usize = 4;
    const BITS: u32 = 16;

    /// `None` when a keyword is too short or does not start with a letter or a digit.
    fn new(texts: &[String]) -> Option<WordStarts> {
        let mut bits = vec![0u64; 1 << (Self::BITS - 6)].into_boxed_slice();
        for t in texts {
            let b = t.as_bytes();
            if b.len() < Self::KEY || !b[0].is_ascii_alphanumeric() {
                return None;
            }
            let slot = Self::slot(&b[..Self::KEY]);
            bits[slot >> 6] |= 1 << (slot & 63);
        }
        Some(WordStarts { bits })
    }

    /// The bit of these first bytes, ASCII case ignored: bit 5 of every byte is set, which
    /// makes capitals lowercase and leaves digits, the space and most punctuation as they are
    /// (a few punctuation bytes share a key with others, which only makes a false yes likelier).
    fn slot(first: &[u8]) -> usize {
        let key = u32::from_le_bytes([first[0], first[1], first[2], first[3]]) | 0x2020_2020;
        (key.wrapping_mul(0x9E37_79B1) >> (32 - Self::BITS)) as usize
    }

    /// Whether a keyword may occur in `text` (ASCII): whether a word of it starts with bytes
    /// whose bit is set. The word starts of each 64 bytes are found as a bit mask, without a
    /// branch per byte: one flag per byte (which the compiler makes vector code of), packed
    /// eight at a time by a multiplication; only the word starts are then looked up.
    fn may_occur(&self, text: &[u8]) -> bool {
        let Some(last) = text.len().checked_sub(Self::KEY) else {
            return false;
        };
        // Whether the byte before the current block is a letter or a digit.
        let mut carry = 0u64;
        for (block, chunk) in text.chunks(64).enumerate() {
            let mut flags = [0u8; 64];
            for (f, &c) in flags.iter_mut().zip(chunk) {
                *f = u8::from(is_letter(c) | is_digit(c));
            }
            let mut word = 0u64;
            for (k, eight) in flags.chunks_exact(8).enumerate() {
                let x = u64::from_le_bytes(eight.try_into().unwrap_or_default());
                // Bytes of 0 or 1 to bits: the product puts byte k's bit at bit 56 + k.
                word |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
            }
            let mut starts = word & !((word << 1) | carry);
            carry = word >> 63;
            while starts != 0 {
                let i = block * 64 + starts.trailing_zeros() as usize;
                if i > last {
                    return false;
                }
                let slot = Self::slot(&text[i..i + Self::KEY]);
                if self.bits[slot >> 6] & (1 << (slot & 63)) != 0 {
                    return true;
                }
                starts &= starts - 1;
            }
        }
        false
    }
}

/// The automaton: a full DFA up to [`DFA_MAX_BYTES`] of keyword text, a contiguous NFA beyond.
/// Held as the library's own types rather than behind its dynamic wrapper, so that the
/// search loops below are compiled for each.
#[derive(Clone, Debug)]
enum Engine {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

#[derive(Clone, Debug)]
struct Keyword {
    /// Whether the character before a match must not be alphanumeric.
    left: bool,
    /// Whether the character after a match must not be alphanumeric.
    right: bool,
    /// The keywords given that fold to this one: (position in the list, tag).
    owners: Vec<(usize, usize)>,
}

impl KeywordSet {
    /// Compiles `patterns`, each a keyword or phrase with the caller's tag.
    pub fn new(patterns: &[(String, usize)]) -> Result<KeywordSet, KeywordError> {
        if patterns.len() > MAX_KEYWORDS {
            return Err(KeywordError {
                pattern: MAX_KEYWORDS,
                reason: KeywordReason::TooMany {
                    limit: MAX_KEYWORDS,
                },
            });
        }
        let mut texts: Vec<String> = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (index, (pattern, tag)) in patterns.iter().enumerate() {
            let folded = fold(pattern);
            let text = folded.text().trim_matches(' ');
            let (Some(first), Some(last)) = (text.chars().next(), text.chars().next_back()) else {
                return Err(KeywordError {
                    pattern: index,
                    reason: KeywordReason::Empty,
                });
            };
            if text.len() > MAX_KEYWORD_BYTES {
                return Err(KeywordError {
                    pattern: index,
                    reason: KeywordReason::TooLong {
                        len: text.len(),
                        limit: MAX_KEYWORD_BYTES,
                    },
                });
            }
            match seen.entry(text.to_owned()) {
                Entry::Occupied(id) => keywords[*id.get()].owners.push((index, *tag)),
                Entry::Vacant(slot) => {
                    slot.insert(keywords.len());
                    texts.push(text.to_owned());
                    keywords.push(Keyword {
                        left: first.is_alphanumeric(),
                        right: last.is_alphanumeric(),
                        owners: vec![(index, *tag)],
                    });
                }
            }
        }
        // Standard semantics is the one that reports overlapping matches, so that "secret"
        // is found inside "top secret" as well.
        // A full DFA for a short list, a contiguous NFA beyond (see DFA_MAX_BYTES).
        let total: usize = texts.iter().map(String::len).sum();
        // ASCII case is ignored, so that texts that are their own folding but for the case of
        // ASCII letters are searched as they are (`fold_for_search`). No prefilter: with the
        // many keywords of a rules file there is none that helps, and without one the start
        // state is not special, which keeps the loop of `occurs` short.
        let built = if total <= DFA_MAX_BYTES {
            dfa::DFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .prefilter(false)
                .build(&texts)
                .map(Engine::Dfa)
        } else {
            nfa::contiguous::NFA::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .prefilter(false)
                .build(&texts)
                .map(Engine::Nfa)
        };
        let automaton = built.map_err(|e| KeywordError {
            pattern: patterns.len().saturating_sub(1),
            reason: KeywordReason::Build(e.to_string()),
        })?;
        let starts = WordStarts::new(&texts);
        Ok(KeywordSet {
            automaton,
            keywords,
            texts,
            starts,
        })
    }

    /// The distinct keywords, folded, as the automaton holds them.
    pub fn folded_keywords(&self) -> impl Iterator<Item = &str> {
        self.texts.iter().map(String::as_str)
    }

    /// Every keyword found in `folded`, with its range in the original text, ordered by
    /// position then by keyword. Keywords may overlap one another; the occurrences of one
    /// keyword do not overlap each other (the leftmost win), and each keyword reports at most
    /// [`MAX_HITS_PER_PATTERN`] of them, so a message flooding one keyword cannot hide another.
    pub fn find(&self, folded: &Folded<'_>) -> Vec<KeywordHit> {
        match &self.automaton {
            Engine::Dfa(a) => self.find_with(a, folded),
            Engine::Nfa(a) => self.find_with(a, folded),
        }
    }

    fn find_with<A: Automaton>(&self, automaton: &A, folded: &Folded<'_>) -> Vec<KeywordHit> {
        let text = folded.text();
        // Most texts hold no keyword: a look at the word starts, or else one plain walk, says
        // so, cheaper than the overlapping search.
        let quick_no = match &self.starts {
            Some(starts) if text.is_ascii() => !starts.may_occur(text.as_bytes()),
            _ => false,
        };
        if quick_no || !occurs(automaton, text.as_bytes()) {
            return Vec::new();
        }
        let mut hits = Vec::new();
        // Per keyword found: where its last accepted occurrence ended, and how many there were.
        let mut found: HashMap<usize, (usize, usize)> = HashMap::new();
        // Matches come in order of their end, so for one keyword also in order of their start.
        // An unanchored overlapping search of a Standard automaton cannot fail.
        let Ok(matches) = automaton.try_find_overlapping_iter(Input::new(text)) else {
            return Vec::new();
        };
        for m in matches {
            let id = m.pattern().as_usize();
            let keyword = &self.keywords[id];
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            if (keyword.left && before.is_some_and(char::is_alphanumeric))
                || (keyword.right && after.is_some_and(char::is_alphanumeric))
            {
                continue;
            }
            let (end, count) = found.entry(id).or_insert((0, 0));
            if m.start() < *end || *count >= MAX_HITS_PER_PATTERN {
                continue;
            }
            *end = m.end();
            *count += 1;
            let range = folded.original_range(m.range());
            for &(pattern, tag) in &keyword.owners {
                hits.push(KeywordHit {
                    tag,
                    pattern,
                    range: range.clone(),
                });
            }
        }
        hits.sort_by_key(|h| (h.range.start, h.range.end, h.pattern));
        hits
    }
}

/// Whether any keyword occurs in `text`, boundaries aside: the automaton walked one byte at a
/// time, stopping at the first match state. Without a prefilter only match states (and the
/// dead one, which an unanchored Standard automaton never enters) are special, so each byte
/// costs a table lookup and one comparison.
fn occurs<A: Automaton>(automaton: &A, text: &[u8]) -> bool {
    let Ok(mut state) = automaton.start_state(Anchored::No) else {
        return false;
    };
    for &byte in text {
        state = automaton.next_state(Anchored::No, state, byte);
        if automaton.is_special(state) && automaton.is_match(state) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::text::fold_for_search;
    use proptest::prelude::*;

    fn set(patterns: &[&str]) -> KeywordSet {
        let list: Vec<(String, usize)> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), 100 + i))
            .collect();
        KeywordSet::new(&list).unwrap()
    }

    /// The original text of each hit, with its keyword's position.
    fn found(set: &KeywordSet, text: &str) -> Vec<(usize, String)> {
        set.find(&fold(text))
            .into_iter()
            .map(|h| {
                assert_eq!(h.tag, 100 + h.pattern);
                (h.pattern, text[h.range].to_string())
            })
            .collect()
    }

    fn pairs(list: &[(usize, &str)]) -> Vec<(usize, String)> {
        list.iter().map(|&(i, s)| (i, s.to_string())).collect()
    }

    #[test]
    fn case_accents_and_white_space_are_ignored() {
        let s = set(&["top  secret", "élève", "Ｃｏｎｆｉｄｅｎｔｉａｌ"]);
        assert_eq!(
            found(&s, "TOP\nSecret: the ELEVE is confidential"),
            pairs(&[(0, "TOP\nSecret"), (1, "ELEVE"), (2, "confidential")])
        );
        assert_eq!(
            found(&s, "tôp\u{a0}\u{a0}sécrèt"),
            pairs(&[(0, "tôp\u{a0}\u{a0}sécrèt")])
        );
    }

    #[test]
    fn word_boundaries() {
        let s = set(&["secret", "#leak", "c++", "$$$"]);
        assert_eq!(
            found(&s, "secretary secrets unsecret secret2 2secret"),
            vec![]
        );
        assert_eq!(
            found(&s, "(secret), secret. «secret»"),
            pairs(&[(0, "secret"), (0, "secret"), (0, "secret")])
        );
        // Accents are folded before boundaries are looked at: "secrété" is a longer word.
        assert_eq!(found(&s, "secrété sécret"), pairs(&[(0, "sécret")]));
        // Non-alphanumeric ends need no boundary on their side.
        assert_eq!(
            found(&s, "x#leak c++11 a$$$b"),
            pairs(&[(1, "#leak"), (2, "c++"), (3, "$$$")])
        );
        assert_eq!(found(&s, "abc++"), vec![]);
    }

    #[test]
    fn overlapping_keywords_are_all_reported() {
        let s = set(&["secret", "top secret", "top", "secret plan"]);
        assert_eq!(
            found(&s, "the top secret plan"),
            pairs(&[
                (2, "top"),
                (1, "top secret"),
                (0, "secret"),
                (3, "secret plan")
            ])
        );
    }

    #[test]
    fn occurrences_of_one_keyword_do_not_overlap() {
        let s = set(&["a-a", "a"]);
        assert_eq!(
            found(&s, "a-a-a"),
            pairs(&[(1, "a"), (0, "a-a"), (1, "a"), (1, "a")])
        );
    }

    #[test]
    fn duplicates_after_folding_each_report() {
        let s = KeywordSet::new(&[("Secret".into(), 7), ("SECRET ".into(), 9)]).unwrap();
        let hits = s.find(&fold("a secret"));
        assert_eq!(
            hits,
            vec![
                KeywordHit {
                    tag: 7,
                    pattern: 0,
                    range: 2..8
                },
                KeywordHit {
                    tag: 9,
                    pattern: 1,
                    range: 2..8
                },
            ]
        );
    }

    #[test]
    fn refused_keywords_name_their_position() {
        let list = |v: &[&str]| v.iter().map(|p| (p.to_string(), 0)).collect::<Vec<_>>();
        assert_eq!(
            KeywordSet::new(&list(&["ok", " \n\u{200b}\u{301}"])).unwrap_err(),
            KeywordError {
                pattern: 1,
                reason: KeywordReason::Empty
            }
        );
        assert_eq!(
            KeywordSet::new(&list(&["", "ok"])).unwrap_err(),
            KeywordError {
                pattern: 0,
                reason: KeywordReason::Empty
            }
        );
        let long = "x".repeat(MAX_KEYWORD_BYTES + 1);
        assert_eq!(
            KeywordSet::new(&list(&["ok", "ok", &long])).unwrap_err(),
            KeywordError {
                pattern: 2,
                reason: KeywordReason::TooLong {
                    len: MAX_KEYWORD_BYTES + 1,
                    limit: MAX_KEYWORD_BYTES
                }
            }
        );
        // The limit is on the folded form: white space collapses, accents go.
        let accented = format!("{}  ", "é".repeat(MAX_KEYWORD_BYTES));
        assert!(KeywordSet::new(&list(&[&accented])).is_ok());
        let err = KeywordError {
            pattern: 2,
            reason: KeywordReason::TooLong {
                len: 300,
                limit: 256,
            },
        };
        assert_eq!(
            err.to_string(),
            "keyword 2: 300 bytes once folded; the limit is 256 bytes"
        );
        assert!(
            KeywordSet::new(&[])
                .unwrap()
                .find(&fold("anything"))
                .is_empty()
        );
    }

    #[test]
    fn hits_per_keyword_are_capped_but_every_keyword_reports() {
        let s = set(&["spam", "secret"]);
        let text = format!("{}secret", "spam ".repeat(MAX_HITS_PER_PATTERN + 10));
        let hits = found(&s, &text);
        assert_eq!(
            hits.iter().filter(|h| h.0 == 0).count(),
            MAX_HITS_PER_PATTERN
        );
        assert_eq!(hits.last(), Some(&(1, "secret".to_string())));
    }

    /// A deterministic pseudo-random word.
    fn word(seed: u64) -> String {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
        let len = 4 + (x % 6) as usize;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn ten_thousand_keywords_on_a_64_kib_message() {
        let list: Vec<(String, usize)> = (0..10_000).map(|i| (word(i), i as usize)).collect();
        let s = KeywordSet::new(&list).unwrap();
        let mut text = String::new();
        let mut planted = Vec::new();
        let mut i = 0u64;
        while text.len() < 64 * 1024 {
            if i.is_multiple_of(97) {
                let w = word(i % 10_000).to_uppercase();
                planted.push(text.len()..text.len() + w.len());
                text.push_str(&w);
            } else {
                text.push_str(&word(1_000_000 + i));
            }
            text.push_str(if i.is_multiple_of(11) { ",\n" } else { " " });
            i += 1;
        }
        let hits = s.find(&fold(&text));
        for range in &planted {
            assert!(
                hits.iter().any(|h| h.range == *range),
                "{range:?} not found"
            );
        }
        for h in &hits {
            assert_eq!(fold(&text[h.range.clone()]).text(), list[h.pattern].0);
        }
    }

    /// What `find` should report, by brute force over the folded text.
    fn naive(patterns: &[String], text: &str) -> Vec<(usize, Range<usize>)> {
        let folded = fold(text);
        let t = folded.text();
        let mut out = Vec::new();
        for (index, p) in patterns.iter().enumerate() {
            let p = fold(p).text().trim_matches(' ').to_string();
            let mut end = 0;
            for start in (0..t.len()).filter(|&i| t.is_char_boundary(i)) {
                if start < end || !t[start..].starts_with(&p) {
                    continue;
                }
                let before = t[..start].chars().next_back();
                let after = t[start + p.len()..].chars().next();
                let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                if (p.starts_with(char::is_alphanumeric) && alnum(before))
                    || (p.ends_with(char::is_alphanumeric) && alnum(after))
                {
                    continue;
                }
                end = start + p.len();
                out.push((index, folded.original_range(start..end)));
            }
        }
        out.sort_by_key(|(i, r)| (r.start, r.end, *i));
        out
    }

    #[test]
    fn word_starts_at_every_offset() {
        let s = set(&["secret plan", "1234 go"]);
        assert!(s.starts.is_some());
        for at in 0..140 {
            for (glue, found) in [(".", true), ("a", false)] {
                let text = format!("{}Secret plan 1234 GO", glue.repeat(at));
                let hits = s.find(&fold_for_search(&text));
                let expected = if found || at == 0 { 2 } else { 1 };
                assert_eq!(hits.len(), expected, "{text:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_brute_force(
            patterns in prop::collection::vec("[abAÉé -]{1,5}", 1..6),
            text in "[abAÉé \n.-]{0,40}",
        ) {
            let list: Vec<(String, usize)> =
                patterns.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
            let Ok(s) = KeywordSet::new(&list) else {
                // Only keywords made of white space are refused here.
                prop_assert!(patterns.iter().any(|p| p.trim().is_empty()));
                return Ok(());
            };
            let got: Vec<(usize, Range<usize>)> =
                s.find(&fold(&text)).into_iter().map(|h| (h.pattern, h.range)).collect();
            prop_assert_eq!(got, naive(&patterns, &text));
        }

        #[test]
        fn the_original_is_searched_like_its_folding(
            patterns in prop::collection::vec("[abAB -]{1,5}", 1..6),
            text in "[abAB .\n-]{0,40}",
        ) {
            let list: Vec<(String, usize)> =
                patterns.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
            let Ok(s) = KeywordSet::new(&list) else {
                return Ok(());
            };
            prop_assert_eq!(s.find(&fold_for_search(&text)), s.find(&fold(&text)));
        }

        #[test]
        fn word_starts_hide_no_keyword(
            patterns in prop::collection::vec("[a-d1][a-d ]{3,6}", 1..6),
            text in "([a-dA-D1 ,.-]|xx){0,100}",
        ) {
            let list: Vec<(String, usize)> =
                patterns.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
            let s = KeywordSet::new(&list).unwrap();
            let folded: Vec<String> = s.folded_keywords().map(str::to_owned).collect();
            prop_assert_eq!(s.starts.is_some(), folded.iter().all(|k| k.len() >= 4));
            let got: Vec<(usize, Range<usize>)> = s
                .find(&fold_for_search(&text))
                .into_iter()
                .map(|h| (h.pattern, h.range))
                .collect();
            prop_assert_eq!(got, naive(&patterns, &text));
        }

        #[test]
        fn a_planted_keyword_is_found(
            before in "[0-9]{0,6}", keyword in "[a-zé]{1,6}( [a-z]{1,4})?", after in "[0-9]{0,6}",
            sep in prop::sample::select(vec![" ", "\n", ". ", " (", "\u{a0}"]),
        ) {
            let text = format!("{before}{sep}{}{sep}{after}", keyword.to_uppercase());
            let s = KeywordSet::new(&[(keyword.clone(), 0)]).unwrap();
            let start = before.len() + sep.len();
            let range = start..start + keyword.to_uppercase().len();
            prop_assert!(s.find(&fold(&text)).iter().any(|h| h.range == range));
        }
    }
}
