//! `causeriectl rules …`: the compliance rules file. Changes are checked whole and written
//! atomically; a running server reloads the file within `compliance.reload_secs`. Every change
//! is recorded in the audit log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use causerie_config::Config;
use causerie_policy::compliance::engine::{PeerClass, RuleSet, View};
use causerie_policy::compliance::rules::{self, Action, Path as MsgPath, Rule, RuleError};
use causerie_storage::{NewAuditEvent, Storage};
use clap::Subcommand;

use crate::federation::actor;
use crate::json_string;
use crate::time::unix_now;

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// List the rules of the rules file, one `ID SEVERITY ACTIONS CATEGORY — DESCRIPTION` line
    /// each.
    List {
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Check a rules file (default: the configured one) without changing anything. Exit code 2,
    /// with every problem, when it is invalid.
    Check { file: Option<PathBuf> },
    /// Add the rules of FILE (`[[rule]]` blocks) to the rules file. The new set is checked
    /// whole; nothing is written when it has a problem or an id is already used.
    Add { file: PathBuf },
    /// Remove rules by id (exit code 1 if one does not exist; then nothing is removed).
    Remove {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show which rules fire on a message and what would happen, without sending anything.
    Test {
        /// The sender (a JID).
        #[arg(long)]
        from: String,
        /// The recipient (a JID).
        #[arg(long)]
        to: String,
        /// The message is a group chat message.
        #[arg(long)]
        groupchat: bool,
        /// The text of the message.
        text: String,
    },
}

fn bad(message: &str) -> ExitCode {
    eprintln!("causeriectl: {message}");
    ExitCode::from(2)
}

fn report(file: &Path, problems: &[RuleError]) -> ExitCode {
    for p in problems {
        eprintln!("causeriectl: {}: {p}", file.display());
    }
    ExitCode::from(2)
}

fn read_rules(file: &Path) -> Result<Vec<Rule>, ExitCode> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| bad(&format!("{}: not UTF-8 text", file.display())))?;
            rules::parse(&text).map_err(|p| report(file, &p))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(bad(&format!("{}: {e}", file.display()))),
    }
}

/// Checks that the rules compile with the configured project names.
fn compile(config: &Config, file: &Path, list: Vec<Rule>) -> Result<RuleSet, ExitCode> {
    RuleSet::compile(list, &config.compliance.project_names).map_err(|p| report(file, &p))
}

/// Writes the file through a temporary file in the same folder, renamed over it.
fn write_atomically(file: &Path, text: &str) -> Result<(), ExitCode> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(bad(&format!("{}: {e}", dir.display())));
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("rules"),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("causeriectl: {}: {e}", file.display());
        return Err(ExitCode::from(3));
    }
    Ok(())
}

const HEADER: &str = "# Compliance rules (docs/compliance.md). Written by causeriectl rules add/remove;\n# edits by hand are fine: the server reloads this file when it changes.\n\n";

