//! causerie-storage (placeholder)
