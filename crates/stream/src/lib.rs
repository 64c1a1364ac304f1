//! causerie-stream (placeholder)
