//! Conformance checks for [`UserStore`](super::UserStore): each function checks one behaviour
//! on its own fresh domain and returns what went wrong.

use std::time::{Duration, Instant};

use super::{
    AccountLock, LockChange, MAX_LOCK_REASON_BYTES, MAX_LOCKED_BY_BYTES, NewUser, StoredCredential,
    UserInfo, now_unix,
};
use crate::conformance::{create_account, invalid_input, not_found, ok, unique_domain};
use crate::{Storage, StoreError};

/// A store call that must fail with `AlreadyExists` naming `who`.
fn already_exists<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, StoreError>,
    who: &str,
) -> Result<(), String> {
    match result {
        Err(StoreError::AlreadyExists(name)) if name == who => Ok(()),
        Err(StoreError::AlreadyExists(name)) => Err(format!(
            "{what}: AlreadyExists names '{name}', expected '{who}'"
        )),
        other => Err(format!(
            "{what}: expected AlreadyExists({who}), got {other:?}"
        )),
    }
}

/// A credential whose every byte depends on `seed`, including NUL and 0xFF bytes, so that
/// truncation, text conversion or mixing up two credentials shows.
pub fn sample_credential(hash: &str, seed: u8) -> StoredCredential {
    let len = match hash {
        "SHA-1" => 20,
        "SHA-512" => 64,
        _ => 32,
    };
    let bytes = |salt: u8| -> Vec<u8> {
        (0..len)
            .map(|i: usize| (i as u8).wrapping_mul(31).wrapping_add(seed ^ salt))
            .chain([0x00, 0xff])
            .collect()
    };
    StoredCredential {
        hash: hash.to_owned(),
        salt: bytes(0x5a)[..18].to_vec(),
        iterations: 4096 + u32::from(seed),
        stored_key: bytes(0x11),
        server_key: bytes(0x22),
    }
}

fn new_user(username: &str, domain: &str, credentials: Vec<StoredCredential>) -> NewUser {
    NewUser {
        username: username.to_owned(),
        domain: domain.to_owned(),
        credentials,
    }
}

fn jid(username: &str, domain: &str) -> String {
    format!("{username}@{domain}")
}

async fn expect_credential(
    storage: &Storage,
    username: &str,
    domain: &str,
    expected: &StoredCredential,
) -> Result<(), String> {
    let got = ok(
        "credential",
        storage
            .users
            .credential(username, domain, &expected.hash)
            .await,
    )?;
    ensure!(
        got.as_ref() == Some(expected),
        "credential {} of {}: got {:?}, expected {:?} (compare bytes)",
        expected.hash,
        jid(username, domain),
        got.map(|c| (c.salt, c.iterations, c.stored_key, c.server_key)),
        (
            &expected.salt,
            expected.iterations,
            &expected.stored_key,
            &expected.server_key
        )
    );
    Ok(())
}

async fn expect_no_credential(
    storage: &Storage,
    username: &str,
    domain: &str,
    hash: &str,
) -> Result<(), String> {
    let got = ok(
        "credential",
        storage.users.credential(username, domain, hash).await,
    )?;
    ensure!(
        got.is_none(),
        "credential {hash} of {} should be absent",
        jid(username, domain)
    );
    Ok(())
}

/// A created account exists, is listed and counted, and returns each credential byte for byte.
pub async fn create_and_read(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("create");
    let creds = vec![
        sample_credential("SHA-1", 1),
        sample_credential("SHA-256", 2),
        sample_credential("SHA-512", 3),
    ];
    let before = now_unix();
    ok(
        "create_user",
        storage
            .users
            .create_user(&new_user("juliet", &domain, creds.clone()))
            .await,
    )?;
    let after = now_unix();

    ensure!(
        ok(
            "user_exists",
            storage.users.user_exists("juliet", &domain).await
        )?,
        "created account does not exist"
    );
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("romeo", &domain).await
        )?,
        "an account never created exists"
    );
    for cred in &creds {
        expect_credential(storage, "juliet", &domain, cred).await?;
    }
    expect_no_credential(storage, "juliet", &domain, "SHA-384").await?;
    expect_no_credential(storage, "romeo", &domain, "SHA-256").await?;
    let other = unique_domain("create-other");
    expect_no_credential(storage, "juliet", &other, "SHA-256").await?;

    let listed = ok("list_users", storage.users.list_users(Some(&domain)).await)?;
    ensure!(
        listed.len() == 1,
        "listing has {} entries, expected 1",
        listed.len()
    );
    let info = &listed[0];
    ensure!(
        info.username == "juliet" && info.domain == domain && info.lock.is_none(),
        "listed {info:?}"
    );
    ensure!(
        (before..=after).contains(&info.created_at),
        "created_at {} not within [{before}, {after}]",
        info.created_at
    );
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 1, "count_users(domain) = {n}, expected 1");
    let all = ok("count_users", storage.users.count_users(None).await)?;
    ensure!(all >= 1, "count_users(None) = {all}, expected at least 1");
    Ok(())
}

