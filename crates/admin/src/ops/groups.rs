//! Shared roster groups: `group.create`, `group.remove`, `group.add`, `group.remove-member`,
//! `group.list`, `group.show`. Members of a group see each other in their rosters, with
//! subscriptions both ways and the group's display name as roster group (docs/groups.md).
//!
//! Changes go to the database; on the running server the roster then reads the groups again
//! (the core's reload of [`RELOAD_TOPIC`]) and tells the members online. Run offline, a change
//! takes effect at the server's next start or SIGHUP, and the result says so.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use causerie_jid::BareJid;
use causerie_storage::groups::{
    MAX_DESCRIPTION_BYTES, MAX_DISPLAY_NAME_BYTES, MAX_NAME_BYTES, NewGroup, RELOAD_TOPIC,
    SharedGroup,
};
use serde::{Deserialize, Serialize};

use super::{check_text, time};
use crate::registry::unix_now;
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(GroupCreate)
        .add(GroupRemove)
        .add(GroupAdd)
        .add(GroupRemoveMember)
        .add(GroupList)
        .add(GroupShow);
}

/// Most members one group may have: every member's roster shows all the others, and each of
/// their presence broadcasts reaches all of them.
pub const MAX_MEMBERS: usize = 5000;

/// Arguments of `group.create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// The group's identifier for administrators.
    pub name: String,
    /// What members' clients show as the roster group; the name when absent.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Arguments naming one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupArgs {
    pub name: String,
}

/// Arguments of `group.add` and `group.remove-member`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersArgs {
    pub name: String,
    /// Bare JIDs (`user@domain`): accounts of this server, or on other servers.
    pub members: Vec<String>,
}

/// The result of `group.create` and `group.remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDone {
    pub name: String,
    /// Whether the running server applied the change now; when not (offline), it does at its
    /// next start or SIGHUP.
    pub applied_now: bool,
}

/// The result of `group.add` and `group.remove-member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersDone {
    pub name: String,
    /// Added (or removed), in the order given.
    pub changed: Vec<String>,
    /// Already members (or not members), left as they were.
    pub unchanged: Vec<String>,
    /// See [`GroupDone::applied_now`].
    pub applied_now: bool,
}

/// One group in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub members: usize,
    /// Unix seconds, and RFC 3339.
    pub created_at: i64,
    pub created: String,
}

/// A member as `group.show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub jid: String,
    /// Whether the member's domain is hosted here.
    pub local: bool,
    /// For a local member, whether its account exists (a removed account stays a member);
    /// `None` for a member on another server.
    pub account: Option<bool>,
}

/// The result of `group.show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDetails {
    pub name: String,
    pub display_name: Option<String>,
    /// What members' clients show: the display name, or the name.
    pub label: String,
    pub description: Option<String>,
    pub created_at: i64,
    pub created: String,
    pub members: Vec<MemberEntry>,
}

fn check_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AdminError::bad_input("the group name is empty"));
    }
    check_text("group name", name, MAX_NAME_BYTES)?;
    Ok(name.to_owned())
}

fn check_optional(
    what: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, AdminError> {
    let Some(v) = value.map(str::trim) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Err(AdminError::bad_input(format!(
            "the {what} is empty; leave it out instead"
        )));
    }
    check_text(what, v, max)?;
    Ok(Some(v.to_owned()))
}

/// The group, or `NotFound` naming it.
async fn existing(ctx: &Context, name: &str) -> Result<SharedGroup, AdminError> {
    ctx.storage
        .groups
        .group(name)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("no group named {name:?}")))
}

