//! `causerie.example.toml` and `docs/configuration.md`, generated from the key reference and
//! the structs' defaults. Tests in `tests/generated.rs` compare them with the committed files.

use std::fmt::Write as _;

use crate::keys::{self, DefaultValue, Kind, SectionDoc};
use crate::{CertificateConfig, Config, DEFAULT_PATH, PartnerConfig};

/// The command that rewrites both generated files.
pub(crate) const REGENERATE: &str = "CAUSERIE_BLESS=1 cargo test -p causerie-config";

/// Width the example file's comments are wrapped to.
const WRAP: usize = 78;

/// A multi-line array is used when the one-line form would be longer than this.
const ONE_LINE_ARRAY: usize = 78;

/// The example configuration: every key, its description and its default value. Loading it
/// gives exactly the defaults.
pub fn example_toml() -> String {
    let defaults = Defaults::new();
    let mut out = String::new();
    let intro = format!(
        "Causerie configuration. The server reads the file given with --config PATH, else \
         ./{DEFAULT_PATH} if it exists, else runs on the built-in defaults. This example sets \
         every key to its default, so it behaves like no file at all: copy it to \
         {DEFAULT_PATH} and keep only what you change. Keys without a default are shown \
         commented out. Reference: docs/configuration.md."
    );
    comment(&mut out, "", &intro);
    out.push_str("# Generated from crates/config/src/keys.rs; to regenerate, run\n");
    let _ = writeln!(out, "#     {REGENERATE}");
    for section in keys::SECTIONS {
        out.push('\n');
        if section.array {
            example_array_section(&mut out, section, &defaults);
            continue;
        }
        comment(&mut out, "", section.description);
        let _ = writeln!(out, "[{}]", section.path);
        for key in keys::keys_of(section.path) {
            out.push('\n');
            let name = keys::name_of(key.path);
            comment(&mut out, "", key.description);
            if let Kind::Int { min, max, .. } = key.kind {
                let _ = writeln!(out, "# Allowed: {min} to {max}.");
            }
            match (key.default, key.kind) {
                (DefaultValue::Builtin, Kind::Tables) => {
                    // Written as the commented `[[…]]` block that follows: an explicit
                    // `certificates = []` here would clash with uncommenting that block.
                }
                (DefaultValue::Builtin, _) => {
                    let value = defaults
                        .get(key.path)
                        .map(|v| render_value(v, true))
                        .unwrap_or_default();
                    let _ = writeln!(out, "{name} = {value}");
                }
                (DefaultValue::Unset(meaning), _) => {
                    comment(&mut out, "", &format!("Unset: {meaning}."));
                    let _ = writeln!(out, "# {name} = {}", key.example.unwrap_or("\"\""));
                }
                (DefaultValue::Required, _) => {
                    let _ = writeln!(out, "# {name} = {}", key.example.unwrap_or("\"\""));
                }
            }
        }
    }
    out
}

/// An array of tables has no default entries: it is shown as one commented-out block, with
/// the example value of each key, or its default when it has no example.
fn example_array_section(out: &mut String, section: &SectionDoc, defaults: &Defaults) {
    comment(out, "", section.description);
    comment(
        out,
        "",
        "Remove the leading \"# \" from the lines of a block to use it.",
    );
    let _ = writeln!(out, "# [[{}]]", section.path);
    for key in keys::keys_of(section.path) {
        comment(out, "# ", key.description);
        if let DefaultValue::Unset(meaning) = key.default {
            comment(out, "# ", &format!("Unset: {meaning}."));
        }
        let value = match key.example {
            Some(example) => example.to_owned(),
            None => defaults
                .get(key.path)
                .map(|v| render_value(v, false))
                .unwrap_or_else(|| "\"\"".to_owned()),
        };
        let _ = writeln!(out, "# {} = {value}", keys::name_of(key.path));
    }
}

