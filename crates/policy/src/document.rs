//! A version of the usage policy, as the operator writes it: a Markdown or plain-text file that
//! opens with a TOML front matter between two `+++` lines.
//!
//! ```text
//! +++
//! title = "Acceptable use of the company chat"
//! effective = "2025-03-01"            # RFC 3339 date or date-time (UTC or with an offset)
//! categories = ["keyword alerts", "file transfer log"]
//! format = "markdown"                 # or "text"; markdown when absent
//! domain = "corp.example"             # optional: the hosted domain this version applies to
//! +++
//! The policy text...
//! ```
//!
//! The version's identity is the SHA-256 (FIPS 180-4) of the file's exact bytes, so any edit,
//! even of the front matter or of white space, makes a new version that must be accepted again.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::{hex, rfc3339};

/// The largest policy file accepted, front matter included: 1 MiB.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The line that opens and closes the front matter.
const FENCE: &str = "+++";

/// How the policy text is written, which decides how clients are offered it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextFormat {
    /// CommonMark-style Markdown (the default).
    #[default]
    Markdown,
    /// Plain text, shown as is.
    Text,
}

impl TextFormat {
    /// The name used in the front matter.
    pub fn as_str(self) -> &'static str {
        match self {
            TextFormat::Markdown => "markdown",
            TextFormat::Text => "text",
        }
    }
}

impl fmt::Display for TextFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a policy file was refused. Line numbers count from 1, byte offsets from 0.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the policy file is empty")]
    Empty,
    #[error("the policy file is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: u64, limit: usize },
    #[error("the policy file is not valid UTF-8 at byte offset {offset} (line {line})")]
    NotUtf8 { offset: usize, line: usize },
    #[error("line {line}: {message}")]
    FrontMatter { line: usize, message: String },
    #[error("the policy text after the front matter (closed on line {line}) is empty")]
    EmptyBody { line: usize },
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One parsed version of the usage policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    source: String,
    hash: String,
    title: String,
    effective: i64,
    categories: Vec<String>,
    format: TextFormat,
    domain: Option<String>,
    body_start: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<Spanned<String>>,
    effective: Option<Spanned<toml::Value>>,
    categories: Option<Spanned<Vec<String>>>,
    format: Option<TextFormat>,
    domain: Option<Spanned<String>>,
}

