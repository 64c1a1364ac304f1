//! `causeriectl evidence …` as an administrator and a compliance officer run it: the real
//! binary, a configuration file, SQLite, and records signed and chained as the server writes
//! them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use causerie_policy::ServerKey;
use causerie_policy::compliance::evidence::{
    EvidenceFields, evidence_hash, new_row, next_link, payload_hash, sign,
};
use causerie_policy::compliance::seal::{OfficerKey, OfficerPublic, seal};
use causerie_storage::{AuditEvent, AuditFilter, StoredEvidence};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("causerie.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\ndomains = [\"localhost\", \"corp.example\"]\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .expect("config");
    Env { dir, config }
}

/// `causeriectl` run by the account `officer`.
fn ctl(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_causeriectl"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env("USER", "officer")
        .stdin(Stdio::null())
        .output()
        .expect("run causeriectl")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn db_url(e: &Env) -> String {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    format!("sqlite:{}", data.join("causerie.db").display())
}

fn storage(e: &Env) -> causerie_storage::Storage {
    block_on(causerie_storage::Storage::open(
        &db_url(e),
        &causerie_storage::StorageOptions::default(),
    ))
    .expect("open the database")
}

/// The key the server signs with: DATA_DIR/policy.key.
fn server_key(e: &Env) -> ServerKey {
    let data = e.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    causerie_policy::load_or_create(&data.join("policy.key")).expect("key")
}

/// One record to write.
struct Rec<'a> {
    user: &'a str,
    domain: &'a str,
    rule: &'a str,
    at: i64,
    body: &'a str,
    seal_to: Option<&'a OfficerPublic>,
}

fn rec<'a>(user: &'a str, rule: &'a str, at: i64, body: &'a str) -> Rec<'a> {
    Rec {
        user,
        domain: "corp.example",
        rule,
        at,
        body,
        seal_to: None,
    }
}

/// The payload the server would store for a message with this body.
fn payload_of(r: &Rec) -> String {
    serde_json::json!({
        "stanza": format!(
            "<message xmlns='jabber:client' from='{}@{}/laptop' to='bob@partner.example' \
             type='chat' id='m1'><body>{}</body></message>",
            r.user, r.domain, r.body
        ),
        "context": ["<message xmlns='jabber:client'><body>earlier</body></message>"],
        "found": [{"what": "card", "text": r.body}],
        "rule": {"id": r.rule},
        "outcome": "it was not delivered",
    })
    .to_string()
}

/// Signs, chains and appends records as the server's evidence writer does.
fn append(e: &Env, records: &[Rec]) -> Vec<StoredEvidence> {
    let key = server_key(e);
    let st = storage(e);
    let mut last = block_on(st.evidence.last()).expect("last");
    let mut stored = Vec::new();
    for r in records {
        let plain = payload_of(r);
        let payload = match r.seal_to {
            Some(to) => seal(plain.as_bytes(), to).expect("seal"),
            None => plain,
        };
        let (seq, prev_hash) = next_link(last.as_ref());
        let signed = sign(
            EvidenceFields {
                seq,
                created_at: r.at,
                rule_id: r.rule.into(),
                category: format!("category of {}", r.rule),
                actions: "capture,block".into(),
                username: r.user.into(),
                domain: r.domain.into(),
                resource: "laptop".into(),
                peer: "bob@partner.example".into(),
                direction: "outgoing".into(),
                remote_addr: Some("192.0.2.7".into()),
                client: None,
                sealed: r.seal_to.is_some(),
                payload_hash: payload_hash(&payload),
                prev_hash,
            },
            &key,
        );
        let row = block_on(st.evidence.append(&new_row(&signed, payload, None))).expect("append");
        stored.push(row.clone());
        last = Some(row);
    }
    block_on(st.close());
    stored
}

/// Runs SQL statements straight on the database file, as someone editing it by hand would.
fn raw_sql(e: &Env, statements: &[&str]) {
    let url = db_url(e);
    block_on(async {
        let db = sea_orm::Database::connect(url.as_str())
            .await
            .expect("connect");
        for s in statements {
            sea_orm::ConnectionTrait::execute_unprepared(&db, s)
                .await
                .unwrap_or_else(|err| panic!("{s}: {err}"));
        }
        db.close().await.expect("close");
    });
}

