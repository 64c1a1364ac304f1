//! causerie-c2s (placeholder)
