//! The commands of the profile (XEP-0133 §4), each mapped onto operations of the registry: the
//! form it asks to fill in, and what it does with the submission.

use std::collections::BTreeSet;

use causerie_xml::Element;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::NS_ADMIN;
use super::form::{self, Values};
use crate::ops::announce::{Announce, AnnounceArgs, Audience};
use crate::ops::locks::{LockArgs, UserLock, UserUnlock};
use crate::ops::sessions::{self, KickArgs, SessionKick, SessionList};
use crate::ops::stats::{NoArgs, Stats};
use crate::ops::users::{AccountArgs, Password, PasswordArgs, UserAdd, UserPasswd, UserRemove};
use crate::{Actor, AdminError, Context, Operation, Registry};

/// Accounts one command acts on at most (`accountjids`); more is refused.
pub const MAX_TARGETS: usize = 100;
/// Online users a list shows at most, whatever `max_items` asks (`none` included).
pub const MAX_LISTED: usize = 1000;
/// The reason kept with the lock of an account disabled by `disable-user`.
pub const DISABLE_REASON: &str = "disabled by an administrator (disable-user)";

/// The choices of `max_items` (XEP-0133 §4.20).
const MAX_ITEMS: [&str; 7] = ["25", "50", "75", "100", "150", "200", "none"];

/// A command of the profile, by the part of its node after `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    AddUser,
    DeleteUser,
    DisableUser,
    ReenableUser,
    EndUserSession,
    ChangeUserPassword,
    GetOnlineUsersList,
    /// The same list under the shorter node some servers and libraries use.
    GetOnlineUsers,
    GetOnlineUsersNum,
    GetRegisteredUsersNum,
    Announce,
}

impl Node {
    /// Every command, in the order service discovery lists them.
    pub const ALL: [Node; 11] = [
        Node::AddUser,
        Node::DeleteUser,
        Node::DisableUser,
        Node::ReenableUser,
        Node::EndUserSession,
        Node::ChangeUserPassword,
        Node::GetOnlineUsersList,
        Node::GetOnlineUsers,
        Node::GetOnlineUsersNum,
        Node::GetRegisteredUsersNum,
        Node::Announce,
    ];

