//! Sealed evidence: a payload encrypted to the compliance officer's X25519 public key, so that
//! reading it needs the officer's secret key, which the server never holds.
//!
//! A sealed box, version 1 (X25519 from RFC 7748 §5 and §6.1, HKDF-SHA256 from RFC 5869,
//! ChaCha20-Poly1305 from RFC 8439 §2.8):
//!
//! 1. a new ephemeral X25519 key pair for every payload;
//! 2. the shared secret of the ephemeral secret key and the officer's public key, refused when
//!    it is all zeros (a low-order public key, RFC 7748 §6.1);
//! 3. HKDF-SHA256 with that secret as input key material, the salt `ephemeral public ‖ officer
//!    public` and the info [`HKDF_INFO`], giving 44 bytes: the ChaCha20-Poly1305 key (32) and
//!    nonce (12). Each key encrypts one payload only, so a derived nonce never repeats;
//! 4. the box is `version (1 byte) ‖ ephemeral public (32) ‖ ciphertext ‖ tag (16)`, the first
//!    33 bytes also authenticated as associated data, written as standard base64 (RFC 4648 §4,
//!    padded).
//!
//! Keys as text: the public key `causerie-officer-v1:BASE64` (the value of
//! `compliance.seal_key`), the secret key `causerie-officer-secret-v1:BASE64` in a file of its
//! own, readable by its owner only, which may also hold blank lines and `#` comments.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// The first byte of a sealed box.
pub const SEAL_VERSION: u8 = 1;
/// The HKDF info string: the project, what the key is for, and the box version.
pub const HKDF_INFO: &[u8] = b"causerie evidence seal v1";
/// How an officer's public key starts in text.
pub const PUBLIC_PREFIX: &str = "causerie-officer-v1:";
/// How an officer's secret key starts in text.
pub const SECRET_PREFIX: &str = "causerie-officer-secret-v1:";
/// Size of an X25519 key, public or secret (RFC 7748 §6.1).
pub const KEY_LEN: usize = 32;
/// Bytes a sealed box adds to its payload before base64: version, ephemeral key, tag.
pub const OVERHEAD: usize = 1 + KEY_LEN + TAG_LEN;
/// The longest secret key file read: a key line and a few comments.
const MAX_KEY_FILE_BYTES: u64 = 4096;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// Why a key or a sealed box could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not an officer public key: {0}")]
    BadPublic(String),
    #[error("not an officer secret key: {0}")]
    BadSecret(String),
    #[error("not a sealed box: {0}")]
    Malformed(String),
    #[error("sealed box version {0} is not known (this server knows version {SEAL_VERSION})")]
    UnknownVersion(u8),
    /// The key is not the one the box was sealed to, or the box was changed.
    #[error("the sealed box does not open with this key (another key, or the box was changed)")]
    WrongKeyOrTampered,
    #[error("cannot {action} key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {path} already exists; it is not replaced")]
    Exists { path: PathBuf },
    #[error("key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "key file {path} has mode {mode:03o}: group or others can access it; \
         run `chmod 600 {path}` after checking nobody else read it"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot get random bytes: {0}")]
    Random(#[source] getrandom::Error),
}

/// The compliance officer's public key: what evidence is sealed to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OfficerPublic([u8; KEY_LEN]);

impl OfficerPublic {
    /// Reads `causerie-officer-v1:BASE64` (surrounding white space ignored). Refuses a key of
    /// low order, with which every box would be readable by anyone (RFC 7748 §6.1).
    pub fn parse(text: &str) -> Result<OfficerPublic, SealError> {
        let bytes = key_bytes(text.trim(), PUBLIC_PREFIX).map_err(SealError::BadPublic)?;
        // A clamped scalar is a multiple of the cofactor, so any such scalar gives the all-zero
        // output exactly for the low-order points.
        let probe = StaticSecret::from([0x55; KEY_LEN]);
        if !probe
            .diffie_hellman(&PublicKey::from(bytes))
            .was_contributory()
        {
            return Err(SealError::BadPublic(
                "a low-order point, which would let anyone open the boxes".to_owned(),
            ));
        }
        Ok(OfficerPublic(bytes))
    }

    /// The raw 32 bytes (RFC 7748 §5, u-coordinate, little-endian).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// SHA-256 of the key, in the groups of four hex digits of the server key's fingerprint.
    pub fn fingerprint(&self) -> String {
        crate::keys::fingerprint(&self.0)
    }
}

impl std::fmt::Display for OfficerPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", BASE64.encode(self.0))
    }
}

impl std::fmt::Debug for OfficerPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OfficerPublic({self})")
    }
}

impl std::str::FromStr for OfficerPublic {
    type Err = SealError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OfficerPublic::parse(s)
    }
}

