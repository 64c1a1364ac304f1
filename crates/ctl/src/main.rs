//! `causeriectl`: the administration command line. Argument parsing only; the operations live in the
//! library crates so the tests and the server share them.
//!
//! The `user`, `group`, `session`, `announce`, `audit` and `stats` commands run the operations of
//! `causerie_admin` through the running server's admin API (its Unix socket); when the server is
//! not running, those that can do without it run against the database directly, and say so on
//! standard error. The other commands work on the database and files directly.
//!
//! Exit codes: 0 done; 1 the operation was refused (exists, not found); 2 bad input (arguments, JID,
//! domain, time, password, import file, policy file); 3 the configuration, the database or the
//! receipt key is unusable (or there is no receipt key yet); 4 the command needs the running
//! server, which is not running or cannot be reached; 5 the server refused the caller (socket
//! permissions, bearer token, permission level). `check` exits 1 when a check failed and 3 when
//! the configuration cannot be loaded.

mod audit;
mod cert;
mod check;
mod client;
mod evidence;
mod federation;
mod groups;
mod policy;
mod portable;
mod progress;
mod reference;
mod review;
mod rules;
mod session;
mod time;
mod token;
mod users;

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use causerie_admin::accounts::UserError;
use causerie_config::Config;
use causerie_storage::{Storage, StorageOptions};
use clap::{Parser, Subcommand};

