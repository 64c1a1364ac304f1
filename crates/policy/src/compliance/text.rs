//! The searchable form of a message body, and the way back from it to the text as written.
//!
//! Folding is done one original character at a time, so the same word folds the same way
//! wherever it appears, and every folded byte comes from exactly one original character (or
//! one run of white space). Each character:
//!
//! - white space (Unicode `White_Space`): a run of it, whatever its length and kind, becomes
//!   one ASCII space;
//! - format characters (general category `Cf`: soft hyphen, zero-width space and joiners, bidi
//!   controls…) are dropped: they are invisible, and a rule must not be dodged by typing
//!   `se\u{AD}cret`;
//! - letters and digits are decomposed with their compatibility decomposition (UAX #15 NFKD),
//!   every other character with its canonical one (NFD). Compatibility decomposition turns
//!   ligatures (`ﬁ`), full-width and mathematical letters (`ＳＥＣＲＥＴ`, `𝐬𝐞𝐜𝐫𝐞𝐭`), circled
//!   and superscript digits into plain ones, which people use to get past word lists. It is
//!   not applied to symbols, because it would turn `™`, `℅` or `№` into letters glued to the
//!   word before them (`ACME™` would fold to `acmetm` and no longer match `acme`);
//! - each resulting character is lowercased (Unicode default case conversion, character by
//!   character; final sigma `ς` is folded to `σ` so that capitals and lowercase agree), and
//!   decomposed canonically again;
//! - non-spacing and enclosing marks (`Mn`, `Me`: accents, diacritics, variation selectors)
//!   are removed. Spacing marks (`Mc`) stay: in Indic scripts they are vowel signs, not
//!   accents.
//!
//! So `Élève ÇA` folds to `eleve ca`. A character that folds to nothing (a mark, a format
//! character) belongs to the character before it, so that a range covering a letter also
//! covers its accents.

use std::borrow::Cow;
use std::ops::Range;

use unicode_normalization::char::{decompose_canonical, decompose_compatible};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A message body folded for searching, with the map back to the original text.
///
/// [`fold`] always gives the folded text. [`fold_for_search`] gives, for the commonest chat
/// line (ASCII, words separated by single spaces), the original text itself, borrowed: it is
/// the folded text but for the case of ASCII letters, which searches that ignore ASCII case
/// (the keyword automaton) do not need changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded<'a> {
    text: Cow<'a, str>,
    /// Ordered, contiguous in the folded text, disjoint and increasing in the original. Empty
    /// when the text is the original (or empty): the map is the identity.
    segments: Vec<Segment>,
}

/// A stretch of folded text and the original bytes it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    /// Where it starts in the folded text; it ends where the next one starts.
    folded: usize,
    /// The original bytes, on character boundaries.
    start: usize,
    end: usize,
    /// The folded bytes match the original ones position by position: every character of the
    /// stretch folded to one character of the same UTF-8 length (`A` → `a`, `Ж` → `ж`, `\n` →
    /// ` `). Most text is made of such characters, so a long message keeps a short map.
    aligned: bool,
}

impl Folded<'_> {
    /// The folded text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is the original text itself, which [`fold_for_search`] gives for a plain
    /// text (ASCII, single spaces).
    pub fn is_original(&self) -> bool {
        matches!(self.text, Cow::Borrowed(_))
    }

    /// The byte range of the original text that the folded range `folded` came from: on
    /// character boundaries of the original, covering every original character that
    /// contributed to a byte of the range. Ends that fall inside a folded character are widened
    /// to that character; a range beyond the folded text is clamped to it, and a reversed one
    /// is read as empty. An empty range maps to the empty range at the start of the original
    /// character that folded range would begin with (the end of the text after the last one).
    pub fn original_range(&self, folded: Range<usize>) -> Range<usize> {
        let len = self.text.len();
        let a = self.text.floor_char_boundary(folded.start.min(len));
        let b = self.text.ceil_char_boundary(folded.end.clamp(a, len));
        if a == b {
            let at = self.position(a);
            return at..at;
        }
        if self.segments.is_empty() {
            return a..b;
        }
        let first = &self.segments[self.segment_at(a)];
        let last = &self.segments[self.segment_at(b - 1)];
        let start = if first.aligned {
            first.start + (a - first.folded)
        } else {
            first.start
        };
        let end = if last.aligned {
            last.start + (b - last.folded)
        } else {
            last.end
        };
        start..end
    }

    /// The index of the segment holding folded byte `at` (`at` < the folded length).
    fn segment_at(&self, at: usize) -> usize {
        // The first segment starts at 0, so the partition point is at least 1.
        self.segments.partition_point(|s| s.folded <= at) - 1
    }

    /// The original offset of the character at folded boundary `at`.
    fn position(&self, at: usize) -> usize {
        if self.segments.is_empty() {
            return at.min(self.text.len());
        }
        if at >= self.text.len() {
            return self.segments.last().map_or(0, |s| s.end);
        }
        let segment = &self.segments[self.segment_at(at)];
        if segment.aligned {
            segment.start + (at - segment.folded)
        } else {
            segment.start
        }
    }
}