    /// The name after `#` in the node (`add-user`).
    pub fn short(self) -> &'static str {
        match self {
            Node::AddUser => "add-user",
            Node::DeleteUser => "delete-user",
            Node::DisableUser => "disable-user",
            Node::ReenableUser => "reenable-user",
            Node::EndUserSession => "end-user-session",
            Node::ChangeUserPassword => "change-user-password",
            Node::GetOnlineUsersList => "get-online-users-list",
            Node::GetOnlineUsers => "get-online-users",
            Node::GetOnlineUsersNum => "get-online-users-num",
            Node::GetRegisteredUsersNum => "get-registered-users-num",
            Node::Announce => "announce",
        }
    }

    /// The disco node (`http://jabber.org/protocol/admin#add-user`).
    pub fn uri(self) -> String {
        format!("{NS_ADMIN}#{}", self.short())
    }

    /// The name service discovery shows.
    pub fn label(self) -> &'static str {
        match self {
            Node::AddUser => "Add User",
            Node::DeleteUser => "Delete User",
            Node::DisableUser => "Disable User",
            Node::ReenableUser => "Re-Enable User",
            Node::EndUserSession => "End User Session",
            Node::ChangeUserPassword => "Change User Password",
            Node::GetOnlineUsersList => "Get List of Online Users",
            Node::GetOnlineUsers => "Get Online Users",
            Node::GetOnlineUsersNum => "Get Number of Online Users",
            Node::GetRegisteredUsersNum => "Get Number of Registered Users",
            Node::Announce => "Send Announcement to Online Users",
        }
    }

    /// The form the command asks to fill in; `None` for those that answer at once.
    pub(super) fn form(self) -> Option<Element> {
        let accounts = |title: &str, what: &str, label: &str| {
            form::form(
                title,
                &format!("Fill out this form to {what}."),
                vec![form::required("accountjids", "jid-multi", label)],
            )
        };
        Some(match self {
            Node::AddUser => form::form(
                "Adding a User",
                "Fill out this form to add a user.",
                vec![
                    form::required(
                        "accountjid",
                        "jid-single",
                        "The Jabber ID for the account to be added",
                    ),
                    form::required("password", "text-private", "The password for this account"),
                    form::field("password-verify", "text-private", "Retype password"),
                ],
            ),
            Node::DeleteUser => accounts(
                "Deleting a User",
                "delete users and everything stored for them",
                "The Jabber ID(s) to delete",
            ),
            Node::DisableUser => accounts(
                "Disabling a User",
                "disable users: their sessions end and they cannot log in until re-enabled",
                "The Jabber ID(s) to disable",
            ),
            Node::ReenableUser => accounts(
                "Re-Enabling a User",
                "re-enable users",
                "The Jabber ID(s) to re-enable",
            ),
            Node::EndUserSession => accounts(
                "Ending a User Session",
                "end every session of users",
                "The Jabber ID(s) for which to end sessions",
            ),
            Node::ChangeUserPassword => form::form(
                "Changing a User Password",
                "Fill out this form to change a user's password.",
                vec![
                    form::required("accountjid", "jid-single", "The Jabber ID for this account"),
                    form::required("password", "text-private", "The password for this account"),
                ],
            ),
            Node::GetOnlineUsersList | Node::GetOnlineUsers => form::form(
                "Requesting List of Online Users",
                &format!(
                    "Fill out this form to request the online users of this service \
                     (at most {MAX_LISTED})."
                ),
                vec![form::choice(
                    "max_items",
                    "Maximum number of items to show",
                    &MAX_ITEMS,
                )],
            ),
            Node::Announce => form::form(
                "Making an Announcement",
                "Fill out this form to make an announcement to all online users of this service.",
                vec![
                    form::field("subject", "text-single", "Subject"),
                    form::required("announcement", "text-multi", "Announcement"),
                ],
            ),
            Node::GetOnlineUsersNum | Node::GetRegisteredUsersNum => return None,
        })
    }

    /// Runs the command on a submission (empty for the commands without a form).
    pub(super) async fn run(self, call: &Caller<'_>, v: &Values) -> Result<Answer, Failure> {
        match self {
            Node::AddUser => {
                let (jid, password) = account_and_password(v)?;
                // Left empty, the field was not used (clients send every field of a form).
                if let Some(again) = v.single("password-verify").filter(|a| !a.is_empty())
                    && again != password.0
                {
                    return Err(Failure::Form("the two passwords differ".to_owned()));
                }
                let done = call.call(&UserAdd, PasswordArgs { jid, password }).await?;
                Ok(Answer::note(Note::Info, format!("{} was added.", done.jid)))
            }
            Node::ChangeUserPassword => {
                let (jid, password) = account_and_password(v)?;
                let done = call
                    .call(&UserPasswd, PasswordArgs { jid, password })
                    .await?;
                Ok(Answer::note(
                    Note::Info,
                    format!("The password of {} was changed.", done.jid),
                ))
            }
            Node::DeleteUser => {
                batch(
                    call,
                    targets(v)?,
                    &UserRemove,
                    |jid| AccountArgs { jid },
                    |r| format!("{} was deleted{}.", r.jid, closed(r.sessions_closed)),
                )
                .await
            }
            Node::DisableUser => {
                let lock = |jid| LockArgs {
                    jid,
                    minutes: None,
                    reason: Some(DISABLE_REASON.to_owned()),
                };
                batch(call, targets(v)?, &UserLock, lock, |r| {
                    format!("{} was disabled{}.", r.jid, closed(r.sessions_closed))
                })
                .await
            }
            Node::ReenableUser => {
                batch(
                    call,
                    targets(v)?,
                    &UserUnlock,
                    |jid| AccountArgs { jid },
                    |r| {
                        if r.was_locked {
                            format!("{} was re-enabled.", r.jid)
                        } else {
                            format!("{} was not disabled.", r.jid)
                        }
                    },
                )
                .await
            }
            Node::EndUserSession => {
                let kick = |jid| KickArgs { jid, reason: None };
                batch(call, targets(v)?, &SessionKick, kick, |r| {
                    format!("Ended {}.", r.closed.join(", "))
                })
                .await
            }
            Node::GetOnlineUsersList | Node::GetOnlineUsers => online_users(call, v).await,
            Node::GetOnlineUsersNum => {
                let stats = call.call(&Stats, NoArgs {}).await?;
                Ok(Answer::form(form::result(vec![form::values(
                    "onlineusersnum",
                    "text-single",
                    "The number of online users",
                    [stats.c2s.accounts_online.to_string()],
                )])))
            }
            Node::GetRegisteredUsersNum => {
                let stats = call.call(&Stats, NoArgs {}).await?;
                Ok(Answer::form(form::result(vec![form::values(
                    "registeredusersnum",
                    "text-single",
                    "The number of registered users",
                    [stats.accounts.to_string()],
                )])))
            }
            Node::Announce => {
                // XEP-0133 §4.23: one value per line; `body` is accepted from clients that
                // name the field after the message element.
                let lines = match v.multi("announcement") {
                    [] => v.multi("body"),
                    lines => lines,
                };
                if lines.is_empty() {
                    return Err(Failure::Form("the form has no announcement".to_owned()));
                }
                let subject = v
                    .single("subject")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                let args = AnnounceArgs {
                    text: lines.join("\n"),
                    subject,
                    to: Audience::Online,
                };
                let done = call.call(&Announce, args).await?;
                Ok(Answer::note(
                    Note::Info,
                    format!(
                        "The announcement was sent to {} session(s) of {} user(s).",
                        done.sessions, done.users_online
                    ),
                ))
            }
        }
    }
}

