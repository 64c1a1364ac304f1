//! Printing results: a table for people, JSON for scripts, and side-by-side ratios for a
//! comparison of two servers.

use std::fmt::Write as _;

use crate::roster::{RosterReport, RosterScenario};
use crate::scenario::{Report, Scenario};

/// One figure of a report: JSON key, table label, value, unit.
struct Row {
    key: &'static str,
    label: &'static str,
    value: Option<f64>,
    unit: &'static str,
}

fn rows(r: &Report) -> Vec<Row> {
    let row = |key, label, value, unit| Row {
        key,
        label,
        value,
        unit,
    };
    let kib = |b: Option<u64>| b.map(|b| b as f64 / 1024.0);
    vec![
        row(
            "logins_ok",
            "logins succeeded",
            Some(r.logins_ok as f64),
            "",
        ),
        row(
            "logins_failed",
            "logins failed",
            Some(r.logins_failed as f64),
            "",
        ),
        row("logins_per_sec", "logins/s", Some(r.logins_per_sec), "/s"),
        row("login_p50_ms", "login time p50", Some(r.login_p50_ms), "ms"),
        row("login_p99_ms", "login time p99", Some(r.login_p99_ms), "ms"),
        row(
            "server_cpu_login_secs",
            "server CPU, login phase",
            r.server_cpu_login_secs,
            "s",
        ),
        row(
            "rss_before_kib",
            "server RSS before logins",
            kib(r.rss_before),
            "KiB",
        ),
        row(
            "rss_idle_kib",
            "server RSS, sessions idle",
            kib(r.rss_idle),
            "KiB",
        ),
        row(
            "rss_per_session_kib",
            "memory per idle TLS session",
            r.rss_per_session.map(|b| b / 1024.0),
            "KiB",
        ),
        row(
            "messages_delivered",
            "messages delivered",
            Some(r.messages_delivered as f64),
            "",
        ),
        row(
            "message_errors",
            "message errors",
            Some(r.message_errors as f64),
            "",
        ),
        row(
            "messages_per_sec",
            "messages/s",
            Some(r.messages_per_sec),
            "/s",
        ),
        row(
            "latency_p50_ms",
            "latency p50",
            Some(r.latency_p50_ms),
            "ms",
        ),
        row(
            "latency_p90_ms",
            "latency p90",
            Some(r.latency_p90_ms),
            "ms",
        ),
        row(
            "latency_p99_ms",
            "latency p99",
            Some(r.latency_p99_ms),
            "ms",
        ),
        row(
            "latency_max_ms",
            "latency max",
            Some(r.latency_max_ms),
            "ms",
        ),
        row(
            "server_cpu_message_secs",
            "server CPU, message phase",
            r.server_cpu_message_secs,
            "s",
        ),
        row(
            "server_cpu_per_1000_messages",
            "server CPU per 1000 messages",
            r.server_cpu_per_1000_messages,
            "s",
        ),
        row(
            "bench_cpu_message_secs",
            "load tool CPU, message phase",
            r.bench_cpu_message_secs,
            "s",
        ),
        row(
            "closed_cleanly",
            "streams closed cleanly",
            Some(r.closed_cleanly as f64),
            "",
        ),
    ]
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit.is_empty() || unit == "/s" => number(v),
        Some(v) => format!("{} {unit}", number(v)),
        None => "-".to_string(),
    }
}

pub fn describe(s: &Scenario) -> String {
    format!(
        "{} users ({} pairs), {} messages per user, {:?}, mechanism {}, login concurrency {}, \
         window {}, idle {} s, message phase at most {} s",
        s.users,
        s.users / 2,
        s.messages,
        s.tls,
        s.mechanism.as_deref().unwrap_or("best offered"),
        s.concurrency,
        s.window,
        s.idle.as_secs_f64(),
        s.max_duration.as_secs_f64(),
    )
}

fn problems(r: &Report, out: &mut String) {
    for e in &r.login_errors {
        let _ = writeln!(out, "  login error ({}): {e}", r.label);
    }
    for e in &r.message_error_samples {
        let _ = writeln!(out, "  message error ({}): {e}", r.label);
    }
}

