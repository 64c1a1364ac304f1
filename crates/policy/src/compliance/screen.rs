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
//! and, for the keywords, one expression that matches wherever an ASCII keyword may occur
//! ([`keyword_alternation`]: ignoring ASCII case; the keywords themselves for a short list, the
//! first words of a long one) with one that matches wherever the text is not plain
//! ([`NOT_PLAIN`]). A keyword inside a longer word, the first word of a phrase without the rest
//! or sixteen digits that fail the Luhn check pass the screen, and are then refused by the scan
//! that knows better.
//!
//! - The screen says no: no pattern matches the text, no detector can find anything in it, and
//!   if the screen holds the keywords, the text is plain and holds none. Those scans are
//!   skipped.
//! - The screen says yes: the scans run as they would without it.
//!
//! The set is one lazy DFA of the `regex-automata` crate, searched in time linear in the
//! message; a text of some length is walked as two halves side by side ([`Screen::passes`]).
//! Keywords join it only while they, or their first words, are few
//! ([`SCREEN_KEYWORD_BYTES`]). Which expressions it
//! holds is the caller's choice (the [`engine`](super::engine) makes one when the screen stands
//! for at least two scans; for one, that scan's own first look is as quick).
//!
//! [`detect::CARD_SHAPE`]: super::detect::CARD_SHAPE

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use regex_automata::Input;
use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;

use super::patterns::{SET_DFA_LIMIT, SET_SIZE_LIMIT};

/// The most keyword text (bytes, once folded) the screen takes in, as whole keywords or as their
/// first words. A long list makes the lazy DFA's states many and its table large, and walking it
/// then misses the processor's caches (see the keyword automaton's `DFA_MAX_BYTES`): a list
/// whose first words are longer is left to the keyword scan's compact automaton.
pub const SCREEN_KEYWORD_BYTES: usize = 2 * 1024;

/// Matches wherever a text is not plain: a byte beyond ASCII, white space other than the space,
/// two spaces in a row (the texts [`fold_for_search`](super::text::fold_for_search) folds). A
/// screen that holds it and refuses a text says that the text is plain, without another look.
pub const NOT_PLAIN: &str = r"[^\x00-\x7F]|[\t\n\x0B\x0C\r]|  ";

/// Regular expressions searched together (see the module documentation).
///
/// The set is one lazy DFA, searched directly rather than through the `regex` crate's set,
/// which would first pick an engine and take a cache of DFA states from a shared pool for every
/// search: here each thread keeps the cache of the screen it used last. Only whether something
/// matches is asked, so the search stops at the first match.
#[derive(Clone, Debug)]
pub struct Screen {
    dfa: Arc<DFA>,
    /// Tells this screen's cache from another one's on a thread ([`CACHE`]).
    id: u64,
}

/// Numbers the screens, for [`CACHE`].
static SCREENS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The states the lazy DFA of the screen last searched on this thread has built, with that
    /// screen's id and the start states kept. One screen is in force at a time, so a thread
    /// rarely builds a cache twice.
    static CACHE: RefCell<Option<(u64, Cache, Starts)>> = const { RefCell::new(None) };
}

/// The start states of the walks of [`Screen::passes`] that are the same for every text: at
/// the start of a text, and after a space. Kept while the cache has not been cleared since
/// (a clear makes every state id mean nothing).
#[derive(Default)]
struct Starts {
    /// The cache's clear count when these were found.
    clears: usize,
    text: Option<LazyStateID>,
    after_space: Option<LazyStateID>,
}

/// Texts at least this long are walked as two halves side by side ([`Screen::passes`]).
const SPLIT_MIN: usize = 48;

/// How many bytes into the second half the walk of the first half goes looking for the state
/// the walk of the second half was in, before it goes on to the end without looking. The walks
/// meet at the first byte where no expression is partly matched, which in a chat text comes
/// within a word.
const MEET_WITHIN: usize = 16;

/// Where a step of a walk of the lazy DFA leads.
enum Next {
    /// An ordinary state.
    State(LazyStateID),
    /// An expression matched.
    Match,
    /// The DFA gave up (a byte beyond ASCII with a Unicode `\b` in the set, or a cache that
    /// keeps filling up).
    GaveUp,
    /// The states held so far mean nothing any more (the cache was cleared to make room), or
    /// the walk reached a dead state: the text is walked again whole.
    Again,
}