/// Parses members as bare JIDs with a local part, each once; a local member must name an
/// existing account (a typo would otherwise show everyone a contact that never answers),
/// a member on another server is taken as it is.
async fn check_members(ctx: &Context, members: &[String]) -> Result<Vec<BareJid>, AdminError> {
    if members.is_empty() {
        return Err(AdminError::bad_input("no member given"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(members.len());
    for raw in members {
        let jid = BareJid::parse(raw.trim())
            .map_err(|e| AdminError::bad_input(format!("member {raw:?} is not a bare JID: {e}")))?;
        if jid.node().is_none() {
            return Err(AdminError::bad_input(format!(
                "member {raw:?} is a domain; a member is an account (user@domain)"
            )));
        }
        if seen.insert(jid.clone()) {
            out.push(jid);
        }
    }
    for jid in &out {
        let (node, domain) = (jid.node().unwrap_or_default(), jid.domain());
        if is_hosted(ctx, domain) && !ctx.storage.users.user_exists(node, domain).await? {
            return Err(AdminError::not_found(format!(
                "no account {jid} on this server (members on other servers are accepted as \
                 they are, local ones must exist)"
            )));
        }
    }
    Ok(out)
}

fn is_hosted(ctx: &Context, domain: &str) -> bool {
    ctx.config.server.domains.iter().any(|d| d == domain)
}

/// Ends `jid`'s membership of every group (its account was removed, and a new account of the
/// same name must not inherit it); the names of the groups it left, with the detail to audit.
pub(crate) async fn forget_member(
    ctx: &Context,
    jid: &str,
) -> Result<(Vec<String>, Option<String>), AdminError> {
    let mut left = Vec::new();
    for g in ctx.storage.groups.groups().await? {
        if g.members.iter().any(|m| m == jid) {
            ctx.storage
                .groups
                .remove_members(&g.name, &[jid.to_owned()])
                .await?;
            left.push(g.name);
        }
    }
    if left.is_empty() {
        return Ok((left, None));
    }
    let (_, detail) = apply(ctx, format!("left group(s) {}", left.join(", "))).await;
    Ok((left, Some(detail)))
}

/// Has the running server read the groups again; whether it did, and the detail to audit.
async fn apply(ctx: &Context, detail: String) -> (bool, String) {
    let Some(live) = &ctx.live else {
        return (
            false,
            format!("{detail}; takes effect at the server's next start or SIGHUP"),
        );
    };
    match live.core.reload(RELOAD_TOPIC).await {
        Ok(n) if n > 0 => (true, detail),
        Ok(_) => (
            false,
            format!("{detail}; the running server keeps no shared groups"),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "shared groups changed but not applied");
            (
                false,
                format!(
                    "{detail}; the running server could not apply it now ({e}), it will at its next start or SIGHUP"
                ),
            )
        }
    }
}

/// `group.create`: an empty group.
pub struct GroupCreate;

#[async_trait]
impl Operation for GroupCreate {
    type Args = CreateArgs;
    type Output = GroupDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.create",
            "create a shared roster group",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &CreateArgs) -> String {
        args.name.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: CreateArgs,
    ) -> Result<Done<GroupDone>, AdminError> {
        let name = check_name(&args.name)?;
        let display_name = check_optional(
            "display name",
            args.display_name.as_deref(),
            MAX_DISPLAY_NAME_BYTES,
        )?;
        let description = check_optional(
            "description",
            args.description.as_deref(),
            MAX_DESCRIPTION_BYTES,
        )?;
        let detail = match &display_name {
            Some(d) => format!("group created, shown as {d:?}"),
            None => "group created".to_owned(),
        };
        ctx.storage
            .groups
            .create_group(&NewGroup {
                name: name.clone(),
                display_name,
                description,
                created_at: unix_now(),
            })
            .await?;
        // An empty group shows nobody anything; the server needs no reload yet.
        let applied_now = ctx.live.is_some();
        Ok(Done::new(GroupDone { name, applied_now }, detail))
    }
}

/// `group.remove`: a group and its memberships.
pub struct GroupRemove;

#[async_trait]
impl Operation for GroupRemove {
    type Args = GroupArgs;
    type Output = GroupDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.remove",
            "remove a shared roster group; its members no longer see each other through it",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &GroupArgs) -> String {
        args.name.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: GroupArgs,
    ) -> Result<Done<GroupDone>, AdminError> {
        let name = check_name(&args.name)?;
        let group = existing(ctx, &name).await?;
        if !ctx.storage.groups.remove_group(&name).await? {
            return Err(AdminError::not_found(format!("no group named {name:?}")));
        }
        let (applied_now, detail) = apply(
            ctx,
            format!("group removed with {} member(s)", group.members.len()),
        )
        .await;
        Ok(Done::new(GroupDone { name, applied_now }, detail))
    }
}

/// `group.add`: members into a group.
pub struct GroupAdd;

#[async_trait]
impl Operation for GroupAdd {
    type Args = MembersArgs;
    type Output = MembersDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.add",
            "add members (bare JIDs, local or remote) to a shared roster group",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &MembersArgs) -> String {
        args.name.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: MembersArgs,
    ) -> Result<Done<MembersDone>, AdminError> {
        let name = check_name(&args.name)?;
        let group = existing(ctx, &name).await?;
        let members = check_members(ctx, &args.members).await?;
        let current: BTreeSet<&str> = group.members.iter().map(String::as_str).collect();
        let new = members
            .iter()
            .filter(|m| !current.contains(m.as_str()))
            .count();
        if current.len() + new > MAX_MEMBERS {
            return Err(AdminError::bad_input(format!(
                "group {name:?} would have {} members; at most {MAX_MEMBERS}",
                current.len() + new
            )));
        }
        let wanted: Vec<String> = members.iter().map(ToString::to_string).collect();
        let added = ctx.storage.groups.add_members(&name, &wanted).await?;
        let unchanged: Vec<String> = wanted
            .iter()
            .filter(|m| !added.contains(m))
            .cloned()
            .collect();
        let detail = if added.is_empty() {
            "no new member".to_owned()
        } else {
            format!("added {}", added.join(" "))
        };
        let (applied_now, detail) = if added.is_empty() {
            (ctx.live.is_some(), detail)
        } else {
            apply(ctx, detail).await
        };
        Ok(Done::new(
            MembersDone {
                name,
                changed: added,
                unchanged,
                applied_now,
            },
            detail,
        ))
    }
}

