//! causerie-testkit (placeholder)