/// The table of one run.
pub fn table(s: &Scenario, r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}", describe(s));
    let _ = writeln!(out, "server:   {} at {}", r.label, r.addr);
    for row in rows(r) {
        let _ = writeln!(out, "  {:<32} {:>16}", row.label, cell(row.value, row.unit));
    }
    problems(r, &mut out);
    out
}

/// Two runs side by side, with target/reference ratios.
pub fn comparison(s: &Scenario, target: &Report, reference: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}", describe(s));
    let _ = writeln!(
        out,
        "  {:<32} {:>16} {:>16} {:>10}",
        "", target.label, reference.label, "ratio"
    );
    for (t, r) in rows(target).into_iter().zip(rows(reference)) {
        let ratio = match (t.value, r.value) {
            (Some(t), Some(r)) if r != 0.0 => format!("{:.2}", t / r),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<32} {:>16} {:>16} {:>10}",
            t.label,
            cell(t.value, t.unit),
            cell(r.value, r.unit),
            ratio
        );
    }
    let _ = writeln!(
        out,
        "  ratio = {} / {}; above 1 is better for rates, below 1 for times, CPU and memory",
        target.label, reference.label
    );
    problems(target, &mut out);
    problems(reference, &mut out);
    out
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_report(r: &Report, out: &mut String) {
    out.push_str("{\"label\":");
    json_string(&r.label, out);
    out.push_str(",\"addr\":");
    json_string(&r.addr, out);
    let _ = write!(out, ",\"users\":{}", r.users);
    let _ = write!(out, ",\"messages_expected\":{}", r.messages_expected);
    let _ = write!(out, ",\"login_secs\":{}", r.login_secs);
    let _ = write!(out, ",\"message_secs\":{}", r.message_secs);
    for row in rows(r) {
        out.push(',');
        json_string(row.key, out);
        out.push(':');
        match row.value {
            Some(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            _ => out.push_str("null"),
        }
    }
    for (key, list) in [
        ("login_errors", &r.login_errors),
        ("message_errors_sample", &r.message_error_samples),
    ] {
        out.push(',');
        json_string(key, out);
        out.push_str(":[");
        for (i, e) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(e, out);
        }
        out.push(']');
    }
    out.push('}');
}

fn json_scenario(s: &Scenario, out: &mut String) {
    out.push_str("{\"description\":");
    json_string(&describe(s), out);
    let _ = write!(
        out,
        ",\"users\":{},\"messages\":{},\"concurrency\":{},\"window\":{}}}",
        s.users, s.messages, s.concurrency, s.window
    );
}

/// One run as a JSON object.
pub fn json(s: &Scenario, r: &Report) -> String {
    let mut out = String::from("{\"scenario\":");
    json_scenario(s, &mut out);
    out.push_str(",\"result\":");
    json_report(r, &mut out);
    out.push('}');
    out
}

/// A comparison as a JSON object, with the ratios target/reference.
pub fn json_comparison(s: &Scenario, target: &Report, reference: &Report) -> String {
    let mut out = String::from("{\"scenario\":");
    json_scenario(s, &mut out);
    out.push_str(",\"target\":");
    json_report(target, &mut out);
    out.push_str(",\"reference\":");
    json_report(reference, &mut out);
    out.push_str(",\"ratios\":{");
    let mut first = true;
    for (t, r) in rows(target).into_iter().zip(rows(reference)) {
        if !first {
            out.push(',');
        }
        first = false;
        json_string(t.key, &mut out);
        out.push(':');
        match (t.value, r.value) {
            (Some(t), Some(r)) if r != 0.0 && (t / r).is_finite() => {
                let _ = write!(out, "{}", t / r);
            }
            _ => out.push_str("null"),
        }
    }
    out.push_str("}}");
    out
}