/// The reference documentation, in Markdown.
pub fn reference_markdown() -> String {
    let defaults = Defaults::new();
    let mut out = String::new();
    let _ = writeln!(out, "# Configuration reference\n");
    let _ = writeln!(
        out,
        "<!-- Generated from crates/config/src/keys.rs by `{REGENERATE}`. \
         Edit the key table there, not this file. -->\n"
    );
    out.push_str(&format!(
        "Causerie reads its configuration from one TOML file:\n\
         \n\
         1. the file given with `causerie --config PATH`;\n\
         2. otherwise `{DEFAULT_PATH}` in the working directory, if there is one;\n\
         3. otherwise no file: the built-in defaults below apply. They host `localhost`, keep \
         an SQLite database and a self-signed certificate (generated on first start) under \
         `./data/`, accept clients on ports 5222 (STARTTLS) and 5223 (direct TLS) and other \
         servers on ports 5269 (STARTTLS) and 5270 (direct TLS), and federate with no other \
         domain until partners are added (`[[federation.partners]]` or `causeriectl \
         federation`).\n\
         \n\
         A file needs only the keys it changes. \
         [`causerie.example.toml`](../causerie.example.toml) lists every key with its \
         description and default value. Durations are whole seconds, in keys whose names end \
         in `_secs`. Relative paths are taken from the working directory.\n\
         \n\
         ## Errors\n\
         \n\
         The whole file is checked before the server starts. If anything is wrong, the server \
         does not start and prints every problem, one per line, as `FILE:LINE: KEY: PROBLEM`. \
         The line is left out when the key is not in the file (its default is the problem). \
         Unknown keys are errors too, with a suggestion when a known key is spelt alike. For \
         example, this file:\n\
         \n\
         ```toml\n\
         {SAMPLE_ERRORS}\
         ```\n\
         \n\
         is refused with:\n\
         \n\
         ```text\n\
         {}\n\
         ```\n",
        sample_errors()
    ));
    for section in keys::SECTIONS {
        out.push('\n');
        let header = if section.array {
            format!("[[{}]]", section.path)
        } else {
            format!("[{}]", section.path)
        };
        let _ = writeln!(out, "## `{header}`\n");
        let _ = writeln!(out, "{}\n", section.description);
        let _ = writeln!(out, "| Key | Type | Default | Description |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for key in keys::keys_of(section.path) {
            let default = match key.default {
                DefaultValue::Builtin => defaults
                    .get(key.path)
                    .map(|v| format!("`{}`", render_value(v, false)))
                    .unwrap_or_default(),
                DefaultValue::Unset(meaning) => format!("unset: {meaning}"),
                DefaultValue::Required => "required".to_owned(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                keys::name_of(key.path),
                cell(&key.kind.label()),
                cell(&default),
                cell(key.description)
            );
        }
    }
    out
}

/// The sample shown in the reference, with several kinds of problem at once.
const SAMPLE_ERRORS: &str = "[server]
domains = [\"example.com\", \"Example.org\"]

[c2s]
liste = [\"[::]:5222\"]
send_queue_len = 0
require_encryption = \"yes\"
";

/// What the server really prints for the sample, so the documentation cannot misquote it.
fn sample_errors() -> String {
    match Config::from_toml_str(SAMPLE_ERRORS, DEFAULT_PATH) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// The built-in defaults, serialized: the configuration's own, and for keys inside an array
/// of tables those of an entry that sets only its required keys.
struct Defaults {
    config: Option<toml::Table>,
    entries: Option<toml::Table>,
}

impl Defaults {
    fn new() -> Defaults {
        let mut with_entries = Config::default();
        // One default entry per array of tables; a test checks that none is forgotten.
        with_entries
            .tls
            .certificates
            .push(CertificateConfig::default());
        with_entries
            .federation
            .partners
            .push(PartnerConfig::default());
        Defaults {
            config: toml::Table::try_from(Config::default()).ok(),
            entries: toml::Table::try_from(with_entries).ok(),
        }
    }

    /// The default of a key, by its dotted path without array positions.
    fn get(&self, path: &str) -> Option<&toml::Value> {
        let table = if keys::in_array_section(path) {
            &self.entries
        } else {
            &self.config
        };
        lookup(table.as_ref()?, path)
    }
}

/// The value at a dotted path of a table; an array of tables is entered at its first entry.
fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let (first, rest) = match path.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (path, None),
    };
    let value = table.get(first)?;
    let Some(rest) = rest else {
        return Some(value);
    };
    match value {
        toml::Value::Table(inner) => lookup(inner, rest),
        toml::Value::Array(items) => lookup(items.first()?.as_table()?, rest),
        _ => None,
    }
}

/// TOML text of a default value; long arrays go one item per line when `multiline`.
fn render_value(value: &toml::Value, multiline: bool) -> String {
    match value {
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| render_value(v, false)).collect();
            let one_line = format!("[{}]", items.join(", "));
            if !multiline || one_line.len() <= ONE_LINE_ARRAY {
                one_line
            } else {
                let mut out = String::from("[\n");
                for item in items {
                    let _ = writeln!(out, "    {item},");
                }
                out.push(']');
                out
            }
        }
        other => other.to_string(),
    }
}