/// Creating an account twice fails with `AlreadyExists` and leaves the first one untouched.
pub async fn duplicate_create_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("dup");
    let original = sample_credential("SHA-256", 10);
    ok(
        "create_user",
        storage
            .users
            .create_user(&new_user("nurse", &domain, vec![original.clone()]))
            .await,
    )?;
    already_exists(
        "second create_user",
        storage
            .users
            .create_user(&new_user(
                "nurse",
                &domain,
                vec![
                    sample_credential("SHA-256", 11),
                    sample_credential("SHA-1", 12),
                ],
            ))
            .await,
        &jid("nurse", &domain),
    )?;
    expect_credential(storage, "nurse", &domain, &original).await?;
    expect_no_credential(storage, "nurse", &domain, "SHA-1").await?;
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 1, "count after refused duplicate = {n}, expected 1");
    Ok(())
}

/// Names are compared exactly as stored: case and non-ASCII bytes matter; the same username in
/// two domains is two accounts.
pub async fn names_are_exact(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("exact");
    let other = unique_domain("exact-other");
    let users = [
        ("alice", domain.as_str(), 20),
        ("Alice", domain.as_str(), 21),
        ("élodie", domain.as_str(), 22),
        ("alice", other.as_str(), 23),
    ];
    for (username, d, seed) in users {
        ok(
            "create_user",
            storage
                .users
                .create_user(&new_user(
                    username,
                    d,
                    vec![sample_credential("SHA-256", seed)],
                ))
                .await,
        )?;
    }
    for (username, d, seed) in users {
        expect_credential(storage, username, d, &sample_credential("SHA-256", seed)).await?;
    }
    for (username, d) in [("ALICE", domain.as_str()), ("elodie", domain.as_str())] {
        ensure!(
            !ok("user_exists", storage.users.user_exists(username, d).await)?,
            "{} exists but was never created",
            jid(username, d)
        );
        expect_no_credential(storage, username, d, "SHA-256").await?;
    }
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 3, "count_users = {n}, expected 3");
    Ok(())
}

/// `set_credentials` replaces the whole set atomically, accepts an empty set, refuses a bad set
/// without touching the old one, and fails with `NotFound` for a missing account.
pub async fn set_credentials_replaces(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("setcred");
    ok(
        "create_user",
        storage
            .users
            .create_user(&new_user(
                "benvolio",
                &domain,
                vec![
                    sample_credential("SHA-1", 30),
                    sample_credential("SHA-256", 31),
                ],
            ))
            .await,
    )?;
    let replacement = vec![
        sample_credential("SHA-256", 32),
        sample_credential("SHA-512", 33),
    ];
    ok(
        "set_credentials",
        storage
            .users
            .set_credentials("benvolio", &domain, &replacement)
            .await,
    )?;
    expect_no_credential(storage, "benvolio", &domain, "SHA-1").await?;
    for cred in &replacement {
        expect_credential(storage, "benvolio", &domain, cred).await?;
    }

    invalid_input(
        "set_credentials with two SHA-1",
        storage
            .users
            .set_credentials(
                "benvolio",
                &domain,
                &[
                    sample_credential("SHA-1", 34),
                    sample_credential("SHA-1", 35),
                ],
            )
            .await,
    )?;
    for cred in &replacement {
        expect_credential(storage, "benvolio", &domain, cred).await?;
    }

    ok(
        "set_credentials(empty)",
        storage
            .users
            .set_credentials("benvolio", &domain, &[])
            .await,
    )?;
    for hash in ["SHA-1", "SHA-256", "SHA-512"] {
        expect_no_credential(storage, "benvolio", &domain, hash).await?;
    }
    ensure!(
        ok(
            "user_exists",
            storage.users.user_exists("benvolio", &domain).await
        )?,
        "account vanished with its credentials"
    );

    not_found(
        "set_credentials on a missing account",
        storage
            .users
            .set_credentials("tybalt", &domain, &[sample_credential("SHA-256", 36)])
            .await,
    )?;
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("tybalt", &domain).await
        )?,
        "set_credentials created an account"
    );
    Ok(())
}

