//! causerie-modules (placeholder)
