//! The bearer tokens of the admin API's TCP listener (RFC 6750 §2.1), read from
//! `admin.token_file`: one `NAME TOKEN [PERMISSION]` line per token, `#` comments. TOKEN is
//! the token itself or, as `causeriectl token add` writes it, `sha256:` and the hex SHA-256
//! of the token, so that the file does not hold the secret. Only the SHA-256 of each token
//! is kept in memory, and a presented token is compared with every one in constant time. The file is read again whenever it changes; a file that became
//! unusable accepts no token until it is fixed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use causerie_admin::Permission;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest token accepted: 32 characters of a random base64 or hex string carry enough
/// entropy against guessing.
pub const MIN_TOKEN_LEN: usize = 32;
const MAX_TOKEN_LEN: usize = 1024;
const MAX_NAME_LEN: usize = 64;
/// Larger files are refused (a mistake, not a token list).
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// How a line gives the digest of a token instead of the token.
const DIGEST_PREFIX: &str = "sha256:";
/// Random bytes in a token made by [`generate`].
const GENERATED_BYTES: usize = 32;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    permission: Permission,
    digest: [u8; 32],
}

/// What identifies a version of the file: a change of any of these means it is read again.
type Stamp = (Option<SystemTime>, u64, u64);

struct State {
    stamp: Option<Stamp>,
    entries: Result<Vec<Entry>, String>,
}

/// The tokens of one file.
pub struct Tokens {
    path: PathBuf,
    state: Mutex<State>,
}

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (meta.modified().ok(), meta.len(), meta.ino())
}

/// Reads and checks the file.
fn load(path: &Path) -> Result<(Stamp, Vec<Entry>), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {mode:04o} lets group or others read it; chmod 600 it"
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok((stamp(&meta), parse(&text)?))
}

/// Parses the lines; the error names the line (and never shows a token).
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let (name, token, permission) = match fields.as_slice() {
            [name, token] => (*name, *token, Permission::Admin),
            [name, token, p] => (
                *name,
                *token,
                Permission::parse(p).ok_or_else(|| {
                    format!("line {line}: permission `{p}` is not read, operate or admin")
                })?,
            ),
            _ => return Err(format!("line {line}: expected `NAME TOKEN [PERMISSION]`")),
        };
        check_name(name).map_err(|e| format!("line {line}: {e}"))?;
        let digest = match token.strip_prefix(DIGEST_PREFIX) {
            Some(hex) => parse_hex(hex).ok_or_else(|| {
                format!("line {line}: the digest of {name} must be 64 hexadecimal digits")
            })?,
            None => {
                if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
                    return Err(format!(
                        "line {line}: the token of {name} must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters"
                    ));
                }
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "line {line}: the token of {name} must be printable ASCII"
                    ));
                }
                Sha256::digest(token.as_bytes()).into()
            }
        };
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("line {line}: {name} appears twice"));
        }
        if entries.iter().any(|e| e.digest == digest) {
            return Err(format!("line {line}: the token of {name} is used twice"));
        }
        entries.push(Entry {
            name: name.to_owned(),
            permission,
            digest,
        });
    }
    Ok(entries)
}

/// Whether `name` may name a token: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "the name must be 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The names and permissions of the tokens in the text of a token file, in file order, or
/// the first problem (which never shows a token).
pub fn list(text: &str) -> Result<Vec<(String, Permission)>, String> {
    Ok(parse(text)?
        .into_iter()
        .map(|e| (e.name, e.permission))
        .collect())
}

/// A new token: 32 random bytes as 64 hex digits.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The line of the token file that grants `token` to `name`: its digest, not the token.
pub fn line(name: &str, token: &str, permission: Permission) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name} {DIGEST_PREFIX}{hex} {permission}")
}

