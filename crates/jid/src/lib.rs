//! causerie-jid (placeholder)
