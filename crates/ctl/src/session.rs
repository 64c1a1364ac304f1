//! `causeriectl session …`, `announce` and `stats`: what happens on the running server.

use std::process::ExitCode;

use causerie_admin::ops::announce::{AnnounceArgs, Announced, Audience};
use causerie_admin::ops::sessions::{
    KickArgs, Kicked, ListArgs, SessionEntry, SessionListing, ShowArgs,
};
use causerie_admin::ops::stats::{NoArgs, ServerStats};
use clap::{Args, Subcommand};

use crate::client::Target;
use crate::users::session_line;

#[derive(Subcommand, Debug)]
pub(crate) enum SessionCommand {
    /// List client sessions by JID, one `JID PEER since TIME PRESENCE queued=N FLAGS` line each.
    /// Needs the running server (exit code 4 without it).
    List {
        /// Only the sessions of this account (user@domain) or of this domain.
        filter: Option<String>,
        /// At most this many (default 1000); a note on standard error says when the limit cut
        /// the listing short.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON object {total, sessions: [{id, jid, peer, connected_at, connected,
        /// available, priority, queued, flags}]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Show one session (a full JID, user@domain/resource). Exit code 1 if there is none.
    Show {
        jid: String,
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Disconnect a session (a full JID) or every session of an account (a bare JID). The
    /// client gets a `<policy-violation/>` stream error with the reason as its text, then the
    /// stream closes. Recorded in the audit log. Exit code 1 if there is no such session.
    Kick {
        jid: String,
        /// Shown to the user (default: "disconnected by an administrator").
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// One JSON object {closed, reason} instead.
        #[arg(long)]
        json: bool,
    },
}

/// `causeriectl announce`.
#[derive(Args, Debug)]
pub(crate) struct AnnounceCommand {
    /// The message.
    text: String,
    /// Every user currently connected, as a headline message that is not kept (the default).
    /// Needs the running server.
    #[arg(long, conflicts_with = "all")]
    online: bool,
    /// Every account: connected users get it now, the others as an offline message at their
    /// next login. Without the server, it is stored for every account.
    #[arg(long)]
    all: bool,
    /// A subject line.
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// One JSON object {to, sessions, users_online, stored_offline, failed, failures} instead.
    #[arg(long)]
    json: bool,
}

/// `causeriectl stats`.
#[derive(Args, Debug)]
pub(crate) struct StatsCommand {
    /// One JSON object instead.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(target: &Target, cmd: SessionCommand) -> ExitCode {
    let result = match cmd {
        SessionCommand::List {
            filter,
            limit,
            json,
        } => target
            .call_as::<_, SessionListing>("session.list", &ListArgs { filter, limit }, true)
            .await
            .map(|(raw, l)| {
                if json {
                    println!("{raw}");
                } else {
                    for s in &l.sessions {
                        println!("{}", session_line(s));
                    }
                }
                if l.total > l.sessions.len() {
                    eprintln!(
                        "causeriectl: showing {} of {} sessions; raise --limit for more",
                        l.sessions.len(),
                        l.total
                    );
                }
                ExitCode::SUCCESS
            }),
        SessionCommand::Show { jid, json } => target
            .call_as::<_, SessionEntry>("session.show", &ShowArgs { jid }, true)
            .await
            .map(|(raw, s)| {
                if json {
                    println!("{raw}");
                } else {
                    println!("jid: {}", s.jid);
                    println!("session: {}", s.id);
                    println!("peer: {}", s.peer.as_deref().unwrap_or("-"));
                    println!("connected: {}", s.connected);
                    println!(
                        "presence: {}",
                        if s.available {
                            format!("available, priority {}", s.priority)
                        } else {
                            "unavailable".to_owned()
                        }
                    );
                    println!("queued: {}", s.queued);
                    println!(
                        "flags: {}",
                        if s.flags.is_empty() {
                            "-".to_owned()
                        } else {
                            s.flags.join(",")
                        }
                    );
                }
                ExitCode::SUCCESS
            }),
        SessionCommand::Kick { jid, reason, json } => target
            .call_as::<_, Kicked>("session.kick", &KickArgs { jid, reason }, true)
            .await
            .map(|(raw, k)| {
                if json {
                    println!("{raw}");
                } else {
                    for jid in &k.closed {
                        println!("disconnected {jid}");
                    }
                }
                ExitCode::SUCCESS
            }),
    };
    result.unwrap_or_else(|code| code)
}

pub(crate) async fn announce(target: &Target, cmd: AnnounceCommand) -> ExitCode {
    let to = if cmd.all {
        Audience::All
    } else {
        Audience::Online
    };
    let args = AnnounceArgs {
        text: cmd.text,
        subject: cmd.subject,
        to,
    };
    // To online users only the running server can deliver; to all, offline storage can.
    let needs_server = to == Audience::Online;
    match target
        .call_as::<_, Announced>("announce", &args, needs_server)
        .await
    {
        Ok((raw, a)) => {
            if cmd.json {
                println!("{raw}");
            } else {
                println!(
                    "delivered to {} session(s) of {} user(s); stored for {} offline user(s); {} failed",
                    a.sessions, a.users_online, a.stored_offline, a.failed
                );
                for f in &a.failures {
                    eprintln!("causeriectl: not delivered to {f}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub(crate) async fn stats(target: &Target, cmd: StatsCommand) -> ExitCode {
    match target
        .call_as::<_, ServerStats>("stats", &NoArgs {}, true)
        .await
    {
        Ok((raw, s)) => {
            if cmd.json {
                println!("{raw}");
                return ExitCode::SUCCESS;
            }
            println!("uptime: {}s", s.uptime_secs);
            println!(
                "stanzas: {} in total; {:.2}/s over 10 s, {:.2}/s over 60 s",
                s.stanzas_total, s.stanzas_per_sec_10s, s.stanzas_per_sec_60s
            );
            let c = &s.c2s;
            println!(
                "clients: {} connection(s), {} session(s) ({} available) of {} account(s) out of {}",
                c.connections, c.sessions, c.available, c.accounts_online, s.accounts
            );
            println!(
                "client queues: {} stanza(s) waiting, longest {}, {} session(s) overloaded",
                c.queued, c.max_queued, c.overloaded
            );
            match &s.s2s {
                None => println!("federation: off"),
                Some(f) => {
                    println!(
                        "federation: {} connection(s), {} stream(s), {} stanza(s) queued",
                        f.connections,
                        f.streams.len(),
                        f.queued
                    );
                    for st in &f.streams {
                        println!(
                            "  {} {} -> {} ({})",
                            st.direction, st.local, st.remote, st.method
                        );
                    }
                    for q in f.queues.iter().filter(|q| q.queued > 0) {
                        println!("  queue {} -> {}: {}", q.local, q.remote, q.queued);
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
