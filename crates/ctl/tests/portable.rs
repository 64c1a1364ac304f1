//! `causeriectl import|export` as an administrator runs them: the real binary, a configuration
//! file, SQLite, XEP-0227 files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn config(dir: &Path, name: &str) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\ndomains = [\"example.com\"]\ndata_dir = {:?}\n",
            dir.join(format!("{name}-data")).display().to_string()
        ),
    )
    .expect("config");
    config
}

fn ctl(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut sin) = child.stdin.take() {
        use std::io::Write;
        let _ = sin.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const FILE: &str = "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='example.com'>
    <user name='alice' password='alice-pw'>
      <query xmlns='jabber:iq:roster'>
        <item jid='bob@example.com' subscription='both' name='Bob'><group>Team</group></item>
      </query>
      <vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>
    </user>
    <user name='bob' password='bob-pw'/>
    <user name='nokeys'/>
  </host>
</server-data>
";

#[test]
fn import_export_import_between_two_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = config(dir.path(), "first");
    let file = dir.path().join("in.xml");
    std::fs::write(&file, FILE).expect("write");
    let file_arg = file.to_str().expect("path");

    let o = ctl(&first, &["import", file_arg], "");
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("imported 3 account(s): 3 created, 0 replaced, 0 skipped (existing); 2 with keys derived from a plaintext password, 1 without credentials"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "nokeys@example.com ({file_arg}:11) has neither SCRAM credentials nor a password"
        )),
        "{out}"
    );
    assert!(
        out.contains("causeriectl user passwd nokeys@example.com"),
        "{out}"
    );

    let o = ctl(&first, &["import", file_arg], "");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("alice@example.com ({file_arg}:4)")),
        "{}",
        text(&o)
    );
    let o = ctl(
        &first,
        &["import", "--replace", "--skip-existing", file_arg],
        "",
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "the two options exclude each other"
    );

    let exported = dir.path().join("out.xml");
    let out_arg = exported.to_str().expect("path");
    let o = ctl(&first, &["export", "--out", out_arg], "");
    assert!(o.status.success(), "{}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let xml = std::fs::read_to_string(&exported).expect("read");
    assert!(
        !xml.contains("password") && !xml.contains("alice-pw"),
        "{xml}"
    );
    assert_eq!(xml.matches("<scram-credentials").count(), 6, "{xml}");
    let o = ctl(&first, &["export", "--out", out_arg], "");
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing file is not overwritten"
    );
    let o = ctl(&first, &["export", "--domain", "other.example"], "");
    assert_eq!(o.status.code(), Some(2));

    // A second server takes the export, keys and all.
    let second = config(dir.path(), "second");
    let o = ctl(&second, &["import", out_arg], "");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 created, 0 replaced, 0 skipped (existing); 0 with keys derived"),
        "{}",
        text(&o)
    );
    let o = ctl(&second, &["export"], "");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        xml,
        "the second export is the first one"
    );

    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        FILE.replace("</user>\n    <user name='bob'", "<user name='bob'"),
    )
    .expect("write");
    let third = config(dir.path(), "third");
    let o = ctl(&third, &["import", broken.to_str().expect("path")], "");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("broken.xml:11: not well-formed XML"),
        "{}",
        text(&o)
    );
    let o = ctl(&third, &["user", "list"], "");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "",
        "nothing was imported"
    );
}
