//! The cost of evaluating a rules file on message texts, without a server around it:
//!
//!   cargo bench -p causerie-policy --bench rules -- RULES_FILE BODIES_FILE [EVALUATIONS]
//!
//! Each text of BODIES_FILE (one per line, `#` lines skipped) is prefixed like the message
//! scenario of causerie-bench does ("SEQ MICROS text", every one different) and evaluated as a chat message between
//! two local users; EVALUATIONS (100,000) evaluations in all. Prints the time per evaluation
//! and how many evaluations found something. Under callgrind, run it once with 0 evaluations
//! and once with N: the difference over N is the instruction count of one evaluation.
//! `crates/bench/compliance.sh` writes the rules and texts it uses to its temporary folder.

use std::time::Instant;

use causerie_policy::compliance::engine::{PeerClass, View};
use causerie_policy::compliance::rules::Path;
use causerie_policy::compliance::stage::load;

const PROJECTS: [&str; 4] = ["Project Falcon", "Bluebird", "Northwind Merger", "Atlas"];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [rules, bodies, rest @ ..] = args.as_slice() else {
        eprintln!("usage: rules RULES_FILE BODIES_FILE [EVALUATIONS]");
        std::process::exit(2);
    };
    let count: usize = rest
        .first()
        .map_or(100_000, |n| n.parse().expect("a count"));
    let projects: Vec<String> = PROJECTS.iter().map(|p| p.to_string()).collect();
    let set = match load(std::path::Path::new(rules), &projects) {
        Ok(set) => set,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    };
    let texts: Vec<String> = std::fs::read_to_string(bodies)
        .expect("the bodies file")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(!texts.is_empty(), "no texts in {bodies}");
    let local = PeerClass {
        local: true,
        allowed: true,
    };
    // Bodies as the scenario sends them, built before the clock starts: a sequence number
    // per user and the microseconds since the start, a few hundred of them per message, so
    // that no two bodies are the same (the lazy DFAs meet new digits as a server does).
    let messages: Vec<String> = (0..count)
        .map(|i| format!("{} {} {}", i % 300, 1_000 + i * 613, texts[i % texts.len()]))
        .collect();
    let started = Instant::now();
    let mut fired = 0usize;
    for message in &messages {
        let view = View {
            sender: "bench1@localhost",
            recipient: "bench2@localhost",
            path: Path::Chat,
            sender_class: local,
            recipient_class: local,
            bodies: &[message.as_str()],
            files: &[],
        };
        fired += usize::from(!std::hint::black_box(set.evaluate(&view)).is_empty());
    }
    let elapsed = started.elapsed();
    println!(
        "{} rules, {} texts: {count} evaluations, {fired} found something, {:.0} ns each",
        set.rules().len(),
        texts.len(),
        elapsed.as_nanos() as f64 / count.max(1) as f64
    );
}
