//! The message scenario against two servers that differ in one setting, in one run: the same
//! binaries, the same accounts, one with the setting on and one with it off (compliance rules
//! loaded or not, for instance). As in the usage-policy gate's measurement (`gate.rs`), rounds
//! alternate between them, so that whatever else the machine does weighs on both alike, and
//! every figure is given as the median of the per-round ratios on/off.
//!
//! Each round runs `scenario::run` (N logins with bounded concurrency, initial presence, M chat
//! messages per user between pairs, close) against each server, the off server first in even
//! rounds and the on server first in odd ones. Warm-up rounds run the same way first and are
//! left out. A run in which a login failed or a message was refused or lost stops the comparison:
//! the setting under test must not keep messages from being delivered.
//!
//! With `keep_sessions`, the users log in to both servers once, before the first round, and a
//! round is only the message phase against each: rounds are then short and many, the two halves
//! of a round follow each other closely, and a change in the machine's speed over seconds (other
//! work on a shared host) weighs on both halves alike. The login figures are then those of the
//! one login of each server.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};

use crate::gate::{messages, summarize, value};
use crate::scenario::{self, Report, Scenario, Target, require_loopback};

/// Most rounds of one run, warm-up included.
pub const MAX_ROUNDS: usize = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct AlternateScenario {
    /// The message scenario of each round.
    pub base: Scenario,
    /// Measured rounds.
    pub rounds: usize,
    /// Rounds run before them and left out of the figures.
    pub warmup_rounds: usize,
    /// Log in once to each server and keep the sessions for every round.
    pub keep_sessions: bool,
}

impl AlternateScenario {
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        if self.rounds == 0 || self.rounds + self.warmup_rounds > MAX_ROUNDS {
            bail!(
                "--rounds must be at least 1, and --rounds + --warmup-rounds at most {MAX_ROUNDS}"
            );
        }
        Ok(())
    }
}

/// One round: the scenario against each server.
#[derive(Debug, Clone)]
pub struct Round {
    pub on: Report,
    pub off: Report,
    /// Whether the on server ran first in this round.
    pub on_first: bool,
}

/// What a whole run measured.
#[derive(Debug, Clone)]
pub struct AlternateReport {
    pub on_label: String,
    pub off_label: String,
    pub on_addr: String,
    pub off_addr: String,
    /// The measured rounds, warm-up left out.
    pub rounds: Vec<Round>,
}

/// Which server runs first in round `r` (warm-up rounds counted): off in even rounds.
fn on_first(r: usize) -> bool {
    r % 2 == 1
}

/// Runs the whole comparison.
pub async fn run(on: &Target, off: &Target, s: &AlternateScenario) -> Result<AlternateReport> {
    require_loopback(&on.addr)?;
    require_loopback(&off.addr)?;
    s.validate()?;
    let rounds = if s.keep_sessions {
        kept_sessions(on, off, s).await?
    } else {
        fresh_sessions(on, off, s).await?
    };
    Ok(AlternateReport {
        on_label: on.label.clone(),
        off_label: off.label.clone(),
        on_addr: on.addr.to_string(),
        off_addr: off.addr.to_string(),
        rounds,
    })
}

/// Rounds of the whole scenario, logins included.
async fn fresh_sessions(on: &Target, off: &Target, s: &AlternateScenario) -> Result<Vec<Round>> {
    let mut rounds = Vec::with_capacity(s.rounds);
    for r in 0..s.warmup_rounds + s.rounds {
        let first = on_first(r);
        let (a, b) = if first { (on, off) } else { (off, on) };
        let ra = messages(a, &s.base)
            .await
            .with_context(|| format!("round {}", r + 1))?;
        let rb = messages(b, &s.base)
            .await
            .with_context(|| format!("round {}", r + 1))?;
        if r < s.warmup_rounds {
            continue;
        }
        let (on_report, off_report) = if first { (ra, rb) } else { (rb, ra) };
        rounds.push(Round {
            on: on_report,
            off: off_report,
            on_first: first,
        });
    }
    Ok(rounds)
}

