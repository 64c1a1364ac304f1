//! XEP-0227 Portable Import/Export Format: moving accounts between XMPP servers as one XML
//! document, shared by `causeriectl export|import` and (later) the admin API.
//!
//! What travels, per user (`<server-data><host jid=…><user name=…>`):
//! - credentials: SCRAM keys as `<scram-credentials xmlns='urn:xmpp:pie:0#scram'>` (XEP-0227
//!   1.1), one per hash function; never a password on export. On import, keys are taken as
//!   they are, and a plaintext `password` attribute (older exporters, or servers storing
//!   passwords in plain) is turned into keys for every hash the file has none for, then
//!   forgotten. A user with neither is imported without credentials and cannot log in until an
//!   administrator sets a password (`causeriectl user passwd`); the import says so per user.
//! - the roster (§4.3): items with subscription, `ask`, `approved`, name and groups, and the
//!   inbound subscription requests not yet answered as `<presence type='subscribe'/>` children
//!   of the user (as Prosody and ejabberd write them);
//! - offline messages (§4.4), oldest first, with their XEP-0203 delay;
//! - private XML storage (§4.5, XEP-0049) and the vCard (§4.6, XEP-0054).
//!
//! Anything else in a file (PEP nodes, archives, privacy lists, unknown extensions) is ignored
//! and counted, as §4 asks ("SHOULD ignore … SHOULD notify the operator"). XInclude (§5) is
//! followed for `href` references relative to the including file.
//!
//! An import is checked whole before anything is written: every problem is reported with its
//! file and line, and one problem refuses everything. The writes then go through
//! [`causerie_storage::TransferStore::import_accounts`], one transaction.

mod read;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use causerie_storage::{AccountRecord, ExistingAccounts, Storage, StoreError};

pub use read::ReadOptions;
pub use write::{ExportReport, export};

/// The namespace of XEP-0227 since version 1.0.
pub const NS_PIE: &str = "urn:xmpp:pie:0";
/// The namespace of the drafts before it, still written by some exporters.
pub const NS_PIE_DRAFT: &str = "http://www.xmpp.org/extensions/xep-0227.html#ns";
/// SCRAM credentials (XEP-0227 1.1).
pub const NS_SCRAM: &str = "urn:xmpp:pie:0#scram";
pub const NS_XINCLUDE: &str = "http://www.w3.org/2001/XInclude";
pub(crate) const NS_CLIENT: &str = "jabber:client";
pub(crate) const NS_ROSTER: &str = "jabber:iq:roster";
pub(crate) const NS_PRIVATE: &str = "jabber:iq:private";
pub(crate) const NS_VCARD: &str = "vcard-temp";
pub(crate) const NS_DELAY: &str = "urn:xmpp:delay";

/// A place in the files read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One reason an import is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Location,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortableError {
    /// The files are malformed or do not fit this server; nothing was written.
    #[error("{}", list_problems(.0))]
    Invalid(Vec<Problem>),
    /// Accounts of the files exist already, and the import was asked to refuse them; nothing
    /// was written.
    #[error(
        "{} account(s) of the import already exist, nothing was imported (use --skip-existing to keep them as they are, or --replace to overwrite them): {}",
        .0.len(),
        list_existing(.0)
    )]
    Existing(Vec<(String, Location)>),
    /// The export file could not be written.
    #[error("{0}")]
    Write(String),
    /// The database refused or failed.
    #[error("storage: {0}")]
    Storage(StoreError),
}

fn list_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    format!(
        "the import is refused, nothing was imported ({} problem{}):\n  {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n  ")
    )
}

