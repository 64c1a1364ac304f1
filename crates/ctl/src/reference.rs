//! The command-line reference (`docs/cli.md`), written from the clap definitions so that it
//! cannot drift from them: `causeriectl reference` prints it, and a test compares it with the
//! file.

use std::fmt::Write;

use clap::{Arg, ArgAction, Command};

/// The whole reference, in Markdown.
pub fn markdown(mut root: Command) -> String {
    root.build();
    let mut out = String::new();
    out.push_str("# `causeriectl` command reference\n\n");
    out.push_str(
        "Generated from the command's own definitions by `causeriectl reference`; \
         `cargo test -p causerie-ctl --test reference` checks that this file is up to date \
         (set `CAUSERIE_BLESS=1` to rewrite it).\n\n",
    );
    if let Some(about) = root.get_long_about().or(root.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    out.push_str("Every command takes the global option `--config PATH` (`-c`).\n\n");
    out.push_str("## Commands\n\n");
    let mut index = Vec::new();
    collect(&root, &mut Vec::new(), &mut index);
    for (path, cmd) in &index {
        let about = cmd
            .get_about()
            .map(|a| first_sentence(&a.to_string()))
            .unwrap_or_default();
        let _ = writeln!(out, "- [`{}`](#{}) {}", path, anchor(path), about);
    }
    out.push('\n');
    for (path, cmd) in &index {
        section(&mut out, path, cmd);
    }
    out
}

/// Every command with no subcommands of its own, depth first, with its full name.
fn collect<'a>(cmd: &'a Command, names: &mut Vec<&'a str>, out: &mut Vec<(String, &'a Command)>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        names.push(sub.get_name());
        if sub.has_subcommands() {
            collect(sub, names, out);
        } else {
            out.push((format!("causeriectl {}", names.join(" ")), sub));
        }
        names.pop();
    }
}

fn section(out: &mut String, path: &str, cmd: &Command) {
    let _ = writeln!(out, "## {path}\n");
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let usage = cmd
        .clone()
        .bin_name(path)
        .render_usage()
        .to_string()
        .replace("Usage: ", "");
    let _ = writeln!(out, "```\n{}\n```\n", usage.trim());
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if args.is_empty() {
        return;
    }
    for a in args {
        let _ = write!(out, "- `{}`", spelling(a));
        if let Some(help) = a.get_long_help().or(a.get_help()) {
            let _ = write!(out, ": {}", help.to_string().replace('\n', " "));
        }
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !matches!(a.get_action(), ArgAction::SetTrue) {
            let _ = write!(out, " (default: `{}`)", defaults.join(", "));
        }
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !values.is_empty() && !matches!(a.get_action(), ArgAction::SetTrue) {
            let _ = write!(out, " (one of: `{}`)", values.join("`, `"));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// How an argument is written on the command line.
fn spelling(a: &Arg) -> String {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
    if a.is_positional() {
        return if a.is_required_set() {
            value
        } else {
            format!("[{value}]")
        };
    }
    let mut names = Vec::new();
    if let Some(long) = a.get_long() {
        names.push(format!("--{long}"));
    }
    if let Some(short) = a.get_short() {
        names.push(format!("-{short}"));
    }
    let takes_value = !matches!(
        a.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
    );
    if takes_value {
        format!("{} {value}", names.join(", "))
    } else {
        names.join(", ")
    }
}

fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.find(". ") {
        Some(end) => line[..=end].to_owned(),
        None => line.to_owned(),
    }
}

/// The anchor GitHub-style renderers give a heading.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Command {
        Command::new("causeriectl")
            .about("Administer")
            .arg(
                Arg::new("config")
                    .long("config")
                    .short('c')
                    .global(true)
                    .value_name("PATH"),
            )
            .subcommand(
                Command::new("user")
                    .about("Manage accounts")
                    .subcommand(
                        Command::new("add")
                            .about("Create an account. More text.")
                            .arg(Arg::new("jid").required(true).help("The account")),
                    )
                    .subcommand(
                        Command::new("list").arg(
                            Arg::new("json")
                                .long("json")
                                .action(ArgAction::SetTrue)
                                .help("Print JSON"),
                        ),
                    ),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn every_leaf_command_gets_a_section_with_its_arguments() {
        let md = markdown(sample());
        assert!(
            md.contains("- [`causeriectl user add`](#causeriectl-user-add) Create an account.")
        );
        assert!(md.contains("## causeriectl user add\n\nCreate an account. More text.\n"));
        assert!(md.contains("- `jid`: The account\n") || md.contains("- `JID`: The account\n"));
        assert!(md.contains("- `--json`: Print JSON\n"));
        assert!(!md.contains("secret"), "hidden commands stay out");
        assert!(!md.contains("- `--config"), "global options are said once");
    }
}