/// A Markdown table cell: a pipe would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Writes `text` as `#` comment lines wrapped at [`WRAP`] columns, each line starting with
/// `prefix` (used to comment out a whole block).
fn comment(out: &mut String, prefix: &str, text: &str) {
    let lead = format!("{prefix}#");
    let mut line = lead.clone();
    for word in text.split_whitespace() {
        if line.len() > lead.len() && line.len() + 1 + word.len() > WRAP {
            out.push_str(&line);
            out.push('\n');
            line = lead.clone();
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_loads_and_equals_the_defaults() {
        let example = example_toml();
        let loaded = Config::from_toml_str(&example, "causerie.example.toml");
        assert_eq!(loaded.ok(), Some(Config::default()), "{example}");
    }

    #[test]
    fn example_shows_every_key_with_its_description() {
        let example = example_toml();
        for key in keys::KEYS {
            let first_words: Vec<&str> = key.description.split_whitespace().take(4).collect();
            assert!(
                example.contains(&first_words.join(" ")),
                "description of {} missing",
                key.path
            );
            let name = keys::name_of(key.path);
            let shown = example.lines().any(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{name} = ")) || l == format!("[[{}]]", key.path)
            });
            assert!(shown, "{} has no value line", key.path);
        }
    }

    #[test]
    fn uncommented_examples_load() {
        // Uncommenting every example line (and hosting the example certificate's domain)
        // must give a valid configuration: the examples are real values, not placeholders.
        // Keys that are alternatives to another one with an example stay commented out.
        const ALTERNATIVES: [&str; 1] = ["compliance.alert_webhook_token_env"];
        let example = example_toml();
        let mut text = String::new();
        for line in example.lines() {
            let uncommented = line.strip_prefix("# ").filter(|rest| {
                rest.starts_with("[[")
                    || keys::KEYS.iter().any(|k| {
                        !ALTERNATIVES.contains(&k.path)
                            && rest.starts_with(&format!("{} = ", keys::name_of(k.path)))
                    })
            });
            let line = uncommented.unwrap_or(line);
            let line = line.replace("[\"localhost\"]", "[\"example.com\"]");
            text.push_str(&line);
            text.push('\n');
        }
        let loaded = Config::from_toml_str(&text, "uncommented");
        let loaded = match loaded {
            Ok(config) => config,
            Err(e) => panic!("{e}\n{text}"),
        };
        assert!(loaded.database.url.is_some());
        assert!(loaded.admin.socket.is_some());
        assert!(loaded.s2s.ca_file.is_some());
        assert_eq!(loaded.tls.certificates.len(), 1);
        assert_eq!(loaded.federation.partners.len(), 1);
        let partner = &loaded.federation.partners[0];
        assert!(partner.route.is_some() && partner.ca.is_some());
        assert_eq!(partner.fingerprints.len(), 1);
    }

    #[test]
    fn every_key_with_a_builtin_default_has_one() {
        // Fails for an array of tables whose default entry `Defaults::new` does not add.
        let defaults = Defaults::new();
        for key in keys::KEYS {
            if let DefaultValue::Builtin = key.default {
                assert!(defaults.get(key.path).is_some(), "{}", key.path);
            }
        }
    }

    #[test]
    fn reference_has_a_row_per_key_and_a_heading_per_table() {
        let reference = reference_markdown();
        for section in keys::SECTIONS {
            assert!(reference.contains(&format!("[{}]", section.path)));
        }
        for key in keys::KEYS {
            let row = format!("| `{}` |", keys::name_of(key.path));
            assert!(reference.contains(&row), "{}", key.path);
            // A line break would end the table row.
            assert!(!key.description.contains('\n'), "{}", key.path);
        }
    }

    #[test]
    fn reference_quotes_real_errors() {
        let errors = sample_errors();
        assert_eq!(
            errors,
            "causerie.toml:2: server.domains[1]: `Example.org` must be written in lowercase \
             (`example.org`)\n\
             causerie.toml:5: c2s.liste: unknown key (did you mean `c2s.starttls_listen`?)\n\
             causerie.toml:6: c2s.send_queue_len: must be at least 1 (got 0)\n\
             causerie.toml:7: c2s.require_encryption: expected a boolean (true or false), \
             found a string"
        );
        assert!(reference_markdown().contains(&errors));
    }

    #[test]
    fn comments_wrap() {
        let mut out = String::new();
        comment(&mut out, "", &"word ".repeat(40));
        assert!(out.lines().count() > 1);
        assert!(out.lines().all(|l| l.len() <= WRAP && l.starts_with('#')));
    }
}
