//! causerie-stanza (placeholder)
