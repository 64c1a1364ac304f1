//! `causeriectl user …`: accounts, through the registry's `user.*` operations (the server's
//! admin API when it runs, the database otherwise).

use std::process::ExitCode;

use crate::progress::Progress;

use causerie_admin::accounts::{self, UserError};
use causerie_admin::ops::locks::{LockArgs, Locked, Unlocked};
use causerie_admin::ops::sessions::SessionEntry;
use causerie_admin::ops::users::{
    AccountArgs, AccountDone, ImportArgs, Imported, ListArgs, Password, PasswordArgs, Removed,
    UserDetails, UserEntry,
};

use crate::UserCommand;
use crate::client::Target;

/// Prints the JSON answer, or the text that `text` makes of it.
fn show<T>(json: bool, raw: &str, value: &T, text: impl Fn(&T)) -> ExitCode {
    if json {
        println!("{raw}");
    } else {
        text(value);
    }
    ExitCode::SUCCESS
}

/// Arguments refused before anything was sent (exit code 2, like the registry's `BadInput`).
fn refuse(e: UserError) -> ExitCode {
    crate::client::failed(&causerie_admin::AdminError::from(e))
}

pub(crate) async fn run(target: &Target, cmd: UserCommand) -> ExitCode {
    let result = match cmd {
        UserCommand::Add { jid, json } => {
            // The address is checked before a password is asked for; the server checks again.
            if let Err(e) = accounts::new_account_jid(&target.config, &jid) {
                return refuse(e);
            }
            let password = match crate::read_password(true) {
                Ok(p) => Password(p),
                Err(e) => return refuse(e),
            };
            let args = PasswordArgs { jid, password };
            target
                .call_as::<_, AccountDone>("user.add", &args, false)
                .await
                .map(|(raw, done)| show(json, &raw, &done, |d| println!("created {}", d.jid)))
        }
        UserCommand::Passwd { jid, json } => {
            if let Err(e) = accounts::account_jid(&target.config, &jid) {
                return refuse(e);
            }
            let password = match crate::read_password(true) {
                Ok(p) => Password(p),
                Err(e) => return refuse(e),
            };
            let args = PasswordArgs { jid, password };
            target
                .call_as::<_, AccountDone>("user.passwd", &args, false)
                .await
                .map(|(raw, done)| {
                    show(json, &raw, &done, |d| {
                        println!("password changed for {}", d.jid)
                    })
                })
        }
        UserCommand::Remove { jid, json } => target
            .call_as::<_, Removed>("user.remove", &AccountArgs { jid }, false)
            .await
            .map(|(raw, done)| {
                show(json, &raw, &done, |d| {
                    let mut line = format!("removed {}", d.jid);
                    if d.sessions_closed > 0 {
                        line.push_str(&format!("; {} session(s) closed", d.sessions_closed));
                    }
                    if !d.groups_left.is_empty() {
                        line.push_str(&format!("; left group(s) {}", d.groups_left.join(", ")));
                    }
                    println!("{line}");
                })
            }),
        UserCommand::List { domain, json } => target
            .call_as::<_, Vec<UserEntry>>("user.list", &ListArgs { domain }, false)
            .await
            .map(|(raw, list)| {
                show(json, &raw, &list, |list| {
                    for u in list {
                        match &u.lock {
                            Some(l) => println!("{} ({})", u.jid, l.describe()),
                            None => println!("{}", u.jid),
                        }
                    }
                })
            }),
        UserCommand::Show { jid, json } => target
            .call_as::<_, UserDetails>("user.show", &AccountArgs { jid }, false)
            .await
            .map(|(raw, d)| show(json, &raw, &d, print_details)),
        UserCommand::Lock {
            jid,
            minutes,
            reason,
            json,
        } => {
            let args = LockArgs {
                jid,
                minutes,
                reason,
            };
            target
                .call_as::<_, Locked>("user.lock", &args, false)
                .await
                .map(|(raw, done)| {
                    show(json, &raw, &done, |d| {
                        println!("{} {}", d.jid, d.lock.describe());
                        if d.sessions_closed > 0 {
                            println!("{} session(s) closed", d.sessions_closed);
                        }
                    })
                })
        }
        UserCommand::Unlock { jid, json } => target
            .call_as::<_, Unlocked>("user.unlock", &AccountArgs { jid }, false)
            .await
            .map(|(raw, done)| {
                show(json, &raw, &done, |d| {
                    if d.was_locked {
                        println!("{} unlocked", d.jid);
                    } else {
                        println!("{} was not locked", d.jid);
                    }
                })
            }),
        UserCommand::Import { file, json } => {
            let name = file.display().to_string();
            let csv = match std::fs::read(&file) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(_) => {
                        eprintln!("causeriectl: {name}: not UTF-8 text");
                        return ExitCode::from(2);
                    }
                },
                Err(e) => {
                    eprintln!("causeriectl: {name}: {e}");
                    return ExitCode::from(2);
                }
            };
            // Checked here first so that a bad line is named before any work starts.
            let n = match accounts::parse_import(&target.config, &name, &csv) {
                Ok(a) => a.len(),
                Err(e) => return refuse(e),
            };
            let started = std::time::Instant::now();
            eprintln!("deriving credentials for {n} accounts…");
            let args = ImportArgs { file: name, csv };
            // One request, all or nothing: the bar turns while the server works.
            let bar = Progress::new("importing", None);
            let call = target.call_as::<_, Imported>("user.import", &args, false);
            let result = crate::progress::while_waiting(&bar, call).await;
            bar.finish();
            result.map(|(raw, done)| {
                show(json, &raw, &done, |d| {
                    println!(
                        "imported {} accounts in {:.1}s",
                        d.imported,
                        started.elapsed().as_secs_f64()
                    )
                })
            })
        }
    };
    result.unwrap_or_else(|code| code)
}

fn print_details(d: &UserDetails) {
    println!("jid: {}", d.jid);
    println!("created: {}", d.created);
    let creds: Vec<String> = d
        .credentials
        .iter()
        .map(|c| format!("SCRAM-{} ({} iterations)", c.hash, c.iterations))
        .collect();
    println!(
        "credentials: {}",
        if creds.is_empty() {
            "none".to_owned()
        } else {
            creds.join(", ")
        }
    );
    println!("offline messages: {}", d.offline_messages);
    match &d.lock {
        Some(l) => println!("lock: {}", l.describe()),
        None => println!("lock: none"),
    }
    match &d.sessions {
        None => println!("sessions: unknown (the server is not running)"),
        Some(list) if list.is_empty() => println!("sessions: none"),
        Some(list) => {
            println!("sessions:");
            for s in list {
                println!("  {}", session_line(s));
            }
        }
    }
}

/// One session on one line: `JID PEER since TIME available|unavailable(prio) queued=N flags`.
pub(crate) fn session_line(s: &SessionEntry) -> String {
    let presence = if s.available {
        format!("available({})", s.priority)
    } else {
        "unavailable".to_owned()
    };
    let mut line = format!(
        "{} {} since {} {} queued={}",
        s.jid,
        s.peer.as_deref().unwrap_or("-"),
        s.connected,
        presence,
        s.queued
    );
    if !s.flags.is_empty() {
        line.push(' ');
        line.push_str(&s.flags.join(","));
    }
    line
}