fn list_existing(existing: &[(String, Location)]) -> String {
    let shown: Vec<String> = existing
        .iter()
        .take(20)
        .map(|(jid, at)| format!("{jid} ({at})"))
        .collect();
    let more = existing.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A plaintext password from a file, kept only until keys are derived from it.
pub(crate) struct Password(pub(crate) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// One account read from the files, not yet written.
#[derive(Debug)]
pub struct PlannedAccount {
    /// Where its `<user/>` element is.
    pub at: Location,
    /// Everything to write; credentials still lack those to derive from `password`.
    pub record: AccountRecord,
    pub(crate) password: Option<Password>,
}

impl PlannedAccount {
    /// `user@domain`.
    pub fn jid(&self) -> String {
        format!("{}@{}", self.record.username, self.record.domain)
    }

    /// Whether the file gave a plaintext password (which only ever becomes SCRAM keys).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

/// The files, read and checked.
#[derive(Debug, Default)]
pub struct ReadPlan {
    /// The accounts in file order.
    pub accounts: Vec<PlannedAccount>,
    /// Elements ignored, by kind (`<archive xmlns='urn:xmpp:pie:0#mam'>`), with their count.
    pub ignored: BTreeMap<String, usize>,
    /// Things worth the operator's attention that do not refuse the import.
    pub warnings: Vec<String>,
}

impl ReadPlan {
    /// The accounts that will have no credentials (no SCRAM keys, no password in the file).
    pub fn without_credentials(&self) -> Vec<&PlannedAccount> {
        self.accounts
            .iter()
            .filter(|a| a.record.credentials.is_empty() && a.password.is_none())
            .collect()
    }
}

/// Reads and checks XEP-0227 files (XInclude followed). Nothing is written.
pub fn read_files(paths: &[PathBuf], options: &ReadOptions) -> Result<ReadPlan, PortableError> {
    let mut reader = read::Reader::new(options);
    for path in paths {
        reader.read_file(path);
    }
    reader.finish()
}

/// Reads and checks one XEP-0227 document held in memory (for the admin API); `name` is how
/// problems refer to it. XInclude is refused. Nothing is written.
pub fn read_document(
    name: &str,
    bytes: &[u8],
    options: &ReadOptions,
) -> Result<ReadPlan, PortableError> {
    let mut reader = read::Reader::new(options);
    reader.read_bytes(name, bytes);
    reader.finish()
}

/// How an import treats accounts that exist, and how it derives keys from passwords.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    pub existing: ExistingAccounts,
    /// PBKDF2 iterations for keys derived from plaintext passwords (`auth.scram_iterations`).
    pub iterations: u32,
    /// Check everything, including which accounts exist, and write nothing.
    pub dry_run: bool,
}

/// Where a long import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportProgress {
    /// SCRAM keys derived for `done` of `total` plaintext passwords.
    Deriving { done: usize, total: usize },
    /// `done` of `total` accounts written (inside the transaction).
    Writing { done: usize, total: usize },
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub replaced: usize,
    /// Existing accounts left as they were (`--skip-existing`).
    pub skipped: Vec<String>,
    /// Accounts whose keys were derived from a plaintext password in the file.
    pub derived: usize,
    /// Accounts imported without credentials, with where they are in the files.
    pub without_credentials: Vec<(String, Location)>,
    pub dry_run: bool,
}

/// Writes what [`read_files`] or [`read_document`] checked: existing accounts handled per
/// `options.existing` (refused by default, before any key is derived), keys derived from
/// plaintext passwords on every core, then everything in one transaction.
pub async fn import(
    storage: &Storage,
    plan: ReadPlan,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportReport, PortableError> {
    let mut existing = Vec::new();
    for account in &plan.accounts {
        let r = &account.record;
        if storage
            .users
            .user_exists(&r.username, &r.domain)
            .await
            .map_err(PortableError::Storage)?
        {
            existing.push((account.jid(), account.at.clone()));
        }
    }
    if options.existing == ExistingAccounts::Refuse && !existing.is_empty() {
        return Err(PortableError::Existing(existing));
    }
    let mut report = ImportReport {
        dry_run: options.dry_run,
        without_credentials: plan
            .without_credentials()
            .into_iter()
            .map(|a| (a.jid(), a.at.clone()))
            .collect(),
        ..ImportReport::default()
    };
    if options.dry_run {
        let exists = existing.len();
        match options.existing {
            ExistingAccounts::Skip => {
                report.skipped = existing.into_iter().map(|(j, _)| j).collect()
            }
            _ => report.replaced = exists,
        }
        report.created = plan.accounts.len() - exists;
        report.derived = plan.accounts.iter().filter(|a| a.has_password()).count();
        return Ok(report);
    }
    let skip: std::collections::HashSet<String> = if options.existing == ExistingAccounts::Skip {
        existing.iter().map(|(j, _)| j.clone()).collect()
    } else {
        Default::default()
    };
    let (records, derived) =
        derive_credentials(plan.accounts, &skip, options.iterations, progress)?;
    report.derived = derived;
    let writing = |done: usize, total: usize| progress(ImportProgress::Writing { done, total });
    let outcome = storage
        .transfer
        .import_accounts(&records, options.existing, Some(&writing))
        .await
        .map_err(|e| match e {
            // Created by someone else between the check and the transaction.
            StoreError::AlreadyExists(jid) => PortableError::Existing(vec![(
                jid,
                Location {
                    file: "(created during the import)".to_owned(),
                    line: 0,
                },
            )]),
            other => PortableError::Storage(other),
        })?;
    report.created = outcome.created;
    report.replaced = outcome.replaced;
    report.skipped = outcome.skipped;
    Ok(report)
}

/// Turns plaintext passwords into SCRAM keys for the hashes a record has none for, on every
/// core (PBKDF2 is the slow part of a large import). Accounts in `skip` are passed through
/// without derivation: the store leaves them alone anyway.
fn derive_credentials(
    accounts: Vec<PlannedAccount>,
    skip: &std::collections::HashSet<String>,
    iterations: u32,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<(Vec<AccountRecord>, usize), PortableError> {
    let total = accounts
        .iter()
        .filter(|a| a.password.is_some() && !skip.contains(&a.jid()))
        .count();
    let done = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = accounts.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<AccountRecord>, Problem>> = std::thread::scope(|scope| {
        let handles: Vec<_> = accounts
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                scope.spawn(move || {
                    part.iter()
                        .map(|account| {
                            let mut record = account.record.clone();
                            let Some(password) = &account.password else {
                                return Ok(record);
                            };
                            if skip.contains(&account.jid()) {
                                return Ok(record);
                            }
                            let derived = crate::users::credentials(&password.0, iterations)
                                .map_err(|e| Problem {
                                    at: account.at.clone(),
                                    reason: format!("the password of {}: {e}", account.jid()),
                                })?;
                            for cred in derived {
                                if !record.credentials.iter().any(|c| c.hash == cred.hash) {
                                    record.credentials.push(cred);
                                }
                            }
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n.is_multiple_of(50) || n == total {
                                progress(ImportProgress::Deriving { done: n, total });
                            }
                            Ok(record)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Problem {
                        at: Location {
                            file: String::new(),
                            line: 0,
                        },
                        reason: "credential derivation failed".to_owned(),
                    })
                })
            })
            .collect()
    });
    let mut records = Vec::with_capacity(accounts.len());
    let mut problems = Vec::new();
    for part in results {
        match part {
            Ok(r) => records.extend(r),
            Err(p) => problems.push(p),
        }
    }
    if !problems.is_empty() {
        return Err(PortableError::Invalid(problems));
    }
    Ok((records, total))
}

#[cfg(test)]
mod tests;