use audit::AuditCommand;
use evidence::EvidenceCommand;
use federation::FederationCommand;
use groups::GroupCommand;
use policy::PolicyCommand;
use review::ReviewCommand;
use rules::RulesCommand;
use session::{AnnounceCommand, SessionCommand, StatsCommand};

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
    /// The admin socket of the running server (default: admin.socket of the configuration).
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// Do not contact the server: run against the database directly. Commands that need the
    /// server (session, stats, announce --online) then fail with exit code 4.
    #[arg(long, global = true)]
    offline: bool,
    /// Reach the admin API on its TCP listener (`admin.listen`) instead of the socket, e.g.
    /// http://127.0.0.1:5281 (or https:// behind a TLS proxy). The bearer token is read from
    /// the environment variable CAUSERIE_ADMIN_TOKEN or from --token-file; there is no offline
    /// fallback.
    #[arg(
        long,
        value_name = "URL",
        global = true,
        env = "CAUSERIE_API_URL",
        hide_env_values = true
    )]
    api: Option<String>,
    /// A file holding the bearer token for --api (its first line).
    #[arg(long, value_name = "PATH", global = true)]
    token_file: Option<PathBuf>,
    /// Extra trust anchors (PEM) for an https:// --api URL.
    #[arg(long, value_name = "PATH", global = true)]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Manage accounts. Through the running server, or against the database when it is not
    /// running; changes are recorded in the audit log.
    #[command(subcommand)]
    User(UserCommand),
    /// List, show and disconnect client sessions. Needs the running server.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Manage shared roster groups: their members see each other in their rosters (subscription
    /// both, the group's display name as roster group) and each other's presence. Through the
    /// running server, which tells members online at once, or against the database when it is
    /// not running (applied at its next start or SIGHUP). Changes are recorded in the audit log.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Send a message from the server to every online user (`--online`, the default) or to
    /// every user (`--all`: those offline get it at their next login), when other channels
    /// (e-mail) are down. Recorded in the audit log.
    Announce(AnnounceCommand),
    /// What the running server does now: sessions, stanzas per second, server-to-server
    /// streams, queue depths. Needs the running server.
    Stats(StatsCommand),
    /// Manage the federation partner list: which remote domains may exchange traffic with this
    /// server. Works whether the server is running or not; a running server applies changes
    /// within a few seconds. Every change is recorded in the audit log.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Read and export the audit log (administrative changes, refused access to the admin API,
    /// server-to-server stream decisions).
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
    /// Review the messages that `quarantine` rules hold: list the queue, read a held message,
    /// release it (the running server delivers it) or reject it (the sender is told). Works
    /// whether the server is running or not; every read and decision is recorded in the audit
    /// log.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Manage the compliance rules (the rules file, `compliance.rules_file`): list, check, add,
    /// remove, and test what they would do to a message. A running server reloads the file
    /// within `compliance.reload_secs`; changes are recorded in the audit log.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write accounts as a XEP-0227 file: SCRAM keys (never passwords), rosters, pending
    /// subscription requests, offline messages, private XML and vCards. Works whether the server
    /// is running or not.
    Export(portable::ExportArgs),
    /// Create accounts from XEP-0227 files (from Prosody, ejabberd or `causeriectl export`),
    /// all or nothing, in one transaction. See docs/migration.md.
    Import(portable::ImportArgs),
    /// Check that this machine is ready to run the configured server: configuration,
    /// certificates, DNS records, listening ports, database and file permissions. Each check is
    /// reported ok, warn, fail or skip with a reason and a hint; exit code 1 when one failed,
    /// 3 when the configuration cannot be loaded. Works whether the server is running or not.
    Check(check::CheckArgs),
    /// Manage the TLS certificates of the hosted domains: generate self-signed ones, import a
    /// CA's certificate and key after checking them, list what each domain uses. The server
    /// reads certificates when it starts: restart it after a change.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Create, list and revoke the bearer tokens of the admin API's TCP listener
    /// (`admin.token_file`). A new token is printed once; the file keeps its SHA-256.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Print this command's reference in Markdown (docs/cli.md is its output).
    #[command(hide = true)]
    Reference,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create an account. The password is asked for on the terminal, or read from the first line of
    /// standard input when it is not a terminal.
    Add {
        jid: String,
        /// One JSON object {jid} instead.
        #[arg(long)]
        json: bool,
    },
    /// Delete an account and everything stored for it, and take it out of its shared roster
    /// groups; its sessions on the running server are closed.
    Remove {
        jid: String,
        /// One JSON object {jid, sessions_closed, groups_left} instead.
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password (asked for like `add`).
    Passwd {
        jid: String,
        /// One JSON object {jid} instead.
        #[arg(long)]
        json: bool,
    },
    /// List accounts.
    List {
        /// Only this domain.
        #[arg(long)]
        domain: Option<String>,
        /// One JSON array instead of one JID per line.
        #[arg(long)]
        json: bool,
    },
    /// Show an account: when it was created, its SCRAM credentials (hash and iteration
    /// count), its offline messages, and its sessions when the server is running.
    Show {
        jid: String,
        /// One JSON object {jid, created_at, created, credentials, offline_messages,
        /// sessions} instead (sessions is null without the server).
        #[arg(long)]
        json: bool,
    },
    /// Lock an account: its logins are refused (SASL `account-disabled`) until the lock ends or
    /// is lifted with `unlock`, and the running server ends its sessions. Replaces any lock the
    /// account had. Recorded in the audit log.
    Lock {
        jid: String,
        /// For this many minutes; without it, until `unlock`.
        #[arg(long, value_name = "N")]
        minutes: Option<u32>,
        /// Why, kept with the lock and in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// One JSON object {jid, lock, sessions_closed} instead.
        #[arg(long)]
        json: bool,
    },
    /// Lift an account's lock (set by `lock` or by a compliance rule). Recorded in the audit
    /// log.
    Unlock {
        jid: String,
        /// One JSON object {jid, was_locked} instead.
        #[arg(long)]
        json: bool,
    },
    /// Create accounts from a CSV file of `jid,password` lines, all or none, in one transaction.
    Import {
        file: PathBuf,
        /// One JSON object {imported} instead.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Reference) {
        print!(
            "{}",
            reference::markdown(<Cli as clap::CommandFactory>::command())
        );
        return ExitCode::SUCCESS;
    }
    let (config, _) = match Config::discover(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            if let Command::Check(args) = &cli.command {
                return check::unloadable(&e, args);
            }
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
    let endpoint = match endpoint(&cli) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let target = client::Target::new(config.clone(), endpoint, cli.offline);
    rt.block_on(run(config, &target, cli.command))
}

async fn run(config: Config, target: &client::Target, command: Command) -> ExitCode {
    match command {
        Command::User(cmd) => users::run(target, cmd).await,
        Command::Session(cmd) => session::run(target, cmd).await,
        Command::Group(cmd) => groups::run(target, cmd).await,
        Command::Announce(cmd) => session::announce(target, cmd).await,
        Command::Stats(cmd) => session::stats(target, cmd).await,
        Command::Audit(cmd) => audit::run(target, cmd).await,
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
        Command::Review(cmd) => {
            let cmd = match review::prepare(cmd) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let storage = match open_storage(&config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let code = review::run(&storage, cmd).await;
            storage.close().await;
            code
        }
        Command::Token(cmd) => token::run(&config, cmd).await,
        Command::Reference => {
            print!(
                "{}",
                reference::markdown(<Cli as clap::CommandFactory>::command())
            );
            ExitCode::SUCCESS
        }
        Command::Check(args) => check::run(&config, args).await,
        Command::Cert(cmd) => cert::run(&config, cmd),
        Command::Export(args) => portable::export(&config, args).await,
        Command::Import(args) => portable::import(&config, args).await,
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

/// Where API calls go: `--api` with its token, or the socket (`--socket` or the configured
/// one). Bad options are exit code 2.
fn endpoint(cli: &Cli) -> Result<Option<client::Endpoint>, ExitCode> {
    let bad = |why: String| {
        eprintln!("causeriectl: {why}");
        ExitCode::from(2)
    };
    let Some(api) = &cli.api else {
        return Ok(cli.socket.clone().map(client::Endpoint::Socket));
    };
    if cli.socket.is_some() || cli.offline {
        return Err(bad(
            "--api cannot be combined with --socket or --offline".into()
        ));
    }
    let url = causerie_config::HttpUrl::parse(api).map_err(|e| bad(format!("--api: {e}")))?;
    let token = match (&cli.token_file, std::env::var("CAUSERIE_ADMIN_TOKEN")) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| bad(format!("--token-file {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        (None, Ok(t)) => t.trim().to_owned(),
        (None, Err(_)) => String::new(),
    };
    if token.is_empty() {
        return Err(bad(
            "--api needs a bearer token: set CAUSERIE_ADMIN_TOKEN or give --token-file".into(),
        ));
    }
    Ok(Some(client::Endpoint::Tcp {
        url,
        token,
        ca_file: cli.ca_file.clone(),
    }))
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

/// A new file readable by its owner only, refused if it exists: exports (XEP-0227, evidence)
/// and token files hold secrets.
fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
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