impl Tokens {
    /// Reads the file; a file that cannot be used refuses the start.
    pub fn open(path: &Path) -> Result<Tokens, String> {
        let (stamp, entries) = load(path)?;
        if entries.is_empty() {
            return Err("no token in the file".into());
        }
        Ok(Tokens {
            path: path.to_owned(),
            state: Mutex::new(State {
                stamp: Some(stamp),
                entries: Ok(entries),
            }),
        })
    }

    /// The name and permission of `presented`, or `None`. The file is read again first when
    /// it changed.
    pub fn check(&self, presented: &str) -> Option<(String, Permission)> {
        let current = std::fs::metadata(&self.path).ok().map(|m| stamp(&m));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if current != state.stamp {
            state.stamp = current;
            state.entries = load(&self.path).map(|(_, e)| e);
            match &state.entries {
                Ok(e) => {
                    tracing::info!(tokens = e.len(), path = %self.path.display(), "admin tokens reloaded")
                }
                Err(why) => {
                    tracing::error!(path = %self.path.display(), reason = %why, "admin token file unusable; no token is accepted until it is fixed")
                }
            }
        }
        let entries = state.entries.as_ref().ok()?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every entry is compared, whatever matched, so the time taken says nothing.
        let mut found: Option<&Entry> = None;
        for e in entries {
            if bool::from(e.digest.ct_eq(&digest)) {
                found = Some(e);
            }
        }
        found.map(|e| (e.name.clone(), e.permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn lines_are_checked_and_never_echo_a_token() {
        let ok = parse(&format!(
            "# tokens\ndeploy {A}\n\nmonitor {B} read # dashboards\n"
        ))
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].permission, Permission::Admin);
        assert_eq!(ok[1].permission, Permission::Read);
        for (text, needle) in [
            (format!("deploy {A} root"), "permission"),
            (format!("deploy {A} admin extra"), "expected"),
            ("deploy short".to_owned(), "32 to 1024"),
            (format!("dé {A}"), "the name"),
            (format!("x {A}\nx {B}"), "twice"),
            (format!("x {A}\ny {A}"), "used twice"),
        ] {
            let e = parse(&text).expect_err(&text);
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains(A) && !e.contains(B), "{e}");
        }
    }

    #[test]
    fn digest_lines_grant_the_token_they_were_made_from() {
        let token = generate().expect("random");
        assert_eq!(token.len(), 64);
        assert_ne!(token, generate().expect("random"));
        let text = format!("{}\n", line("ci", &token, Permission::Operate));
        assert!(!text.contains(&token), "{text}");
        let entries = parse(&text).expect("valid");
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        assert_eq!(entries[0].digest, presented);
        assert_eq!(
            list(&text).expect("valid"),
            vec![("ci".to_owned(), Permission::Operate)]
        );
        for bad in ["ci sha256:abc", "ci sha256:zz"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("64 hexadecimal"), "{e}");
        }
        // The digest and the plain token of one secret are the same token.
        let e = parse(&format!("{text}other {token}\n")).expect_err("twice");
        assert!(e.contains("used twice"), "{e}");
    }

    #[test]
    fn tokens_are_recognised_revoked_and_the_file_must_be_private() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("deploy {A}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        match Tokens::open(&path) {
            Err(e) => assert!(e.contains("chmod 600"), "{e}"),
            Ok(_) => panic!("a file others may read was accepted"),
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let t = Tokens::open(&path).expect("open");
        assert_eq!(t.check(A), Some(("deploy".into(), Permission::Admin)));
        assert_eq!(t.check(B), None);
        assert_eq!(t.check(&A[1..]), None);
        // Revoked by editing the file: the length changes, so it is read again.
        std::fs::write(&path, format!("monitor {B} read\n# deploy left\n")).expect("write");
        assert_eq!(t.check(A), None);
        assert_eq!(t.check(B), Some(("monitor".into(), Permission::Read)));
        // A broken file accepts nothing.
        std::fs::write(&path, "garbage\n").expect("write");
        assert_eq!(t.check(B), None);
    }
}
