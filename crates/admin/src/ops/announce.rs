//! `announce`: a message from the server to every online user, or to every user (those
//! offline get it as an offline message, XEP-0160): the way to reach everybody when other
//! channels are down.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{Core, OfflineOutcome, OutStanza, SessionHandle};
use causerie_jid::BareJid;
use causerie_stanza::ns;
use causerie_xml::Element;
use serde::{Deserialize, Serialize};

use super::{check_text, time};
use crate::registry::unix_now;
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(Announce);
}

/// Longest announcement text, in bytes (also bounded by the stanza limit).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Longest subject, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Failures named in the result; the others are counted.
const MAX_FAILURES_LISTED: usize = 20;
/// XEP-0203 Delayed Delivery.
const NS_DELAY: &str = "urn:xmpp:delay";

/// Who gets an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every session bound now, as a `headline` (not kept for later, RFC 6121 §5.2.2).
    #[default]
    Online,
    /// Every account: each available session now, and the accounts without one as an
    /// offline message (`normal`).
    All,
}

/// Arguments of `announce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceArgs {
    pub text: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub to: Audience,
}

/// The result of `announce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub to: Audience,
    /// Sessions the message was handed to now.
    pub sessions: usize,
    /// Accounts reached now (through at least one session).
    pub users_online: usize,
    /// Accounts whose copy was stored as an offline message.
    pub stored_offline: usize,
    /// Accounts that could not be reached (offline storage full or off).
    pub failed: usize,
    /// The first failures, `jid: why`.
    pub failures: Vec<String>,
}

/// `announce`.
pub struct Announce;

fn message(domain: &str, to: &str, kind: &str, args: &AnnounceArgs, id: &str) -> Element {
    let mut m = Element::new("message", ns::CLIENT)
        .with_attr("from", domain)
        .with_attr("to", to)
        .with_attr("type", kind)
        .with_attr("id", id);
    if let Some(subject) = &args.subject {
        m.push_child(Element::new("subject", ns::CLIENT).with_text(subject.as_str()));
    }
    m.push_child(Element::new("body", ns::CLIENT).with_text(args.text.as_str()));
    m
}

impl Announce {
    fn check(ctx: &Context, args: &AnnounceArgs) -> Result<(), AdminError> {
        if args.text.trim().is_empty() {
            return Err(AdminError::bad_input("the announcement is empty"));
        }
        let max = MAX_TEXT_BYTES.min(ctx.config.limits.max_stanza_bytes.saturating_sub(1024));
        check_text("announcement", &args.text, max)?;
        if let Some(s) = &args.subject {
            check_text("subject", s, MAX_SUBJECT_BYTES)?;
        }
        Ok(())
    }

    /// Hands the message to each of `sessions`.
    fn deliver(
        core: &Arc<Core>,
        sessions: &[SessionHandle],
        kind: &str,
        args: &AnnounceArgs,
        id: &str,
    ) -> usize {
        for s in sessions {
            let to = s.jid();
            let out = OutStanza::new(message(to.domain(), to.as_str(), kind, args, id));
            core.deliver(s, &out);
        }
        sessions.len()
    }
}

#[async_trait]
impl Operation for Announce {
    type Args = AnnounceArgs;
    type Output = Announced;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "announce",
            "send a message to every online user, or to every user (offline ones get it later)",
            true,
            false,
            Permission::Operate,
        )
    }

    fn subject(&self, args: &AnnounceArgs) -> String {
        match args.to {
            Audience::Online => "online".to_owned(),
            Audience::All => "all".to_owned(),
        }
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: AnnounceArgs,
    ) -> Result<Done<Announced>, AdminError> {
        Announce::check(ctx, &args)?;
        let now = unix_now();
        let id = format!("announce-{now}");
        let mut done = Announced {
            to: args.to,
            sessions: 0,
            users_online: 0,
            stored_offline: 0,
            failed: 0,
            failures: Vec::new(),
        };
        let fail = |done: &mut Announced, jid: &str, why: String| {
            done.failed += 1;
            if done.failures.len() < MAX_FAILURES_LISTED {
                done.failures.push(format!("{jid}: {why}"));
            }
        };
        match (args.to, &ctx.live) {
            (Audience::Online, None) => {
                return Err(AdminError::unavailable(
                    "an announcement to online users needs the running server; \
                     `--all` stores it for every account instead",
                ));
            }
            (Audience::Online, Some(live)) => {
                let mut all = live.core.registry.all();
                all.sort_by(|a, b| a.jid().as_str().cmp(b.jid().as_str()));
                done.sessions = Announce::deliver(&live.core, &all, "headline", &args, &id);
                let mut accounts: Vec<BareJid> = all.iter().map(|s| s.jid().to_bare()).collect();
                accounts.dedup();
                done.users_online = accounts.len();
            }
            (Audience::All, live) => {
                for user in ctx.storage.users.list_users(None).await? {
                    let jid = format!("{}@{}", user.username, user.domain);
                    let Ok(bare) = BareJid::parse(&jid) else {
                        fail(&mut done, &jid, "not a valid JID".to_owned());
                        continue;
                    };
                    let online: Vec<SessionHandle> = live
                        .as_ref()
                        .map(|l| {
                            l.core
                                .registry
                                .resources(&bare)
                                .into_iter()
                                .filter(|s| s.info.is_available())
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(live) = live
                        && !online.is_empty()
                    {
                        done.sessions +=
                            Announce::deliver(&live.core, &online, "normal", &args, &id);
                        done.users_online += 1;
                        continue;
                    }
                    let msg = message(&user.domain, &jid, "normal", &args, &id);
                    let stored = match live {
                        // The offline module stamps the delay and delivers at the next login.
                        Some(live) => match live.core.store_offline(&bare, &msg).await {
                            OfflineOutcome::Stored => Ok(()),
                            OfflineOutcome::Bounce(e) => Err(e
                                .text
                                .clone()
                                .unwrap_or_else(|| e.condition.name().to_owned())),
                        },
                        None => store_directly(ctx, &user.username, &user.domain, msg, now).await,
                    };
                    match stored {
                        Ok(()) => done.stored_offline += 1,
                        Err(why) => fail(&mut done, &jid, why),
                    }
                }
            }
        }
        let detail = format!(
            "to {}: {} session(s) of {} account(s) now, {} stored offline, {} failed; {}{}",
            self.subject(&args),
            done.sessions,
            done.users_online,
            done.stored_offline,
            done.failed,
            args.subject
                .as_deref()
                .map(|s| format!("subject: {s}; "))
                .unwrap_or_default(),
            args.text
        );
        Ok(Done::new(done, detail))
    }
}

/// Without the server: the message is written to the offline store as the offline module
/// would write it (XEP-0203 `<delay/>` from the domain, within `im.offline_quota`).
async fn store_directly(
    ctx: &Context,
    username: &str,
    domain: &str,
    mut msg: Element,
    now: i64,
) -> Result<(), String> {
    let quota = ctx.config.im.offline_quota;
    if quota == 0 {
        return Err("offline messages are not stored on this server (im.offline_quota = 0)".into());
    }
    msg.push_child(
        Element::new("delay", NS_DELAY)
            .with_attr("from", domain)
            .with_attr("stamp", time(now))
            .with_text("Offline Storage"),
    );
    match ctx
        .storage
        .offline
        .push(username, domain, &msg.to_xml(), now, quota)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err("the offline message storage is full".into()),
        Err(e) => Err(e.to_string()),
    }
}
