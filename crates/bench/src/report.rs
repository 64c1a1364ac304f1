//! Printing results: a table for people, JSON for scripts, and side-by-side ratios for a
//! comparison of two servers.

use std::fmt::Write as _;

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

#[cfg(test)]
mod tests {
    use super::*;

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
