//! causerie-core (placeholder)
