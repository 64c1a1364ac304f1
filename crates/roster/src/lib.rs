//! causerie-roster (being written)
