//! Accounts: JIDs checked against the hosted domains, SCRAM credentials derived from passwords
//! (off the async threads), CSV imports checked whole before anything is written. Shared by
//! the account operations of the registry, the tests, and the server crate, which re-exports
//! this module as `causerie_server::users`.

use causerie_config::Config;
use causerie_jid::BareJid;
use causerie_storage::{NewUser, StoreError, StoredCredential, UserStore};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid JID {jid:?}: {reason}")]
    InvalidJid { jid: String, reason: String },
    #[error("{0} is not a hosted domain of this server")]
    NotHosted(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("password: {0}")]
    Password(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("no such user: {0}")]
    NotFound(String),
    #[error("{file}:{line}: {reason}")]
    Import {
        file: String,
        line: usize,
        reason: String,
    },
    #[error(
        "{0} is the usage-policy address of the server (policy.localpart) and cannot be an account"
    )]
    Reserved(String),
    #[error("storage: {0}")]
    Storage(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists(what) => UserError::Exists(what),
            StoreError::NotFound(what) => UserError::NotFound(what),
            other => UserError::Storage(other),
        }
    }
}

/// Parses and normalizes an account JID (RFC 7622) and checks that its domain is hosted.
pub fn account_jid(config: &Config, s: &str) -> Result<BareJid, UserError> {
    let invalid = |reason: String| UserError::InvalidJid {
        jid: s.to_owned(),
        reason,
    };
    let jid = BareJid::parse(s.trim()).map_err(|e| invalid(e.to_string()))?;
    if jid.node().is_none() {
        return Err(invalid(
            "an account needs a local part (user@domain)".into(),
        ));
    }
    if !config.server.domains.iter().any(|d| d == jid.domain()) {
        return Err(UserError::NotHosted(jid.domain().to_owned()));
    }
    Ok(jid)
}

/// [`account_jid`] for an account about to be created: the policy address's localpart is the
/// server's own and refused.
pub fn new_account_jid(config: &Config, s: &str) -> Result<BareJid, UserError> {
    let jid = account_jid(config, s)?;
    if jid.node() == Some(config.policy.localpart.as_str()) {
        return Err(UserError::Reserved(jid.to_string()));
    }
    Ok(jid)
}

/// SCRAM credentials for every supported hash (RFC 5802: keys, never the password).
pub fn credentials(password: &str, iterations: u32) -> Result<Vec<StoredCredential>, UserError> {
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    let creds = causerie_sasl::derive_all(password, iterations)
        .map_err(|e| UserError::Password(e.to_string()))?;
    Ok(creds
        .into_iter()
        .map(|c| StoredCredential {
            hash: c.hash.name().to_owned(),
            salt: c.salt,
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        })
        .collect())
}

/// An account to create, with its credentials derived from `password`.
fn new_user(jid: &BareJid, password: &str, iterations: u32) -> Result<NewUser, UserError> {
    Ok(NewUser {
        username: jid.node().unwrap_or_default().to_owned(),
        domain: jid.domain().to_owned(),
        credentials: credentials(password, iterations)?,
    })
}

/// Runs a credential derivation (PBKDF2, deliberately slow) where it does not hold up the
/// tasks of the runtime.
async fn derive<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UserError> + Send + 'static,
) -> Result<T, UserError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(UserError::Password("credential derivation failed".into())))
}

pub async fn add(
    users: &dyn UserStore,
    jid: &BareJid,
    password: &str,
    iterations: u32,
) -> Result<(), UserError> {
    let (jid_owned, password) = (jid.clone(), password.to_owned());
    let user = derive(move || new_user(&jid_owned, &password, iterations)).await?;
    users.create_user(&user).await?;
    Ok(())
}

pub async fn set_password(
    users: &dyn UserStore,
    jid: &BareJid,
    password: &str,
    iterations: u32,
) -> Result<(), UserError> {
    let password = password.to_owned();
    let credentials = derive(move || credentials(&password, iterations)).await?;
    users
        .set_credentials(jid.node().unwrap_or_default(), jid.domain(), &credentials)
        .await?;
    Ok(())
}

pub async fn remove(users: &dyn UserStore, jid: &BareJid) -> Result<(), UserError> {
    users
        .remove_user(jid.node().unwrap_or_default(), jid.domain())
        .await?;
    Ok(())
}