/// `; N session(s) ended` when some were.
fn closed(n: usize) -> String {
    match n {
        0 => String::new(),
        n => format!("; {n} session(s) ended"),
    }
}

/// The kind of a note (XEP-0050 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Note {
    Info,
    Warn,
    Error,
}

impl Note {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Note::Info => "info",
            Note::Warn => "warn",
            Note::Error => "error",
        }
    }
}

/// What a completed command answers: a note for the administrator, a result form, or both.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub(super) note: Option<(Note, String)>,
    pub(super) form: Option<Element>,
}

impl Answer {
    fn note(kind: Note, text: String) -> Answer {
        Answer {
            note: Some((kind, text)),
            form: None,
        }
    }

    fn form(form: Element) -> Answer {
        Answer {
            note: None,
            form: Some(form),
        }
    }
}

/// Why a command did not complete.
#[derive(Debug)]
pub(super) enum Failure {
    /// The submitted form lacks a field or holds a value the command cannot use; the
    /// administrator may correct it and submit again.
    Form(String),
    /// The operation refused or failed.
    Op(AdminError),
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Failure {
        Failure::Op(e)
    }
}

/// Runs operations of the registry for one administrator.
pub(super) struct Caller<'a> {
    pub(super) registry: &'a Registry,
    pub(super) ctx: &'a Context,
    pub(super) actor: Actor,
}

impl Caller<'_> {
    /// Runs `op` with `args` through [`Registry::execute`], as the admin API would: checked,
    /// audited, and decoded back into the operation's result type.
    async fn call<O>(&self, op: &O, args: O::Args) -> Result<O::Output, AdminError>
    where
        O: Operation,
        O::Args: Serialize,
        O::Output: DeserializeOwned,
    {
        let name = op.info().name;
        let args = serde_json::to_value(args)
            .map_err(|e| AdminError::internal(format!("encoding the arguments of {name}: {e}")))?;
        let json = self
            .registry
            .execute(self.ctx, &self.actor, &name, args)
            .await?;
        serde_json::from_str(&json)
            .map_err(|e| AdminError::internal(format!("reading the result of {name}: {e}")))
    }
}

/// `accountjid` and `password`, both required.
fn account_and_password(v: &Values) -> Result<(String, Password), Failure> {
    let jid = v
        .single("accountjid")
        .map(str::trim)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| Failure::Form("the form has no accountjid".to_owned()))?;
    let password = v
        .single("password")
        .ok_or_else(|| Failure::Form("the form has no password".to_owned()))?;
    Ok((jid.to_owned(), Password(password.to_owned())))
}

