//! causerie-sasl (placeholder)
