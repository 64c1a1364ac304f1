//! From TOML text to a `Config`, keeping every problem and the line of every key.
//!
//! The text is parsed into toml's spanned document tree, which is then checked against the key
//! reference ([`crate::keys`]): unknown keys and values of the wrong type or out of range are
//! reported (all of them, not only the first) and left out, so that the rest of the file can
//! still be read and validated in the same run. Only then is serde asked to build the structs,
//! from the cleaned tree.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::keys::{self, Kind};
use crate::{Config, Problem};

pub(crate) struct Parsed {
    /// `None` when the text is not TOML at all.
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
    pub spans: Spans,
}

/// Byte span of each key found in the file, by dotted path with array positions
/// (`server.domains[1]`, `tls.certificates[0].domain`).
#[derive(Default)]
pub(crate) struct Spans(HashMap<String, Range<usize>>);

impl Spans {
    /// Adds the line of `problem.key` if that key is in the file. A key inside an array entry
    /// that the file leaves out (`tls.certificates[0].cert`) gets the line of its entry; a key
    /// that is entirely absent (its default is used) gets no line.
    pub fn attach_line(&self, mut problem: Problem, text: &[u8]) -> Problem {
        if problem.line.is_some() {
            return problem;
        }
        let Some(key) = problem.key.as_deref() else {
            return problem;
        };
        let span = self.0.get(key).or_else(|| {
            let (parent, _) = key.rsplit_once('.')?;
            if parent.ends_with(']') {
                self.0.get(parent)
            } else {
                None
            }
        });
        problem.line = span.map(|s| line_of(text, s.start));
        problem
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text[..end].iter().filter(|b| **b == b'\n').count()
}

pub(crate) fn parse(text: &str) -> Parsed {
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // A document with syntax errors is only partly recovered; checking keys in it would
        // add confusing follow-up errors, so only the syntax errors are reported.
        let problems = errors
            .iter()
            .map(|e| Problem {
                line: e.span().map(|s| line_of(text.as_bytes(), s.start)),
                key: None,
                message: format!("invalid TOML: {}", e.message()),
            })
            .collect();
        return Parsed {
            config: None,
            problems,
            spans: Spans::default(),
        };
    }

    let mut walker = Walker {
        text: text.as_bytes(),
        spans: Spans::default(),
        problems: Vec::new(),
    };
    let clean = walker.table(document.get_ref(), "", "");
    let mut problems = walker.problems;
    let config = match clean.try_into::<Config>() {
        Ok(config) => Some(config),
        Err(e) => {
            // The walk admits only what the structs accept, so this means the key reference
            // and the structs disagree; report it rather than panic.
            problems.push(Problem {
                line: None,
                key: None,
                message: format!("cannot build the configuration: {}", e.message()),
            });
            None
        }
    };
    Parsed {
        config,
        problems,
        spans: walker.spans,
    }
}