/// The accounts of `accountjids`, once each, in the order given. A client may send one JID
/// per value or several in one value, one per line.
fn targets(v: &Values) -> Result<Vec<String>, Failure> {
    let mut out: Vec<String> = Vec::new();
    for jid in v
        .multi("accountjids")
        .iter()
        .flat_map(|s| s.split_whitespace())
    {
        if out.iter().any(|j| j == jid) {
            continue;
        }
        if out.len() == MAX_TARGETS {
            return Err(Failure::Form(format!(
                "at most {MAX_TARGETS} accounts at once"
            )));
        }
        out.push(jid.to_owned());
    }
    if out.is_empty() {
        return Err(Failure::Form(
            "the form names no account in accountjids".to_owned(),
        ));
    }
    Ok(out)
}

/// Runs `op` once per account, each call audited on its own, and sums up in one note: one line
/// per account, `info` when all succeeded, `error` when none did, `warn` in between.
async fn batch<O>(
    call: &Caller<'_>,
    targets: Vec<String>,
    op: &O,
    args: impl Fn(String) -> O::Args,
    done: impl Fn(O::Output) -> String,
) -> Result<Answer, Failure>
where
    O: Operation,
    O::Args: Serialize,
    O::Output: DeserializeOwned,
{
    let (mut lines, mut failed) = (Vec::with_capacity(targets.len()), 0);
    for jid in targets {
        match call.call(op, args(jid.clone())).await {
            Ok(out) => lines.push(done(out)),
            Err(e) => {
                failed += 1;
                lines.push(format!("{jid}: {}", e.message));
            }
        }
    }
    let kind = match failed {
        0 => Note::Info,
        n if n == lines.len() => Note::Error,
        _ => Note::Warn,
    };
    Ok(Answer::note(kind, lines.join("\n")))
}

/// `max_items`: a number, or `none` (or nothing) for as many as a list shows.
fn max_items(v: &Values) -> Result<usize, Failure> {
    match v.single("max_items").map(str::trim) {
        None | Some("" | "none") => Ok(MAX_LISTED),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| n.min(MAX_LISTED))
            .ok_or_else(|| {
                Failure::Form(format!(
                    "max_items must be a positive number or none, not {n:?}"
                ))
            }),
    }
}

/// XEP-0133 §4.20: the accounts with at least one session, as bare JIDs in order, from
/// `session.list`. Sessions are listed by full JID, so an account's sessions are next to each
/// other and the first `max × max_sessions_per_user` sessions hold the first `max` accounts.
async fn online_users(call: &Caller<'_>, v: &Values) -> Result<Answer, Failure> {
    let max = max_items(v)?;
    let per_account = call.ctx.config.limits.max_sessions_per_user.max(1);
    let limit = max
        .saturating_mul(per_account)
        .saturating_add(1)
        .min(sessions::MAX_LIST_LIMIT);
    let listing = call
        .call(
            &SessionList,
            sessions::ListArgs {
                filter: None,
                limit: Some(limit),
            },
        )
        .await?;
    let accounts: BTreeSet<&str> = listing
        .sessions
        .iter()
        .map(|s| {
            s.jid
                .split_once('/')
                .map_or(s.jid.as_str(), |(bare, _)| bare)
        })
        .collect();
    let more = accounts.len() > max || listing.total > listing.sessions.len();
    let shown: Vec<&str> = accounts.into_iter().take(max).collect();
    let mut answer = Answer::form(form::result(vec![form::values(
        "onlineuserjids",
        "jid-multi",
        "The list of all online users",
        &shown,
    )]));
    if more {
        answer.note = Some((
            Note::Warn,
            format!("More users are online than the {} shown.", shown.len()),
        ));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_as_the_profile_says() {
        assert_eq!(
            Node::AddUser.uri(),
            "http://jabber.org/protocol/admin#add-user"
        );
        let mut shorts: Vec<&str> = Node::ALL.iter().map(|n| n.short()).collect();
        shorts.sort_unstable();
        shorts.dedup();
        assert_eq!(shorts.len(), Node::ALL.len(), "no node twice");
        for n in Node::ALL {
            let answers_at_once =
                matches!(n, Node::GetOnlineUsersNum | Node::GetRegisteredUsersNum);
            assert_eq!(n.form().is_none(), answers_at_once, "{n:?}");
        }
    }
}