/// Removing an account removes its credentials; the name can be reused without inheriting
/// anything; a second removal fails with `NotFound`; neighbours are untouched.
pub async fn remove_user_cascades(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("remove");
    let keep = sample_credential("SHA-256", 41);
    for (username, cred) in [
        ("mercutio", sample_credential("SHA-256", 40)),
        ("paris", keep.clone()),
    ] {
        ok(
            "create_user",
            storage
                .users
                .create_user(&new_user(
                    username,
                    &domain,
                    vec![cred, sample_credential("SHA-1", 42)],
                ))
                .await,
        )?;
    }
    ok(
        "remove_user",
        storage.users.remove_user("mercutio", &domain).await,
    )?;
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("mercutio", &domain).await
        )?,
        "removed account still exists"
    );
    expect_no_credential(storage, "mercutio", &domain, "SHA-256").await?;
    not_found(
        "second remove_user",
        storage.users.remove_user("mercutio", &domain).await,
    )?;
    not_found(
        "remove_user of an unknown account",
        storage
            .users
            .remove_user("mercutio", &unique_domain("remove-none"))
            .await,
    )?;

    ok(
        "create_user again",
        storage
            .users
            .create_user(&new_user("mercutio", &domain, vec![]))
            .await,
    )?;
    for hash in ["SHA-1", "SHA-256"] {
        expect_no_credential(storage, "mercutio", &domain, hash).await?;
    }
    expect_credential(storage, "paris", &domain, &keep).await?;
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 2, "count_users = {n}, expected 2");
    Ok(())
}

fn names(list: &[UserInfo]) -> Vec<(String, String)> {
    list.iter()
        .map(|u| (u.domain.clone(), u.username.clone()))
        .collect()
}

/// Listings are ordered by domain then username, byte by byte, on every backend; counts match.
pub async fn listing_order_and_counts(storage: &Storage) -> Result<(), String> {
    let base = unique_domain("order");
    let first = format!("a.{base}");
    let second = format!("b.{base}");
    // Byte order: uppercase before lowercase, a prefix before its extensions, multi-byte
    // UTF-8 after ASCII.
    let usernames = ["bob", "Zed", "élodie", "alice2", "alice", "al"];
    let sorted = ["Zed", "al", "alice", "alice2", "bob", "élodie"];
    for d in [&second, &first] {
        for u in usernames {
            ok(
                "create_user",
                storage.users.create_user(&new_user(u, d, vec![])).await,
            )?;
        }
    }
    let expected = |d: &str| -> Vec<(String, String)> {
        sorted
            .iter()
            .map(|u| (d.to_owned(), (*u).to_owned()))
            .collect()
    };
    for d in [&first, &second] {
        let got = names(&ok("list_users", storage.users.list_users(Some(d)).await)?);
        ensure!(got == expected(d), "list_users({d}) = {got:?}");
        let n = ok("count_users", storage.users.count_users(Some(d)).await)?;
        ensure!(n == 6, "count_users({d}) = {n}, expected 6");
    }

    let all = names(&ok(
        "list_users(None)",
        storage.users.list_users(None).await,
    )?);
    let mut want = expected(&first);
    want.extend(expected(&second));
    let ours: Vec<_> = all
        .iter()
        .filter(|(d, _)| *d == first || *d == second)
        .cloned()
        .collect();
    ensure!(
        ours == want,
        "list_users(None) restricted to this check: {ours:?}"
    );
    ensure!(
        all.windows(2).all(|w| w[0] < w[1]),
        "list_users(None) is not strictly ordered by (domain, username)"
    );
    let total = ok("count_users(None)", storage.users.count_users(None).await)?;
    ensure!(
        total >= 12,
        "count_users(None) = {total}, expected at least 12"
    );

    let none = ok(
        "list_users(unknown)",
        storage
            .users
            .list_users(Some(&unique_domain("order-none")))
            .await,
    )?;
    ensure!(none.is_empty(), "unknown domain lists {none:?}");
    Ok(())
}