fn audit(e: &Env, prefix: &str) -> Vec<AuditEvent> {
    let st = storage(e);
    let events = block_on(st.audit.list(&AuditFilter {
        action_prefix: Some(prefix.to_owned()),
        ..AuditFilter::default()
    }))
    .expect("audit list");
    block_on(st.close());
    events
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

const T0: i64 = 1_740_787_200; // 2025-03-01T00:00:00Z

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn list_filters_and_prints_metadata_only() {
    let e = env();
    append(
        &e,
        &[
            rec("alice", "cards", T0, "4111 1111 1111 1111"),
            rec("bob", "cards", T0 + 3600, "5500 0000 0000 0004"),
            rec("alice", "iban", T0 + 7200, "DE89 3704 0044 0532 0130 00"),
        ],
    );
    let o = ctl(&e, &["evidence", "list"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o).lines().collect::<Vec<_>>(),
        [
            "1 2025-03-01T00:00:00Z cards alice@corp.example/laptop outgoing bob@partner.example capture,block -",
            "2 2025-03-01T01:00:00Z cards bob@corp.example/laptop outgoing bob@partner.example capture,block -",
            "3 2025-03-01T02:00:00Z iban alice@corp.example/laptop outgoing bob@partner.example capture,block -",
        ]
    );
    assert!(!out(&o).contains("4111"), "no content in a listing");

    let seqs = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["evidence", "list", "--json"];
        all.extend_from_slice(args);
        let o = ctl(&e, &all);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        let v: Value = serde_json::from_str(&out(&o)).expect("JSON");
        v.as_array()
            .expect("array")
            .iter()
            .map(|r| r["seq"].as_i64().expect("seq"))
            .collect()
    };
    assert_eq!(seqs(&[]), [1, 2, 3]);
    assert_eq!(seqs(&["--user", "Alice@corp.example"]), [1, 3]);
    assert_eq!(seqs(&["--rule", "cards"]), [1, 2]);
    assert_eq!(seqs(&["--since", "2025-03-01T01:00:00Z"]), [2, 3]);
    assert_eq!(seqs(&["--until", "2025-03-01T01:00:00Z"]), [1, 2]);
    assert_eq!(
        seqs(&["--user", "alice@corp.example", "--rule", "cards"]),
        [1]
    );

    let o = ctl(&e, &["evidence", "list", "--json", "--rule", "iban"]);
    let v: Value = serde_json::from_str(&out(&o)).expect("JSON");
    let r = &v[0];
    assert_eq!(r["time"], "2025-03-01T02:00:00Z");
    assert_eq!(r["jid"], "alice@corp.example/laptop");
    assert_eq!(r["sealed"], false);
    assert_eq!(r["purged"], false);
    assert_eq!(r["legal_hold"], false);
    assert!(r.get("payload").is_none(), "metadata only: {r}");

    for (args, needle) in [
        (
            &["evidence", "list", "--user", "no local part"][..],
            "--user",
        ),
        (
            &["evidence", "list", "--user", "corp.example"],
            "local part",
        ),
        (&["evidence", "list", "--since", "yesterday"], "--since"),
        (
            &[
                "evidence",
                "list",
                "--since",
                "2025-03-02",
                "--until",
                "2025-03-01",
            ],
            "after --until",
        ),
    ] {
        let o = ctl(&e, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(needle), "{args:?}: {}", err(&o));
    }
    assert!(
        audit(&e, "compliance.evidence.").is_empty(),
        "listing reads no content"
    );
}

