//! The committed `causerie.example.toml` and `docs/configuration.md` must be what the crate
//! generates. Run `CAUSERIE_BLESS=1 cargo test -p causerie-config` to rewrite them.

use std::path::PathBuf;

const REGENERATE: &str = "CAUSERIE_BLESS=1 cargo test -p causerie-config";

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn check_generated(relative: &str, generated: &str) {
    let path = repo_file(relative);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    if std::env::var_os("CAUSERIE_BLESS").is_some_and(|v| v == "1") {
        if let Err(e) = std::fs::write(&path, generated) {
            panic!("cannot write {}: {e}", path.display());
        }
        return;
    }
    let first_difference = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    panic!(
        "{relative} is stale (first difference at line {}); regenerate it with\n\n    {REGENERATE}\n",
        first_difference + 1
    );
}

#[test]
fn example_toml_is_up_to_date() {
    check_generated("causerie.example.toml", &causerie_config::example_toml());
}

#[test]
fn reference_markdown_is_up_to_date() {
    check_generated(
        "docs/configuration.md",
        &causerie_config::reference_markdown(),
    );
}

#[test]
fn committed_example_loads_and_equals_the_defaults() {
    let path = repo_file("causerie.example.toml");
    match causerie_config::Config::load(&path) {
        Ok(config) => assert_eq!(config, causerie_config::Config::default()),
        Err(e) => panic!("{e}"),
    }
}
