//! Input checks shared by every backend, so that they all refuse the same values: what one
//! engine could store and another could not (PostgreSQL `text` cannot hold U+0000, SQLite's
//! can) is refused before anything is written.

use crate::{MAX_JID_BYTES, StoreError};

/// `value` holds no U+0000 and, when `max` is given, at most `max` bytes.
pub(crate) fn text(what: &str, value: &str, max: Option<usize>) -> Result<(), StoreError> {
    if let Some(max) = max
        && value.len() > max
    {
        return Err(StoreError::InvalidInput(format!(
            "{what} longer than {max} bytes"
        )));
    }
    if value.contains('\0') {
        return Err(StoreError::InvalidInput(format!("{what} contains U+0000")));
    }
    Ok(())
}

/// A JID handed over by the caller (already prepared): 1 to [`MAX_JID_BYTES`] bytes.
pub(crate) fn jid(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::InvalidInput(format!("empty {what}")));
    }
    text(what, value, Some(MAX_JID_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_length_are_refused() {
        assert!(text("value", "a\0b", None).is_err());
        assert!(text("value", &"x".repeat(10_000), None).is_ok());
        assert!(text("label", "abc", Some(2)).is_err());
        assert!(jid("contact", "").is_err());
        assert!(jid("contact", &"a".repeat(MAX_JID_BYTES)).is_ok());
        assert!(jid("contact", &"a".repeat(MAX_JID_BYTES + 1)).is_err());
    }
}
