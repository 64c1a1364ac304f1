//! What the load tool reads about the server process from Linux's /proc (proc(5)): CPU time
//! and resident memory.

use std::fs;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Clock ticks per second of the utime/stime fields, from `getconf CLK_TCK`; 100 is the value of
/// every mainstream Linux architecture and the fallback when getconf is missing.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// A process to observe, `None` for this process itself.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub pid: Option<u32>,
    ticks: f64,
}

impl Probe {
    pub fn new(pid: Option<u32>) -> Probe {
        Probe {
            pid,
            ticks: clock_ticks(),
        }
    }

    fn path(&self, file: &str) -> String {
        match self.pid {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// User plus system CPU seconds of all the process's threads so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let path = self.path("stat");
        let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_cpu_ticks(&stat)
            .map(|t| t as f64 / self.ticks)
            .with_context(|| format!("parsing {path}"))
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let path = self.path("status");
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_vm_rss(&status).with_context(|| format!("parsing {path}"))
    }
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat). The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from the
/// last ')'.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let Some(end) = stat.rfind(')') else {
        bail!("no command name");
    };
    // After ") " the fields start at field 3 (state); utime is field 14, index 11 from there.
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("too few fields");
    };
    Ok(utime.parse::<u64>()? + stime.parse::<u64>()?)
}

/// The `VmRSS:` line of /proc/PID/status, in kB (kibibytes).
fn parse_vm_rss(status: &str) -> Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .context("VmRSS value")?;
            return Ok(kib * 1024);
        }
    }
    bail!("no VmRSS line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (lua5.4 (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 75 0 0 20 0 1 0 123 456 789";
        assert_eq!(parse_cpu_ticks(stat).expect("parses"), 325);
        assert!(parse_cpu_ticks("4242 (x) S 1 2").is_err());
        assert!(parse_cpu_ticks("no parenthesis").is_err());
    }

    #[test]
    fn vm_rss_is_read_in_kibibytes() {
        let status = "Name:\tprosody\nVmPeak:\t  9000 kB\nVmRSS:\t   20480 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status).expect("parses"), 20480 * 1024);
        assert!(parse_vm_rss("Name:\tx\n").is_err());
    }

    #[test]
    fn own_process_can_be_observed() {
        let probe = Probe::new(None);
        assert!(probe.rss_bytes().expect("own RSS") > 0);
        assert!(probe.cpu_seconds().expect("own CPU") >= 0.0);
    }
}