fn batch(domain: &str, prefix: &str, count: usize) -> Vec<NewUser> {
    (0..count)
        .map(|i| {
            // Every fifth account has no credential, the others one or two.
            let seed = (i % 251) as u8;
            let credentials = match i % 5 {
                0 => vec![],
                1 => vec![sample_credential("SHA-1", seed)],
                _ => vec![
                    sample_credential("SHA-1", seed),
                    sample_credential("SHA-256", seed.wrapping_add(1)),
                ],
            };
            new_user(&format!("{prefix}{i:06}"), domain, credentials)
        })
        .collect()
}

async fn expect_imported(storage: &Storage, users: &[NewUser]) -> Result<(), String> {
    let n = users.len();
    for index in [0, 1, 2, n / 2, n.saturating_sub(2), n.saturating_sub(1)] {
        let Some(user) = users.get(index) else {
            continue;
        };
        for cred in &user.credentials {
            expect_credential(storage, &user.username, &user.domain, cred).await?;
        }
        if user.credentials.is_empty() {
            expect_no_credential(storage, &user.username, &user.domain, "SHA-1").await?;
        }
    }
    Ok(())
}

/// An import creates every account with its credentials, across several insert batches.
pub async fn import_batch(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("import");
    let users = batch(&domain, "u", 700);
    let created = ok("import_users", storage.users.import_users(&users).await)?;
    ensure!(
        created == 700,
        "import_users returned {created}, expected 700"
    );
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 700, "count_users = {n}, expected 700");
    expect_imported(storage, &users).await?;
    let listed = ok("list_users", storage.users.list_users(Some(&domain)).await)?;
    let want: Vec<_> = users
        .iter()
        .map(|u| (u.domain.clone(), u.username.clone()))
        .collect();
    ensure!(
        names(&listed) == want,
        "imported accounts are not all listed in order"
    );
    let empty = ok("import_users(empty)", storage.users.import_users(&[]).await)?;
    ensure!(empty == 0, "importing nothing returned {empty}");
    Ok(())
}

/// An import containing an existing account fails, names it, and writes nothing, even when
/// the existing account comes after several batches were already inserted.
pub async fn import_rejects_existing(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("import-existing");
    let taken_cred = sample_credential("SHA-256", 50);
    ok(
        "create_user",
        storage
            .users
            .create_user(&new_user("u000450", &domain, vec![taken_cred.clone()]))
            .await,
    )?;
    let users = batch(&domain, "u", 600);
    already_exists(
        "import_users",
        storage.users.import_users(&users).await,
        &jid("u000450", &domain),
    )?;
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 1, "count_users after failed import = {n}, expected 1");
    ensure!(
        !ok(
            "user_exists",
            storage.users.user_exists("u000000", &domain).await
        )?,
        "first account of the failed import exists"
    );
    expect_no_credential(storage, "u000001", &domain, "SHA-1").await?;
    expect_credential(storage, "u000450", &domain, &taken_cred).await?;
    Ok(())
}

/// An import naming one account twice fails, names it, and writes nothing.
pub async fn import_rejects_duplicate_in_batch(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("import-dup");
    let mut users = batch(&domain, "u", 500);
    users[400] = new_user("u000010", &domain, vec![sample_credential("SHA-512", 60)]);
    already_exists(
        "import_users",
        storage.users.import_users(&users).await,
        &jid("u000010", &domain),
    )?;
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 0, "count_users after failed import = {n}, expected 0");
    Ok(())
}

/// Inputs the schema cannot hold are refused before anything is written.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("invalid");
    invalid_input(
        "create_user with an empty username",
        storage
            .users
            .create_user(&new_user("", &domain, vec![]))
            .await,
    )?;
    invalid_input(
        "create_user with two SHA-256 credentials",
        storage
            .users
            .create_user(&new_user(
                "friar",
                &domain,
                vec![
                    sample_credential("SHA-256", 70),
                    sample_credential("SHA-256", 71),
                ],
            ))
            .await,
    )?;
    let mut users = batch(&domain, "u", 10);
    users[7].username = "x".repeat(super::MAX_NAME_BYTES + 1);
    invalid_input(
        "import_users with an oversized name",
        storage.users.import_users(&users).await,
    )?;
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(n == 0, "count_users after refused inputs = {n}, expected 0");
    Ok(())
}

