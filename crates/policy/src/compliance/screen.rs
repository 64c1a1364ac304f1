//! The first look at a message: one pass over the text as written that tells whether any
//! pattern, keyword or detected datum may be in it, so that the commonest message, which holds
//! none, is read once instead of once per kind of scan.
//!
//! Patterns are matched on the text as written and keywords on its folding, so each has its own
//! scan ([`PatternSet`](super::PatternSet), [`KeywordSet`](super::KeywordSet)), and the
//! detectors have their own quick looks ([`Clues`](super::detect::Clues)). For the commonest
//! chat line the original and the folded text are the same but for the case of ASCII letters:
//! a text that [`fold_for_search`](super::text::fold_for_search) returns as it is (ASCII, single
//! spaces). In such a text a keyword whose folding is ASCII occurs exactly where it occurs
//! ignoring ASCII case, and a keyword whose folding is not ASCII cannot occur at all. So one
//! regular-expression set over the text as written finds everything those scans could find,
//! and a bit more, when it holds every pattern, the shapes the detectors start from
//! ([`detect::CARD_SHAPE`] and its neighbours: digits, an IBAN's start, `@`, a link's scheme),
//! and, for the keywords, one expression that matches wherever an ASCII keyword occurs
//! ([`keyword_alternation`]: ignoring ASCII case, without word boundaries) with one that
//! matches wherever the text is not plain ([`NOT_PLAIN`]). A keyword inside a longer word or
//! sixteen digits that fail the Luhn check pass the screen, and are then refused by the scan
//! that knows better.
//!
//! - The screen says no: no pattern matches the text, no detector can find anything in it, and
//!   if the screen holds the keywords, the text is plain and holds none. Those scans are
//!   skipped.
//! - The screen says yes: the scans run as they would without it.
//!
//! The set is the `regex` crate's, searched by its lazy DFA in time linear in the message.
//! Keywords join it only while they are few ([`SCREEN_KEYWORD_BYTES`]). Which expressions it
//! holds is the caller's choice (the [`engine`](super::engine) makes one when the screen stands
//! for at least two scans; for one, that scan's own first look is as quick).
//!
//! [`detect::CARD_SHAPE`]: super::detect::CARD_SHAPE

use regex::{RegexSet, RegexSetBuilder};

use super::patterns::{SET_DFA_LIMIT, SET_SIZE_LIMIT};

/// The most keyword text (bytes, once folded) the screen takes in. A long list makes the lazy
/// DFA's states many and its table large, and walking it then misses the processor's caches
/// (see the keyword automaton's `DFA_MAX_BYTES`): a long list is left to the keyword scan's
/// compact automaton.
pub const SCREEN_KEYWORD_BYTES: usize = 2 * 1024;

/// Matches wherever a text is not plain: a byte beyond ASCII, white space other than the space,
/// two spaces in a row (the texts [`fold_for_search`](super::text::fold_for_search) folds). A
/// screen that holds it and refuses a text says that the text is plain, without another look.
pub const NOT_PLAIN: &str = r"[^\x00-\x7F]|[\t\n\x0B\x0C\r]|  ";

/// Regular expressions searched together (see the module documentation).
#[derive(Clone, Debug)]
pub struct Screen {
    set: RegexSet,
}

impl Screen {
    /// One set of `expressions`, each already accepted alone. `None` when the set is too large
    /// for the size limits of the pattern set.
    pub fn new<'a>(expressions: impl IntoIterator<Item = &'a str>) -> Option<Screen> {
        RegexSetBuilder::new(expressions)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(SET_DFA_LIMIT)
            .build()
            .ok()
            .map(|set| Screen { set })
    }

    /// Whether any of the expressions matches `text`.
    pub fn passes(&self, text: &str) -> bool {
        self.set.is_match(text)
    }
}

/// One regular expression that matches wherever one of the `keywords` (folded) whose folding
/// is ASCII occurs, ignoring ASCII case. `None` when no keyword is ASCII, or when the ASCII ones
/// are more than [`SCREEN_KEYWORD_BYTES`].
pub fn keyword_alternation<'a>(keywords: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let keywords: Vec<&str> = keywords.into_iter().filter(|k| k.is_ascii()).collect();
    let bytes: usize = keywords.iter().map(|k| k.len()).sum();
    if keywords.is_empty() || bytes > SCREEN_KEYWORD_BYTES {
        return None;
    }
    Some(alternation(&keywords))
}

