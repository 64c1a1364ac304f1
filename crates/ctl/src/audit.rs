//! `causeriectl audit …`: the audit log, through the registry's `audit.list` (the server's admin
//! API when it runs, the database otherwise). An export reads it page after page.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use causerie_admin::ops::audit::{AuditEntry, ListArgs};
use clap::{Subcommand, ValueEnum};

use crate::client::Target;
use crate::federation::one_line;
use crate::time::parse_time;

/// Events read per request while exporting.
const EXPORT_PAGE: u64 = 1000;

#[derive(Subcommand, Debug)]
pub(crate) enum AuditCommand {
    /// List audit events, oldest first, one `TIME ACTOR ACTION SUBJECT OUTCOME DETAIL` line
    /// each (an empty subject shows as "-"; control characters in the detail are escaped).
    List {
        /// Only events at or after this time: RFC 3339 (2025-05-01T12:00:00Z), a date
        /// (2025-05-01, midnight UTC) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events whose action starts with this text (`s2s.`, `federation.`, `user.`).
        #[arg(long, value_name = "PREFIX")]
        action: Option<String>,
        /// Only events about exactly this subject (a domain, a JID).
        #[arg(long, value_name = "SUBJECT")]
        subject: Option<String>,
        /// At most this many events (default 1000); a note on standard error says when the
        /// limit cut the listing short.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON array of {id, at, time, actor, action, subject, outcome, detail,
        /// remote_addr} objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Write every matching event, oldest first, as JSON lines (one object per line, the
    /// fields of `list --json`) or CSV (a header line, then id, time, actor, action,
    /// subject, outcome, detail, remote_addr; RFC 4180 quoting), for archives and other tools.
    Export {
        /// `jsonl` (the default) or `csv`.
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
        /// Only events at or after this time (as for `list`).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events at or before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only events whose action starts with this text.
        #[arg(long, value_name = "PREFIX")]
        action: Option<String>,
        /// Only events about exactly this subject.
        #[arg(long, value_name = "SUBJECT")]
        subject: Option<String>,
        /// Write to this file (created, or replaced) instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Jsonl,
    Csv,
}

fn time_arg(flag: &str, value: Option<String>) -> Result<Option<i64>, ExitCode> {
    value.as_deref().map(parse_time).transpose().map_err(|e| {
        eprintln!("causeriectl: {flag}: {e}");
        ExitCode::from(2)
    })
}

pub(crate) async fn run(target: &Target, cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::List {
            since,
            action,
            subject,
            limit,
            json,
        } => {
            let since = match time_arg("--since", since) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let args = ListArgs {
                since,
                action,
                subject,
                limit,
                ..ListArgs::default()
            };
            let (raw, events) = match target
                .call_as::<_, Vec<AuditEntry>>("audit.list", &args, false)
                .await
            {
                Ok(r) => r,
                Err(code) => return code,
            };
            if json {
                println!("{raw}");
            } else {
                for e in &events {
                    println!("{}", text_line(e));
                }
            }
            let limit = limit.unwrap_or(causerie_storage::audit::DEFAULT_LIST_LIMIT);
            if limit > 0 && events.len() as u64 == limit {
                eprintln!(
                    "causeriectl: showing the first {limit} matching events; narrow with --since or \
                     raise --limit for more"
                );
            }
            ExitCode::SUCCESS
        }
        AuditCommand::Export {
            format,
            since,
            until,
            action,
            subject,
            output,
        } => {
            let (since, until) = match (time_arg("--since", since), time_arg("--until", until)) {
                (Ok(s), Ok(u)) => (s, u),
                (Err(code), _) | (_, Err(code)) => return code,
            };
            let mut out: Box<dyn Write> = match &output {
                Some(path) => match std::fs::File::create(path) {
                    Ok(f) => Box::new(std::io::BufWriter::new(f)),
                    Err(e) => {
                        eprintln!("causeriectl: {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                },
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut args = ListArgs {
                since,
                until,
                action,
                subject,
                limit: Some(EXPORT_PAGE),
                after_id: None,
            };
            let mut written = 0u64;
            let mut io = Ok(());
            if format == Format::Csv {
                io = writeln!(
                    out,
                    "id,time,actor,action,subject,outcome,detail,remote_addr"
                );
            }
            loop {
                let page = match target
                    .call_as::<_, Vec<AuditEntry>>("audit.list", &args, false)
                    .await
                {
                    Ok((_, page)) => page,
                    Err(code) => return code,
                };
                for e in &page {
                    io = io.and_then(|()| match format {
                        Format::Jsonl => serde_json::to_string(e)
                            .map_err(std::io::Error::other)
                            .and_then(|line| writeln!(out, "{line}")),
                        Format::Csv => writeln!(out, "{}", csv_line(e)),
                    });
                }
                written += page.len() as u64;
                match page.last() {
                    Some(last) if page.len() as u64 == EXPORT_PAGE => args.after_id = Some(last.id),
                    _ => break,
                }
                if io.is_err() {
                    break;
                }
            }
            if let Err(e) = io.and_then(|()| out.flush()) {
                eprintln!("causeriectl: writing the export: {e}");
                return ExitCode::from(3);
            }
            eprintln!("causeriectl: exported {written} event(s)");
            ExitCode::SUCCESS
        }
    }
}

fn text_line(e: &AuditEntry) -> String {
    let subject = if e.subject.is_empty() {
        "-"
    } else {
        &e.subject
    };
    format!(
        "{} {} {} {} {} {}",
        e.time,
        e.actor,
        e.action,
        subject,
        e.outcome,
        one_line(&e.detail)
    )
}

/// RFC 4180: a field with a comma, a quote or a line break is quoted, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(e: &AuditEntry) -> String {
    [
        e.id.to_string(),
        e.time.clone(),
        e.actor.clone(),
        e.action.clone(),
        e.subject.clone(),
        e.outcome.clone(),
        e.detail.clone(),
        e.remote_addr.clone().unwrap_or_default(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