/// Two simultaneous creations of one account: exactly one wins. Two simultaneous credential
/// replacements: both succeed and one of the two sets is what remains, whole.
pub async fn concurrent_writes(storage: &Storage) -> Result<(), String> {
    let domain = unique_domain("race");
    let a = new_user("capulet", &domain, vec![sample_credential("SHA-256", 80)]);
    let b = new_user("capulet", &domain, vec![sample_credential("SHA-256", 81)]);
    let (ra, rb) = tokio::join!(storage.users.create_user(&a), storage.users.create_user(&b));
    let winner = match (&ra, &rb) {
        (Ok(()), Err(StoreError::AlreadyExists(_))) => &a,
        (Err(StoreError::AlreadyExists(_)), Ok(())) => &b,
        _ => return Err(format!("concurrent create_user gave {ra:?} and {rb:?}")),
    };
    expect_credential(storage, "capulet", &domain, &winner.credentials[0]).await?;

    let set_a = vec![
        sample_credential("SHA-1", 82),
        sample_credential("SHA-256", 83),
    ];
    let set_b = vec![
        sample_credential("SHA-1", 84),
        sample_credential("SHA-256", 85),
    ];
    let (ra, rb) = tokio::join!(
        storage.users.set_credentials("capulet", &domain, &set_a),
        storage.users.set_credentials("capulet", &domain, &set_b)
    );
    ok("set_credentials (first)", ra)?;
    ok("set_credentials (second)", rb)?;
    let sha1 = ok(
        "credential",
        storage.users.credential("capulet", &domain, "SHA-1").await,
    )?;
    let sha256 = ok(
        "credential",
        storage
            .users
            .credential("capulet", &domain, "SHA-256")
            .await,
    )?;
    let state = (sha1, sha256);
    ensure!(
        state == (Some(set_a[0].clone()), Some(set_a[1].clone()))
            || state == (Some(set_b[0].clone()), Some(set_b[1].clone())),
        "credentials after concurrent replacement mix both sets or lost one: {state:?}"
    );
    Ok(())
}

/// Imports `count` accounts in one call and returns how long that import took; then an import
/// of `count` more whose middle entry is an account of the first import fails and leaves none
/// of the others behind.
pub async fn large_import(storage: &Storage, count: usize) -> Result<Duration, String> {
    let domain = unique_domain("bulk");
    let users = batch(&domain, "u", count);
    let started = Instant::now();
    let created = ok("import_users", storage.users.import_users(&users).await)?;
    let elapsed = started.elapsed();
    ensure!(
        created == count,
        "import_users returned {created}, expected {count}"
    );
    let n = ok(
        "count_users",
        storage.users.count_users(Some(&domain)).await,
    )?;
    ensure!(
        usize::try_from(n).ok() == Some(count),
        "count_users = {n}, expected {count}"
    );
    expect_imported(storage, &users).await?;

    if let Some(middle) = users.get(count / 2) {
        let other = unique_domain("bulk-failed");
        let mut failing = batch(&other, "v", count);
        failing[count / 2] = middle.clone();
        already_exists(
            "import_users with an existing account in the middle",
            storage.users.import_users(&failing).await,
            &jid(&middle.username, &middle.domain),
        )?;
        let left = ok("count_users", storage.users.count_users(Some(&other)).await)?;
        ensure!(left == 0, "failed import left {left} accounts behind");
        let n = ok(
            "count_users",
            storage.users.count_users(Some(&domain)).await,
        )?;
        ensure!(
            usize::try_from(n).ok() == Some(count),
            "failed import changed the first import's count to {n}"
        );
    }
    Ok(elapsed)
}

/// Accounts imported by [`run_all`]'s bulk check.
pub const RUN_ALL_IMPORT_COUNT: usize = 10_000;

/// Runs every check above and returns one line per failure (empty when all pass).
fn lock(locked_at: i64, until: Option<i64>, reason: &str, by: &str) -> AccountLock {
    AccountLock {
        locked_at,
        until,
        reason: reason.to_owned(),
        locked_by: by.to_owned(),
    }
}

async fn read_lock(
    storage: &Storage,
    username: &str,
    domain: &str,
) -> Result<Option<AccountLock>, String> {
    ok("user_lock", storage.users.user_lock(username, domain).await)
}

