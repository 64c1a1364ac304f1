//! The one error type of the storage boundary, and the scrubbing of secrets out of the messages
//! the database drivers produce.

/// What a store operation can fail with.
///
/// Callers map these to protocol errors in one place; the messages are meant for logs and for
/// the administrator, and never contain a password, a credential or the password part of a
/// connection string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record to create is already there; the text names it (`user@domain`).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The record to change or remove is not there; the text names it.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller handed over a value the schema cannot hold (empty name, duplicate hash name,
    /// an oversized field); nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The write was computed from a state that is no longer current (another writer got
    /// there first, or the caller read stale data); nothing was written. The text says what
    /// the store expected, so the caller can read the current state and try again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database URL is malformed or names an unsupported engine.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database refused or failed; the text says what was attempted.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// Applying the schema migrations failed; the text names the step when known.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// The secrets a connection string carries, so that they can be cut out of any driver message
/// before it leaves the crate (a driver may echo the URL it was given).
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    words: Vec<String>,
}

const MASK: &str = "***";

impl Secrets {
    pub(crate) fn from_url(url: &str) -> Secrets {
        let mut words = Vec::new();
        for raw in [userinfo_password(url), query_password(url)]
            .into_iter()
            .flatten()
        {
            if raw.is_empty() {
                continue;
            }
            let decoded = percent_decode(raw);
            if decoded != raw && !decoded.is_empty() {
                words.push(decoded);
            }
            words.push(raw.to_owned());
        }
        // Longest first, so that a secret containing another one is masked whole.
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        Secrets { words }
    }

    /// `message` with every occurrence of a known secret replaced by `***`.
    pub(crate) fn redact(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for word in &self.words {
            if out.contains(word.as_str()) {
                out = out.replace(word.as_str(), MASK);
            }
        }
        out
    }
}

/// The URL as it may be shown: the password of the user-info part and a `password=` query
/// parameter replaced by `***`.
pub(crate) fn redacted_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(range) = userinfo_password_range(&out) {
        out.replace_range(range, MASK);
    }
    if let Some(range) = query_password_range(&out) {
        out.replace_range(range, MASK);
    }
    out
}

fn userinfo_password(url: &str) -> Option<&str> {
    userinfo_password_range(url).map(|r| &url[r])
}

fn query_password(url: &str) -> Option<&str> {
    query_password_range(url).map(|r| &url[r])
}

/// Byte range of `PASSWORD` in `scheme://user:PASSWORD@host…` (RFC 3986 §3.2.1: the user-info
/// ends at the last `@` of the authority, the authority at the first `/`, `?` or `#`).
fn userinfo_password_range(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// Byte range of the value of a `password=` query parameter.
fn query_password_range(url: &str) -> Option<std::ops::Range<usize>> {
    let query_start = url.find('?')? + 1;
    let query_end = url[query_start..]
        .find('#')
        .map_or(url.len(), |i| query_start + i);
    let mut offset = query_start;
    for pair in url[query_start..query_end].split('&') {
        if let Some(value) = pair.strip_prefix("password=") {
            let value_start = offset + "password=".len();
            return Some(value_start..value_start + value.len());
        }
        offset += pair.len() + 1;
    }
    None
}

/// Percent-decoding (RFC 3986 §2.1) for matching a decoded secret in driver messages; invalid
/// escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_password_is_masked() {
        let url = "postgres://causerie:s3cr%40t@db.example:5432/xmpp?sslmode=require";
        assert_eq!(
            redacted_url(url),
            "postgres://causerie:***@db.example:5432/xmpp?sslmode=require"
        );
        let secrets = Secrets::from_url(url);
        assert_eq!(
            secrets.redact("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
    }

    #[test]
    fn query_password_is_masked() {
        let url = "postgres://db.example/xmpp?user=x&password=hunter2&sslmode=disable";
        assert_eq!(
            redacted_url(url),
            "postgres://db.example/xmpp?user=x&password=***&sslmode=disable"
        );
        assert_eq!(Secrets::from_url(url).redact("hunter2!"), "***!");
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite://data/causerie.db?mode=rwc",
            "sqlite:data/causerie.db",
            "postgres://host/db?x=a@b:c",
        ] {
            assert_eq!(redacted_url(url), url);
            assert_eq!(Secrets::from_url(url).redact(url), url);
        }
    }

    #[test]
    fn at_sign_in_password_ends_userinfo_at_last_at() {
        let url = "postgres://u:p@ss@host/db";
        assert_eq!(redacted_url(url), "postgres://u:***@host/db");
    }

    #[test]
    fn percent_decode_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
