//! Progress of long operations on standard error: a bar redrawn in place when standard error is
//! a terminal, and a line every [`LINE_EVERY`] items when it is not (a log, a pipe), so that
//! scripts reading standard output see nothing of it. Safe to update from several threads.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Without a terminal: one line per this many items.
pub(crate) const LINE_EVERY: usize = 1000;
/// Redraws at most this often.
const REDRAW: Duration = Duration::from_millis(100);
/// Width of the bar in cells.
const WIDTH: usize = 30;

struct State {
    label: String,
    done: usize,
    total: Option<usize>,
    last_draw: Option<Instant>,
    last_line: usize,
    drawn: bool,
}

pub(crate) struct Progress {
    tty: bool,
    started: Instant,
    state: Mutex<State>,
}

impl Progress {
    /// Progress of `label`, out of `total` items when it is known. Draws nothing yet.
    pub(crate) fn new(label: &str, total: Option<usize>) -> Progress {
        Progress::with_terminal(label, total, std::io::stderr().is_terminal())
    }

    fn with_terminal(label: &str, total: Option<usize>, tty: bool) -> Progress {
        Progress {
            tty,
            started: Instant::now(),
            state: Mutex::new(State {
                label: label.to_owned(),
                done: 0,
                total,
                last_draw: None,
                last_line: 0,
                drawn: false,
            }),
        }
    }

    /// `done` items of `total` (which may change: a second phase) are finished.
    pub(crate) fn set(&self, label: &str, done: usize, total: Option<usize>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.label != label {
            if self.tty && st.drawn {
                // Keep the finished phase on its own line.
                let line = render(&st, self.started.elapsed());
                eprintln!("\r{line}");
            }
            st.label = label.to_owned();
            st.last_line = 0;
            st.last_draw = None;
        }
        st.done = done;
        st.total = total;
        if self.tty {
            let due = st.last_draw.is_none_or(|t| t.elapsed() >= REDRAW)
                || total.is_some_and(|t| done >= t);
            if due {
                let line = render(&st, self.started.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line}\x1b[K");
                let _ = err.flush();
                st.last_draw = Some(Instant::now());
                st.drawn = true;
            }
        } else {
            let step = done / LINE_EVERY;
            if step > st.last_line {
                st.last_line = step;
                eprintln!("{}", render(&st, self.started.elapsed()));
            }
        }
    }

    /// Counts one more item of the current phase.
    pub(crate) fn inc(&self) {
        let (label, done, total) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (st.label.clone(), st.done + 1, st.total)
        };
        self.set(&label, done, total);
    }

    /// Redraws the spinner of a phase whose size is unknown (a single long request).
    pub(crate) fn tick(&self) {
        let (label, done, total) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (st.label.clone(), st.done, st.total)
        };
        if self.tty {
            self.set(&label, done, total);
        }
    }

    /// Ends the bar: the last state stays on its own line on a terminal.
    pub(crate) fn finish(&self) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty && st.drawn {
            eprintln!("\r{}\x1b[K", render(&st, self.started.elapsed()));
        }
    }
}

/// Awaits `work`, turning `bar`'s spinner meanwhile.
pub(crate) async fn while_waiting<F: std::future::Future>(bar: &Progress, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut every = tokio::time::interval(REDRAW);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = every.tick() => bar.tick(),
        }
    }
}

/// `label [#####.....] 500/1000 50% 3s left`, or `label 500 12s` when the total is unknown.
fn render(st: &State, elapsed: Duration) -> String {
    match st.total {
        Some(total) if total > 0 => {
            let done = st.done.min(total);
            let filled = done * WIDTH / total;
            let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
            let pct = done * 100 / total;
            let left = if done > 0 && done < total {
                let secs = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
                format!(", about {} left", seconds(secs))
            } else {
                String::new()
            };
            format!("{} [{bar}] {done}/{total} {pct}%{left}", st.label)
        }
        _ => {
            const SPIN: [char; 4] = ['|', '/', '-', '\\'];
            let turn = SPIN[(elapsed.as_millis() / REDRAW.as_millis()) as usize % SPIN.len()];
            let count = if st.done > 0 {
                format!(" {}", st.done)
            } else {
                String::new()
            };
            format!(
                "{} {turn}{count} ({})",
                st.label,
                seconds(elapsed.as_secs_f64())
            )
        }
    }
}

fn seconds(secs: f64) -> String {
    if secs < 90.0 {
        format!("{secs:.0}s")
    } else {
        format!("{}m{:02}s", secs as u64 / 60, secs as u64 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_show_count_share_and_time_left() {
        let st = State {
            label: "accounts written".into(),
            done: 250,
            total: Some(1000),
            last_draw: None,
            last_line: 0,
            drawn: false,
        };
        let line = render(&st, Duration::from_secs(10));
        assert_eq!(
            line,
            "accounts written [#######.......................] 250/1000 25%, about 30s left"
        );
        let done = State { done: 1000, ..st };
        assert!(render(&done, Duration::from_secs(40)).ends_with("1000/1000 100%"));
        let open = State {
            total: None,
            done: 0,
            ..done
        };
        assert!(render(&open, Duration::from_secs(200)).ends_with("(3m20s)"));
    }

    #[test]
    fn without_a_terminal_lines_come_every_thousand_items() {
        let p = Progress::with_terminal("x", Some(5000), false);
        for i in 1..=5000 {
            p.set("x", i, Some(5000));
        }
        let st = p.state.lock().expect("lock");
        assert_eq!(st.last_line, 5);
        assert!(!st.drawn);
    }
}