/// Sets `l` with `change` and checks what the store says is in force, from the call, from
/// `user_lock` and from the listing.
async fn set_lock(
    storage: &Storage,
    domain: &str,
    l: &AccountLock,
    change: LockChange,
    in_force: &AccountLock,
) -> Result<(), String> {
    let got = ok(
        "lock_user",
        storage.users.lock_user("juliet", domain, l, change).await,
    )?;
    ensure!(
        got == *in_force,
        "lock_user({l:?}, {change:?}) returned {got:?}, expected {in_force:?}"
    );
    let read = read_lock(storage, "juliet", domain).await?;
    ensure!(
        read.as_ref() == Some(in_force),
        "after lock_user({l:?}, {change:?}) user_lock reads {read:?}"
    );
    let listed = ok("list_users", storage.users.list_users(Some(domain)).await)?;
    let locks: Vec<(&str, Option<&AccountLock>)> = listed
        .iter()
        .map(|u| (u.username.as_str(), u.lock.as_ref()))
        .collect();
    ensure!(
        locks == [("juliet", Some(in_force)), ("romeo", None)],
        "after lock_user({l:?}, {change:?}) the listing shows {locks:?}"
    );
    Ok(())
}

/// A lock is stored whole (until a time or until lifted, any reason) and read back by
/// `user_lock` and the listing; `Replace` replaces it; `KeepLonger` keeps a lock that still
/// holds and ends no sooner, and replaces an expired or shorter one; an expired lock stays
/// until lifted; `unlock_user` lifts it once; a recreated account has none; an unknown account
/// is `NotFound` for a change and has no lock; an invalid lock is `InvalidInput` and changes
/// nothing; concurrent `KeepLonger` locks leave the longest.
pub async fn locks(storage: &Storage) -> Result<(), String> {
    use LockChange::{KeepLonger, Replace};
    let domain = unique_domain("lock");
    for username in ["juliet", "romeo"] {
        create_account(storage, username, &domain).await?;
    }
    ensure!(
        read_lock(storage, "juliet", &domain).await?.is_none(),
        "a new account is locked"
    );
    let a = lock(
        1000,
        Some(2800),
        "rule leak (confidential « données » ✓)",
        "compliance",
    );
    set_lock(storage, &domain, &a, Replace, &a).await?;
    // Shorter, while `a` holds: kept.
    let b = lock(1500, Some(2000), "shorter", "compliance");
    set_lock(storage, &domain, &b, KeepLonger, &a).await?;
    // Ending at the same time: kept.
    let same = lock(1500, Some(2800), "same end", "compliance");
    set_lock(storage, &domain, &same, KeepLonger, &a).await?;
    // Longer: replaces.
    let c = lock(1500, Some(5000), "longer", "compliance");
    set_lock(storage, &domain, &c, KeepLonger, &c).await?;
    // `c` no longer holds when `d` is set: replaced.
    let d = lock(6000, Some(6100), "after expiry", "compliance");
    set_lock(storage, &domain, &d, KeepLonger, &d).await?;
    // Until lifted, with an empty reason: outlasts every timed lock.
    let e = lock(6050, None, "", "causeriectl:root");
    set_lock(storage, &domain, &e, Replace, &e).await?;
    let f = lock(6060, Some(i64::MAX), "very long", "compliance");
    set_lock(storage, &domain, &f, KeepLonger, &e).await?;
    set_lock(storage, &domain, &f, Replace, &f).await?;
    let g = lock(6070, None, "until lifted", "compliance");
    set_lock(storage, &domain, &g, KeepLonger, &g).await?;

    ensure!(
        ok(
            "unlock_user",
            storage.users.unlock_user("juliet", &domain).await
        )?,
        "unlock_user found no lock"
    );
    ensure!(
        read_lock(storage, "juliet", &domain).await?.is_none(),
        "the lock stays after unlock_user"
    );
    ensure!(
        !ok(
            "unlock_user",
            storage.users.unlock_user("juliet", &domain).await
        )?,
        "a second unlock_user found a lock"
    );
    ensure!(
        !ok(
            "unlock_user",
            storage.users.unlock_user("romeo", &domain).await
        )?,
        "unlock_user found a lock on an account never locked"
    );
    // An expired lock is still there, for the caller to judge.
    let old = lock(10, Some(20), "long ago", "compliance");
    set_lock(storage, &domain, &old, Replace, &old).await?;
    ensure!(
        !old.holds_at(now_unix()) && old.holds_at(19) && !old.holds_at(20),
        "holds_at misjudges {old:?}"
    );

    let unknown = unique_domain("lock-none");
    not_found(
        "lock_user of an unknown account",
        storage
            .users
            .lock_user("juliet", &unknown, &a, Replace)
            .await,
    )?;
    not_found(
        "unlock_user of an unknown account",
        storage.users.unlock_user("juliet", &unknown).await,
    )?;
    ensure!(
        read_lock(storage, "juliet", &unknown).await?.is_none(),
        "an unknown account is locked"
    );
    ensure!(
        read_lock(storage, "juliet\0", &domain).await?.is_none(),
        "an account name with U+0000 is locked"
    );

    for (what, bad) in [
        (
            "an oversized reason",
            lock(1, None, &"r".repeat(MAX_LOCK_REASON_BYTES + 1), "x"),
        ),
        ("U+0000 in the reason", lock(1, None, "a\0", "x")),
        ("an empty locked_by", lock(1, None, "", "")),
        (
            "an oversized locked_by",
            lock(1, None, "", &"b".repeat(MAX_LOCKED_BY_BYTES + 1)),
        ),
        ("U+0000 in locked_by", lock(1, None, "", "a\0")),
        ("an end before the start", lock(100, Some(99), "", "x")),
        ("an end at the start", lock(100, Some(100), "", "x")),
    ] {
        invalid_input(
            &format!("lock_user with {what}"),
            storage
                .users
                .lock_user("juliet", &domain, &bad, Replace)
                .await,
        )?;
    }
    invalid_input(
        "lock_user of an empty username",
        storage.users.lock_user("", &domain, &a, Replace).await,
    )?;
    invalid_input(
        "unlock_user of an empty domain",
        storage.users.unlock_user("juliet", "").await,
    )?;
    ensure!(
        read_lock(storage, "juliet", &domain).await?.as_ref() == Some(&old),
        "a refused lock changed the lock in force"
    );
    let limits = lock(
        1,
        None,
        &"r".repeat(MAX_LOCK_REASON_BYTES),
        &"b".repeat(MAX_LOCKED_BY_BYTES),
    );
    set_lock(storage, &domain, &limits, Replace, &limits).await?;

    // The lock goes with the account.
    ok(
        "remove_user",
        storage.users.remove_user("juliet", &domain).await,
    )?;
    create_account(storage, "juliet", &domain).await?;
    ensure!(
        read_lock(storage, "juliet", &domain).await?.is_none(),
        "a recreated account inherited the lock"
    );

    // Concurrent `KeepLonger` locks: whatever the order, the longest is in force.
    const LOCKERS: i64 = 6;
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(LOCKERS as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..LOCKERS {
        let storage = storage.clone();
        let ready = ready.clone();
        let domain = domain.clone();
        // The longest is neither the first nor the last spawned.
        let until = 10_000 + ((i * 7) % LOCKERS) * 100;
        tasks.spawn(async move {
            ready.wait().await;
            let l = lock(5000, Some(until), &format!("locker {i}"), "compliance");
            storage
                .users
                .lock_user("juliet", &domain, &l, KeepLonger)
                .await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .map_err(|e| format!("lock task: {e}"))?
            .map_err(|e| format!("lock_user failed: {e}"))?;
    }
    let read = read_lock(storage, "juliet", &domain).await?;
    let longest = 10_000 + (LOCKERS - 1) * 100;
    ensure!(
        read.as_ref().and_then(|l| l.until) == Some(longest),
        "after concurrent locks the lock is {read:?}, expected one until {longest}"
    );
    Ok(())
}

pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("users::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        create_and_read,
        duplicate_create_refused,
        names_are_exact,
        set_credentials_replaces,
        remove_user_cascades,
        listing_order_and_counts,
        import_batch,
        import_rejects_existing,
        import_rejects_duplicate_in_batch,
        invalid_input_refused,
        concurrent_writes,
        locks,
    );
    if let Err(reason) = large_import(storage, RUN_ALL_IMPORT_COUNT).await {
        failures.push(format!("users::large_import: {reason}"));
    }
    failures
}
