//! Protocol features as modules of the core, one file per extension, each naming its XEP.
//!
//! Owns: the handlers modules register through `causerie_core::ModuleRegistry`. Knows nothing of
//! transports, and no module imports another.

pub mod disco;
pub mod ping;

use std::sync::Arc;

use causerie_core::ModuleRegistry;

/// Registers the modules every server runs.
pub fn register_defaults(reg: &mut ModuleRegistry) {
    reg.add_module(Arc::new(disco::Disco::new("Causerie")));
    reg.add_module(Arc::new(ping::Ping));
}
