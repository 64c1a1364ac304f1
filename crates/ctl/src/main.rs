//! `causeriectl`: the administration command line. Argument parsing only; the operations live in the
//! library crates so the tests and the server share them.
//!
//! Exit codes: 0 done; 1 the operation was refused (exists, not found); 2 bad input (arguments, JID,
//! domain, time, password, import file, policy file); 3 the configuration, the database or the
//! receipt key is unusable (or there is no receipt key yet).

mod evidence;
mod federation;
mod policy;
mod rules;
mod time;

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use causerie_config::Config;
use causerie_server::users::{self, UserError};
use causerie_storage::{Storage, StorageOptions};
use clap::{Parser, Subcommand};

use evidence::EvidenceCommand;
use federation::{AuditCommand, FederationCommand};
use policy::PolicyCommand;
use rules::RulesCommand;

#[derive(Parser, Debug)]
#[command(
    name = "causeriectl",
    version,
    about = "Administer a Causerie XMPP server"
)]
struct Cli {
    /// Configuration file (default: ./causerie.toml if present, else built-in defaults).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage accounts. Works whether the server is running or not.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the federation partner list: which remote domains may exchange traffic with this
    /// server. Works whether the server is running or not; a running server applies changes
    /// within a few seconds. Every change is recorded in the audit log.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Read the audit log (administrative changes, server-to-server stream decisions).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the usage policy: publish versions, show them, and check who accepted which
    /// version (signed receipts in a hash chain). The receipt-signing key is
    /// DATA_DIR/policy.key. Works whether the server is running or not.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Read and keep the compliance evidence: list records, show or export them (sealed
    /// payloads with the officer's secret key), check the signed hash chain, purge old
    /// payloads, put records on legal hold, and create the officer's key pair. Every read and
    /// change is recorded in the audit log. Works whether the server is running or not.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Manage the compliance rules (the rules file, `compliance.rules_file`): list, check, add,
    /// remove, and test what they would do to a message. A running server reloads the file
    /// within `compliance.reload_secs`; changes are recorded in the audit log.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account. The password is asked for on the terminal, or read from the first line of
    /// standard input when it is not a terminal.
    Add { jid: String },
    /// Delete an account and everything stored for it.
    Remove { jid: String },
    /// Change an account's password (asked for like `add`).
    Passwd { jid: String },
    /// List accounts.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// One JSON array instead of one JID per line.
        #[arg(long)]
        json: bool,
    },
    /// Create accounts from a CSV file of `jid,password` lines, all or none, in one transaction.
    Import { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, _) = match Config::discover(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("causeriectl: {e}");
            return ExitCode::from(3);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("causeriectl: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    rt.block_on(run(config, cli.command))
}

async fn run(config: Config, command: Command) -> ExitCode {
    match command {
        Command::User(cmd) => run_user(config, cmd).await,
        Command::Federation(cmd) => {
            // Arguments are checked before the database is opened.
            let cmd = match federation::prepare(cmd) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = federation::run(&storage, &config, cmd).await;
            storage.close().await;
            code
        }
        Command::Audit(cmd) => {
            let query = match federation::prepare_audit(cmd) {
                Ok(q) => q,
                Err(code) => return code,
            };
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = federation::run_audit(&storage, query).await;
            storage.close().await;
            code
        }
        Command::Rules(cmd) => {
            let needs_db = matches!(
                cmd,
                RulesCommand::Add { .. } | RulesCommand::Remove { .. } | RulesCommand::Test { .. }
            );
            if !needs_db {
                return rules::run(None, &config, cmd).await;
            }
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = rules::run(Some(&storage), &config, cmd).await;
            storage.close().await;
            code
        }
        Command::Evidence(cmd) => {
            // Arguments and key files are checked before the database is opened.
            let cmd = match evidence::prepare(cmd, &config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let evidence::Prepared::Keygen { out } = &cmd {
                return evidence::keygen(out);
            }
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = evidence::run(&storage, cmd).await;
            storage.close().await;
            code
        }
        Command::Policy(cmd) => {
            // Arguments, the policy file and the key are checked before the database is opened.
            let cmd = match policy::prepare(cmd, &config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let policy::Prepared::Key = cmd {
                return policy::key(&config);
            }
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = policy::run(&storage, &config, cmd).await;
            storage.close().await;
            code
        }
    }
}

/// Opens the configured database (creating the default data folder for SQLite), or prints why
/// not and returns exit code 3.
async fn open_storage(config: &Config) -> Result<Storage, ExitCode> {
    if let Some(dir) = config
        .database
        .url
        .is_none()
        .then_some(&config.server.data_dir)
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("causeriectl: data folder {}: {e}", dir.display());
        return Err(ExitCode::from(3));
    }
    let opts = StorageOptions {
        max_connections: 2,
        connect_timeout_secs: config.database.connect_timeout_secs,
    };
    Storage::open(&config.database_url(), &opts)
        .await
        .map_err(|e| {
            eprintln!("causeriectl: database: {e}");
            ExitCode::from(3)
        })
}

async fn run_user(config: Config, cmd: UserCommand) -> ExitCode {
    // Validate what can be validated before touching the database or asking for a password.
    let jid = match &cmd {
        UserCommand::Add { jid } => match users::new_account_jid(&config, jid) {
            Ok(j) => Some(j),
            Err(e) => return fail(&e),
        },
        UserCommand::Remove { jid } | UserCommand::Passwd { jid } => {
            match users::account_jid(&config, jid) {
                Ok(j) => Some(j),
                Err(e) => return fail(&e),
            }
        }
        _ => None,
    };
    let import = match &cmd {
        UserCommand::Import { file } => {
            let text = match std::fs::read(file) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(_) => {
                        eprintln!("causeriectl: {}: not UTF-8 text", file.display());
                        return ExitCode::from(2);
                    }
                },
                Err(e) => {
                    eprintln!("causeriectl: {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            match users::parse_import(&config, &file.display().to_string(), &text) {
                Ok(a) => Some(a),
                Err(e) => return fail(&e),
            }
        }
        _ => None,
    };
    let storage = match open_storage(&config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let iterations = config.auth.scram_iterations;
    let users_store = storage.users.clone();
    let code = match (cmd, jid) {
        (UserCommand::Add { .. }, Some(jid)) => match read_password(true) {
            Ok(pw) => report(
                users::add(users_store.as_ref(), &jid, &pw, iterations).await,
                &format!("created {jid}"),
            ),
            Err(e) => fail(&e),
        },
        (UserCommand::Passwd { .. }, Some(jid)) => match read_password(true) {
            Ok(pw) => report(
                users::set_password(users_store.as_ref(), &jid, &pw, iterations).await,
                &format!("password changed for {jid}"),
            ),
            Err(e) => fail(&e),
        },
        (UserCommand::Remove { .. }, Some(jid)) => report(
            users::remove(users_store.as_ref(), &jid).await,
            &format!("removed {jid}"),
        ),
        (UserCommand::List { domain, json }, _) => {
            match users_store.list_users(domain.as_deref()).await {
                Ok(list) => {
                    if json {
                        let items: Vec<String> = list
                            .iter()
                            .map(|u| {
                                format!(
                                    "{{\"jid\":{},\"created_at\":{}}}",
                                    json_string(&format!("{}@{}", u.username, u.domain)),
                                    u.created_at
                                )
                            })
                            .collect();
                        println!("[{}]", items.join(","));
                    } else {
                        for u in &list {
                            println!("{}@{}", u.username, u.domain);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&UserError::from(e)),
            }
        }
        (UserCommand::Import { .. }, _) => {
            let accounts = import.unwrap_or_default();
            let n = accounts.len();
            let started = std::time::Instant::now();
            eprintln!("deriving credentials for {n} accounts…");
            let result = users::import(users_store.as_ref(), accounts, iterations).await;
            report(
                result.map(|_| ()),
                &format!(
                    "imported {n} accounts in {:.1}s",
                    started.elapsed().as_secs_f64()
                ),
            )
        }
        _ => ExitCode::from(2),
    };
    storage.close().await;
    code
}

/// Reads a password: twice on a terminal (they must match), else the first line of standard input.
/// Never from the command line, where other users of the machine could read it.
fn read_password(confirm: bool) -> Result<String, UserError> {
    let stdin = std::io::stdin();
    let pw = if stdin.is_terminal() {
        let a = rpassword::prompt_password("Password: ")
            .map_err(|e| UserError::Password(e.to_string()))?;
        if confirm {
            let b = rpassword::prompt_password("Again: ")
                .map_err(|e| UserError::Password(e.to_string()))?;
            if a != b {
                return Err(UserError::Password("the two passwords differ".into()));
            }
        }
        a
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .take(64 * 1024)
            .read_line(&mut line)
            .map_err(|e| UserError::Password(e.to_string()))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if pw.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    Ok(pw)
}

fn report(r: Result<(), UserError>, done: &str) -> ExitCode {
    match r {
        Ok(()) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &UserError) -> ExitCode {
    eprintln!("causeriectl: {e}");
    ExitCode::from(match e {
        UserError::Exists(_) | UserError::NotFound(_) => 1,
        UserError::Storage(_) => 3,
        _ => 2,
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
