//! `causeriectl export` and `causeriectl import`: accounts as XEP-0227 files, for moving between
//! servers (Prosody, ejabberd, another Causerie). The format work is `causerie_server::portable`;
//! this file parses arguments, opens files and prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use causerie_config::Config;
use causerie_server::portable::{self, ImportOptions, ImportProgress, PortableError, ReadOptions};
use causerie_storage::ExistingAccounts;

use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Only this hosted domain (default: every domain of `server.domains`).
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Write to this file (which must not exist yet) instead of standard output. It is created
    /// with mode 0600: it holds SCRAM keys, which let anyone who has them log in to this server
    /// as the users.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// XEP-0227 files: one from `causeriectl export` or ejabberd's `export_piefxis` (whose
    /// XInclude'd host and user files are read from beside it), or the per-user files Prosody's
    /// migrator writes (`*.xml`). All are checked before anything is written.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Leave accounts that exist already as they are, and import the others.
    #[arg(long, conflicts_with = "replace")]
    skip_existing: bool,
    /// Remove accounts that exist already, with everything stored for them, and import them
    /// from the files instead.
    #[arg(long)]
    replace: bool,
    /// Check the files and which accounts exist, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Exit code 2: bad arguments or files.
fn bad_input(message: &str) -> ExitCode {
    eprintln!("causeriectl: {message}");
    ExitCode::from(2)
}

fn failed(e: &PortableError) -> ExitCode {
    eprintln!("causeriectl: {e}");
    ExitCode::from(match e {
        PortableError::Existing(_) => 1,
        PortableError::Invalid(_) => 2,
        PortableError::Write(_) | PortableError::Storage(_) => 3,
    })
}

pub(crate) async fn export(config: &Config, args: ExportArgs) -> ExitCode {
    let domains: Vec<String> = match &args.domain {
        Some(d) => {
            let d = d.trim().to_ascii_lowercase();
            if !config.server.domains.contains(&d) {
                return bad_input(&format!(
                    "{d} is not a hosted domain of this server (server.domains: {})",
                    config.server.domains.join(", ")
                ));
            }
            vec![d]
        }
        None => config.server.domains.clone(),
    };
    if let Some(path) = &args.out
        && path.exists()
    {
        return bad_input(&format!(
            "{} exists already: remove it or choose another file",
            path.display()
        ));
    }
    let storage = match super::open_storage(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let bar = Progress::new("accounts exported", None);
    let progress = |n: usize| bar.set("accounts exported", n, None);
    let code = match &args.out {
        Some(path) => export_to_file(&storage, &domains, path, &progress).await,
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout());
            match portable::export(&storage, &domains, &mut stdout, &progress).await {
                Ok(report) => {
                    summarize_export(&report, "standard output");
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e),
            }
        }
    };
    bar.finish();
    storage.close().await;
    code
}

/// Writes beside `path` and links the file there at the end, so that a failed export leaves no
/// partial file that looks like a complete one.
async fn export_to_file(
    storage: &causerie_storage::Storage,
    domains: &[String],
    path: &Path,
    progress: &(dyn Fn(usize) + Send + Sync),
) -> ExitCode {
    let name = path
        .file_name()
        .map_or_else(|| "export".to_owned(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let file = match crate::create_private(&temp) {
        Ok(f) => f,
        Err(e) => return bad_input(&format!("{}: {e}", temp.display())),
    };
    let mut writer = std::io::BufWriter::new(file);
    let result = portable::export(storage, domains, &mut writer, progress).await;
    let result = result.and_then(|report| {
        let file = writer
            .into_inner()
            .map_err(|e| PortableError::Write(e.error().to_string()))?;
        file.sync_all()
            .map_err(|e| PortableError::Write(e.to_string()))?;
        // A link, not a rename: it fails instead of replacing a file created meanwhile.
        std::fs::hard_link(&temp, path)
            .map_err(|e| PortableError::Write(format!("{}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&temp);
        Ok(report)
    });
    match result {
        Ok(report) => {
            summarize_export(&report, &path.display().to_string());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            failed(&e)
        }
    }
}

fn summarize_export(report: &portable::ExportReport, target: &str) {
    eprintln!(
        "exported {} account(s) of {} domain(s) ({} roster items, {} offline messages) to {target}",
        report.users, report.hosts, report.roster_items, report.offline_messages
    );
    for note in &report.unreadable {
        eprintln!("causeriectl: warning: left out, does not parse: {note}");
    }
}

pub(crate) async fn import(config: &Config, args: ImportArgs) -> ExitCode {
    let mut options = ReadOptions::new(config.server.domains.clone());
    options.reserved_localpart = Some(config.policy.localpart.clone());
    let plural = if args.files.len() == 1 { "" } else { "s" };
    eprintln!("reading {} file{plural}…", args.files.len());
    let plan = match portable::read_files(&args.files, &options) {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    for warning in &plan.warnings {
        eprintln!("causeriectl: warning: {warning}");
    }
    for (what, count) in &plan.ignored {
        eprintln!(
            "causeriectl: note: {count} {what} element(s) not imported (this server does not keep them)"
        );
    }
    if plan.accounts.is_empty() {
        println!("nothing to import: the files hold no user");
        return ExitCode::SUCCESS;
    }
    let existing = if args.replace {
        ExistingAccounts::Replace
    } else if args.skip_existing {
        ExistingAccounts::Skip
    } else {
        ExistingAccounts::Refuse
    };
    let import_options = ImportOptions {
        existing,
        iterations: config.auth.scram_iterations,
        dry_run: args.dry_run,
    };
    let storage = match super::open_storage(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let total = plan.accounts.len();
    let started = std::time::Instant::now();
    eprintln!("importing {total} account(s)…");
    let bar = Progress::new("importing", Some(total));
    let progress = |p: ImportProgress| match p {
        ImportProgress::Deriving { done, total } => {
            bar.set("keys derived from passwords", done, Some(total))
        }
        ImportProgress::Writing { done, total } => bar.set("accounts written", done, Some(total)),
    };
    let result = portable::import(&storage, plan, &import_options, &progress).await;
    bar.finish();
    storage.close().await;
    let report = match result {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    for (jid, at) in &report.without_credentials {
        eprintln!(
            "causeriectl: warning: {jid} ({at}) has neither SCRAM credentials nor a password in the file: {} without credentials; it cannot log in until a password is set with `causeriectl user passwd {jid}`",
            if args.dry_run {
                "would be imported"
            } else {
                "imported"
            }
        );
    }
    let mut out = std::io::stdout().lock();
    let verb = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    let _ = writeln!(
        out,
        "{verb} {} account(s): {} created, {} replaced, {} skipped (existing); {} with keys derived from a plaintext password, {} without credentials; {:.1}s",
        report.created + report.replaced,
        report.created,
        report.replaced,
        report.skipped.len(),
        report.derived,
        report.without_credentials.len(),
        started.elapsed().as_secs_f64()
    );
    for jid in &report.skipped {
        let _ = writeln!(out, "skipped {jid}: it exists");
    }
    ExitCode::SUCCESS
}