/// One regular expression that matches where any of `keywords` (ASCII) occurs, ignoring ASCII
/// case, written as their trie: `(?i-u:to(?:p secret|ken))`. The regular-expression compiler
/// lays out a plain alternation of literals as a trie itself, but not once case is ignored: each
/// letter is then a class, and an alternation of a thousand class sequences puts a thousand
/// states in every state of the lazy DFA, which makes each new one slow to build. Written as a
/// trie, a state holds the branches of one node. A keyword that another one starts with stands
/// for it: wherever the longer occurs, so does the shorter, and only whether something occurs
/// matters here.
fn alternation(keywords: &[&str]) -> String {
    #[derive(Default)]
    struct Node {
        /// By byte, lowercase: the branches stay sorted, so the same keywords give the same
        /// expression.
        next: std::collections::BTreeMap<u8, Node>,
        end: bool,
    }
    fn write(node: &Node, out: &mut String) {
        if node.end {
            return;
        }
        let branches = node.next.len();
        if branches > 1 {
            out.push_str("(?:");
        }
        for (n, (byte, child)) in node.next.iter().enumerate() {
            if n > 0 {
                out.push('|');
            }
            out.push_str(&regex::escape(char::from(*byte).encode_utf8(&mut [0; 4])));
            write(child, out);
        }
        if branches > 1 {
            out.push(')');
        }
    }
    let mut root = Node::default();
    for k in keywords {
        let mut node = &mut root;
        for b in k.bytes() {
            if node.end {
                break;
            }
            node = node.next.entry(b.to_ascii_lowercase()).or_default();
        }
        node.end = true;
        // Longer keywords already under it are covered by this one.
        node.next.clear();
    }
    let mut out = String::from("(?i-u:");
    write(&root, &mut out);
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::text::fold_for_search;
    use crate::compliance::{KeywordSet, PatternSet};
    use proptest::prelude::*;

    fn screen(patterns: &[&str], keywords: &[&str]) -> Screen {
        let words = keyword_alternation(keywords.iter().copied()).expect("ASCII keywords");
        Screen::new(patterns.iter().copied().chain([words.as_str()])).expect("a screen")
    }

    #[test]
    fn passes_what_a_pattern_or_a_keyword_could_match() {
        let s = screen(
            &[r"\bINV-\d{4}\b", r"(?i)\bpass(word)?\s*[:=]"],
            &["top secret", "c++", "eleve"],
        );
        assert!(s.passes("see INV-2045 please"));
        assert!(s.passes("Password: hunter2"));
        assert!(s.passes("it is TOP Secret"));
        assert!(s.passes("c++ again"));
        // Inside a longer word: passed, and left to the keyword scan to refuse.
        assert!(s.passes("topsecretary top secretary"));
        assert!(!s.passes("lunch at noon, the ELEV is broken"));
        assert!(!s.passes("inv-2045 is lowercase"));
    }

    #[test]
    fn keywords_are_written_as_their_trie() {
        assert_eq!(
            alternation(&["top secret", "Token", "top", "c++", "to do"]),
            r"(?i-u:(?:c\+\+|to(?: do|ken|p)))"
        );
        assert_eq!(alternation(&["ab", "abc", "a.b"]), r"(?i-u:a(?:\.b|b))");
    }

    #[test]
    fn only_ascii_keywords_and_not_too_many() {
        // A keyword whose folding is not ASCII cannot occur in a plain text.
        assert_eq!(keyword_alternation(["élève"]), None);
        assert_eq!(
            keyword_alternation(["élève", "secret"]).as_deref(),
            Some("(?i-u:secret)")
        );
        let many: Vec<String> = (0..1000).map(|i| format!("keyword {i}")).collect();
        assert_eq!(keyword_alternation(many.iter().map(String::as_str)), None);
        let some = keyword_alternation(many[..100].iter().map(String::as_str)).unwrap();
        assert!(Screen::new([some.as_str(), r"\d+"]).is_some());
    }

    /// Texts made of the letters, digits and punctuation the patterns and keywords below use,
    /// with single spaces only: plain texts.
    fn plain_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("AB"),
                Just("ab"),
                Just("ab-12"),
                Just("AB-1234"),
                Just("c++"),
                Just("Top"),
                Just("secret"),
                Just("x"),
                Just("-"),
                Just("1"),
            ],
            0..12,
        )
        .prop_map(|w| w.join(" "))
    }

    proptest! {
        /// The expression for texts that are not plain agrees with the folding.
        #[test]
        fn not_plain_is_what_folding_changes(text in "[a\\t\\n\\x0B\\x0C\\r \\x01é\u{a0}\u{2028}]{0,8}") {
            let s = Screen::new([NOT_PLAIN]).unwrap();
            prop_assert_eq!(s.passes(&text), !fold_for_search(&text).is_original(), "{:?}", text);
        }

        /// A plain text the screen refuses holds no pattern and no keyword.
        #[test]
        fn a_refused_plain_text_matches_nothing(text in plain_text()) {
            let patterns = [r"\bAB-\d{4}\b", r"(?i)x\s*1"];
            let keywords = ["top secret", "c++", "ab"];
            let s = screen(&patterns, &keywords);
            let folded = fold_for_search(&text);
            prop_assert!(folded.is_original());
            if !s.passes(&text) {
                let list = |items: &[&str]| -> Vec<(String, usize)> {
                    items.iter().map(|p| (p.to_string(), 0)).collect()
                };
                let p = PatternSet::new(&list(&patterns)).unwrap();
                let k = KeywordSet::new(&list(&keywords)).unwrap();
                prop_assert!(p.find(&text).is_empty());
                prop_assert!(k.find(&folded).is_empty());
            }
        }
    }
}
