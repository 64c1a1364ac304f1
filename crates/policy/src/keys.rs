//! The server's Ed25519 signing key (RFC 8032 §5.1), which signs acceptance receipts.
//!
//! The key file holds the 32-byte secret key and nothing else. It is created on first use from
//! the operating system's random source, readable by its owner only, and never half-written: the
//! bytes go to a temporary file in the same folder, are flushed to disk, and are then linked into
//! place, which also refuses to replace a key that another process created in the meantime.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hex;

/// The size of the key file: an Ed25519 secret key (RFC 8032 §5.1.5).
pub const SECRET_KEY_LEN: usize = 32;

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("key file {path} is {size} bytes; an Ed25519 secret key file holds exactly 32 bytes")]
    WrongSize { path: PathBuf, size: u64 },
    #[error(
        "key file {path} has mode {mode:03o}: group or others can access it; \
         run `chmod 600 {path}` after checking nobody else read it"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(#[source] getrandom::Error),
}

/// The server's signing key.
#[derive(Clone)]
pub struct ServerKey {
    signing: SigningKey,
}

impl std::fmt::Debug for ServerKey {
    // The secret key must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("public", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl ServerKey {
    /// Loads the key at `path`, creating it first if there is no file there.
    pub fn load_or_create(path: &Path) -> Result<ServerKey, KeyError> {
        load_or_create(path)
    }

    /// A key from its 32 secret bytes (RFC 8032 §5.1.5).
    pub fn from_secret_bytes(secret: &[u8; SECRET_KEY_LEN]) -> ServerKey {
        ServerKey {
            signing: SigningKey::from_bytes(secret),
        }
    }

    /// The public key (RFC 8032 §5.1.5), which verifies receipts.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key in lowercase hex.
    pub fn public_key_hex(&self) -> String {
        hex(&self.public_key())
    }

    /// SHA-256 of the public key, lowercase hex in groups of four digits separated by spaces,
    /// for people to compare by eye or read out.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }

    /// SHA-256 of the public key in lowercase hex, without spaces: the `key` of receipts.
    pub fn key_id(&self) -> String {
        hex(&Sha256::digest(self.public_key()))
    }