/// Rounds of message phases over one login to each server.
async fn kept_sessions(on: &Target, off: &Target, s: &AlternateScenario) -> Result<Vec<Round>> {
    let mut on_sessions = scenario::log_in(on, &s.base).await?;
    let mut off_sessions = scenario::log_in(off, &s.base).await?;
    for sessions in [&on_sessions, &off_sessions] {
        let r = &sessions.report;
        if r.logins_failed > 0 {
            bail!(
                "{}: {} logins failed: {}",
                r.label,
                r.logins_failed,
                r.login_errors.join("; ")
            );
        }
    }
    let mut rounds = Vec::with_capacity(s.rounds);
    let outcome: Result<()> = async {
        for r in 0..s.warmup_rounds + s.rounds {
            let first = on_first(r);
            let mut reports = Vec::with_capacity(2);
            for on_side in [first, !first] {
                let sessions = if on_side {
                    &mut on_sessions
                } else {
                    &mut off_sessions
                };
                let m = scenario::exchange(sessions, &s.base)
                    .await
                    .with_context(|| format!("round {}", r + 1))?;
                let mut report = sessions.report.clone();
                report.add_messages(&m);
                all_delivered(&report).with_context(|| format!("round {}", r + 1))?;
                reports.push(report);
            }
            if r < s.warmup_rounds {
                continue;
            }
            let (rb, ra) = (reports.pop(), reports.pop());
            let (Some(ra), Some(rb)) = (ra, rb) else {
                bail!("round {}: a side did not run", r + 1);
            };
            let (on_report, off_report) = if first { (ra, rb) } else { (rb, ra) };
            rounds.push(Round {
                on: on_report,
                off: off_report,
                on_first: first,
            });
        }
        Ok(())
    }
    .await;
    scenario::close(on_sessions).await;
    scenario::close(off_sessions).await;
    outcome.map(|()| rounds)
}

/// Fails when a message of a round was refused or lost.
fn all_delivered(r: &Report) -> Result<()> {
    if r.message_errors > 0 || r.messages_delivered < r.messages_expected {
        bail!(
            "{}: {} of {} messages delivered, {} errors: {}",
            r.label,
            r.messages_delivered,
            r.messages_expected,
            r.message_errors,
            r.message_error_samples.join("; ")
        );
    }
    Ok(())
}

/// One line of the results: a figure of a run.
struct Figure {
    label: &'static str,
    unit: &'static str,
    of: fn(&Report) -> Option<f64>,
}

const FIGURES: &[Figure] = &[
    Figure {
        label: "messages/s",
        unit: "/s",
        of: |r| Some(r.messages_per_sec),
    },
    Figure {
        label: "server CPU per 1000 messages",
        unit: "ms",
        of: |r| r.server_cpu_per_1000_messages.map(|s| s * 1000.0),
    },
    Figure {
        label: "message latency p50",
        unit: "ms",
        of: |r| Some(r.latency_p50_ms),
    },
    Figure {
        label: "message latency p90",
        unit: "ms",
        of: |r| Some(r.latency_p90_ms),
    },
    Figure {
        label: "message latency p99",
        unit: "ms",
        of: |r| Some(r.latency_p99_ms),
    },
    Figure {
        label: "logins/s (concurrent)",
        unit: "/s",
        of: |r| Some(r.logins_per_sec),
    },
    Figure {
        label: "load tool CPU per 1000 messages",
        unit: "ms",
        of: |r| {
            r.bench_cpu_message_secs
                .filter(|_| r.messages_delivered > 0)
                .map(|c| c * 1e6 / r.messages_delivered as f64)
        },
    },
];