/// Folds `original` for searching (see the module documentation).
pub fn fold(original: &str) -> Folded<'static> {
    if original.is_ascii() {
        fold_ascii(original)
    } else {
        fold_any(original)
    }
}

/// Like [`fold`], but ASCII letters may keep their case: for searches that ignore ASCII case.
/// ASCII text whose only white space is single spaces is its own folding up to case, and is
/// returned as it is, without a copy.
pub fn fold_for_search(original: &str) -> Folded<'_> {
    if is_plain(original.as_bytes()) {
        return Folded {
            text: Cow::Borrowed(original),
            segments: Vec::new(),
        };
    }
    fold(original)
}

/// No byte outside ASCII, no white space but the space, never two spaces in a row. Each byte is
/// looked at with its successor, without branches, in blocks of fixed size that the compiler
/// turns into vector operations; the answer is read once per block.
fn is_plain(b: &[u8]) -> bool {
    const BLOCK: usize = 32;
    let Some(&last) = b.last() else {
        return true;
    };
    let bad = |c: u8, d: u8| {
        u8::from((c >= 0x80) | (c.wrapping_sub(b'\t') < 5) | ((c == b' ') & (d == b' ')))
    };
    let n = b.len() - 1;
    let (this, next) = (&b[..n], &b[1..]);
    if n < BLOCK {
        return (0..n).fold(bad(last, 0), |acc, i| acc | bad(this[i], next[i])) == 0;
    }
    // Blocks from the start, and one more ending at the end (overlapping the one before it):
    // looking at a pair twice does not change the answer.
    let block = |at: usize| {
        let (x, y) = (&this[at..at + BLOCK], &next[at..at + BLOCK]);
        let mut found = 0u8;
        for i in 0..BLOCK {
            found |= bad(x[i], y[i]);
        }
        found == 0
    };
    bad(last, 0) == 0 && (0..n - BLOCK).step_by(BLOCK).all(block) && block(n - BLOCK)
}

/// [`fold_any`] for ASCII text, byte by byte, with the same result: letters lowercased, every
/// run of white space one space, one aligned segment per stretch between runs of two or more
/// white-space bytes (a single one is aligned with its space).
fn fold_ascii(original: &str) -> Folded<'static> {
    let b = original.as_bytes();
    let mut text = Vec::with_capacity(b.len());
    let mut segments = Vec::new();
    // The aligned stretch being written: where it starts in the folded and the original text.
    let mut stretch: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if !char::from(b[i]).is_whitespace() {
            stretch.get_or_insert((text.len(), i));
            text.push(b[i].to_ascii_lowercase());
            i += 1;
            continue;
        }
        let run = i;
        while i < b.len() && char::from(b[i]).is_whitespace() {
            i += 1;
        }
        if i - run == 1 {
            stretch.get_or_insert((text.len(), run));
        } else {
            if let Some((folded, start)) = stretch.take() {
                segments.push(Segment {
                    folded,
                    start,
                    end: run,
                    aligned: true,
                });
            }
            segments.push(Segment {
                folded: text.len(),
                start: run,
                end: i,
                aligned: false,
            });
        }
        text.push(b' ');
    }
    if let Some((folded, start)) = stretch {
        segments.push(Segment {
            folded,
            start,
            end: b.len(),
            aligned: true,
        });
    }
    Folded {
        // Only ASCII bytes were written.
        text: Cow::Owned(String::from_utf8(text).unwrap_or_default()),
        segments,
    }
}

/// Folds any text, one character at a time.
fn fold_any(original: &str) -> Folded<'static> {
    let mut builder = Builder {
        text: String::with_capacity(original.len()),
        segments: Vec::new(),
        space: None,
        scratch: String::new(),
    };
    for (start, c) in original.char_indices() {
        builder.push(start, c);
    }
    builder.flush_space();
    Folded {
        text: Cow::Owned(builder.text),
        segments: builder.segments,
    }
}