/// Parses a `jid,password` CSV (an optional `jid,password` header line; blank lines skipped; a
/// password may contain commas, since only the first comma separates). Every line is checked before
/// anything is written: one bad line refuses the whole file.
pub fn parse_import(
    config: &Config,
    file: &str,
    text: &str,
) -> Result<Vec<(BareJid, String)>, UserError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |reason: String| UserError::Import {
            file: file.to_owned(),
            line,
            reason,
        };
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.trim().is_empty() || (line == 1 && l.trim().eq_ignore_ascii_case("jid,password")) {
            continue;
        }
        let Some((jid, password)) = l.split_once(',') else {
            return Err(err("expected `jid,password`".into()));
        };
        let jid = new_account_jid(config, jid).map_err(|e| err(e.to_string()))?;
        if password.is_empty() {
            return Err(err("empty password".into()));
        }
        if !seen.insert(jid.clone()) {
            return Err(err(format!("{jid} appears twice in the file")));
        }
        out.push((jid, password.to_owned()));
    }
    if out.is_empty() {
        return Err(UserError::Import {
            file: file.to_owned(),
            line: 0,
            reason: "no accounts in the file".into(),
        });
    }
    Ok(out)
}

/// Derives the credentials of many accounts on every core, then creates them in one transaction.
pub async fn import(
    users: &dyn UserStore,
    accounts: Vec<(BareJid, String)>,
    iterations: u32,
) -> Result<usize, UserError> {
    let all = derive(move || derive_many(&accounts, iterations)).await?;
    Ok(users.import_users(&all).await?)
}

/// The accounts to create, their credentials derived on every core.
fn derive_many(accounts: &[(BareJid, String)], iterations: u32) -> Result<Vec<NewUser>, UserError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = accounts.len().div_ceil(threads).max(1);
    let derived: Vec<Result<Vec<NewUser>, UserError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = accounts
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(jid, pw)| new_user(jid, pw, iterations))
                        .collect::<Result<Vec<_>, UserError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(UserError::Password("credential derivation failed".into()))
                })
            })
            .collect()
    });
    let mut all = Vec::with_capacity(accounts.len());
    for part in derived {
        all.extend(part?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_refuses_bad_lines_with_their_number() {
        let config = Config::default();
        let ok = parse_import(
            &config,
            "u.csv",
            "jid,password\nalice@localhost,a,b\n\nbob@localhost,x\n",
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1, "a,b");
        let e =
            parse_import(&config, "u.csv", "alice@localhost,a\nbroken line\n").expect_err("bad");
        assert_eq!(e.to_string(), "u.csv:2: expected `jid,password`");
        let e = parse_import(&config, "u.csv", "alice@elsewhere.example,a\n").expect_err("bad");
        assert!(e.to_string().starts_with("u.csv:1:"), "{e}");
        let e = parse_import(&config, "u.csv", "a@localhost,x\nA@localhost,y\n").expect_err("dup");
        assert!(e.to_string().contains("twice"), "{e}");
        let e = parse_import(&config, "u.csv", "Policy@localhost,x\n").expect_err("reserved");
        assert!(e.to_string().contains("usage-policy address"), "{e}");
    }

    #[test]
    fn the_policy_address_is_not_an_account() {
        let mut config = Config::default();
        assert!(matches!(
            new_account_jid(&config, "policy@localhost"),
            Err(UserError::Reserved(_))
        ));
        // Removing such an account stays possible, and another localpart frees the name.
        assert!(account_jid(&config, "policy@localhost").is_ok());
        config.policy.localpart = "terms".into();
        assert!(new_account_jid(&config, "policy@localhost").is_ok());
        assert!(new_account_jid(&config, "terms@localhost").is_err());
    }

    #[tokio::test]
    async fn add_passwd_remove_on_memory_store() {
        let config = Config::default();
        let s = causerie_storage::Storage::memory();
        let jid = account_jid(&config, "Alice@localhost").expect("jid");
        assert_eq!(jid.as_str(), "alice@localhost");
        add(s.users.as_ref(), &jid, "secret", 4096)
            .await
            .expect("add");
        assert!(matches!(
            add(s.users.as_ref(), &jid, "secret", 4096).await,
            Err(UserError::Exists(_))
        ));
        set_password(s.users.as_ref(), &jid, "other", 4096)
            .await
            .expect("passwd");
        let c = s
            .users
            .credential("alice", "localhost", "SHA-256")
            .await
            .expect("q")
            .expect("cred");
        assert!(c.iterations >= 4096);
        remove(s.users.as_ref(), &jid).await.expect("remove");
        assert!(matches!(
            remove(s.users.as_ref(), &jid).await,
            Err(UserError::NotFound(_))
        ));
    }
}