/// The results for people.
pub fn table(s: &AlternateScenario, r: &AlternateReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} at {} against {} at {}",
        r.on_label, r.on_addr, r.off_label, r.off_addr
    );
    let texts = s.base.bodies.len();
    let _ = writeln!(
        out,
        "scenario: {} measured rounds after {} warm-up{}; each: {}; bodies: {}",
        s.rounds,
        s.warmup_rounds,
        if s.keep_sessions {
            ", over one login to each server"
        } else {
            ""
        },
        crate::report::describe(&s.base),
        if texts == 0 {
            "\"SEQ MICROS\"".to_owned()
        } else {
            format!("\"SEQ MICROS\" and one of {texts} texts in turn")
        }
    );
    let n = r.rounds.len();
    let delivered: usize = r
        .rounds
        .iter()
        .map(|x| x.on.messages_delivered + x.off.messages_delivered)
        .sum();
    let _ = writeln!(
        out,
        "\n{} / {}: median of {n} rounds; ratio = median of the per-round ratios, range = \
         lowest–highest",
        r.on_label, r.off_label
    );
    let _ = writeln!(
        out,
        "  {:<34} {:>14} {:>14} {:>9} {:>13}",
        "", r.on_label, r.off_label, "ratio", "range"
    );
    for f in FIGURES {
        let pairs: Vec<_> = r
            .rounds
            .iter()
            .map(|x| ((f.of)(&x.on), (f.of)(&x.off)))
            .collect();
        let sum = summarize(&pairs);
        let (ratio, range) = match sum.ratio {
            Some((m, lo, hi)) => (format!("{m:.3}"), format!("{lo:.2}–{hi:.2}")),
            None => ("-".into(), String::new()),
        };
        let _ = writeln!(
            out,
            "  {:<34} {:>14} {:>14} {:>9} {:>13}",
            f.label,
            value(sum.a, f.unit),
            value(sum.b, f.unit),
            ratio,
            range
        );
    }
    let _ = writeln!(
        out,
        "\nper round, {} / {} messages/s: {}",
        r.on_label,
        r.off_label,
        r.rounds
            .iter()
            .map(|x| format!(
                "{:.3}",
                x.on.messages_per_sec / x.off.messages_per_sec.max(1e-9)
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "every message delivered: {delivered} in all; {} first in {} of {n} rounds",
        r.on_label,
        r.rounds.iter().filter(|x| x.on_first).count()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::tests_support::scenario;

    fn report(per_sec: f64, cpu: f64) -> Report {
        Report {
            messages_per_sec: per_sec,
            messages_delivered: 1000,
            server_cpu_per_1000_messages: Some(cpu),
            ..Report::default()
        }
    }

    #[test]
    fn rounds_alternate_and_warm_up_rounds_are_bounded() {
        let order: Vec<bool> = (0..4).map(on_first).collect();
        assert_eq!(order, vec![false, true, false, true]);
        let s = AlternateScenario {
            base: scenario(),
            rounds: 3,
            warmup_rounds: 1,
            keep_sessions: false,
        };
        assert!(s.validate().is_ok());
        let none = AlternateScenario {
            rounds: 0,
            ..s.clone()
        };
        assert!(none.validate().is_err());
        let too_many = AlternateScenario {
            warmup_rounds: MAX_ROUNDS,
            ..s
        };
        assert!(too_many.validate().is_err());
    }

    #[test]
    fn the_table_gives_medians_of_per_round_ratios() {
        let s = AlternateScenario {
            base: scenario(),
            rounds: 3,
            warmup_rounds: 0,
            keep_sessions: false,
        };
        let r = AlternateReport {
            on_label: "rules on".into(),
            off_label: "rules off".into(),
            on_addr: "127.0.0.1:1".into(),
            off_addr: "127.0.0.1:2".into(),
            rounds: vec![
                Round {
                    on: report(900.0, 0.020),
                    off: report(1000.0, 0.010),
                    on_first: false,
                },
                Round {
                    on: report(1900.0, 0.020),
                    off: report(2000.0, 0.020),
                    on_first: true,
                },
                Round {
                    on: report(1000.0, 0.030),
                    off: report(1000.0, 0.020),
                    on_first: false,
                },
            ],
        };
        let t = table(&s, &r);
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("messages/s"))
            .expect("messages/s line");
        // Per-round ratios 0.9, 0.95, 1.0: the median is 0.95.
        assert!(line.contains("0.950"), "{line}");
        assert!(line.contains("0.90–1.00"), "{line}");
        let cpu = t
            .lines()
            .find(|l| l.contains("server CPU per 1000"))
            .expect("cpu line");
        // 2.0, 1.0, 1.5.
        assert!(cpu.contains("1.500"), "{cpu}");
        assert!(t.contains("rules on first in 1 of 3 rounds"), "{t}");
    }
}