/// The compliance officer's secret key, which opens sealed evidence. Its `Debug` shows the
/// public key only, and its bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct OfficerKey {
    secret: StaticSecret,
}

impl std::fmt::Debug for OfficerKey {
    // The secret key must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfficerKey")
            .field("public", &self.public().to_string())
            .finish_non_exhaustive()
    }
}

impl OfficerKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<OfficerKey, SealError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(SealError::Random)?;
        Ok(OfficerKey::from_bytes(*bytes))
    }

    /// A key from its 32 secret bytes (RFC 7748 §5: clamped when used).
    pub fn from_bytes(secret: [u8; KEY_LEN]) -> OfficerKey {
        OfficerKey {
            secret: StaticSecret::from(secret),
        }
    }

    pub fn public(&self) -> OfficerPublic {
        OfficerPublic(PublicKey::from(&self.secret).to_bytes())
    }

    /// `causerie-officer-secret-v1:BASE64`: the text to keep secret.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.secret.to_bytes());
        let mut text = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 44));
        text.push_str(SECRET_PREFIX);
        BASE64.encode_string(bytes.as_slice(), &mut text);
        text
    }

    /// Reads the text of a key file: one `causerie-officer-secret-v1:` line, with blank lines
    /// and `#` comments around it.
    pub fn parse(text: &str) -> Result<OfficerKey, SealError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let line = lines
            .next()
            .ok_or_else(|| SealError::BadSecret("no key line".to_owned()))?;
        if lines.next().is_some() {
            return Err(SealError::BadSecret(
                "more than one key line (one key per file)".to_owned(),
            ));
        }
        let bytes = Zeroizing::new(key_bytes(line, SECRET_PREFIX).map_err(SealError::BadSecret)?);
        Ok(OfficerKey::from_bytes(*bytes))
    }

    /// Reads a key file, refusing one that group or others can access (as OpenSSH does).
    pub fn read(path: &Path) -> Result<OfficerKey, SealError> {
        let io = |action, source| SealError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(|e| io("open", e))?;
        let meta = file.metadata().map_err(|e| io("inspect", e))?;
        if !meta.is_file() {
            return Err(SealError::NotAFile {
                path: path.to_owned(),
            });
        }
        if let Some(mode) = crate::keys::too_open(&meta) {
            return Err(SealError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io("read", e))?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(SealError::BadSecret(format!(
                "{}: longer than {MAX_KEY_FILE_BYTES} bytes",
                path.display()
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| SealError::BadSecret(format!("{}: not UTF-8 text", path.display())))?;
        OfficerKey::parse(text).map_err(|e| match e {
            SealError::BadSecret(why) => SealError::BadSecret(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// Writes the key to a new file, readable by its owner only, with the public key in a
    /// comment. Never half-written: the text goes to a temporary file in the same folder, is
    /// flushed to disk and is then linked into place, which refuses to replace any file.
    pub fn write_new(&self, path: &Path) -> Result<(), SealError> {
        let io = |action, source| SealError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let name = path.file_name().ok_or_else(|| {
            io(
                "create",
                io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut text = Zeroizing::new(format!(
            "# Causerie compliance officer secret key: it opens sealed evidence.\n\
             # Public key (compliance.seal_key): {}\n",
            self.public()
        ));
        text.push_str(&self.to_secret_text());
        text.push('\n');

        let suffix = getrandom::u32().map_err(SealError::Random)?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{suffix:08x}.tmp"));
        let tmp = dir.join(tmp_name);
        let written = write_private_file(&tmp, text.as_bytes());
        let placed = written.and_then(|()| std::fs::hard_link(&tmp, path));
        // The temporary name goes whatever happened; the link (if made) keeps the data.
        let _ = std::fs::remove_file(&tmp);
        match placed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SealError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io("create", e)),
        }
        #[cfg(unix)]
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync the folder of", e))?;
        Ok(())
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The 32 bytes after `prefix` in `text`.
fn key_bytes(text: &str, prefix: &str) -> Result<[u8; KEY_LEN], String> {
    let Some(b64) = text.strip_prefix(prefix) else {
        let shown: String = text.chars().take(prefix.len()).collect();
        return Err(if prefix == SECRET_PREFIX {
            format!("expected a line starting with `{prefix}`")
        } else {
            format!("expected `{prefix}` followed by base64, found `{shown}…`")
        });
    };
    let bytes = Zeroizing::new(
        BASE64
            .decode(b64)
            .map_err(|_| format!("the text after `{prefix}` is not base64"))?,
    );
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "the key is {} bytes; an X25519 key is {KEY_LEN} bytes",
            bytes.len()
        )
    })
}

/// The ChaCha20-Poly1305 cipher and nonce of one box.
fn box_cipher(
    shared: &[u8; KEY_LEN],
    ephemeral: &[u8; KEY_LEN],
    recipient: &[u8; KEY_LEN],
) -> (ChaCha20Poly1305, Nonce) {
    let mut salt = [0u8; 2 * KEY_LEN];
    salt[..KEY_LEN].copy_from_slice(ephemeral);
    salt[KEY_LEN..].copy_from_slice(recipient);
    let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN]);
    // 44 bytes is far below HKDF-SHA256's limit of 255 × 32 (RFC 5869 §2.3): never an error.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(HKDF_INFO, okm.as_mut_slice());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&okm[..KEY_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&okm[KEY_LEN..]);
    (ChaCha20Poly1305::new(&(*key).into()), Nonce::from(nonce))
}

/// Seals `plaintext` to the officer's key: base64 text that only the officer's secret key
/// opens. Two seals of the same plaintext differ (a new ephemeral key each time).
pub fn seal(plaintext: &[u8], to: &OfficerPublic) -> Result<String, SealError> {
    let mut ephemeral_bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(ephemeral_bytes.as_mut_slice()).map_err(SealError::Random)?;
    let ephemeral = StaticSecret::from(*ephemeral_bytes);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    // `to` was checked not to be of low order when it was parsed.
    let shared = ephemeral.diffie_hellman(&PublicKey::from(to.0));
    let (cipher, nonce) = box_cipher(shared.as_bytes(), &ephemeral_public, &to.0);
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&ephemeral_public);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &out,
            },
        )
        // ChaCha20-Poly1305 refuses only messages over 256 GiB (RFC 8439 §2.8).
        .map_err(|_| SealError::Malformed("the plaintext is too long to seal".to_owned()))?;
    out.extend_from_slice(&sealed);
    Ok(BASE64.encode(out))
}

/// Opens a box made by [`seal`] with the officer's secret key.
pub fn open(sealed: &str, key: &OfficerKey) -> Result<Vec<u8>, SealError> {
    let bytes = BASE64
        .decode(sealed.trim())
        .map_err(|_| SealError::Malformed("not base64".to_owned()))?;
    let Some(&version) = bytes.first() else {
        return Err(SealError::Malformed("empty".to_owned()));
    };
    if version != SEAL_VERSION {
        return Err(SealError::UnknownVersion(version));
    }
    if bytes.len() < OVERHEAD {
        return Err(SealError::Malformed(format!(
            "{} bytes, shorter than the {OVERHEAD} of an empty box",
            bytes.len()
        )));
    }
    let (header, body) = bytes.split_at(1 + KEY_LEN);
    let mut ephemeral_public = [0u8; KEY_LEN];
    ephemeral_public.copy_from_slice(&header[1..]);
    let shared = key
        .secret
        .diffie_hellman(&PublicKey::from(ephemeral_public));
    if !shared.was_contributory() {
        return Err(SealError::WrongKeyOrTampered);
    }
    let (cipher, nonce) = box_cipher(
        shared.as_bytes(),
        &ephemeral_public,
        key.public().as_bytes(),
    );
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: body,
                aad: header,
            },
        )
        .map_err(|_| SealError::WrongKeyOrTampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> OfficerKey {
        OfficerKey::from_bytes([n; KEY_LEN])
    }

    #[test]
    fn a_sealed_payload_opens_with_the_officers_key() {
        let officer = key(7);
        let text = r#"{"stanza":"<message><body>4111 1111 1111 1111</body></message>"}"#;
        let sealed = seal(text.as_bytes(), &officer.public()).unwrap();
        assert!(!sealed.contains("4111"));
        assert_eq!(open(&sealed, &officer).unwrap(), text.as_bytes());
        let empty = seal(b"", &officer.public()).unwrap();
        assert_eq!(BASE64.decode(&empty).unwrap().len(), OVERHEAD);
        assert_eq!(open(&empty, &officer).unwrap(), b"");
    }

    #[test]
    fn another_key_cannot_open_it() {
        let sealed = seal(b"secret", &key(7).public()).unwrap();
        assert!(matches!(
            open(&sealed, &key(8)),
            Err(SealError::WrongKeyOrTampered)
        ));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let officer = key(7);
        let sealed = seal(b"the offending stanza", &officer.public()).unwrap();
        let bytes = BASE64.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let result = open(&BASE64.encode(&changed), &officer);
            assert!(result.is_err(), "byte {i} changed and the box still opened");
        }
        let mut cut = bytes.clone();
        cut.pop();
        assert!(open(&BASE64.encode(&cut), &officer).is_err());
        assert!(matches!(
            open(&BASE64.encode(&bytes[..OVERHEAD - 1]), &officer),
            Err(SealError::Malformed(_))
        ));
        assert!(matches!(
            open("not base64!", &officer),
            Err(SealError::Malformed(_))
        ));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(
            open(&BASE64.encode(&v2), &officer),
            Err(SealError::UnknownVersion(2))
        ));
    }

    #[test]
    fn two_seals_of_one_payload_differ() {
        let public = key(7).public();
        let a = seal(b"same", &public).unwrap();
        let b = seal(b"same", &public).unwrap();
        assert_ne!(a, b);
        // Different ephemeral keys, not only different ciphertexts.
        assert_ne!(
            BASE64.decode(&a).unwrap()[1..1 + KEY_LEN],
            BASE64.decode(&b).unwrap()[1..1 + KEY_LEN]
        );
    }

    #[test]
    fn the_box_follows_the_documented_construction() {
        // Rebuilt here from the steps of the module documentation with a known ephemeral key.
        let officer = key(7);
        let ephemeral = StaticSecret::from([3u8; KEY_LEN]);
        let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
        let shared = ephemeral.diffie_hellman(&PublicKey::from(*officer.public().as_bytes()));
        let mut salt = ephemeral_public.to_vec();
        salt.extend_from_slice(officer.public().as_bytes());
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes())
            .expand(b"causerie evidence seal v1", &mut okm)
            .unwrap();
        let cipher = ChaCha20Poly1305::new_from_slice(&okm[..32]).unwrap();
        let nonce = Nonce::try_from(&okm[32..]).unwrap();
        let mut header = vec![1u8];
        header.extend_from_slice(&ephemeral_public);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: b"hello",
                    aad: &header,
                },
            )
            .unwrap();
        let mut boxed = header.clone();
        boxed.extend_from_slice(&ct);
        assert_eq!(open(&BASE64.encode(&boxed), &officer).unwrap(), b"hello");
    }

    #[test]
    fn public_keys_print_and_parse() {
        let public = key(7).public();
        let text = public.to_string();
        assert!(text.starts_with(PUBLIC_PREFIX));
        assert_eq!(text.len(), PUBLIC_PREFIX.len() + 44);
        assert_eq!(
            OfficerPublic::parse(&format!("  {text}\n")).unwrap(),
            public
        );
        assert_eq!(text.parse::<OfficerPublic>().unwrap(), public);
        let b64 = &text[PUBLIC_PREFIX.len()..];
        for bad in [
            String::new(),
            b64.to_owned(),
            format!("causerie-officer-v2:{b64}"),
            format!("{PUBLIC_PREFIX}{}", &b64[..40]),
            format!("{PUBLIC_PREFIX}{b64}AAAA"),
            format!("{PUBLIC_PREFIX}not base64"),
            // The u-coordinates 0 and 1 are of low order.
            format!("{PUBLIC_PREFIX}{}", BASE64.encode([0u8; 32])),
            format!(
                "{PUBLIC_PREFIX}{}",
                BASE64.encode({
                    let mut one = [0u8; 32];
                    one[0] = 1;
                    one
                })
            ),
        ] {
            assert!(OfficerPublic::parse(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn secret_keys_round_trip_and_never_show_in_debug() {
        let k = OfficerKey::generate().unwrap();
        let text = k.to_secret_text();
        let again = OfficerKey::parse(&format!("# comment\n\n{}\n", text.as_str())).unwrap();
        assert_eq!(again.public(), k.public());
        let debug = format!("{k:?}");
        let b64 = &text[SECRET_PREFIX.len()..];
        assert!(!debug.contains(b64), "{debug}");
        assert!(debug.contains(&k.public().to_string()));
        assert!(OfficerKey::parse("").is_err());
        assert!(OfficerKey::parse(&k.public().to_string()).is_err());
        assert!(OfficerKey::parse(&format!("{}\n{}", text.as_str(), text.as_str())).is_err());
        assert_ne!(OfficerKey::generate().unwrap().public(), k.public());
    }

    #[test]
    fn key_files_are_private_new_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("officer.key");
        let k = OfficerKey::generate().unwrap();
        k.write_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&k.public().to_string()));
        assert_eq!(OfficerKey::read(&path).unwrap().public(), k.public());
        // Never replaced.
        let other = OfficerKey::generate().unwrap();
        assert!(matches!(
            other.write_new(&path),
            Err(SealError::Exists { .. })
        ));
        assert_eq!(OfficerKey::read(&path).unwrap().public(), k.public());
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                OfficerKey::read(&path),
                Err(SealError::TooOpen { .. })
            ));
        }
        assert!(matches!(
            OfficerKey::read(&dir.path().join("missing")),
            Err(SealError::Io { .. })
        ));
    }
}