impl PolicyDocument {
    /// Parses a policy file from its exact bytes.
    pub fn parse(bytes: &[u8]) -> Result<PolicyDocument, DocumentError> {
        if bytes.is_empty() {
            return Err(DocumentError::Empty);
        }
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(DocumentError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let offset = e.valid_up_to();
            DocumentError::NotUtf8 {
                offset,
                line: line_at(bytes, offset),
            }
        })?;
        // An editor's byte order mark is not content; it still counts in the hash.
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };

        let mut lines = Lines {
            text,
            pos: bom,
            number: 0,
        };
        match lines.next() {
            Some((_, line)) if line.trim_end() == FENCE => {}
            _ => {
                return Err(front_matter_error(
                    1,
                    "the file must start with a `+++` line opening the TOML front matter",
                ));
            }
        }
        let toml_start = lines.pos;
        let (toml_end, closing_line) = loop {
            match lines.next() {
                Some((start, line)) if line.trim_end() == FENCE => break (start, lines.number),
                Some(_) => {}
                None => {
                    return Err(front_matter_error(
                        lines.number,
                        "the front matter opened on line 1 is never closed by a `+++` line",
                    ));
                }
            }
        };
        let body_start = lines.pos;

        let toml_text = &text[toml_start..toml_end];
        // The front matter's first line is line 2 of the file.
        let line_of =
            |span: std::ops::Range<usize>| 2 + line_at(toml_text.as_bytes(), span.start) - 1;
        let fm: FrontMatter = toml::from_str(toml_text).map_err(|e| {
            let line = e.span().map_or(1, line_of);
            front_matter_error(line, e.message().trim_end())
        })?;

        let title = fm
            .title
            .ok_or_else(|| front_matter_error(1, "the front matter has no `title`"))?;
        if title.get_ref().trim().is_empty() {
            return Err(front_matter_error(
                line_of(title.span()),
                "`title` is empty",
            ));
        }

        let effective = fm.effective.ok_or_else(|| {
            front_matter_error(
                1,
                "the front matter has no `effective` date (RFC 3339, UTC)",
            )
        })?;
        let effective_line = line_of(effective.span());
        let effective_text = match effective.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            _ => {
                return Err(front_matter_error(
                    effective_line,
                    "`effective` must be an RFC 3339 date or date-time",
                ));
            }
        };
        let effective = rfc3339::parse(effective_text.trim()).map_err(|why| {
            front_matter_error(
                effective_line,
                format!("`effective` date {effective_text:?} {why}"),
            )
        })?;

        let categories = fm.categories.ok_or_else(|| {
            front_matter_error(
                1,
                "the front matter has no `categories` (write `categories = []` if none)",
            )
        })?;
        let categories_line = line_of(categories.span());
        let categories = categories.into_inner();
        for (i, c) in categories.iter().enumerate() {
            if c.trim().is_empty() {
                return Err(front_matter_error(
                    categories_line,
                    format!("category {} is empty", i + 1),
                ));
            }
            if categories[..i].contains(c) {
                return Err(front_matter_error(
                    categories_line,
                    format!("category {c:?} is listed twice"),
                ));
            }
        }

        let domain = match fm.domain {
            None => None,
            Some(d) => {
                let line = line_of(d.span());
                let d = d.into_inner();
                check_domain(&d)
                    .map_err(|why| front_matter_error(line, format!("`domain` {d:?} {why}")))?;
                Some(d)
            }
        };

        if text[body_start..].trim().is_empty() {
            return Err(DocumentError::EmptyBody { line: closing_line });
        }

        Ok(PolicyDocument {
            hash: hex(&Sha256::digest(bytes)),
            source: text.to_owned(),
            title: title.into_inner(),
            effective,
            categories,
            format: fm.format.unwrap_or_default(),
            domain,
            body_start,
        })
    }

    /// Reads and parses a policy file, refusing it before reading if it is over the limit.
    pub fn read(path: &Path) -> Result<PolicyDocument, DocumentError> {
        let io = |source| DocumentError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_DOCUMENT_BYTES as u64 {
            return Err(DocumentError::TooLarge {
                size,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        // The file may grow while it is read: read one byte past the limit to notice.
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        PolicyDocument::parse(&bytes)
    }

    /// The version id: lowercase hex SHA-256 of the file's exact bytes.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The first four hex digits of [`hash`](Self::hash), which users type to accept
    /// ("ACCEPT 4f2a"). It is short for typing, not unique: the server must tell apart versions
    /// that share one.
    pub fn short_code(&self) -> &str {
        &self.hash[..4]
    }

    /// Whether `typed` is this version's short code, ignoring ASCII case and surrounding spaces.
    pub fn short_code_matches(&self, typed: &str) -> bool {
        typed.trim().eq_ignore_ascii_case(self.short_code())
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// When this version takes effect, in unix seconds (UTC).
    pub fn effective(&self) -> i64 {
        self.effective
    }

    /// The monitoring rule categories disclosed to users (possibly none).
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    pub fn format(&self) -> TextFormat {
        self.format
    }

    /// The hosted domain this version applies to; `None` means every hosted domain.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The policy text: everything after the closing `+++` line.
    pub fn body(&self) -> &str {
        &self.source[self.body_start..]
    }

    /// The whole file as it was parsed; its SHA-256 is [`hash`](Self::hash).
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn front_matter_error(line: usize, message: impl Into<String>) -> DocumentError {
    DocumentError::FrontMatter {
        line,
        message: message.into(),
    }
}

/// The 1-based line holding byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// A plain shape check; whether the domain is hosted is for the server to say.
fn check_domain(d: &str) -> Result<(), &'static str> {
    if d.is_empty() {
        return Err("is empty");
    }
    // RFC 7622 §3.2: a domainpart is at most 1023 bytes.
    if d.len() > 1023 {
        return Err("is longer than 1023 bytes");
    }
    if d.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains white space");
    }
    if d.contains(['@', '/']) {
        return Err("must be a domain, not a JID");
    }
    if d.starts_with('.') || d.ends_with('.') || d.contains("..") {
        return Err("has an empty label");
    }
    Ok(())
}

/// Lines with their start offsets, each without its `\n` (a `\r` before it stays and is trimmed
/// by the callers that compare).
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.text[start..];
        let (line, advance) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.number += 1;
        Some((start, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\n\
        title = \"Acceptable use\"\n\
        effective = \"2025-03-01\"\n\
        categories = [\"keyword alerts\", \"file transfers\"]\n\
        +++\n\
        # Rules\n\nBe nice.\n";

    fn err(text: &str) -> DocumentError {
        match PolicyDocument::parse(text.as_bytes()) {
            Ok(d) => panic!("accepted: {d:?}"),
            Err(e) => e,
        }
    }

    fn line_of_error(text: &str) -> (usize, String) {
        match err(text) {
            DocumentError::FrontMatter { line, message } => (line, message),
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn parses_a_complete_document() {
        let doc = PolicyDocument::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(doc.title(), "Acceptable use");
        assert_eq!(doc.effective(), 1_740_787_200);
        assert_eq!(doc.categories(), ["keyword alerts", "file transfers"]);
        assert_eq!(doc.format(), TextFormat::Markdown);
        assert_eq!(doc.domain(), None);
        assert_eq!(doc.body(), "# Rules\n\nBe nice.\n");
        assert_eq!(doc.source(), GOOD);
        assert_eq!(doc.hash().len(), 64);
        assert!(
            doc.hash()
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(doc.short_code(), &doc.hash()[..4]);
        assert!(doc.short_code_matches(&format!(" {} ", doc.short_code().to_uppercase())));
        assert!(!doc.short_code_matches("zzzz"));
    }

    #[test]
    fn hash_is_sha256_of_the_exact_bytes() {
        // SHA-256 of "+++\ntitle=\"t\"\neffective=\"2025-01-01\"\ncategories=[]\n+++\nx\n",
        // computed with `sha256sum`.
        let text = "+++\ntitle=\"t\"\neffective=\"2025-01-01\"\ncategories=[]\n+++\nx\n";
        let doc = PolicyDocument::parse(text.as_bytes()).unwrap();
        assert_eq!(
            doc.hash(),
            "ec129cec5e3c467c0fb713c783b6a232de2153ca5029409ab6d70bfe2731af1b"
        );
        assert_eq!(doc.short_code(), "ec12");
        // One more space anywhere is another version.
        let edited = text.replace("x\n", "x \n");
        assert_ne!(
            PolicyDocument::parse(edited.as_bytes()).unwrap().hash(),
            doc.hash()
        );
    }

    #[test]
    fn optional_keys_native_dates_and_crlf() {
        let text = "+++\r\ntitle = \"T\"\r\neffective = 2025-03-01T09:00:00+01:00\r\n\
                    categories = []\r\nformat = \"text\"\r\ndomain = \"corp.example\"\r\n+++\r\nBody\r\n";
        let doc = PolicyDocument::parse(text.as_bytes()).unwrap();
        assert_eq!(doc.effective(), 1_740_787_200 + 8 * 3600);
        assert!(doc.categories().is_empty());
        assert_eq!(doc.format(), TextFormat::Text);
        assert_eq!(doc.domain(), Some("corp.example"));
        assert_eq!(doc.body(), "Body\r\n");

        let native_date = GOOD.replace("\"2025-03-01\"", "2025-03-01");
        assert_eq!(
            PolicyDocument::parse(native_date.as_bytes())
                .unwrap()
                .effective(),
            1_740_787_200
        );
        let with_bom = format!("\u{feff}{GOOD}");
        let doc = PolicyDocument::parse(with_bom.as_bytes()).unwrap();
        assert_eq!(doc.title(), "Acceptable use");
    }

    #[test]
    fn refuses_empty_large_and_non_utf8() {
        assert!(matches!(err(""), DocumentError::Empty));
        let mut big = GOOD.as_bytes().to_vec();
        big.resize(MAX_DOCUMENT_BYTES + 1, b'a');
        assert!(matches!(
            PolicyDocument::parse(&big),
            Err(DocumentError::TooLarge { size, .. }) if size == MAX_DOCUMENT_BYTES as u64 + 1
        ));
        let mut exactly = GOOD.as_bytes().to_vec();
        exactly.resize(MAX_DOCUMENT_BYTES, b'a');
        assert!(PolicyDocument::parse(&exactly).is_ok());

        let mut bad = GOOD.as_bytes().to_vec();
        let at = GOOD.find("Be nice").unwrap();
        bad[at] = 0xff;
        match PolicyDocument::parse(&bad) {
            Err(DocumentError::NotUtf8 { offset, line }) => {
                assert_eq!(offset, at);
                assert_eq!(line, 8);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_missing_or_unclosed_front_matter() {
        assert_eq!(line_of_error("# Just a policy\n").0, 1);
        assert_eq!(line_of_error("\n+++\ntitle=\"t\"\n+++\nx\n").0, 1);
        let (line, message) = line_of_error("+++\ntitle = \"t\"\nbody\n");
        assert_eq!(line, 3);
        assert!(message.contains("never closed"), "{message}");
    }

    #[test]
    fn front_matter_errors_carry_the_line() {
        let (line, message) = line_of_error(&GOOD.replace("categories", "categories ="));
        assert_eq!(line, 4, "{message}");

        let (line, message) = line_of_error(&GOOD.replace("title =", "colour = 1\ntitle ="));
        assert_eq!(line, 2);
        assert!(message.contains("colour"), "{message}");

        let (line, message) = line_of_error(&GOOD.replace("\"Acceptable use\"", "\"  \""));
        assert_eq!((line, message.as_str()), (2, "`title` is empty"));

        let (line, _) = line_of_error(&GOOD.replace("\"Acceptable use\"", "42"));
        assert_eq!(line, 2);

        let (line, message) = line_of_error(&GOOD.replace("2025-03-01", "2025-02-30"));
        assert_eq!(line, 3);
        assert!(message.contains("does not exist"), "{message}");

        let (line, message) =
            line_of_error(&GOOD.replace("\"2025-03-01\"", "\"2025-03-01T10:00:00\""));
        assert_eq!(line, 3);
        assert!(message.contains("offset"), "{message}");

        let (line, _) = line_of_error(&GOOD.replace("\"2025-03-01\"", "20250301"));
        assert_eq!(line, 3);

        let (line, message) =
            line_of_error(&GOOD.replace("\"file transfers\"", "\"keyword alerts\""));
        assert_eq!(line, 4);
        assert!(message.contains("twice"), "{message}");

        let (line, _) = line_of_error(&GOOD.replace("\"file transfers\"", "\" \""));
        assert_eq!(line, 4);

        let (line, message) = line_of_error(&GOOD.replace("+++\n#", "format = \"html\"\n+++\n#"));
        assert_eq!(line, 5);
        assert!(message.contains("html"), "{message}");

        for bad in [
            "",
            "a b",
            "user@corp.example",
            "corp.example/res",
            ".corp",
            "a..b",
        ] {
            let text = GOOD.replace("+++\n#", &format!("domain = {bad:?}\n+++\n#"));
            let (line, message) = line_of_error(&text);
            assert_eq!(line, 5, "{bad:?}: {message}");
        }
    }

    #[test]
    fn refuses_missing_required_keys() {
        for (key, line) in [
            ("title = \"Acceptable use\"\n", "title"),
            ("effective = \"2025-03-01\"\n", "effective"),
            (
                "categories = [\"keyword alerts\", \"file transfers\"]\n",
                "categories",
            ),
        ] {
            let (at, message) = line_of_error(&GOOD.replace(key, ""));
            assert_eq!(at, 1);
            assert!(message.contains(line), "{message}");
        }
        let (_, message) = line_of_error("+++\n+++\ntext\n");
        assert!(message.contains("title"), "{message}");
    }

    #[test]
    fn refuses_an_empty_body() {
        let head = &GOOD[..GOOD.find("# Rules").unwrap()];
        for text in [
            head.to_owned(),
            format!("{head} \n\n\t\n"),
            head.trim_end().to_owned(),
        ] {
            assert!(
                matches!(err(&text), DocumentError::EmptyBody { line: 5 }),
                "{text:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = PolicyDocument::parse(&bytes);
        }

        #[test]
        fn arbitrary_front_matter_never_panics(fm in "[ -~\n]{0,200}", body in ".{0,40}") {
            let text = format!("+++\n{fm}\n+++\n{body}");
            if let Ok(doc) = PolicyDocument::parse(text.as_bytes()) {
                proptest::prop_assert_eq!(doc.source(), text.as_str());
                proptest::prop_assert!(!doc.title().trim().is_empty());
            }
        }
    }

    #[test]
    fn read_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.md");
        std::fs::write(&path, GOOD).unwrap();
        let doc = PolicyDocument::read(&path).unwrap();
        assert_eq!(doc, PolicyDocument::parse(GOOD.as_bytes()).unwrap());

        std::fs::write(&path, vec![b'a'; MAX_DOCUMENT_BYTES + 10]).unwrap();
        assert!(matches!(
            PolicyDocument::read(&path),
            Err(DocumentError::TooLarge { .. })
        ));
        assert!(matches!(
            PolicyDocument::read(&dir.path().join("missing.md")),
            Err(DocumentError::Io { .. })
        ));
    }
}
