//! `causeriectl token add|list|remove`: the bearer tokens of the admin API's TCP listener, in
//! `admin.token_file`. A new token is printed once and only its SHA-256 is written to the file,
//! so that reading the file does not give the token; the running server reads the file again
//! when it changes, so a token works, or stops working, at once. Changes are recorded in the
//! audit log.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use causerie_admin::Permission;
use causerie_config::Config;
use causerie_http::tokens;
use clap::Subcommand;

use crate::federation::record;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token for NAME and print it once; the file keeps only its SHA-256. The name is
    /// what the audit log records (`token:NAME`).
    Add {
        name: String,
        /// What the token may do: read, operate or admin.
        #[arg(long, default_value = "admin", value_parser = parse_permission)]
        permission: Permission,
        /// Print `{"name", "permission", "token"}`.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens' names and permissions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke NAME's token.
    Remove { name: String },
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    Permission::parse(s).ok_or_else(|| format!("`{s}` is not read, operate or admin"))
}

/// The token file of the configuration, or exit code 3 with what to set.
fn token_file(config: &Config) -> Result<PathBuf, ExitCode> {
    config.admin.token_file.clone().ok_or_else(|| {
        eprintln!(
            "causeriectl: admin.token_file is not set in the configuration; set it (and \
             admin.listen) to use tokens"
        );
        ExitCode::from(3)
    })
}

/// The file's text, empty when it does not exist yet; a file that is there but unusable is
/// exit code 3 (it is never overwritten blindly).
fn read(path: &Path) -> Result<String, ExitCode> {
    match std::fs::read_to_string(path) {
        Ok(text) => match tokens::list(&text) {
            Ok(_) => Ok(text),
            Err(why) => {
                eprintln!("causeriectl: {}: {why}", path.display());
                Err(ExitCode::from(3))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => {
            eprintln!("causeriectl: {}: {e}", path.display());
            Err(ExitCode::from(3))
        }
    }
}

/// Replaces the file with `text`, readable by its owner only, through a file beside it and a
/// rename, so that the server never reads half a file.
fn write(path: &Path, text: &str) -> Result<(), ExitCode> {
    let fail = |e: std::io::Error| {
        eprintln!("causeriectl: writing {}: {e}", path.display());
        ExitCode::from(3)
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.new"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::create_private(&tmp).map_err(fail)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

pub(crate) async fn run(config: &Config, cmd: TokenCommand) -> ExitCode {
    let path = match token_file(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let text = match read(&path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let present = tokens::list(&text).unwrap_or_default();
    match cmd {
        TokenCommand::List { json } => {
            if json {
                let items: Vec<serde_json::Value> = present
                    .iter()
                    .map(|(n, p)| json!({"name": n, "permission": p.as_str()}))
                    .collect();
                println!("{}", serde_json::Value::from(items));
            } else if present.is_empty() {
                println!("no tokens in {}", path.display());
            } else {
                for (n, p) in &present {
                    println!("{n}\t{p}");
                }
            }
            ExitCode::SUCCESS
        }
        TokenCommand::Add {
            name,
            permission,
            json,
        } => {
            if let Err(why) = tokens::check_name(&name) {
                eprintln!("causeriectl: {name:?}: {why}");
                return ExitCode::from(2);
            }
            if present.iter().any(|(n, _)| *n == name) {
                eprintln!("causeriectl: {name} already has a token; remove it first to replace it");
                return ExitCode::from(1);
            }
            let token = match tokens::generate() {
                Ok(t) => t,
                Err(why) => {
                    eprintln!("causeriectl: {why}");
                    return ExitCode::from(3);
                }
            };
            let mut next = text;
            if !next.is_empty() && !next.ends_with('\n') {
                next.push('\n');
            }
            next.push_str(&tokens::line(&name, &token, permission));
            next.push('\n');
            // Opened before the change, so that a database problem changes nothing.
            let storage = match crate::open_storage(config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Err(code) = write(&path, &next) {
                storage.close().await;
                return code;
            }
            if json {
                let made = json!({"name": name, "permission": permission.as_str(), "token": token});
                println!("{made}");
            } else {
                println!("{token}");
                eprintln!(
                    "token of {name} ({permission}) written to {} as its SHA-256; it is shown \
                     only now",
                    path.display()
                );
            }
            let code = record(
                &storage,
                "token.add",
                &format!("token:{name}"),
                format!("permission {permission}"),
            )
            .await;
            storage.close().await;
            code
        }
        TokenCommand::Remove { name } => {
            if !present.iter().any(|(n, _)| *n == name) {
                eprintln!("causeriectl: no token named {name} in {}", path.display());
                return ExitCode::from(1);
            }
            let kept: String = text
                .lines()
                .filter(|l| {
                    let content = l.split('#').next().unwrap_or("");
                    content.split_whitespace().next() != Some(name.as_str())
                })
                .map(|l| format!("{l}\n"))
                .collect();
            let storage = match crate::open_storage(config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Err(code) = write(&path, &kept) {
                storage.close().await;
                return code;
            }
            eprintln!("token of {name} revoked");
            let code = record(
                &storage,
                "token.remove",
                &format!("token:{name}"),
                String::new(),
            )
            .await;
            storage.close().await;
            code
        }
    }
}