#[test]
fn show_prints_the_record_and_records_the_read() {
    let e = env();
    let stored = append(&e, &[rec("alice", "cards", T0, "4111 1111 1111 1111")]);
    let o = ctl(&e, &["evidence", "show", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    for needle in [
        "record: 1\n",
        "time: 2025-03-01T00:00:00Z\n",
        "rule: cards (category of cards)\n",
        "user: alice@corp.example/laptop\n",
        "sealed: no\n",
        "legal hold: no\n",
        "purged: no\n",
        "the payload matches it",
        "matches the record",
        "signature: valid, by the server's key\n",
        "\"what\": \"card\"",
        "stanza as received:\n<message xmlns='jabber:client' from='alice@corp.example/laptop' to='bob@partner.example' type='chat' id='m1'><body>4111 1111 1111 1111</body></message>\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(text.contains(&stored[0].hash));

    let reads = audit(&e, "compliance.evidence.read");
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].actor, "causeriectl:officer");
    assert_eq!(reads[0].subject, "1");
    assert!(
        reads[0].detail.contains("rule cards"),
        "{}",
        reads[0].detail
    );

    let o = ctl(&e, &["evidence", "show", "1", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).expect("JSON");
    assert_eq!(v["payload_intact"], true);
    assert_eq!(v["hash"], stored[0].hash.as_str());
    assert_eq!(audit(&e, "compliance.evidence.read").len(), 2);

    let o = ctl(&e, &["evidence", "show", "7"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("no evidence record 7"), "{}", err(&o));
    let o = ctl(&e, &["evidence", "show", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert_eq!(audit(&e, "compliance.evidence.read").len(), 2);

    // A record edited in the database is shown as such.
    raw_sql(
        &e,
        &["UPDATE evidence SET payload = replace(payload, '4111', '4000') WHERE seq = 1"],
    );
    let o = ctl(&e, &["evidence", "show", "1"]);
    assert!(
        out(&o).contains("THE PAYLOAD DOES NOT MATCH IT"),
        "{}",
        out(&o)
    );
    assert!(err(&o).contains("changed after the server signed it"));
}

#[test]
fn sealed_evidence_cannot_be_read_without_the_officers_key() {
    let e = env();
    let key_file = e.dir.path().join("officer.key");
    let o = ctl(&e, &["evidence", "keygen", "--out", path_arg(&key_file)]);
    assert!(o.status.success(), "{}", err(&o));
    let public_line = out(&o);
    let public = OfficerPublic::parse(public_line.trim()).expect("a public key line");
    assert!(err(&o).contains("compliance.seal_key"), "{}", err(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let officer = OfficerKey::read(&key_file).expect("the officer's key");
    assert_eq!(officer.public(), public);
    let o = ctl(&e, &["evidence", "keygen", "--out", path_arg(&key_file)]);
    assert_eq!(o.status.code(), Some(1), "never overwritten: {}", err(&o));
    assert_eq!(OfficerKey::read(&key_file).unwrap().public(), public);

    let mut sealed = rec("alice", "cards", T0, "4111 1111 1111 1111");
    sealed.seal_to = Some(&public);
    append(&e, &[sealed]);
    let st = storage(&e);
    let row = block_on(st.evidence.get(1)).unwrap().unwrap();
    block_on(st.close());
    assert!(row.sealed);
    let stored_payload = row.payload.clone().unwrap();
    assert!(!stored_payload.contains("4111"), "stored sealed");

    // Without the key: refused, nothing shown, nothing read.
    let o = ctl(&e, &["evidence", "show", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(err(&o).contains("sealed"), "{}", err(&o));
    assert!(err(&o).contains("--key"), "{}", err(&o));
    assert_eq!(out(&o), "");
    assert!(audit(&e, "compliance.evidence.read").is_empty());

    // Another officer's key does not open it.
    let other_file = e.dir.path().join("other.key");
    assert!(
        ctl(&e, &["evidence", "keygen", "--out", path_arg(&other_file)])
            .status
            .success()
    );
    let o = ctl(
        &e,
        &["evidence", "show", "1", "--key", path_arg(&other_file)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(err(&o).contains("does not open"), "{}", err(&o));
    assert!(!out(&o).contains("4111"));

    // With the officer's key: shown, and the read recorded with the key used.
    let o = ctl(&e, &["evidence", "show", "1", "--key", path_arg(&key_file)]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("sealed: yes"), "{}", out(&o));
    assert!(
        out(&o).contains("<body>4111 1111 1111 1111</body>"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("the payload matches it"), "{}", out(&o));
    let reads = audit(&e, "compliance.evidence.read");
    assert_eq!(reads.len(), 1);
    assert!(
        reads[0].detail.contains(&public.fingerprint()),
        "{}",
        reads[0].detail
    );

    // The chain verifies without the officer's key.
    let o = ctl(&e, &["evidence", "verify"]);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));

    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = ctl(&e, &["evidence", "show", "1", "--key", path_arg(&key_file)]);
        assert_eq!(o.status.code(), Some(2));
        assert!(err(&o).contains("chmod 600"), "{}", err(&o));
    }
}

#[test]
fn an_export_can_be_checked_by_someone_else() {
    let e = env();
    let key_file = e.dir.path().join("officer.key");
    let officer = OfficerKey::generate().unwrap();
    officer.write_new(&key_file).unwrap();
    let public = officer.public();
    let mut third = rec("alice", "iban", T0 + 7200, "DE89 3704 0044 0532 0130 00");
    third.seal_to = Some(&public);
    let stored = append(
        &e,
        &[
            rec("alice", "cards", T0, "4111 1111 1111 1111"),
            rec("bob", "cards", T0 + 3600, "5500 0000 0000 0004"),
            third,
        ],
    );

    let file = e.dir.path().join("export.json");
    let o = ctl(
        &e,
        &[
            "evidence",
            "export",
            "--user",
            "alice@corp.example",
            "--key",
            path_arg(&key_file),
            "--out",
            path_arg(&file),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("exported 2 record(s)"), "{}", out(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).expect("JSON");
    assert_eq!(doc["format"], "causerie-evidence-export-v1");
    assert_eq!(doc["exported_by"], "causeriectl:officer");
    let records = doc["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["seq"], 1);
    assert_eq!(records[1]["seq"], 3);
    assert_eq!(records[1]["sealed"], true);
    assert_eq!(
        records[1]["payload_opened"].as_str().unwrap(),
        payload_of(&rec(
            "alice",
            "iban",
            T0 + 7200,
            "DE89 3704 0044 0532 0130 00"
        ))
    );
    assert_eq!(
        records[1]["payload"].as_str(),
        stored[2].payload.as_deref(),
        "the sealed text as stored, so that its hash can be checked"
    );
    assert!(records[0].get("payload_opened").is_none());

    // What a third party does with the document alone: recompute each payload hash and
    // record hash, and check the signatures with the public key it names.
    let server_public: [u8; 32] = (0..32)
        .map(|i| {
            let hex = doc["server_public_key"].as_str().unwrap();
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
        })
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    assert_eq!(server_public, server_key(&e).public_key());
    for r in records {
        let s = |k: &str| r[k].as_str().unwrap().to_owned();
        let fields = EvidenceFields {
            seq: r["seq"].as_i64().unwrap(),
            created_at: r["created_at"].as_i64().unwrap(),
            rule_id: s("rule_id"),
            category: s("category"),
            actions: s("actions"),
            username: s("username"),
            domain: s("domain"),
            resource: s("resource"),
            peer: s("peer"),
            direction: s("direction"),
            remote_addr: r["remote_addr"].as_str().map(str::to_owned),
            client: r["client"].as_str().map(str::to_owned),
            sealed: r["sealed"].as_bool().unwrap(),
            payload_hash: s("payload_hash"),
            prev_hash: s("prev_hash"),
        };
        assert_eq!(payload_hash(&s("payload")), fields.payload_hash);
        assert_eq!(evidence_hash(&fields), s("hash"));
        let hash: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&s("hash")[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let signature = base64_decode(&s("signature"));
        let signature: [u8; 64] = signature.try_into().unwrap();
        assert!(causerie_policy::verify(&server_public, &hash, &signature));
    }

    let exports = audit(&e, "compliance.evidence.export");
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert_eq!(exports[0].subject, "1,3");
    assert_eq!(exports[0].actor, "causeriectl:officer");

    // Never over an existing file; without the key the sealed payload stays sealed.
    let o = ctl(&e, &["evidence", "export", "--out", path_arg(&file)]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let plain = e.dir.path().join("sealed.json");
    let o = ctl(&e, &["evidence", "export", "--out", path_arg(&plain)]);
    assert!(o.status.success(), "{}", err(&o));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&plain).unwrap()).unwrap();
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["payload_opened"], Value::Null);
    assert!(!std::fs::read_to_string(&plain).unwrap().contains("DE89"));
    let exports = audit(&e, "compliance.evidence.export");
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[1].subject, "1-3");
}

/// Standard base64 (RFC 4648 §4), padded: a second decoder, independent of the server's.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

#[test]
fn verify_finds_edited_records_and_payloads_by_position() {
    let e = env();
    let o = ctl(&e, &["evidence", "verify"]);
    assert_eq!(o.status.code(), Some(3), "no key yet: {}", err(&o));
    let stored = append(
        &e,
        &(0..5)
            .map(|i| rec("alice", "cards", T0 + i * 60, "4111 1111 1111 1111"))
            .collect::<Vec<_>>(),
    );
    let o = ctl(&e, &["evidence", "verify"]);
    assert!(o.status.success(), "{}", out(&o));
    let last = format!("5:{}", stored[4].hash);
    assert_eq!(
        out(&o).lines().collect::<Vec<_>>(),
        [
            "5 records, chain intact, signatures valid; 5 payloads match their hashes, 0 purged"
                .to_owned(),
            format!("last record: {last} (keep it elsewhere; check with --checkpoint)"),
        ]
    );
    let o = ctl(&e, &["evidence", "verify", "--checkpoint", &last]);
    assert!(o.status.success(), "{}", out(&o));
    for bad in ["5", "5:abc", "0:"] {
        let o = ctl(&e, &["evidence", "verify", "--checkpoint", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
    }

    raw_sql(
        &e,
        &[
            "UPDATE evidence SET peer = 'carol@partner.example' WHERE seq = 2",
            "UPDATE evidence SET payload = replace(payload, '4111', '4000') WHERE seq = 4",
        ],
    );
    let o = ctl(&e, &["evidence", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert_eq!(
        out(&o),
        "row 2 (seq 2): its fields do not match its hash (edited after signing)\n\
         row 4 (seq 4): its payload does not match its payload hash (edited after signing)\n"
    );
    assert!(err(&o).contains("2 problem(s) in 5 records"), "{}", err(&o));

    // The last record removed: a shorter chain that no longer reaches the checkpoint.
    raw_sql(&e, &["DELETE FROM evidence WHERE seq = 5"]);
    let o = ctl(&e, &["evidence", "verify", "--checkpoint", &last]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("end at seq 4 but the checkpoint is at seq 5"),
        "{}",
        out(&o)
    );
}

#[test]
fn purge_empties_old_payloads_but_not_those_on_legal_hold() {
    let e = env();
    let old = now() - 400 * 86_400;
    append(
        &e,
        &[
            rec("alice", "cards", old, "4111 1111 1111 1111"),
            rec("alice", "cards", old + 60, "5500 0000 0000 0004"),
            rec("bob", "cards", old + 120, "4111 1111 1111 1111"),
            rec("bob", "cards", now() - 60, "4111 1111 1111 1111"),
        ],
    );
    let o = ctl(&e, &["evidence", "hold", "2", "--note", "case 2025-17"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "record 2 is on legal hold\n");
    let o = ctl(&e, &["evidence", "hold", "99"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let holds = audit(&e, "compliance.evidence.hold");
    assert_eq!(holds.len(), 1, "a refused hold is not recorded: {holds:?}");
    assert_eq!(holds[0].subject, "2");
    assert!(
        holds[0].detail.contains("case 2025-17"),
        "{}",
        holds[0].detail
    );

    let future = (now() + 86_400).to_string();
    let o = ctl(&e, &["evidence", "purge", "--before", &future]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("future"), "{}", err(&o));

    let before = (now() - 365 * 86_400).to_string();
    let o = ctl(&e, &["evidence", "purge", "--before", &before]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).starts_with("purged the payloads of 2 record(s)"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["evidence", "list"]);
    let listing = out(&o);
    let flags: Vec<&str> = listing
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(flags, ["purged", "hold", "purged", "-"], "{}", out(&o));
    let purges = audit(&e, "compliance.evidence.purge");
    assert_eq!(purges.len(), 1);
    assert!(
        purges[0].detail.starts_with("2 evidence payload(s)"),
        "{}",
        purges[0].detail
    );

    // A purged record still verifies, and shows without content.
    let o = ctl(&e, &["evidence", "verify"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("2 payloads match their hashes, 2 purged"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["evidence", "show", "1"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("purged: yes, at "), "{}", out(&o));
    assert!(!out(&o).contains("4111"), "{}", out(&o));

    let o = ctl(&e, &["evidence", "release-hold", "2"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(audit(&e, "compliance.evidence.release-hold").len(), 1);
    let o = ctl(&e, &["evidence", "purge", "--before", &before]);
    assert!(
        out(&o).starts_with("purged the payloads of 1 record(s)"),
        "{}",
        out(&o)
    );
    let o = ctl(&e, &["evidence", "list", "--json"]);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    let purged: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["purged"].as_bool().unwrap())
        .collect();
    assert_eq!(purged, [true, true, true, false]);
}

#[test]
fn evidence_has_help() {
    let e = env();
    let o = ctl(&e, &["evidence", "--help"]);
    assert!(o.status.success());
    for sub in [
        "keygen",
        "list",
        "show",
        "export",
        "verify",
        "purge",
        "hold",
        "release-hold",
    ] {
        assert!(out(&o).contains(sub), "{sub} missing:\n{}", out(&o));
    }
}
