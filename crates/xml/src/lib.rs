//! causerie-xml (placeholder)