pub(crate) async fn run(storage: Option<&Storage>, config: &Config, cmd: RulesCommand) -> ExitCode {
    let file = config.rules_file();
    match cmd {
        RulesCommand::List { json } => {
            let list = match read_rules(&file) {
                Ok(l) => l,
                Err(c) => return c,
            };
            print_list(&list, json);
            ExitCode::SUCCESS
        }
        RulesCommand::Check { file: other } => {
            let path = other.unwrap_or(file);
            let list = match read_rules(&path) {
                Ok(l) => l,
                Err(c) => return c,
            };
            let n = list.len();
            if let Err(c) = compile(config, &path, list) {
                return c;
            }
            println!("{}: {n} rules, valid", path.display());
            ExitCode::SUCCESS
        }
        RulesCommand::Add { file: new } => {
            let mut list = match read_rules(&file) {
                Ok(l) => l,
                Err(c) => return c,
            };
            let added = match read_rules(&new) {
                Ok(l) if l.is_empty() => {
                    return bad(&format!("{}: no [[rule]] in it", new.display()));
                }
                Ok(l) => l,
                Err(c) => return c,
            };
            for r in &added {
                if list.iter().any(|old| old.id == r.id) {
                    return bad(&format!(
                        "{}: rule {}: the id is already used in {}",
                        new.display(),
                        r.id,
                        file.display()
                    ));
                }
            }
            let ids: Vec<String> = added.iter().map(|r| r.id.clone()).collect();
            list.extend(added);
            let text = format!("{HEADER}{}", rules::to_toml(&list));
            // The whole new set must read back and compile before it replaces the file.
            match rules::parse(&text) {
                Ok(again) => {
                    if let Err(c) = compile(config, &new, again) {
                        return c;
                    }
                }
                Err(p) => return report(&new, &p),
            }
            if let Err(c) = write_atomically(&file, &text) {
                return c;
            }
            audit(storage, "compliance.rules.add", &ids.join(","), &file).await;
            println!(
                "added {} to {}; the running server applies it within {} seconds",
                ids.join(", "),
                file.display(),
                config.compliance.reload_secs
            );
            ExitCode::SUCCESS
        }
        RulesCommand::Remove { ids } => {
            let list = match read_rules(&file) {
                Ok(l) => l,
                Err(c) => return c,
            };
            for id in &ids {
                if !list.iter().any(|r| &r.id == id) {
                    eprintln!("causeriectl: no rule {id} in {}", file.display());
                    return ExitCode::from(1);
                }
            }
            let kept: Vec<Rule> = list.into_iter().filter(|r| !ids.contains(&r.id)).collect();
            if let Err(c) = write_atomically(&file, &format!("{HEADER}{}", rules::to_toml(&kept))) {
                return c;
            }
            audit(storage, "compliance.rules.remove", &ids.join(","), &file).await;
            println!(
                "removed {} from {}; the running server applies it within {} seconds",
                ids.join(", "),
                file.display(),
                config.compliance.reload_secs
            );
            ExitCode::SUCCESS
        }
        RulesCommand::Test {
            from,
            to,
            groupchat,
            text,
        } => test(storage, config, &file, &from, &to, groupchat, &text).await,
    }
}