impl Screen {
    /// One set of `expressions`, each already accepted alone. `None` when the set is too large
    /// for the size limits of the pattern set.
    pub fn new<'a>(expressions: impl IntoIterator<Item = &'a str>) -> Option<Screen> {
        Screen::with_cache(expressions, SET_DFA_LIMIT)
    }

    /// [`Screen::new`] with room for `cache_bytes` of DFA states per thread.
    fn with_cache<'a>(
        expressions: impl IntoIterator<Item = &'a str>,
        cache_bytes: usize,
    ) -> Option<Screen> {
        let expressions: Vec<&str> = expressions.into_iter().collect();
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    // `\b` is Unicode's: the DFA gives up on a byte beyond ASCII, and the text
                    // then passes (see `passes`).
                    .unicode_word_boundary(true)
                    .cache_capacity(cache_bytes),
            )
            .thompson(
                thompson::Config::new()
                    .nfa_size_limit(Some(SET_SIZE_LIMIT))
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_many(&expressions)
            .ok()?;
        Some(Screen {
            dfa: Arc::new(dfa),
            id: SCREENS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Whether any of the expressions may match `text`: true when one does, and when the DFA
    /// gave up (a byte beyond ASCII with a Unicode `\b` in the set), since the screen may let
    /// through more than matches, never less.
    ///
    /// A walk of a DFA is a chain of table reads, each waiting for the one before, so the
    /// processor mostly waits. A text of [`SPLIT_MIN`] bytes or more is walked as two halves
    /// at once, two chains that it can follow side by side: the first from the start of the
    /// text, the second from a cut near the middle ([`middle_of`]), with the start state of the
    /// unanchored search that finds whatever starts there or later. A match that ends in the
    /// second half but starts in the first is the first walk's to find, so when the second
    /// walk is done, the first goes on past the cut until it is in the state the second one
    /// was in at the same byte: from
    /// there on the two would read the same, and the second walk has read it. That meeting
    /// comes at the first byte where no expression is partly matched; when it has not come
    /// within [`MEET_WITHIN`] bytes, the first walk reads on to the end.
    pub fn passes(&self, text: &str) -> bool {
        CACHE.with_borrow_mut(|slot| {
            let (_, cache, starts) = match slot {
                Some(kept) if kept.0 == self.id => kept,
                _ => slot.insert((self.id, self.dfa.create_cache(), Starts::default())),
            };
            let text = text.as_bytes();
            let halves = if text.len() >= SPLIT_MIN {
                self.walk_halves(cache, starts, text)
            } else {
                Next::Again
            };
            match halves {
                Next::Match | Next::GaveUp => true,
                // The walks met, or ended, without a match.
                Next::State(_) => false,
                Next::Again => self.walk(cache, text).unwrap_or(true),
            }
        })
    }

    /// The lazy DFA's search of `text`, stopping at the first match. `None` when it gave up.
    fn walk(&self, cache: &mut Cache, text: &[u8]) -> Option<bool> {
        let input = Input::new(text).earliest(true);
        self.dfa
            .try_search_fwd(cache, &input)
            .ok()
            .map(|m| m.is_some())
    }

    /// The two walks of [`Screen::passes`]: [`Next::State`] when neither found a match.
    fn walk_halves(&self, cache: &mut Cache, starts: &mut Starts, text: &[u8]) -> Next {
        let clears = cache.clear_count();
        if starts.clears != clears {
            *starts = Starts {
                clears,
                ..Starts::default()
            };
        }
        let middle = middle_of(text);
        let (first, second) = text.split_at(middle);
        let mut not_kept = None;
        let kept = if first.last() == Some(&b' ') {
            &mut starts.after_space
        } else {
            &mut not_kept
        };
        let (mut a, from_middle) = match (
            self.start(cache, text, 0, &mut starts.text),
            self.start(cache, text, middle, kept),
        ) {
            (Next::State(a), Next::State(b)) => (a, b),
            (Next::GaveUp, _) | (_, Next::GaveUp) => return Next::GaveUp,
            // Each start that finds its state returns `Again` when the cache was cleared.
            _ => return Next::Again,
        };
        let mut b = from_middle;
        // The second walk's state after each of its first bytes, where the first walk looks
        // for it.
        let mut seen = [from_middle; MEET_WITHIN];
        macro_rules! step {
            ($state:ident, $byte:expr) => {
                match self.next(cache, $state, $byte, clears) {
                    Next::State(s) => $state = s,
                    other => return other,
                }
            };
        }
        // `second` is as long as `first` or longer. The first bytes are read noting the
        // second walk's states, the others without.
        let noted = MEET_WITHIN.min(first.len());
        let mut i = 0;
        while i < first.len() {
            let end = if i < noted { noted } else { first.len() };
            let halves = (&first[..end], &second[..end]);
            i += if i < noted {
                self.walk_pair::<true>(cache, (&mut a, &mut b), halves, i, &mut seen)
            } else {
                self.walk_pair::<false>(cache, (&mut a, &mut b), halves, i, &mut seen)
            };
            if i == end {
                continue;
            }
            // One of the two steps at byte `i` is to a tagged state.
            step!(a, first[i]);
            step!(b, second[i]);
            if let Some(slot) = seen.get_mut(i) {
                *slot = b;
            }
            i += 1;
        }
        for &y in &second[first.len()..] {
            step!(b, y);
        }
        match self.end(cache, b, clears) {
            Next::State(_) => {}
            other => return other,
        }
        if a == from_middle {
            return Next::State(a);
        }
        for (j, &y) in second.iter().enumerate() {
            step!(a, y);
            if seen.get(j) == Some(&a) {
                return Next::State(a);
            }
        }
        self.end(cache, a, clears)
    }

    /// The start state of an unanchored search from byte `at` of `text`: the one `kept`, or
    /// found and then kept there.
    fn start(
        &self,
        cache: &mut Cache,
        text: &[u8],
        at: usize,
        kept: &mut Option<LazyStateID>,
    ) -> Next {
        if let Some(s) = *kept {
            return Next::State(s);
        }
        let clears = cache.clear_count();
        match self
            .dfa
            .start_state_forward(cache, &Input::new(text).range(at..))
        {
            // A byte beyond ASCII before `at`, with a Unicode `\b` in the set.
            Err(_) => Next::GaveUp,
            Ok(s) if s.is_tagged() || cache.clear_count() != clears => Next::Again,
            Ok(s) => {
                *kept = Some(s);
                Next::State(s)
            }
        }
    }

    /// The two walks of [`Screen::walk_halves`] from byte `from` of each half to the end of
    /// the shorter, side by side, while both steps of a byte lead to ordinary states (with
    /// `NOTE`, noting the second walk's states in `seen`): how many bytes of each were read.
    /// The cache is only read here, so the compiler keeps its table's address and both states
    /// in registers for the whole loop.
    #[inline(always)]
    fn walk_pair<const NOTE: bool>(
        &self,
        cache: &Cache,
        (a, b): (&mut LazyStateID, &mut LazyStateID),
        (first, second): (&[u8], &[u8]),
        from: usize,
        seen: &mut [LazyStateID; MEET_WITHIN],
    ) -> usize {
        let pairs = first[from..].iter().zip(&second[from..]);
        let mut read = 0;
        for (&x, &y) in pairs {
            let next_a = self.dfa.next_state_untagged(cache, *a, x);
            let next_b = self.dfa.next_state_untagged(cache, *b, y);
            if next_a.is_tagged() | next_b.is_tagged() {
                break;
            }
            *a = next_a;
            *b = next_b;
            if NOTE && let Some(slot) = seen.get_mut(from + read) {
                *slot = next_b;
            }
            read += 1;
        }
        read
    }

    /// One step of a walk from `state`, which is not tagged, on `byte`.
    #[inline(always)]
    fn next(&self, cache: &mut Cache, state: LazyStateID, byte: u8, clears: usize) -> Next {
        let next = self.dfa.next_state_untagged(cache, state, byte);
        if next.is_tagged() {
            return self.next_tagged(cache, state, byte, clears);
        }
        Next::State(next)
    }

    /// A step that leads to a state not built yet, or to a match, a dead state or the DFA
    /// giving up.
    #[cold]
    #[inline(never)]
    fn next_tagged(&self, cache: &mut Cache, state: LazyStateID, byte: u8, clears: usize) -> Next {
        match self.dfa.next_state(cache, state, byte) {
            Err(_) => Next::GaveUp,
            Ok(_) if cache.clear_count() != clears => Next::Again,
            Ok(s) if s.is_match() => Next::Match,
            Ok(s) if s.is_quit() => Next::GaveUp,
            Ok(s) if s.is_tagged() => Next::Again,
            Ok(s) => Next::State(s),
        }
    }

    /// The end of the text after `state` (matches are seen a byte late, so the end is a step
    /// too): [`Next::State`] when nothing matched.
    fn end(&self, cache: &mut Cache, state: LazyStateID, clears: usize) -> Next {
        match self.dfa.next_eoi_state(cache, state) {
            Err(_) => Next::GaveUp,
            Ok(s) if s.is_match() => Next::Match,
            Ok(_) if cache.clear_count() != clears => Next::Again,
            Ok(s) => Next::State(s),
        }
    }
}

/// Where the second walk of [`Screen::passes`] starts in `text` (of [`SPLIT_MIN`] bytes or
/// more): just after the last space of the [`MEET_WITHIN`] bytes before the half, so that its
/// start state is the one kept for that ([`Starts`]) and the first walk, at a word's start
/// there too, often meets it at once; at the half when there is no space there. Never past the
/// half: the first part is the shorter.
fn middle_of(text: &[u8]) -> usize {
    let half = text.len() / 2;
    let from = half - MEET_WITHIN;
    text[from..half]
        .iter()
        .rposition(|&b| b == b' ')
        .map_or(half, |i| from + i + 1)
}

/// One regular expression that matches wherever one of the `keywords` (folded) whose folding
/// is ASCII may occur in a plain text, ignoring ASCII case. `None` when no keyword is ASCII, or
/// when even their first words are more than [`SCREEN_KEYWORD_BYTES`].
///
/// Up to [`SCREEN_KEYWORD_BYTES`] of keywords, the keywords themselves, without word
/// boundaries. Beyond, their first words as whole words ([`first_words`]): a long list is
/// mostly phrases that share few first words (`insider trading`, `insider dealing`…), and
/// those make a small automaton where the phrases would make a large one.
pub fn keyword_alternation<'a>(keywords: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let keywords: Vec<&str> = keywords.into_iter().filter(|k| k.is_ascii()).collect();
    let bytes: usize = keywords.iter().map(|k| k.len()).sum();
    if keywords.is_empty() {
        return None;
    }
    if bytes <= SCREEN_KEYWORD_BYTES {
        return Some(format!("(?i-u:{})", trie(&keywords, Ends::Prefix)));
    }
    first_words(&keywords)
}

/// The bytes around a word: a word boundary of the keyword scan is a character that is not
/// alphanumeric, or the end of the text, and in a plain text such a character is one of
/// these. (Not the expression's `\b`, for which `_` is a word character.)
const NOT_ALNUM: &str = r"[\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]";

/// The expression of [`keyword_alternation`] for a long list (ASCII keywords). A keyword that
/// starts with a letter or a digit occurs in a plain text only at a word start, where the
/// text's word (its letters and digits up to the next other character or the end) is the
/// keyword's first word, ignoring ASCII case: if the keyword goes on after its first word, the
/// text goes on with the same character, which is not alphanumeric; if not, the word boundary
/// the keyword needs at its end says the text's word ends there too. So the expression
/// matches each first word between two boundaries, and each keyword that starts otherwise
/// (`#secret`, `$$$`) anywhere. `None` when those are more than [`SCREEN_KEYWORD_BYTES`].
fn first_words(keywords: &[&str]) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut anywhere: Vec<&str> = Vec::new();
    for k in keywords {
        let end = k
            .bytes()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(k.len());
        if end == 0 {
            anywhere.push(k);
        } else {
            words.push(&k[..end]);
        }
    }
    words.sort_unstable_by_key(|w| w.to_ascii_lowercase());
    words.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    let bytes: usize = words.iter().chain(&anywhere).map(|k| k.len()).sum();
    if bytes > SCREEN_KEYWORD_BYTES {
        return None;
    }
    let mut parts = Vec::new();
    if !words.is_empty() {
        parts.push(format!(
            "(?:^|{NOT_ALNUM})(?i-u:{})(?:{NOT_ALNUM}|$)",
            trie(&words, Ends::Word)
        ));
    }
    if !anywhere.is_empty() {
        parts.push(format!("(?i-u:{})", trie(&anywhere, Ends::Prefix)));
    }
    Some(parts.join("|"))
}

