//! Account operations, shared by the admin API, `causeriectl` and the tests. They live in
//! `causerie_admin::accounts`, beside the operations that use them; this module keeps the
//! name the server crate has always offered.

pub use causerie_admin::accounts::*;
