//! Conformance checks for [`GroupStore`](super::GroupStore): each function checks one behaviour
//! on groups of its own and returns what went wrong.
//!
//! Groups are shared by everything on the database, so the checks name their groups after a
//! fresh unique domain and only look at those: they hold while other runs change groups at the
//! same time.

use super::{MAX_DESCRIPTION_BYTES, MAX_DISPLAY_NAME_BYTES, MAX_NAME_BYTES, NewGroup, SharedGroup};
use crate::conformance::{invalid_input, ok, unique_domain};
use crate::{MAX_JID_BYTES, Storage, StoreError};

fn new_group(name: &str, display: Option<&str>, description: Option<&str>, at: i64) -> NewGroup {
    NewGroup {
        name: name.to_owned(),
        display_name: display.map(str::to_owned),
        description: description.map(str::to_owned),
        created_at: at,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The groups whose names start with `prefix`, in the order `groups` gave them.
async fn own_groups(storage: &Storage, prefix: &str) -> Result<Vec<SharedGroup>, String> {
    let all = ok("groups", storage.groups.groups().await)?;
    Ok(all
        .into_iter()
        .filter(|g| g.name.starts_with(prefix))
        .collect())
}

/// Groups round-trip field for field; a taken name is `AlreadyExists`; removing reports whether
/// there was a group and takes its memberships along.
pub async fn create_show_remove(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("groups-create");
    let staff = format!("staff.{base}");
    let sales = format!("sales.{base}");
    let store = &storage.groups;
    ok(
        "create_group",
        store
            .create_group(&new_group(
                &staff,
                Some("Staff «all»"),
                Some("Everybody\nemployed here"),
                100,
            ))
            .await,
    )?;
    ok(
        "create_group",
        store
            .create_group(&new_group(&sales, None, None, 101))
            .await,
    )?;
    match store
        .create_group(&new_group(&staff, None, None, 102))
        .await
    {
        Err(StoreError::AlreadyExists(_)) => {}
        other => {
            return Err(format!(
                "creating a taken name: expected AlreadyExists, got {other:?}"
            ));
        }
    }
    let got = ok("group", store.group(&staff).await)?;
    let expected = SharedGroup {
        name: staff.clone(),
        display_name: Some("Staff «all»".into()),
        description: Some("Everybody\nemployed here".into()),
        created_at: 100,
        members: Vec::new(),
    };
    ensure!(
        got.as_ref() == Some(&expected),
        "group({staff}) = {got:?}, expected {expected:?}"
    );
    let listed = own_groups(storage, "").await?;
    let mine: Vec<&SharedGroup> = listed
        .iter()
        .filter(|g| g.name == staff || g.name == sales)
        .collect();
    ensure!(
        mine.len() == 2 && mine[0].name == sales && *mine[1] == expected,
        "groups() shows {mine:?}"
    );
    ok(
        "add_members",
        store
            .add_members(
                &staff,
                &strings(&["romeo@example.net", "juliet@example.com"]),
            )
            .await,
    )?;
    ensure!(
        ok("remove_group", store.remove_group(&staff).await)?,
        "remove_group of a group returned false"
    );
    ensure!(
        !ok("remove_group again", store.remove_group(&staff).await)?,
        "remove_group of a removed group returned true"
    );
    ensure!(
        !ok("remove_group (U+0000)", store.remove_group("a\0b").await)?,
        "remove_group of a name with U+0000 returned true"
    );
    let gone = ok("group", store.group(&staff).await)?;
    ensure!(gone.is_none(), "a removed group still reads as {gone:?}");
    // The name is free again, and the new group starts without the old members.
    ok(
        "create_group (again)",
        store
            .create_group(&new_group(&staff, None, None, 200))
            .await,
    )?;
    let again = ok("group", store.group(&staff).await)?;
    ensure!(
        again.as_ref().is_some_and(|g| g.members.is_empty()),
        "a recreated group has members {again:?}"
    );
    ok("remove_group", store.remove_group(&staff).await)?;
    ok("remove_group", store.remove_group(&sales).await)?;
    Ok(())
}

/// Adding reports the members that were new, in the order given, each once; removing reports
/// those that were members; members list in byte order; both need the group.
pub async fn membership(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("groups-members");
    let team = format!("team.{base}");
    let store = &storage.groups;
    ok(
        "create_group",
        store.create_group(&new_group(&team, None, None, 1)).await,
    )?;
    let added = ok(
        "add_members",
        store
            .add_members(
                &team,
                &strings(&[
                    "zoe@a.example",
                    "Bob@a.example",
                    "zoe@a.example",
                    "élodie@b.example",
                ]),
            )
            .await,
    )?;
    ensure!(
        added == strings(&["zoe@a.example", "Bob@a.example", "élodie@b.example"]),
        "add_members returned {added:?}"
    );
    let added = ok(
        "add_members (some again)",
        store
            .add_members(&team, &strings(&["bob@a.example", "zoe@a.example"]))
            .await,
    )?;
    ensure!(
        added == strings(&["bob@a.example"]),
        "adding members again returned {added:?}; case matters, repeats do not count"
    );
    let members = ok("group", store.group(&team).await)?
        .map(|g| g.members)
        .unwrap_or_default();
    let expected = strings(&[
        "Bob@a.example",
        "bob@a.example",
        "zoe@a.example",
        "élodie@b.example",
    ]);
    ensure!(
        members == expected,
        "members = {members:?}, expected byte order {expected:?}"
    );
    let removed = ok(
        "remove_members",
        store
            .remove_members(
                &team,
                &strings(&[
                    "nobody@a.example",
                    "zoe@a.example",
                    "Bob@a.example",
                    "zoe@a.example",
                    "a\0b",
                ]),
            )
            .await,
    )?;
    ensure!(
        removed == strings(&["zoe@a.example", "Bob@a.example"]),
        "remove_members returned {removed:?}"
    );
    let listed = own_groups(storage, &team).await?;
    ensure!(
        listed.len() == 1 && listed[0].members == strings(&["bob@a.example", "élodie@b.example"]),
        "groups() shows {listed:?}"
    );
    let missing = format!("missing.{base}");
    for (what, result) in [
        (
            "add_members to a missing group",
            store.add_members(&missing, &strings(&["a@b"])).await,
        ),
        (
            "remove_members of a missing group",
            store.remove_members(&missing, &strings(&["a@b"])).await,
        ),
        (
            "add_members to a name with U+0000",
            store.add_members("a\0b", &strings(&["a@b"])).await,
        ),
    ] {
        match result {
            Err(StoreError::NotFound(_)) => {}
            other => return Err(format!("{what}: expected NotFound, got {other:?}")),
        }
    }
    ok("remove_group", store.remove_group(&team).await)?;
    Ok(())
}

/// A member may be in several groups; removing one group leaves the others whole.
pub async fn groups_are_independent(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("groups-independent");
    let (a, b) = (format!("a.{base}"), format!("b.{base}"));
    let store = &storage.groups;
    for name in [&a, &b] {
        ok(
            "create_group",
            store.create_group(&new_group(name, None, None, 1)).await,
        )?;
        ok(
            "add_members",
            store
                .add_members(
                    name,
                    &strings(&["shared@x.example", &format!("only@{name}")]),
                )
                .await,
        )?;
    }
    ok("remove_group", store.remove_group(&a).await)?;
    let left = own_groups(storage, &b).await?;
    ensure!(
        left.len() == 1 && left[0].members == strings(&[&format!("only@{b}"), "shared@x.example"]),
        "after removing another group: {left:?}"
    );
    ok("remove_group", store.remove_group(&b).await)?;
    Ok(())
}

/// Groups list in byte order of the name, whatever the database's locale.
pub async fn listing_in_byte_order(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("groups-order");
    let prefix = format!("{base}/");
    let names: Vec<String> = ["z", "é", "a", "B", "a-b", "a0"]
        .iter()
        .map(|p| format!("{prefix}{p}"))
        .collect();
    for name in &names {
        ok(
            "create_group",
            storage
                .groups
                .create_group(&new_group(name, None, None, 1))
                .await,
        )?;
    }
    let got: Vec<String> = own_groups(storage, &prefix)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let mut expected = names.clone();
    expected.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    ensure!(
        got == expected,
        "groups() order {got:?}, expected {expected:?}"
    );
    for name in &names {
        ok("remove_group", storage.groups.remove_group(name).await)?;
    }
    Ok(())
}

/// Values the schema cannot hold are refused before anything is written.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("groups-invalid");
    let store = &storage.groups;
    let long_name = format!("{base}{}", "n".repeat(MAX_NAME_BYTES));
    for (what, group) in [
        ("empty name", new_group("", None, None, 1)),
        ("long name", new_group(&long_name, None, None, 1)),
        (
            "name with U+0000",
            new_group(&format!("a\0{base}"), None, None, 1),
        ),
        ("empty display name", new_group(&base, Some(""), None, 1)),
        (
            "long display name",
            new_group(
                &base,
                Some(&"d".repeat(MAX_DISPLAY_NAME_BYTES + 1)),
                None,
                1,
            ),
        ),
        (
            "long description",
            new_group(&base, None, Some(&"d".repeat(MAX_DESCRIPTION_BYTES + 1)), 1),
        ),
        (
            "description with U+0000",
            new_group(&base, None, Some("a\0b"), 1),
        ),
    ] {
        invalid_input(what, store.create_group(&group).await)?;
    }
    let none = ok("group", store.group(&base).await)?;
    ensure!(none.is_none(), "a refused group was stored: {none:?}");
    ok(
        "create_group",
        store.create_group(&new_group(&base, None, None, 1)).await,
    )?;
    for (what, members) in [
        ("empty member", strings(&["ok@x.example", ""])),
        ("member with U+0000", strings(&["ok@x.example", "a\0@x"])),
        (
            "long member",
            vec!["ok@x.example".to_owned(), "m".repeat(MAX_JID_BYTES + 1)],
        ),
    ] {
        invalid_input(what, store.add_members(&base, &members).await)?;
    }
    let members = ok("group", store.group(&base).await)?
        .map(|g| g.members)
        .unwrap_or_default();
    ensure!(
        members.is_empty(),
        "a refused add_members wrote {members:?}"
    );
    ok("remove_group", store.remove_group(&base).await)?;
    Ok(())
}

/// Runs every check; returns the failures, each prefixed with `groups::` and the check's name.
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("groups::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        create_show_remove,
        membership,
        groups_are_independent,
        listing_in_byte_order,
        invalid_input_refused,
    );
    failures
}