struct Builder {
    text: String,
    segments: Vec<Segment>,
    /// The white-space run not yet written: its original bytes, and whether it is one
    /// single-byte character (then its space is aligned with it).
    space: Option<(Range<usize>, bool)>,
    /// One character's folded form.
    scratch: String,
}

impl Builder {
    fn push(&mut self, start: usize, c: char) {
        let end = start + c.len_utf8();
        if c.is_whitespace() {
            match &mut self.space {
                Some((run, single)) => {
                    run.end = end;
                    *single = false;
                }
                None => self.space = Some((start..end, end - start == 1)),
            }
            return;
        }
        if c.is_ascii() {
            // Most text: one byte that folds to one byte, extending an aligned stretch. The
            // same as the general case below, without the round trip through `scratch`.
            if self.space.is_some() {
                self.flush_space();
            }
            let folded = self.text.len();
            self.text.push(c.to_ascii_lowercase());
            if let Some(last) = self.segments.last_mut()
                && last.aligned
                && last.end == start
            {
                last.end = end;
                return;
            }
            self.segments.push(Segment {
                folded,
                start,
                end,
                aligned: true,
            });
            return;
        }
        self.scratch.clear();
        fold_char(c, &mut self.scratch);
        if self.scratch.is_empty() {
            self.attach(end);
            return;
        }
        self.flush_space();
        let mut one = self.scratch.chars();
        let aligned =
            matches!((one.next(), one.next()), (Some(f), None) if f.len_utf8() == end - start);
        let folded = self.text.len();
        // White space produced by a decomposition (U+FDFA decomposes into words) must not
        // double a space already written.
        for f in self.scratch.chars() {
            if f == ' ' && self.text.ends_with(' ') {
                continue;
            }
            self.text.push(f);
        }
        if self.text.len() == folded {
            // Only a space that was already there: the character belongs to it.
            self.attach(end);
            return;
        }
        if aligned
            && let Some(last) = self.segments.last_mut()
            && last.aligned
            && last.end == start
        {
            last.end = end;
            return;
        }
        self.segments.push(Segment {
            folded,
            start,
            end,
            aligned,
        });
    }

    /// Gives the original bytes up to `end` of a character that folded to nothing to what
    /// comes before it: the pending white space, or the last segment.
    fn attach(&mut self, end: usize) {
        if let Some((run, single)) = &mut self.space {
            run.end = end;
            *single = false;
            return;
        }
        let Some(last) = self.segments.last_mut() else {
            // Nothing before it: it is left out of every range.
            return;
        };
        if !last.aligned {
            last.end = end;
            return;
        }
        // Split the last character off the aligned stretch, since it no longer folds to a
        // character of its own length.
        let width = self.text.chars().next_back().map_or(0, char::len_utf8);
        last.end -= width;
        let split = Segment {
            folded: self.text.len() - width,
            start: last.end,
            end,
            aligned: false,
        };
        if last.start == last.end {
            *last = split;
        } else {
            self.segments.push(split);
        }
    }

    fn flush_space(&mut self) {
        let Some((run, single)) = self.space.take() else {
            return;
        };
        if self.text.ends_with(' ') {
            // The character before folded to something ending in a space (U+FE7C decomposes
            // to a space and a mark): the run belongs to it.
            self.attach(run.end);
            return;
        }
        let folded = self.text.len();
        self.text.push(' ');
        if single
            && let Some(last) = self.segments.last_mut()
            && last.aligned
            && last.end == run.start
        {
            last.end = run.end;
            return;
        }
        self.segments.push(Segment {
            folded,
            start: run.start,
            end: run.end,
            aligned: single,
        });
    }
}