struct Walker<'t> {
    text: &'t [u8],
    spans: Spans,
    problems: Vec<Problem>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Walker<'_> {
    fn problem(&mut self, span: Range<usize>, key: &str, message: String) {
        self.problems.push(Problem {
            line: Some(line_of(self.text, span.start)),
            key: Some(key.to_owned()),
            message,
        });
    }

    /// Checks one table; `schema` is its path without array positions, `path` with them.
    fn table(&mut self, table: &DeTable<'_>, schema: &str, path: &str) -> toml::Table {
        let mut out = toml::Table::new();
        for (name, value) in table.iter() {
            let name_text: &str = name.get_ref();
            let schema_path = join(schema, name_text);
            let key_path = join(path, name_text);
            let is_section = schema.is_empty()
                && keys::section(&schema_path).is_some_and(|section| !section.array);
            if is_section {
                self.spans.0.insert(key_path.clone(), name.span());
                match value.get_ref() {
                    DeValue::Table(inner) => {
                        let inner = self.table(inner, &schema_path, &key_path);
                        out.insert(name_text.to_owned(), toml::Value::Table(inner));
                    }
                    other => self.problem(
                        value.span(),
                        &key_path,
                        format!("expected a table, found {}", type_name(other)),
                    ),
                }
                continue;
            }
            let doc = if schema.is_empty() {
                None
            } else {
                keys::key(&schema_path)
            };
            let Some(doc) = doc else {
                let what = if value.get_ref().is_table() {
                    "unknown table"
                } else {
                    "unknown key"
                };
                let message = match suggest(schema, path, name_text) {
                    Some(hint) => format!("{what} (did you mean `{hint}`?)"),
                    None => what.to_owned(),
                };
                self.problem(name.span(), &key_path, message);
                continue;
            };
            self.spans.0.insert(key_path.clone(), name.span());
            if let Some(clean) = self.value(doc.kind, value, &schema_path, &key_path) {
                out.insert(name_text.to_owned(), clean);
            }
        }
        out
    }

    /// Checks one value against its kind; `None` (after reporting) when it must be left out.
    fn value(
        &mut self,
        kind: Kind,
        value: &Spanned<DeValue<'_>>,
        schema_path: &str,
        key_path: &str,
    ) -> Option<toml::Value> {
        let span = value.span();
        match (kind, value.get_ref()) {
            (Kind::Bool, DeValue::Boolean(b)) => Some(toml::Value::Boolean(*b)),
            (Kind::Str | Kind::Path, DeValue::String(s)) => {
                Some(toml::Value::String(s.to_string()))
            }
            (Kind::Int { min, max, .. }, DeValue::Integer(i)) => {
                // TOML integers are 64-bit signed (TOML 1.0 "Integer"); the parser has
                // checked the syntax, the value may still be outside our range.
                let parsed = i128::from_str_radix(i.as_str(), i.radix()).ok();
                let Some(n) = parsed else {
                    self.problem(span, key_path, "is not a valid integer".to_owned());
                    return None;
                };
                if let Some(message) = out_of_range(n, min, max) {
                    self.problem(span, key_path, message);
                    return None;
                }
                match i64::try_from(n) {
                    Ok(n) => Some(toml::Value::Integer(n)),
                    Err(_) => {
                        self.problem(span, key_path, format!("{n} is too large"));
                        None
                    }
                }
            }
            (Kind::StrList, DeValue::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => {
                            // Positions follow the kept items so that validation problems,
                            // which index the built list, find the right line.
                            let kept = format!("{key_path}[{}]", out.len());
                            self.spans.0.insert(kept, item.span());
                            out.push(toml::Value::String(s.to_string()));
                        }
                        other => self.problem(
                            item.span(),
                            &format!("{key_path}[{i}]"),
                            format!("expected a string, found {}", type_name(other)),
                        ),
                    }
                }
                Some(toml::Value::Array(out))
            }
            (Kind::StrList, DeValue::String(s)) => {
                self.problem(
                    span,
                    key_path,
                    format!("expected an array of strings, found a string (write [\"{s}\"])"),
                );
                None
            }
            (Kind::Tables, DeValue::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::Table(table) => {
                            let kept = format!("{key_path}[{}]", out.len());
                            self.spans.0.insert(kept.clone(), item.span());
                            let table = self.table(table, schema_path, &kept);
                            out.push(toml::Value::Table(table));
                        }
                        other => self.problem(
                            item.span(),
                            &format!("{key_path}[{i}]"),
                            format!("expected a table, found {}", type_name(other)),
                        ),
                    }
                }
                Some(toml::Value::Array(out))
            }
            (kind, other) => {
                let expected = match kind {
                    Kind::Bool => "a boolean (true or false)",
                    Kind::Int { .. } => "an integer",
                    Kind::Str => "a string",
                    Kind::Path => "a path (a string)",
                    Kind::StrList => "an array of strings",
                    Kind::Tables => "an array of tables",
                };
                self.problem(
                    span,
                    key_path,
                    format!("expected {expected}, found {}", type_name(other)),
                );
                None
            }
        }
    }
}

/// The range message shared by the parser and by validation of built configs.
pub(crate) fn out_of_range(value: i128, min: u64, max: u64) -> Option<String> {
    if value < i128::from(min) {
        Some(format!("must be at least {min} (got {value})"))
    } else if value > i128::from(max) {
        Some(format!("must be at most {max} (got {value})"))
    } else {
        None
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// A likely intended key for an unknown `name` in table `schema` (written at `path`): a
/// sibling with a close spelling, else a key of that name in another table.
fn suggest(schema: &str, path: &str, name: &str) -> Option<String> {
    let siblings: Vec<&str> = if schema.is_empty() {
        keys::SECTIONS
            .iter()
            .filter(|s| !s.array)
            .map(|s| s.path)
            .collect()
    } else {
        keys::keys_of(schema)
            .map(|k| keys::name_of(k.path))
            .collect()
    };
    if let Some(best) = closest(name, &siblings) {
        return Some(join(path, best));
    }
    // A key written in the wrong table, or at the top without its table header (keys of
    // arrays of tables are not suggested: their names are too generic, `domain`).
    keys::KEYS
        .iter()
        .find(|k| keys::name_of(k.path) == name && !keys::in_array_section(k.path))
        .map(|k| k.path.to_owned())
}

/// The candidate closest to `name`: within a small edit distance, or containing it (or
/// contained in it) when it is at least 3 characters long. Ties go to the earlier candidate.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lowered = name.to_lowercase();
    let limit = (lowered.chars().count() / 3).max(1);
    let by_distance = candidates
        .iter()
        .map(|c| (edit_distance(&lowered, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_distance.or_else(|| {
        if lowered.chars().count() < 3 {
            return None;
        }
        candidates
            .iter()
            .find(|c| c.contains(lowered.as_str()) || lowered.contains(**c))
            .copied()
    })
}

/// Levenshtein distance; inputs are key names, so quadratic cost is fine. Names longer than
/// a key could be are cut, which keeps the work bounded for any input.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("domain", "domain"), 0);
        assert_eq!(edit_distance("domian", "domain"), 2);
        assert_eq!(edit_distance("domans", "domains"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn closest_prefers_spelling_then_substring() {
        let c2s = ["starttls_listen", "direct_tls_listen", "send_queue_len"];
        assert_eq!(closest("send_queue_length", &c2s), Some("send_queue_len"));
        assert_eq!(closest("liste", &c2s), Some("starttls_listen"));
        assert_eq!(closest("direct_tls", &c2s), Some("direct_tls_listen"));
        assert_eq!(closest("zz", &c2s), None);
        assert_eq!(closest("weather", &c2s), None);
    }

    #[test]
    fn line_of_counts_newlines_before_offset() {
        let text = b"a\nb\nc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 4), 3);
        assert_eq!(line_of(text, 99), 3);
    }
}
