//! Accounts: `user.add`, `user.remove`, `user.passwd`, `user.list`, `user.show`,
//! `user.import` (locks: [`super::locks`]).

use async_trait::async_trait;
use causerie_stanza::{StreamError, StreamErrorCondition};
use serde::{Deserialize, Serialize};

use super::locks::{self, LockInfo};
use super::sessions::{SessionEntry, entry};
use super::time;
use crate::accounts::{self, UserError};
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(UserAdd)
        .add(UserRemove)
        .add(UserPasswd)
        .add(UserList)
        .add(UserShow)
        .add(UserImport);
}

/// A password in transit: serialized as it is, never shown by `{:?}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Arguments naming one account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountArgs {
    pub jid: String,
}

/// Arguments of `user.add` and `user.passwd`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordArgs {
    pub jid: String,
    pub password: Password,
}

/// The account an operation acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDone {
    pub jid: String,
}

fn empty_password(p: &Password) -> Result<(), AdminError> {
    if p.0.is_empty() {
        return Err(UserError::EmptyPassword.into());
    }
    Ok(())
}

/// `user.add`: creates an account.
pub struct UserAdd;

#[async_trait]
impl Operation for UserAdd {
    type Args = PasswordArgs;
    type Output = AccountDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.add",
            "create an account",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &PasswordArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: PasswordArgs,
    ) -> Result<Done<AccountDone>, AdminError> {
        let jid = accounts::new_account_jid(&ctx.config, &args.jid)?;
        empty_password(&args.password)?;
        accounts::add(
            ctx.storage.users.as_ref(),
            &jid,
            &args.password.0,
            ctx.config.auth.scram_iterations,
        )
        .await?;
        Ok(Done::new(
            AccountDone {
                jid: jid.to_string(),
            },
            "account created",
        ))
    }
}

/// `user.passwd`: replaces an account's credentials.
pub struct UserPasswd;

#[async_trait]
impl Operation for UserPasswd {
    type Args = PasswordArgs;
    type Output = AccountDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.passwd",
            "change an account's password",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &PasswordArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: PasswordArgs,
    ) -> Result<Done<AccountDone>, AdminError> {
        let jid = accounts::account_jid(&ctx.config, &args.jid)?;
        empty_password(&args.password)?;
        accounts::set_password(
            ctx.storage.users.as_ref(),
            &jid,
            &args.password.0,
            ctx.config.auth.scram_iterations,
        )
        .await?;
        Ok(Done::new(
            AccountDone {
                jid: jid.to_string(),
            },
            "password changed",
        ))
    }
}

/// The result of `user.remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub jid: String,
    /// Sessions of the account that the running server closed.
    pub sessions_closed: usize,
    /// The shared roster groups the account was a member of, and no longer is.
    #[serde(default)]
    pub groups_left: Vec<String>,
}

/// `user.remove`: deletes an account and everything stored for it; on the running server its
/// sessions are closed with `<not-authorized/>`.
pub struct UserRemove;

#[async_trait]
impl Operation for UserRemove {
    type Args = AccountArgs;
    type Output = Removed;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.remove",
            "delete an account and everything stored for it",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &AccountArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: AccountArgs,
    ) -> Result<Done<Removed>, AdminError> {
        let jid = accounts::account_jid(&ctx.config, &args.jid)?;
        accounts::remove(ctx.storage.users.as_ref(), &jid).await?;
        // The account is gone: its sessions may not go on as if it were not.
        let closed = ctx.live.as_ref().map_or(0, |live| {
            let err = StreamError::new(StreamErrorCondition::NotAuthorized)
                .with_text("the account was removed");
            live.core.registry.close_account(&jid, &err).len()
        });
        let mut detail = match closed {
            0 => "account removed".to_owned(),
            n => format!("account removed; {n} session(s) closed"),
        };
        let (groups_left, left) = super::groups::forget_member(ctx, jid.as_str()).await?;
        if let Some(left) = left {
            detail.push_str("; ");
            detail.push_str(&left);
        }
        Ok(Done::new(
            Removed {
                jid: jid.to_string(),
                sessions_closed: closed,
                groups_left,
            },
            detail,
        ))
    }
}

/// Arguments of `user.list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListArgs {
    /// Only this domain.
    pub domain: Option<String>,
}

/// One account in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    pub jid: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The account's lock (`user.lock`, or a compliance rule), holding or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockInfo>,
}

/// `user.list`: every account, or those of one domain, by domain then name.
pub struct UserList;

#[async_trait]
impl Operation for UserList {
    type Args = ListArgs;
    type Output = Vec<UserEntry>;