    /// Signs `msg` (RFC 8032 §5.1.6: deterministic, no randomness needed).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

/// The fingerprint of a public key, as [`ServerKey::fingerprint`] gives it.
pub fn fingerprint(public: &[u8; 32]) -> String {
    let digest = hex(&Sha256::digest(public));
    let groups: Vec<&str> = (0..digest.len())
        .step_by(4)
        .map(|i| &digest[i..i + 4])
        .collect();
    groups.join(" ")
}

/// Checks an Ed25519 signature (RFC 8032 §5.1.7). Uses the strict check, which also refuses
/// small-order public keys and non-canonical encodings, so one message has one valid signature.
pub fn verify(public: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
}

/// Loads the key at `path`, creating it first if there is no file there.
pub fn load_or_create(path: &Path) -> Result<ServerKey, KeyError> {
    match File::open(path) {
        Ok(file) => read_key(path, file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path),
        Err(source) => Err(KeyError::Io {
            action: "open",
            path: path.to_owned(),
            source,
        }),
    }
}

/// The permission bits of a private key file that group or others may access: such a file is
/// refused, as OpenSSH refuses private keys. `None` when only the owner may (or off Unix).
pub(crate) fn too_open(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Some(mode);
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    None
}

fn read_key(path: &Path, file: File) -> Result<ServerKey, KeyError> {
    let io = |action, source| KeyError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let meta = file.metadata().map_err(|e| io("inspect", e))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    if let Some(mode) = too_open(&meta) {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() != SECRET_KEY_LEN as u64 {
        return Err(KeyError::WrongSize {
            path: path.to_owned(),
            size: meta.len(),
        });
    }
    // Read one byte more than expected in case the file changed since the size was taken.
    let mut bytes = Vec::with_capacity(SECRET_KEY_LEN + 1);
    file.take(SECRET_KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io("read", e))?;
    let secret: [u8; SECRET_KEY_LEN] =
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongSize {
                path: path.to_owned(),
                size: bytes.len() as u64,
            })?;
    Ok(ServerKey::from_secret_bytes(&secret))
}

fn create(path: &Path) -> Result<ServerKey, KeyError> {
    let io = |action, source| KeyError::Io {
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

    let mut secret = [0u8; SECRET_KEY_LEN];
    getrandom::fill(&mut secret).map_err(KeyError::Random)?;
    let key = ServerKey::from_secret_bytes(&secret);
    secret.fill(0);

    let suffix = getrandom::u32().map_err(KeyError::Random)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{suffix:08x}.tmp"));
    let tmp = dir.join(tmp_name);

    let written = write_new_file(&tmp, &key.signing.to_bytes());
    let placed = written.and_then(|()| std::fs::hard_link(&tmp, path));
    // The temporary name goes whatever happened; the link (if made) keeps the data.
    let _ = std::fs::remove_file(&tmp);
    match placed {
        Ok(()) => {}
        // Another process created the key between our open and our link: use theirs, so that
        // every process signs with the same key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = File::open(path).map_err(|e| io("open", e))?;
            return read_key(path, file);
        }
        Err(e) => return Err(io("create", e)),
    }
    sync_dir(dir).map_err(|e| io("sync the folder of", e))?;
    Ok(key)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
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

// The new directory entry must reach the disk too, or a crash could lose a key that has
// already signed receipts.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex_decode;

    fn array<const N: usize>(hex: &str) -> [u8; N] {
        hex_decode(hex).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc8032_test_vectors() {
        // RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
                 5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
                 085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (secret, public, msg, sig) in cases {
            let key = ServerKey::from_secret_bytes(&array(secret));
            let msg = hex_decode(msg).unwrap();
            assert_eq!(key.public_key_hex(), public);
            let signature = key.sign(&msg);
            assert_eq!(hex(&signature), sig);
            assert!(verify(&array(public), &msg, &signature));

            let mut other = msg.clone();
            other.push(0);
            assert!(!verify(&array(public), &other, &signature));
            let mut flipped = signature;
            flipped[10] ^= 1;
            assert!(!verify(&array(public), &msg, &flipped));
        }
    }

    #[test]
    fn verify_refuses_bad_public_keys() {
        let key = ServerKey::from_secret_bytes(&[7; 32]);
        let sig = key.sign(b"m");
        assert!(verify(&key.public_key(), b"m", &sig));
        // Not a point on the curve, and the identity (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!verify(&[0xff; 32], b"m", &sig));
        assert!(!verify(&identity, b"m", &sig));
        assert!(!verify(
            &ServerKey::from_secret_bytes(&[8; 32]).public_key(),
            b"m",
            &sig
        ));
    }

    #[test]
    fn fingerprint_is_grouped_sha256_of_the_public_key() {
        let key = ServerKey::from_secret_bytes(&[7; 32]);
        let fp = key.fingerprint();
        assert_eq!(fp.len(), 64 + 15);
        assert_eq!(fp.replace(' ', ""), hex(&Sha256::digest(key.public_key())));
        assert!(fp.split(' ').all(|g| g.len() == 4));
        assert!(!format!("{key:?}").contains(&hex(&[7; 32])));
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        assert_eq!(mode_of(&path), 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let again = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert!(verify(&first.public_key(), b"x", &again.sign(b"x")));

        let other = load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(first.public_key(), other.public_key());
    }

    #[test]
    fn refuses_wrong_size_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.key");
        for len in [0, 31, 33, 64] {
            write_new_file(&path, &vec![1; len]).unwrap();
            match load_or_create(&path) {
                Err(KeyError::WrongSize { size, .. }) => assert_eq!(size, len as u64),
                other => panic!("{len}: {other:?}"),
            }
            // The file was left as it was.
            assert_eq!(std::fs::read(&path).unwrap(), vec![1; len]);
            std::fs::remove_file(&path).unwrap();
        }
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyError::NotAFile { .. })
        ));
        assert!(matches!(
            load_or_create(&dir.path().join("missing-dir").join("k")),
            Err(KeyError::Io { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.key");
        load_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match load_or_create(&path) {
                Err(e @ KeyError::TooOpen { .. }) => {
                    assert!(e.to_string().contains(&format!("{mode:o}")), "{e}");
                    assert!(e.to_string().contains("chmod 600"), "{e}");
                }
                other => panic!("{mode:o}: {other:?}"),
            }
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(load_or_create(&path).is_ok(), "{mode:o}");
        }
    }

    #[test]
    fn a_key_created_meanwhile_is_not_replaced() {
        // Simulate losing the race: the file appears between the open and the link.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.key");
        let theirs = ServerKey::from_secret_bytes(&[9; 32]);
        write_new_file(&path, &[9; 32]).unwrap();
        let ours = create(&path).unwrap();
        assert_eq!(ours.public_key(), theirs.public_key());
        assert_eq!(std::fs::read(&path).unwrap(), vec![9; 32]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