/// Appends the folded form of one non-white-space character to `out`.
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    if c.general_category() == GeneralCategory::Format {
        return;
    }
    let mut lower = |d: char| {
        for l in d.to_lowercase() {
            decompose_canonical(l, |e| {
                if !matches!(
                    e.general_category(),
                    GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
                ) {
                    out.push(match e {
                        'ς' => 'σ',
                        e if e.is_whitespace() => ' ',
                        e => e,
                    });
                }
            });
        }
    };
    if c.is_alphanumeric() {
        decompose_compatible(c, &mut lower);
    } else {
        decompose_canonical(c, &mut lower);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn folds_to(original: &str, expected: &str) {
        assert_eq!(fold(original).text(), expected, "{original:?}");
    }

    #[test]
    fn plain_ascii_lines_are_searched_as_they_are() {
        let line = "Ship the Q3 numbers to Bob, please.";
        let f = fold_for_search(line);
        assert!(matches!(f.text, Cow::Borrowed(_)));
        assert_eq!(f.text(), line);
        assert_eq!(f.original_range(9..11), 9..11);
        assert_eq!(f.original_range(30..99), 30..line.len());
        assert_eq!(f.original_range(4..4), 4..4);
        // Anything else is folded as usual.
        for other in ["two  spaces", "tab\there", "line\nbreak", "Élève"] {
            let f = fold_for_search(other);
            assert!(matches!(f.text, Cow::Owned(_)), "{other:?}");
            assert_eq!(f, fold(other));
        }
        assert_eq!(fold_for_search("").original_range(0..0), 0..0);
    }

    #[test]
    fn case_accents_and_white_space() {
        folds_to("Élève ÇA", "eleve ca");
        folds_to("E\u{301}le\u{300}ve", "eleve");
        folds_to("TOP\n\t Secret", "top secret");
        folds_to("  a \u{a0}\u{2003} b\r\n", " a b ");
        folds_to("Straße ΣΟΦΟΣ σοφος", "straße σοφοσ σοφοσ");
        folds_to("İstanbul", "istanbul");
        folds_to("Ångström Øre Łódź", "angstrom øre łodz");
        folds_to("", "");
    }

    #[test]
    fn compatibility_forms_of_letters_and_digits() {
        folds_to("ﬁnance", "finance");
        folds_to("ＳＥＣＲＥＴ", "secret");
        folds_to("𝐬𝐞𝐜𝐫𝐞𝐭", "secret");
        folds_to("①²", "12");
        // Symbols keep their form: no letters glued to the word before them.
        folds_to("ACME™ c℅ №5", "acme™ c℅ №5");
        // Hangul syllables are decomposed into jamo, the same way in patterns and messages.
        assert_eq!(fold("비밀").text(), fold("비밀").text());
        assert_eq!(fold("비밀").text().chars().count(), 5);
    }

    #[test]
    fn invisible_characters_are_dropped() {
        folds_to("se\u{ad}cr\u{200b}et", "secret");
        folds_to("a \u{200b} b", "a b");
        folds_to("\u{301}\u{200d}x", "x");
        folds_to("\u{fe7c} \u{a0}\n", " ");
        // A decomposition into words does not double the space before it.
        assert!(!fold("a \u{fdfa} b").text().contains("  "));
    }

    #[test]
    fn ranges_cover_whole_original_characters() {
        let original = "Élève\u{301}  ÇA ﬁn";
        let folded = fold(original);
        assert_eq!(folded.text(), "eleve ca fin");
        let map = |r: Range<usize>| &original[folded.original_range(r)];
        assert_eq!(map(0..5), "Élève\u{301}");
        assert_eq!(map(0..1), "É");
        assert_eq!(map(1..2), "l");
        assert_eq!(map(4..5), "e\u{301}");
        assert_eq!(map(5..6), "  ");
        assert_eq!(map(6..8), "ÇA");
        assert_eq!(map(9..10), "ﬁ");
        assert_eq!(map(10..11), "ﬁ");
        assert_eq!(map(9..12), "ﬁn");
        assert_eq!(map(0..usize::MAX), original);
        assert_eq!(&original[..folded.original_range(3..3).start], "Élè");
        assert_eq!(
            folded.original_range(12..12),
            original.len()..original.len()
        );
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 7..2;
        assert_eq!(folded.original_range(reversed), folded.original_range(7..7));
    }

    #[test]
    fn plain_text_keeps_a_short_map() {
        let folded = fold(&"The Quick brown\nfox. ".repeat(1000));
        assert_eq!(folded.segments.len(), 1);
        assert_eq!(folded.original_range(4..9), 4..9);
        let folded = fold("abc\u{301}def");
        assert_eq!(folded.text(), "abcdef");
        assert_eq!(folded.original_range(2..3), 2..5);
        assert_eq!(folded.original_range(3..4), 5..6);
        assert_eq!(folded.original_range(1..4), 1..6);
    }

    #[test]
    fn every_character_folds_to_a_fixed_point() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let original = format!("x{c}x");
            let once = fold(&original);
            assert_eq!(fold(once.text()).text(), once.text(), "{c:?}");
            assert!(!once.text().contains("  "), "{c:?}");
            // Its folded form maps back to it; if it has none, it belongs to the `x` before.
            let len = once.text().len();
            let end = 1 + c.len_utf8();
            if len > 2 {
                assert_eq!(once.original_range(1..len - 1), 1..end, "{c:?}");
            } else {
                assert_eq!(once.original_range(0..1), 0..end, "{c:?}");
            }
        }
    }

    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9 .,]{0,4}",
            Just("\u{301}".to_string()),
            Just("É".to_string()),
            Just("e\u{308}".to_string()),
            Just("ﬁ".to_string()),
            Just("\u{fdfa}".to_string()),
            Just("\u{ad}".to_string()),
            Just("\u{200b}".to_string()),
            Just(" \u{a0}\n".to_string()),
            Just("\u{2003}".to_string()),
            Just("İ".to_string()),
            Just("Σς".to_string()),
            Just("비".to_string()),
            Just("™".to_string()),
            "\\PC{0,2}",
            "\\s{1,3}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    fn boundaries(text: &str) -> Vec<usize> {
        (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect()
    }

    /// [`is_plain`] as its documentation says it, one byte at a time.
    fn plain_one_by_one(b: &[u8]) -> bool {
        b.iter()
            .all(|&c| c < 0x80 && !matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
            && !b.windows(2).any(|w| w == b"  ")
    }

    proptest! {
        /// Texts around the block size, with a rare byte that is not plain anywhere in them,
        /// the last byte included.
        #[test]
        fn the_plain_check_agrees_with_one_byte_at_a_time(
            text in "[a-z ]{0,100}(  |\t|\n|\r|\x0b|\x0c|é|)[a-z ]{0,100}(  |\t| |é|)"
        ) {
            prop_assert_eq!(is_plain(text.as_bytes()), plain_one_by_one(text.as_bytes()), "{:?}", text);
        }
    }

    proptest! {
        #[test]
        fn ascii_text_folds_the_same_on_the_short_path(
            original in "([a-zA-Z0-9.,!?'@:-]{0,6}[ \t\n\r\x0b\x0c]{0,3}){0,8}"
        ) {
            prop_assert_eq!(fold_ascii(&original), fold_any(&original));
        }
    }

    proptest! {
        #[test]
        fn ranges_are_on_boundaries_covering_and_monotone(original in messy_text()) {
            let folded = fold(&original);
            let text = folded.text();
            prop_assert!(!text.contains("  "));
            let cuts = boundaries(text);
            let len = text.len();
            // Where a range starts depends on its start only, where it ends on its end only,
            // and both grow with them.
            let starts: Vec<usize> = cuts.iter().map(|&a| folded.original_range(a..len).start).collect();
            let ends: Vec<usize> = cuts.iter().map(|&b| folded.original_range(0..b).end).collect();
            prop_assert!(starts.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(ends.windows(2).all(|w| w[0] <= w[1]));
            for (i, &a) in cuts.iter().enumerate() {
                for (j, &b) in cuts.iter().enumerate().skip(i + 1) {
                    let r = folded.original_range(a..b);
                    prop_assert_eq!(r.clone(), starts[i]..ends[j]);
                    prop_assert!(r.start < r.end && r.end <= original.len());
                    prop_assert!(original.is_char_boundary(r.start));
                    prop_assert!(original.is_char_boundary(r.end));
                    // Covering: the original stretch folds to a text holding the folded one.
                    prop_assert!(
                        fold(&original[r.clone()]).text().contains(&text[a..b]),
                        "{:?} {:?} -> {:?}", original, &text[a..b], &original[r]
                    );
                }
                let empty = folded.original_range(a..a);
                prop_assert_eq!(empty.clone(), starts[i]..starts[i]);
                prop_assert!(original.is_char_boundary(empty.start));
            }
        }

        #[test]
        fn unaffected_text_maps_to_itself(original in "[a-z0-9.,;!?-]{0,40}") {
            let folded = fold(&original);
            prop_assert_eq!(folded.text(), original.as_str());
            for a in 0..=original.len() {
                for b in a..=original.len() {
                    prop_assert_eq!(folded.original_range(a..b), a..b);
                }
            }
        }

        #[test]
        fn folding_is_idempotent(original in messy_text()) {
            let once = fold(&original);
            let twice = fold(once.text());
            prop_assert_eq!(twice.text(), once.text());
        }
    }
}