    fn info(&self) -> OpInfo {
        OpInfo::new("user.list", "list accounts", false, false, Permission::Read)
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: ListArgs,
    ) -> Result<Done<Vec<UserEntry>>, AdminError> {
        let list = ctx.storage.users.list_users(args.domain.as_deref()).await?;
        let now = locks::now();
        Ok(Done::new(
            list.into_iter()
                .map(|u| UserEntry {
                    jid: format!("{}@{}", u.username, u.domain),
                    created_at: u.created_at,
                    lock: u.lock.as_ref().map(|l| LockInfo::new(l, now)),
                })
                .collect(),
            "",
        ))
    }
}

/// One set of SCRAM credentials (the verifiers themselves are never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub hash: String,
    pub iterations: u32,
}

/// The result of `user.show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDetails {
    pub jid: String,
    pub created_at: i64,
    /// `created_at` in RFC 3339, UTC.
    pub created: String,
    pub credentials: Vec<CredentialInfo>,
    /// Messages waiting for the account (XEP-0160).
    pub offline_messages: u64,
    /// The account's sessions on the running server; `None` when the server is not running.
    pub sessions: Option<Vec<SessionEntry>>,
    /// The account's lock, holding or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockInfo>,
}

/// The hash functions whose credentials `user.show` reports, as the SASL layer names them.
const HASHES: [&str; 3] = ["SHA-1", "SHA-256", "SHA-512"];

/// `user.show`: one account, its credentials' parameters, its offline messages and sessions.
pub struct UserShow;

#[async_trait]
impl Operation for UserShow {
    type Args = AccountArgs;
    type Output = UserDetails;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.show",
            "show an account: creation time, credentials, offline messages, sessions",
            false,
            false,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: AccountArgs,
    ) -> Result<Done<UserDetails>, AdminError> {
        let jid = accounts::account_jid(&ctx.config, &args.jid)?;
        let (user, domain) = (jid.node().unwrap_or_default(), jid.domain());
        // The store lists accounts by domain; the one wanted is found in that listing.
        let info = ctx
            .storage
            .users
            .list_users(Some(domain))
            .await?
            .into_iter()
            .find(|u| u.username == user)
            .ok_or_else(|| AdminError::from(UserError::NotFound(jid.to_string())))?;
        let mut credentials = Vec::new();
        for hash in HASHES {
            if let Some(c) = ctx.storage.users.credential(user, domain, hash).await? {
                credentials.push(CredentialInfo {
                    hash: c.hash,
                    iterations: c.iterations,
                });
            }
        }
        let offline_messages = ctx.storage.offline.count(user, domain).await?;
        let sessions = ctx.live.as_ref().map(|live| {
            let mut v: Vec<SessionEntry> = live
                .core
                .registry
                .resources(&jid)
                .iter()
                .map(entry)
                .collect();
            v.sort_by(|a, b| a.jid.cmp(&b.jid));
            v
        });
        Ok(Done::new(
            UserDetails {
                jid: jid.to_string(),
                created_at: info.created_at,
                created: time(info.created_at),
                credentials,
                offline_messages,
                sessions,
                lock: info.lock.as_ref().map(|l| LockInfo::new(l, locks::now())),
            },
            "",
        ))
    }
}

/// Arguments of `user.import`: the CSV text itself, so that the file is read where the
/// command runs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportArgs {
    /// The file's name, for messages (`accounts.csv:12: …`).
    pub file: String,
    /// `jid,password` lines; see [`accounts::parse_import`].
    pub csv: String,
}

impl std::fmt::Debug for ImportArgs {
    // The text holds passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportArgs")
            .field("file", &self.file)
            .field("csv_bytes", &self.csv.len())
            .finish()
    }
}

/// The result of `user.import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub imported: usize,
}

/// `user.import`: creates the accounts of a CSV file, all or none.
pub struct UserImport;

#[async_trait]
impl Operation for UserImport {
    type Args = ImportArgs;
    type Output = Imported;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.import",
            "create accounts from `jid,password` CSV lines, all or none",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &ImportArgs) -> String {
        args.file.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: ImportArgs,
    ) -> Result<Done<Imported>, AdminError> {
        let accounts = accounts::parse_import(&ctx.config, &args.file, &args.csv)?;
        let names: Vec<String> = accounts.iter().map(|(j, _)| j.to_string()).collect();
        let n = accounts::import(
            ctx.storage.users.as_ref(),
            accounts,
            ctx.config.auth.scram_iterations,
        )
        .await?;
        Ok(Done::new(
            Imported { imported: n },
            format!("{n} account(s) created: {}", names.join(" ")),
        ))
    }
}