fn roster_rows(r: &RosterReport) -> Vec<Row> {
    let row = |key, label, value, unit| Row {
        key,
        label,
        value,
        unit,
    };
    let mut v = vec![
        row(
            "contacts",
            "contacts in the roster",
            Some(r.contacts as f64),
            "",
        ),
        row(
            "online",
            "contacts online at login",
            Some(r.online as f64),
            "",
        ),
        row(
            "roster_both",
            "contacts with subscription both",
            Some(r.roster_both as f64),
            "",
        ),
        row(
            "subscriptions_created",
            "subscriptions created now",
            Some(r.subscriptions_created as f64),
            "",
        ),
        row(
            "prepare_secs",
            "preparation time",
            Some(r.prepare_secs),
            "s",
        ),
        row("logins", "measured logins", Some(r.logins as f64), ""),
        row(
            "roster_items_at_login",
            "roster items received",
            Some(r.roster_items_at_login as f64),
            "",
        ),
        row(
            "login_p50_ms",
            "login to roster+presence p50",
            Some(r.login_p50_ms),
            "ms",
        ),
        row(
            "login_p90_ms",
            "login to roster+presence p90",
            Some(r.login_p90_ms),
            "ms",
        ),
        row(
            "login_max_ms",
            "login to roster+presence max",
            Some(r.login_max_ms),
            "ms",
        ),
        row(
            "server_cpu_per_login_ms",
            "server CPU per login+logout",
            r.server_cpu_per_login_ms,
            "ms",
        ),
    ];
    // Keys and labels are static; the broadcast points are few and fixed per scenario.
    for (i, p) in r.broadcast.iter().enumerate().take(BROADCAST_KEYS.len()) {
        let (cpu_key, cpu_label, wall_key, wall_label, n_key, n_label) = BROADCAST_KEYS[i];
        v.push(row(n_key, n_label, Some(p.recipients as f64), ""));
        v.push(row(cpu_key, cpu_label, p.cpu_per_broadcast_ms(), "ms"));
        v.push(row(wall_key, wall_label, Some(p.delivery_p50_ms), "ms"));
    }
    v.push(row(
        "cpu_per_recipient_us",
        "server CPU per extra recipient",
        r.cpu_per_recipient_us(),
        "us",
    ));
    v
}

type BroadcastKeys = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const BROADCAST_KEYS: [BroadcastKeys; 3] = [
    (
        "bcast1_cpu_ms",
        "  server CPU per broadcast",
        "bcast1_delivery_p50_ms",
        "  broadcast delivered to all, p50",
        "bcast1_recipients",
        "broadcast point 1: online contacts",
    ),
    (
        "bcast2_cpu_ms",
        "  server CPU per broadcast",
        "bcast2_delivery_p50_ms",
        "  broadcast delivered to all, p50",
        "bcast2_recipients",
        "broadcast point 2: online contacts",
    ),
    (
        "bcast3_cpu_ms",
        "  server CPU per broadcast",
        "bcast3_delivery_p50_ms",
        "  broadcast delivered to all, p50",
        "bcast3_recipients",
        "broadcast point 3: online contacts",
    ),
];

/// Most broadcast points a report shows.
pub const MAX_BROADCAST_POINTS: usize = BROADCAST_KEYS.len();

pub fn describe_roster(s: &RosterScenario) -> String {
    format!(
        "roster-login: {} contacts (mutual subscriptions), {} online at login, {} logins, \
         broadcasts x{} at {:?} online contacts, {:?}, mechanism {}",
        s.contacts,
        s.online,
        s.repeat,
        s.broadcasts,
        s.broadcast_online,
        s.tls,
        s.mechanism.as_deref().unwrap_or("best offered"),
    )
}

fn roster_problems(r: &RosterReport, out: &mut String) {
    for e in &r.errors {
        let _ = writeln!(out, "  error ({}): {e}", r.label);
    }
}

/// The table of one roster-login run.
pub fn roster_table(s: &RosterScenario, r: &RosterReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}", describe_roster(s));
    let _ = writeln!(out, "server:   {} at {}", r.label, r.addr);
    for row in roster_rows(r) {
        let _ = writeln!(out, "  {:<36} {:>16}", row.label, cell(row.value, row.unit));
    }
    roster_problems(r, &mut out);
    out
}

