//! `causeriectl rules …`: the compliance rules file, with the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("causerie.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "[server]\ndomains = [\"corp.example\"]\ndata_dir = {:?}\n\n[compliance]\nproject_names = [\"Falcon\"]\n\n[federation]\nmode = \"allowlist\"\n\n[[federation.partners]]\ndomain = \"partner.example\"\n",
                data.display().to_string()
            ),
        )
        .expect("config");
        Env { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_causeriectl"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn rules_file(&self) -> PathBuf {
        self.dir.path().join("data").join("rules.toml")
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CARDS: &str = r#"
[[rule]]
id = "cards"
description = "No card numbers outside"
category = "sensitive data"
severity = "high"
peers = "external"
detectors = ["payment-card"]
actions = ["mask", "warn"]

[[rule]]
id = "strangers"
description = "Only partners"
category = "federation"
peers = "not-allowed"
actions = ["block", "alert"]
"#;

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn add_list_test_remove() {
    let e = Env::new();
    let o = e.run(&["rules", "list"]);
    assert!(
        o.status.success() && out(&o).is_empty(),
        "no file, no rules"
    );

    let file = e.write("cards.toml", CARDS);
    let o = e.run(&["rules", "add", path(&file)]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("added cards, strangers"), "{}", out(&o));
    let o = e.run(&["rules", "list"]);
    assert_eq!(
        out(&o),
        "cards high mask,warn sensitive data — No card numbers outside\nstrangers medium block,alert federation — Only partners\n"
    );
    let o = e.run(&["rules", "list", "--json"]);
    assert!(out(&o).starts_with("[{\"id\":\"cards\""), "{}", out(&o));
    // The same ids again: refused, nothing written.
    let before = std::fs::read_to_string(e.rules_file()).unwrap();
    let o = e.run(&["rules", "add", path(&file)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("rule cards: the id is already used"),
        "{}",
        err(&o)
    );
    assert_eq!(std::fs::read_to_string(e.rules_file()).unwrap(), before);

    let o = e.run(&[
        "rules",
        "test",
        "--from",
        "alice@corp.example",
        "--to",
        "bob@partner.example",
        "card 4111 1111 1111 1111 ok",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("(local) -> bob@partner.example (partner), path federation"),
        "{text}"
    );
    assert!(
        text.contains(
            "rule cards fires: sensitive data — payment card number \"4111 1111 1111 1111\""
        ),
        "{text}"
    );
    assert!(
        text.contains("outcome: delivered as: card ******************* ok"),
        "{text}"
    );
    let o = e.run(&[
        "rules",
        "test",
        "--from",
        "alice@corp.example",
        "--to",
        "eve@nowhere.example",
        "hello",
    ]);
    assert!(
        out(&o).contains("rule strangers fires") && out(&o).contains("outcome: not delivered"),
        "{}",
        out(&o)
    );
    let o = e.run(&[
        "rules",
        "test",
        "--from",
        "alice@corp.example",
        "--to",
        "bob@corp.example",
        "card 4111111111111111",
    ]);
    assert!(out(&o).contains("no rule fires"), "{}", out(&o));

    let o = e.run(&["rules", "remove", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let o = e.run(&["rules", "remove", "strangers"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run(&["rules", "list"]);
    assert!(out(&o).starts_with("cards ") && !out(&o).contains("strangers"));
    // Both changes are in the audit log.
    let o = e.run(&["audit", "list", "--action", "compliance.rules."]);
    let log = out(&o);
    assert!(
        log.contains("compliance.rules.add cards,strangers")
            && log.contains("compliance.rules.remove strangers"),
        "{log}"
    );
}

#[test]
fn bad_rules_are_refused_with_the_rule_the_field_and_the_reason() {
    let e = Env::new();
    let bad = e.write(
        "bad.toml",
        "[[rule]]\nid = \"x\"\ndescription = \"d\"\ncategory = \"c\"\nactions = [\"shout\"]\ndetectors = [\"passport\"]\n\n[[rule]]\nid = \"y\"\ndescription = \"d\"\ncategory = \"c\"\npatterns = ['(oops']\nactions = [\"log\"]\n",
    );
    let o = e.run(&["rules", "check", path(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    let text = err(&o);
    assert!(
        text.contains("rule x, actions: unknown action `shout`"),
        "{text}"
    );
    assert!(
        text.contains("rule x, detectors: unknown value `passport`"),
        "{text}"
    );
    let o = e.run(&["rules", "add", path(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!e.rules_file().exists(), "nothing written");
    // A pattern the engine refuses is caught when the set is compiled.
    let regex = e.write(
        "regex.toml",
        "[[rule]]\nid = \"y\"\ndescription = \"d\"\ncategory = \"c\"\npatterns = ['(oops']\nactions = [\"log\"]\n",
    );
    let o = e.run(&["rules", "add", path(&regex)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("rule y, patterns"), "{}", err(&o));
    let good = e.write("good.toml", CARDS);
    let o = e.run(&["rules", "check", path(&good)]);
    assert!(
        o.status.success() && out(&o).contains("2 rules, valid"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_lock_with_terminate_is_listed_and_one_without_is_refused() {
    let e = Env::new();
    let good = e.write(
        "lock.toml",
        "[[rule]]\nid = \"leak\"\ndescription = \"No customer lists\"\ncategory = \"customer data\"\nkeywords = [\"customer list\"]\nactions = [\"terminate\", \"alert\"]\nlock_minutes = 30\nescalate = [{ after = 2, within_secs = 3600, actions = [\"terminate\"], lock_minutes = 1440 }]\n",
    );
    let o = e.run(&["rules", "add", path(&good)]);
    assert!(o.status.success(), "{}", err(&o));
    let o = e.run(&["rules", "list"]);
    assert_eq!(
        out(&o),
        "leak medium terminate,alert+lock=30m customer data — No customer lists\n"
    );
    let o = e.run(&["rules", "list", "--json"]);
    assert!(out(&o).contains("\"lock_minutes\":30"), "{}", out(&o));
    let o = e.run(&[
        "rules",
        "test",
        "--from",
        "alice@corp.example",
        "--to",
        "bob@corp.example",
        "the customer list",
    ]);
    assert!(
        out(&o).contains(
            "actions terminate,alert+lock=30m, escalating: after 2 in 3600 s terminate+lock=1440m"
        ),
        "{}",
        out(&o)
    );
    let bad = e.write(
        "bad-lock.toml",
        "[[rule]]\nid = \"soft\"\ndescription = \"d\"\ncategory = \"c\"\nkeywords = [\"x\"]\nactions = [\"block\"]\nlock_minutes = 30\n",
    );
    let o = e.run(&["rules", "check", path(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains(
            "rule soft, lock_minutes: locks the account of a session that `terminate` ends"
        ),
        "{}",
        err(&o)
    );
}