/// `group.remove-member`: members out of a group.
pub struct GroupRemoveMember;

#[async_trait]
impl Operation for GroupRemoveMember {
    type Args = MembersArgs;
    type Output = MembersDone;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.remove-member",
            "remove members from a shared roster group",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &MembersArgs) -> String {
        args.name.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: MembersArgs,
    ) -> Result<Done<MembersDone>, AdminError> {
        let name = check_name(&args.name)?;
        existing(ctx, &name).await?;
        if args.members.is_empty() {
            return Err(AdminError::bad_input("no member given"));
        }
        // Prepared like the members that were added, so that any spelling finds them; a removed
        // account can still be taken out.
        let mut wanted: Vec<String> = Vec::with_capacity(args.members.len());
        for raw in &args.members {
            let jid = BareJid::parse(raw.trim()).map_err(|e| {
                AdminError::bad_input(format!("member {raw:?} is not a bare JID: {e}"))
            })?;
            if !wanted.contains(&jid.to_string()) {
                wanted.push(jid.to_string());
            }
        }
        let removed = ctx.storage.groups.remove_members(&name, &wanted).await?;
        let unchanged: Vec<String> = wanted
            .iter()
            .filter(|m| !removed.contains(m))
            .cloned()
            .collect();
        let (applied_now, detail) = if removed.is_empty() {
            (ctx.live.is_some(), "no member removed".to_owned())
        } else {
            apply(ctx, format!("removed {}", removed.join(" "))).await
        };
        Ok(Done::new(
            MembersDone {
                name,
                changed: removed,
                unchanged,
                applied_now,
            },
            detail,
        ))
    }
}

/// `group.list`: every group, by name.
pub struct GroupList;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {}

#[async_trait]
impl Operation for GroupList {
    type Args = ListArgs;
    type Output = Vec<GroupEntry>;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.list",
            "list shared roster groups",
            false,
            false,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        _args: ListArgs,
    ) -> Result<Done<Vec<GroupEntry>>, AdminError> {
        let groups = ctx.storage.groups.groups().await?;
        Ok(Done::new(
            groups
                .into_iter()
                .map(|g| GroupEntry {
                    members: g.members.len(),
                    created: time(g.created_at),
                    name: g.name,
                    display_name: g.display_name,
                    description: g.description,
                    created_at: g.created_at,
                })
                .collect(),
            "",
        ))
    }
}

/// `group.show`: one group and its members.
pub struct GroupShow;

#[async_trait]
impl Operation for GroupShow {
    type Args = GroupArgs;
    type Output = GroupDetails;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "group.show",
            "show a shared roster group and its members",
            false,
            false,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: GroupArgs,
    ) -> Result<Done<GroupDetails>, AdminError> {
        let name = check_name(&args.name)?;
        let group = existing(ctx, &name).await?;
        // One listing per hosted domain with members, rather than one lookup per member.
        let mut accounts: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut members = Vec::with_capacity(group.members.len());
        for m in &group.members {
            let (node, domain) = m.split_once('@').unwrap_or(("", m.as_str()));
            let local = is_hosted(ctx, domain);
            let account = if local {
                if !accounts.contains_key(domain) {
                    let names = ctx
                        .storage
                        .users
                        .list_users(Some(domain))
                        .await?
                        .into_iter()
                        .map(|u| u.username)
                        .collect();
                    accounts.insert(domain.to_owned(), names);
                }
                Some(accounts.get(domain).is_some_and(|n| n.contains(node)))
            } else {
                None
            };
            members.push(MemberEntry {
                jid: m.clone(),
                local,
                account,
            });
        }
        Ok(Done::new(
            GroupDetails {
                label: group.label().to_owned(),
                created: time(group.created_at),
                name: group.name,
                display_name: group.display_name,
                description: group.description,
                created_at: group.created_at,
                members,
            },
            "",
        ))
    }
}
