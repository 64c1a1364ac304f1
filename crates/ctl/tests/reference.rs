//! docs/cli.md is what `causeriectl reference` prints: the reference cannot drift from the
//! command's definitions. `CAUSERIE_BLESS=1` rewrites the file.

use std::path::Path;
use std::process::Command;

#[test]
fn the_cli_reference_is_up_to_date() {
    let out = Command::new(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("reference")
        .output()
        .expect("runs causeriectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
    if std::env::var_os("CAUSERIE_BLESS").is_some() {
        std::fs::write(&file, &generated).expect("writes docs/cli.md");
        return;
    }
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        current == generated,
        "docs/cli.md is out of date: run CAUSERIE_BLESS=1 cargo test -p causerie-ctl --test reference"
    );
}