/// What the end of a word in a [`trie`] stands for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// The word occurs: the longer words it starts are left out, since wherever one of them
    /// occurs so does it, and only whether something occurs matters here.
    Prefix,
    /// The word ends there: a longer word it starts is another word.
    Word,
}

/// `words` (ASCII) as one alternation, ignoring case, written as their trie: `to(?:p
/// secret|ken)`; with [`Ends::Word`], a word that another one starts with makes the rest
/// optional: `leak(?:ed)?`. The regular-expression compiler lays out a plain alternation of
/// literals as a trie itself, but not once case is ignored: each letter is then a class, and an
/// alternation of a thousand class sequences puts a thousand states in every state of the lazy
/// DFA, which makes each new one slow to build. Written as a trie, a state holds the branches
/// of one node.
fn trie(words: &[&str], ends: Ends) -> String {
    #[derive(Default)]
    struct Node {
        /// By byte, lowercase: the branches stay sorted, so the same words give the same
        /// expression.
        next: std::collections::BTreeMap<u8, Node>,
        end: bool,
    }
    fn write(node: &Node, out: &mut String) {
        if node.next.is_empty() {
            return;
        }
        // A node that ends a word and goes on: the rest is optional.
        let group = node.next.len() > 1 || node.end;
        if group {
            out.push_str("(?:");
        }
        for (n, (byte, child)) in node.next.iter().enumerate() {
            if n > 0 {
                out.push('|');
            }
            out.push_str(&regex::escape(char::from(*byte).encode_utf8(&mut [0; 4])));
            write(child, out);
        }
        if group {
            out.push(')');
            if node.end {
                out.push('?');
            }
        }
    }
    let mut root = Node::default();
    for w in words {
        let mut node = &mut root;
        for b in w.bytes() {
            if node.end && ends == Ends::Prefix {
                break;
            }
            node = node.next.entry(b.to_ascii_lowercase()).or_default();
        }
        node.end = true;
        if ends == Ends::Prefix {
            node.next.clear();
        }
    }
    let mut out = String::new();
    write(&root, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::text::fold_for_search;
    use crate::compliance::{KeywordSet, PatternSet};
    use proptest::prelude::*;
    use std::ops::Range;

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
    fn a_walk_that_gives_up_passes() {
        // Unicode's `\b` makes the DFA give up on a byte beyond ASCII.
        let s = Screen::new([r"\bzz\b"]).unwrap();
        assert!(!s.passes("abc zzz"));
        assert!(s.passes("abc zz."));
        assert!(s.passes("élève"));
        // Two screens used in turn on one thread each keep their own answers.
        let t = Screen::new(["abc"]).unwrap();
        assert!(t.passes("abc zzz"));
        assert!(!s.passes("abc zzz"));
        assert!(!t.passes("ab"));
        // An expression that matches the empty text matches at its end.
        assert!(Screen::new(["x*"]).unwrap().passes(""));
    }

    #[test]
    fn a_match_across_the_middle_is_found() {
        let s = Screen::new([r"\bINV-\d{4}\b", r"a[^z]*z", r"(?i)pass\s*:\s*\S+"]).unwrap();
        // No space near the middle: the walks split it within the reference.
        let pad = "lunch,at,noon,see,you,there";
        for (yes, text) in [
            (true, format!("{pad},INV-2045,{pad}")),
            (false, format!("{pad},INV-20456,{pad}")),
            // A match that starts at the first byte and ends at the last: the first walk
            // never meets the second and reads to the end.
            (true, format!("a{}z", "b".repeat(100))),
            (false, format!("a{}", "b".repeat(100))),
            (true, format!("{pad}PASS: {pad}")),
            // Beyond ASCII in the second half: the DFA gives up, the text passes.
            (true, format!("{pad} {pad} élève")),
        ] {
            assert!(text.len() >= SPLIT_MIN);
            if text.contains("INV") {
                let middle = middle_of(text.as_bytes());
                assert!(text[..middle].ends_with(",INV-") && text[middle..].starts_with("20"));
            }
            assert_eq!(s.passes(&text), yes, "{text:?}");
        }
    }

    #[test]
    fn a_walk_from_inside_a_word_knows_it() {
        let s = Screen::new([r"\bINV-\d{4}\b", NOT_PLAIN]).unwrap();
        // First a text cut after a space, whose start state is kept for the next such.
        let spaced = "lunch at noon is fine with me, see you at the usual place then";
        assert_eq!(spaced.as_bytes()[middle_of(spaced.as_bytes()) - 1], b' ');
        assert!(!s.passes(spaced));
        let (text, at) = around_the_middle("lunch at noon", "xINV-2045", " see you", 0);
        assert_eq!(middle_of(text.as_bytes()), at.start + 1);
        assert!(!s.passes(&text), "{text:?}");
        let (text, _) = around_the_middle("lunch at noon", "-INV-2045", " see you", 0);
        assert!(s.passes(&text), "{text:?}");
    }

    #[test]
    fn keywords_are_written_as_their_trie() {
        assert_eq!(
            trie(
                &["top secret", "Token", "top", "c++", "to do"],
                Ends::Prefix
            ),
            r"(?:c\+\+|to(?: do|ken|p))"
        );
        assert_eq!(trie(&["ab", "abc", "a.b"], Ends::Prefix), r"a(?:\.b|b)");
        assert_eq!(
            trie(&["leak", "leaked", "leaks", "off"], Ends::Word),
            r"(?:leak(?:ed|s)?|off)"
        );
        assert_eq!(trie(&["ab", "abc"], Ends::Word), r"ab(?:c)?");
    }

    #[test]
    fn only_ascii_keywords_and_not_too_many() {
        // A keyword whose folding is not ASCII cannot occur in a plain text.
        assert_eq!(keyword_alternation(["élève"]), None);
        assert_eq!(
            keyword_alternation(["élève", "secret"]).as_deref(),
            Some("(?i-u:secret)")
        );
        // A long list of phrases: their first words.
        let many: Vec<String> = (0..1000).map(|i| format!("keyword {i}")).collect();
        assert_eq!(
            keyword_alternation(many.iter().map(String::as_str)),
            Some(format!("(?:^|{NOT_ALNUM})(?i-u:keyword)(?:{NOT_ALNUM}|$)"))
        );
        let some = keyword_alternation(many[..100].iter().map(String::as_str)).unwrap();
        assert!(Screen::new([some.as_str(), r"\d+"]).is_some());
        // A long list of words: too long even so.
        let words: Vec<String> = (0..1000).map(|i| format!("w{i:04}x")).collect();
        assert_eq!(keyword_alternation(words.iter().map(String::as_str)), None);
    }

    /// A list of phrases too long to be held whole (the ones given and fillers).
    fn long_list(keywords: &[&str]) -> Vec<String> {
        let mut list: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        list.extend((0..300).map(|i| format!("filler phrase {i}")));
        assert!(list.iter().map(String::len).sum::<usize>() > SCREEN_KEYWORD_BYTES);
        list
    }

    #[test]
    fn a_long_list_passes_the_first_words_between_boundaries() {
        let list = long_list(&["insider trading", "leak", "leaked plans", "#tag"]);
        let words = keyword_alternation(list.iter().map(String::as_str)).unwrap();
        let s = Screen::new([words.as_str()]).unwrap();
        for yes in [
            "Insider",
            "an insider deal",
            "x-insider.",
            "a_insider",
            "LEAKED!",
            "leak",
            "see #TAG",
            "x#tag",
            "filler",
        ] {
            assert!(s.passes(yes), "{yes:?}");
        }
        for no in [
            "insiders", "outsider", "leaks", "unleaked", "tag", "fill", "1leak",
        ] {
            assert!(!s.passes(no), "{no:?}");
        }
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

    /// Plain texts of keywords, their parts and neighbours, glued or apart.
    fn glued_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("Insider"),
                    Just("insider trading"),
                    Just("insiders"),
                    Just("leak"),
                    Just("LEAKED"),
                    Just("plans"),
                    Just("#tag"),
                    Just("tag"),
                    Just("filler phrase 12"),
                    Just("9"),
                ],
                prop_oneof![Just(""), Just(" "), Just("-"), Just("_"), Just("#")],
            ),
            0..8,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(w, sep)| format!("{w}{sep}"))
                .collect()
        })
    }

    /// Texts of words the screen of [`halves_agree_with_one_walk`] matches or nearly matches,
    /// of neighbours and fillers, some beyond ASCII.
    fn walked_text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("INV-2045".to_owned()),
                Just("INV-20".to_owned()),
                Just("4111 1111 1111 1111".to_owned()),
                Just("4111 1111".to_owned()),
                Just("pass: x".to_owned()),
                Just("pass".to_owned()),
                Just("insider".to_owned()),
                Just("leaked plans".to_owned()),
                Just("a@b".to_owned()),
                Just("z".to_owned()),
                Just("é".to_owned()),
                Just("  ".to_owned()),
                Just(" ".to_owned()),
                Just("-".to_owned()),
                "[a-y ]{1,12}",
                "[0-9]{1,4}",
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    /// Words that none of the expressions of [`halves_agree_with_one_walk`] can match, nor
    /// start to, apart by single spaces.
    fn clean_words() -> impl Strategy<Value = String> {
        proptest::collection::vec("[b-y]{1,8}", 0..8).prop_map(|w| w.join(" "))
    }

    /// The expressions of [`halves_agree_with_one_walk`].
    fn walked_expressions() -> Vec<String> {
        let words = long_list(&["insider trading", "leaked plans"]);
        vec![
            r"\bINV-\d{4}\b".to_owned(),
            r"(?i)\bpass\s*:\s*\S+".to_owned(),
            r"a[^z]*z".to_owned(),
            crate::compliance::detect::CARD_SHAPE.to_owned(),
            crate::compliance::detect::EMAIL_SHAPE.to_owned(),
            NOT_PLAIN.to_owned(),
            keyword_alternation(words.iter().map(String::as_str)).unwrap(),
        ]
    }

    /// `left`, `snippet`, `right`, with commas before or after so that the walks of
    /// [`Screen::passes`] split the text within `snippet` (of two bytes or more), after byte
    /// `k` of it (taken modulo) or after a space of it before that byte; and where `snippet`
    /// is. Commas before `snippet` keep the split from moving to a space of `left`.
    fn around_the_middle(
        left: &str,
        snippet: &str,
        right: &str,
        k: usize,
    ) -> (String, Range<usize>) {
        let left = format!("{left}{}", ",".repeat(MEET_WITHIN));
        let k = k % (snippet.len() - 1);
        let (l, n, r) = (left.len(), snippet.len(), right.len());
        // The text is cut in the middle: as many bytes before the cut as after it.
        let before = l + k + 1;
        let after = n - k - 1 + r;
        let pad_left = after.saturating_sub(before);
        let pad_right = before.saturating_sub(after);
        let text = format!(
            "{}{left}{snippet}{right}{}",
            ",".repeat(pad_left),
            ",".repeat(pad_right)
        );
        (text, pad_left + l..pad_left + l + n)
    }

    proptest! {
        /// Two halves walked side by side say what one walk of the whole text says, also with a
        /// cache so small that it is cleared in the middle of walks; among the texts, some whose
        /// middle falls within a word the expressions match.
        #[test]
        fn halves_agree_with_one_walk(
            text in walked_text(),
            left in clean_words(),
            snippet in prop_oneof![
                Just("INV-2045"),
                Just("4111 1111 1111 1111"),
                Just("pass: secret"),
                Just("insider trading"),
                Just("a@b"),
                Just("INV-20451"),
                // Cut after the `x`, the second walk starts inside a word: no `\b` there.
                Just("xINV-2045"),
            ],
            right in clean_words(),
            k in 0usize..20,
        ) {
            let expressions = walked_expressions();
            let (straddling, at) = around_the_middle(&left, snippet, &right, k);
            let middle = middle_of(straddling.as_bytes());
            prop_assert!(at.start < middle && middle < at.end);
            for text in [text, straddling] {
            for bytes in [SET_DFA_LIMIT, 20_000] {
                let s = Screen::with_cache(expressions.iter().map(String::as_str), bytes)
                    .expect("a screen");
                let mut cache = s.dfa.create_cache();
                let whole = s.walk(&mut cache, text.as_bytes()).unwrap_or(true);
                prop_assert_eq!(s.passes(&text), whole, "{:?} with {} bytes", text, bytes);
            }
            }
        }

        /// A plain text that the first words of a long list refuse holds none of its keywords.
        #[test]
        fn first_words_refuse_no_keyword(text in glued_text()) {
            let list = long_list(&["insider trading", "leak", "leaked plans", "#tag", "9 lives"]);
            let words = keyword_alternation(list.iter().map(String::as_str)).unwrap();
            let s = Screen::new([words.as_str()]).unwrap();
            let folded = fold_for_search(&text);
            prop_assert!(folded.is_original());
            if !s.passes(&text) {
                let k = KeywordSet::new(&list.iter().map(|k| (k.clone(), 0)).collect::<Vec<_>>()).unwrap();
                prop_assert!(k.find(&folded).is_empty(), "{:?}", text);
            }
        }

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
