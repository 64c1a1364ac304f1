//! `causeriectl group …`: shared roster groups, through the registry's `group.*` operations (the
//! server's admin API when it runs, the database otherwise).

use std::process::ExitCode;

use causerie_admin::ops::groups::{
    CreateArgs, GroupArgs, GroupDetails, GroupDone, GroupEntry, ListArgs, MembersArgs, MembersDone,
};
use clap::Subcommand;

use crate::client::Target;

#[derive(Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// Create an empty group. Its members will see each other in their rosters under the
    /// display name (the name when there is none). Exit code 1 if the name is taken.
    Create {
        /// The group's name, used by these commands.
        name: String,
        /// What members' clients show as the roster group.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// A note for administrators.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// One JSON object {name, applied_now} instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove a group: its members no longer see each other through it (their own roster
    /// items stay). Exit code 1 if there is no such group.
    Remove {
        name: String,
        /// One JSON object {name, applied_now} instead.
        #[arg(long)]
        json: bool,
    },
    /// Add members: accounts of this server (which must exist) or on other servers, as bare
    /// JIDs (user@domain). Members online get roster pushes and each other's presence at once.
    Add {
        name: String,
        #[arg(required = true, value_name = "JID")]
        members: Vec<String>,
        /// One JSON object {name, changed, unchanged, applied_now} instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove members; those online see the other members leave their rosters (unless their
    /// own roster keeps them).
    RemoveMember {
        name: String,
        #[arg(required = true, value_name = "JID")]
        members: Vec<String>,
        /// One JSON object {name, changed, unchanged, applied_now} instead.
        #[arg(long)]
        json: bool,
    },
    /// List groups, one `NAME: N member(s), shown as "LABEL"` line each.
    List {
        /// One JSON array [{name, display_name, description, members, created_at, created}]
        /// instead.
        #[arg(long)]
        json: bool,
    },
    /// Show a group and its members, marking members on other servers and local members
    /// whose account no longer exists. Exit code 1 if there is no such group.
    Show {
        name: String,
        /// One JSON object {name, display_name, label, description, created_at, created,
        /// members: [{jid, local, account}]} instead.
        #[arg(long)]
        json: bool,
    },
}

/// Says when a change made without the running server takes effect.
fn note_applied(applied_now: bool) {
    if !applied_now {
        eprintln!(
            "causeriectl: the server applies this change at its next start or SIGHUP \
             (members online see it then)"
        );
    }
}

pub(crate) async fn run(target: &Target, cmd: GroupCommand) -> ExitCode {
    let result = match cmd {
        GroupCommand::Create {
            name,
            display_name,
            description,
            json,
        } => {
            let args = CreateArgs {
                name,
                display_name,
                description,
            };
            target
                .call_as::<_, GroupDone>("group.create", &args, false)
                .await
                .map(|(raw, done)| {
                    if json {
                        println!("{raw}");
                    } else {
                        println!("created group {}", done.name);
                    }
                    ExitCode::SUCCESS
                })
        }
        GroupCommand::Remove { name, json } => target
            .call_as::<_, GroupDone>("group.remove", &GroupArgs { name }, false)
            .await
            .map(|(raw, done)| {
                if json {
                    println!("{raw}");
                } else {
                    println!("removed group {}", done.name);
                    note_applied(done.applied_now);
                }
                ExitCode::SUCCESS
            }),
        GroupCommand::Add {
            name,
            members,
            json,
        } => target
            .call_as::<_, MembersDone>("group.add", &MembersArgs { name, members }, false)
            .await
            .map(|(raw, done)| {
                print_members(json, &raw, &done, "added", "already a member:");
                ExitCode::SUCCESS
            }),
        GroupCommand::RemoveMember {
            name,
            members,
            json,
        } => target
            .call_as::<_, MembersDone>("group.remove-member", &MembersArgs { name, members }, false)
            .await
            .map(|(raw, done)| {
                print_members(json, &raw, &done, "removed", "not a member:");
                ExitCode::SUCCESS
            }),
        GroupCommand::List { json } => target
            .call_as::<_, Vec<GroupEntry>>("group.list", &ListArgs {}, false)
            .await
            .map(|(raw, list)| {
                if json {
                    println!("{raw}");
                } else {
                    for g in &list {
                        println!(
                            "{}: {} member(s), shown as {:?}",
                            g.name,
                            g.members,
                            g.display_name.as_deref().unwrap_or(&g.name)
                        );
                    }
                }
                ExitCode::SUCCESS
            }),
        GroupCommand::Show { name, json } => target
            .call_as::<_, GroupDetails>("group.show", &GroupArgs { name }, false)
            .await
            .map(|(raw, d)| {
                if json {
                    println!("{raw}");
                } else {
                    print_details(&d);
                }
                ExitCode::SUCCESS
            }),
    };
    result.unwrap_or_else(|code| code)
}

fn print_members(json: bool, raw: &str, done: &MembersDone, changed: &str, unchanged: &str) {
    if json {
        println!("{raw}");
        return;
    }
    for m in &done.changed {
        println!("{changed} {m}");
    }
    for m in &done.unchanged {
        println!("{unchanged} {m}");
    }
    if !done.changed.is_empty() {
        note_applied(done.applied_now);
    }
}

fn print_details(d: &GroupDetails) {
    println!("name: {}", d.name);
    println!("shown as: {}", d.label);
    if let Some(text) = &d.description {
        println!("description: {text}");
    }
    println!("created: {}", d.created);
    if d.members.is_empty() {
        println!("members: none");
        return;
    }
    println!("members:");
    for m in &d.members {
        match (m.local, m.account) {
            (false, _) => println!("  {} (on another server)", m.jid),
            (true, Some(false)) => println!("  {} (no such account)", m.jid),
            (true, _) => println!("  {}", m.jid),
        }
    }
}