async fn audit(storage: Option<&Storage>, action: &str, subject: &str, file: &Path) {
    let Some(storage) = storage else { return };
    let event = NewAuditEvent {
        at: unix_now(),
        actor: actor(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        outcome: "ok".to_owned(),
        detail: format!("rules file {}", file.display()),
        remote_addr: None,
    };
    if let Err(e) = storage.audit.append(&event).await {
        eprintln!(
            "causeriectl: warning: the change was made but not written to the audit log: {e}"
        );
    }
}

fn actions_text(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The actions, and the account lock that goes with `terminate`: `terminate,alert+lock=30m`.
fn actions_and_lock(actions: &[Action], lock_minutes: Option<u32>) -> String {
    match lock_minutes {
        Some(m) => format!("{}+lock={m}m", actions_text(actions)),
        None => actions_text(actions),
    }
}

fn print_list(list: &[Rule], json: bool) {
    if json {
        let items: Vec<String> = list
            .iter()
            .map(|r| {
                let strings = |v: &[String]| {
                    format!(
                        "[{}]",
                        v.iter().map(|s| json_string(s)).collect::<Vec<_>>().join(",")
                    )
                };
                let actions: Vec<String> = r.actions.iter().map(|a| a.name().to_owned()).collect();
                let detectors: Vec<String> =
                    r.detectors.iter().map(|d| d.name().to_owned()).collect();
                format!(
                    "{{\"id\":{},\"description\":{},\"category\":{},\"severity\":{},\"actions\":{},\"lock_minutes\":{},\"keywords\":{},\"patterns\":{},\"detectors\":{},\"users\":{},\"escalation_steps\":{}}}",
                    json_string(&r.id),
                    json_string(&r.description),
                    json_string(&r.category),
                    json_string(r.severity.name()),
                    strings(&actions),
                    r.lock_minutes
                        .map_or_else(|| "null".to_owned(), |m| m.to_string()),
                    r.keywords.len(),
                    r.patterns.len(),
                    strings(&detectors),
                    strings(&r.users),
                    r.escalate.len()
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return;
    }
    for r in list {
        println!(
            "{} {} {} {} — {}",
            r.id,
            r.severity.name(),
            actions_and_lock(&r.actions, r.lock_minutes),
            r.category,
            r.description
        );
    }
}

async fn test(
    storage: Option<&Storage>,
    config: &Config,
    file: &Path,
    from: &str,
    to: &str,
    groupchat: bool,
    text: &str,
) -> ExitCode {
    let parse = |what: &str, s: &str| {
        causerie_jid::Jid::parse(s)
            .map(|j| j.to_bare())
            .map_err(|e| bad(&format!("--{what} {s}: {e}")))
    };
    let (sender, recipient) = match (parse("from", from), parse("to", to)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let list = match read_rules(file) {
        Ok(l) => l,
        Err(c) => return c,
    };
    let set = match compile(config, file, list) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let mut classes = Vec::new();
    for domain in [sender.domain(), recipient.domain()] {
        let local = config.server.domains.iter().any(|d| d == domain);
        let allowed = match (local, storage) {
            (true, _) => true,
            (false, Some(st)) => {
                match causerie_server::federation::allows(config, st.federation.as_ref(), domain)
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("causeriectl: federation settings: {e}");
                        return ExitCode::from(3);
                    }
                }
            }
            (false, None) => false,
        };
        classes.push(PeerClass { local, allowed });
    }
    let path = if groupchat {
        MsgPath::Groupchat
    } else if classes[0].local && classes[1].local {
        MsgPath::Chat
    } else {
        MsgPath::Federation
    };
    let describe = |c: PeerClass| match (c.local, c.allowed) {
        (true, _) => "local",
        (false, true) => "partner",
        (false, false) => "not allowed",
    };
    println!(
        "{sender} ({}) -> {recipient} ({}), path {}",
        describe(classes[0]),
        describe(classes[1]),
        match path {
            MsgPath::Chat => "chat",
            MsgPath::Federation => "federation",
            MsgPath::Groupchat => "groupchat",
        }
    );
    let view = View {
        sender: sender.as_str(),
        recipient: recipient.as_str(),
        path,
        sender_class: classes[0],
        recipient_class: classes[1],
        bodies: &[text],
        files: &[],
    };
    let hits = set.evaluate(&view);
    if hits.is_empty() {
        println!("no rule fires: the message would be delivered as written");
        return ExitCode::SUCCESS;
    }
    let mut all = Vec::new();
    let mut ranges = Vec::new();
    for h in &hits {
        let r = &set.rules()[h.rule];
        let found: Vec<String> = h
            .found
            .iter()
            .map(|f| match f.body {
                Some(_) => format!("{} \"{}\"", f.what, &text[f.range.clone()]),
                None => f.what.clone(),
            })
            .collect();
        let rate = r
            .rate
            .map(|r| format!(" (only past {} messages in {} s)", r.messages, r.per_secs))
            .unwrap_or_default();
        println!(
            "rule {} fires{rate}: {} — {}; actions {}{}",
            r.id,
            r.category,
            if found.is_empty() {
                "every message in scope".to_owned()
            } else {
                found.join(", ")
            },
            actions_and_lock(&r.actions, r.lock_minutes),
            if r.escalate.is_empty() {
                String::new()
            } else {
                format!(
                    ", escalating: {}",
                    r.escalate
                        .iter()
                        .map(|s| format!(
                            "after {} in {} s {}",
                            s.after,
                            s.within_secs,
                            actions_and_lock(&s.actions, s.lock_minutes)
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        for a in &r.actions {
            if !all.contains(a) {
                all.push(*a);
            }
        }
        if r.actions.contains(&Action::Mask) {
            ranges.extend(
                h.found
                    .iter()
                    .filter(|f| f.body.is_some())
                    .map(|f| f.range.clone()),
            );
        }
    }
    let outcome = if all.contains(&Action::Terminate) {
        "not delivered, and the sender's session would be ended".to_owned()
    } else if all.contains(&Action::Quarantine) {
        "held for review".to_owned()
    } else if all.contains(&Action::Block) {
        "not delivered; the sender would get a policy-violation error".to_owned()
    } else if all.contains(&Action::Mask) {
        format!(
            "delivered as: {}",
            causerie_policy::compliance::engine::mask(text, &ranges)
        )
    } else {
        "delivered as written".to_owned()
    };
    println!("outcome: {outcome}");
    ExitCode::SUCCESS
}