/// Two roster-login runs side by side, with target/reference ratios.
pub fn roster_comparison(
    s: &RosterScenario,
    target: &RosterReport,
    reference: &RosterReport,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {}", describe_roster(s));
    let _ = writeln!(
        out,
        "  {:<36} {:>16} {:>16} {:>10}",
        "", target.label, reference.label, "ratio"
    );
    for (t, r) in roster_rows(target).into_iter().zip(roster_rows(reference)) {
        let ratio = match (t.value, r.value) {
            (Some(t), Some(r)) if r != 0.0 => format!("{:.2}", t / r),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<36} {:>16} {:>16} {:>10}",
            t.label,
            cell(t.value, t.unit),
            cell(r.value, r.unit),
            ratio
        );
    }
    let _ = writeln!(
        out,
        "  ratio = {} / {}; below 1 is better for times and CPU",
        target.label, reference.label
    );
    roster_problems(target, &mut out);
    roster_problems(reference, &mut out);
    out
}

/// One or two roster-login runs as a JSON object.
pub fn roster_json(
    s: &RosterScenario,
    target: &RosterReport,
    reference: Option<&RosterReport>,
) -> String {
    let one = |r: &RosterReport, out: &mut String| {
        out.push_str("{\"label\":");
        json_string(&r.label, out);
        for row in roster_rows(r) {
            out.push(',');
            json_string(row.key, out);
            out.push(':');
            match row.value {
                Some(v) if v.is_finite() => {
                    let _ = write!(out, "{v}");
                }
                _ => out.push_str("null"),
            }
        }
        out.push('}');
    };
    let mut out = String::from("{\"scenario\":");
    json_string(&describe_roster(s), &mut out);
    out.push_str(",\"target\":");
    one(target, &mut out);
    if let Some(r) = reference {
        out.push_str(",\"reference\":");
        one(r, &mut out);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_marginal_cost_comes_from_the_first_and_last_points() {
        use crate::roster::BroadcastPoint;
        let r = RosterReport {
            label: "t".into(),
            broadcast: vec![
                BroadcastPoint {
                    recipients: 50,
                    broadcasts: 100,
                    server_cpu_secs: Some(0.2),
                    delivery_p50_ms: 1.0,
                },
                BroadcastPoint {
                    recipients: 500,
                    broadcasts: 100,
                    server_cpu_secs: Some(1.1),
                    delivery_p50_ms: 5.0,
                },
            ],
            ..RosterReport::default()
        };
        // 2 ms then 11 ms per broadcast: 9 ms for 450 more recipients, 20 µs each.
        let per = r.cpu_per_recipient_us().expect("two points");
        assert!((per - 20.0).abs() < 1e-9, "{per}");
        let no_pid = RosterReport {
            broadcast: vec![BroadcastPoint::default(), BroadcastPoint::default()],
            ..RosterReport::default()
        };
        assert_eq!(no_pid.cpu_per_recipient_us(), None);
        let s = crate::roster::tests_support::scenario();
        let j = roster_json(&s, &r, Some(&no_pid));
        assert!(j.contains("\"bcast2_recipients\":500"), "{j}");
        assert!(j.contains("\"cpu_per_recipient_us\":null"), "{j}");
        let table = roster_comparison(&s, &r, &r);
        assert!(table.contains("server CPU per extra recipient"), "{table}");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string("a\"b\\c\nd", &mut out);
        assert_eq!(out, r#""a\"b\\c\u000ad""#);
    }

    #[test]
    fn missing_server_figures_are_null_and_ratios_skip_zero() {
        let target = Report {
            label: "t".into(),
            logins_ok: 10,
            ..Report::default()
        };
        let reference = Report {
            label: "r".into(),
            logins_ok: 5,
            ..Report::default()
        };
        let s = crate::scenario::tests_support::scenario();
        let j = json_comparison(&s, &target, &reference);
        assert!(j.contains("\"server_cpu_per_1000_messages\":null"), "{j}");
        assert!(j.contains("\"logins_ok\":2"), "{j}");
        assert!(j.contains("\"messages_per_sec\":null"), "{j}");
        let table = comparison(&s, &target, &reference);
        assert!(table.contains("logins succeeded"), "{table}");
    }
}
