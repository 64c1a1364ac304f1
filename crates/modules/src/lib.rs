//! Protocol features as modules of the core, one file per extension, each naming its XEP.
//!
//! Owns: the handlers, pipeline stages, listeners and stream features that modules register
//! through `causerie_core::ModuleRegistry`: service discovery (XEP-0030) with entity capabilities
//! (XEP-0115) and extended information forms (XEP-0128), ad-hoc commands (XEP-0050), pings both
//! ways (XEP-0199), software version (XEP-0092), entity time (XEP-0202), last activity
//! (XEP-0012), vcard-temp (XEP-0054), private XML storage (XEP-0049), blocking (XEP-0191),
//! message carbons (XEP-0280), client state indication (XEP-0352) and offline messages
//! (XEP-0160 with XEP-0203 delay stamps). Knows nothing of transports or SQL (stores are
//! reached through the `causerie_storage` traits), nor of rosters and presence subscriptions,
//! which belong to `causerie-roster`; no module imports another, and what several share lives
//! in the private `common` helpers.

mod common;

pub mod blocking;
pub mod caps;
pub mod carbons;
pub mod commands;
pub mod csi;
pub mod disco;
pub mod flood;
pub mod last;
pub mod offline;
pub mod ping;
pub mod private;
pub mod server_ping;
pub mod time;
pub mod vcard;
pub mod version;

use std::sync::Arc;
use std::time::Duration;

use causerie_core::ModuleRegistry;
use causerie_storage::Storage;

/// Registers the modules every server runs.
pub fn register_defaults(reg: &mut ModuleRegistry, storage: &Storage) {
    reg.add_module(Arc::new(disco::Disco::new("Causerie", storage)));
    reg.add_module(Arc::new(ping::Ping));
    // Runs the ad-hoc commands other modules register, before or after this call; it announces
    // its feature only once there is a command.
    reg.add_module(Arc::new(commands::AdHocCommands));
}

/// Limits and switches of the instant-messaging modules. Plain values: the server maps its
/// configuration (`[im]`) onto them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImOptions {
    /// Most offline messages kept per account (XEP-0160); 0 stores none.
    pub offline_quota: u64,
    /// Largest vCard, in bytes of serialized XML (XEP-0054).
    pub max_vcard_bytes: usize,
    /// Largest private XML document per namespace, in bytes of serialized XML (XEP-0049).
    pub max_private_bytes: usize,
    /// Most entries in one blocklist (XEP-0191).
    pub max_blocklist_items: usize,
    /// Most presence stanzas held back for one inactive session (XEP-0352), one per sender.
    pub csi_max_held_presences: usize,
    /// Presence stanzas one session may send in a burst, and how fast that allowance refills.
    pub presence_burst: u32,
    pub presence_per_minute: u32,
    /// Do not answer software version queries at all (XEP-0092).
    pub hide_version: bool,
    /// Include the operating system in software version answers (XEP-0092 §3 `<os/>`).
    pub version_show_os: bool,
    /// Ping every client session this often, closing those that did not answer the previous
    /// ping (XEP-0199 §3); `None` turns server pings off.
    pub server_ping_interval: Option<Duration>,
}

impl Default for ImOptions {
    fn default() -> Self {
        ImOptions {
            offline_quota: 1000,
            max_vcard_bytes: 65_536,
            max_private_bytes: 65_536,
            max_blocklist_items: 1000,
            csi_max_held_presences: 500,
            presence_burst: 200,
            presence_per_minute: 120,
            hide_version: false,
            version_show_os: false,
            server_ping_interval: Some(Duration::from_secs(300)),
        }
    }
}

/// Registers the instant-messaging modules on top of [`register_defaults`]: version, time, last
/// activity, vCards, private storage, blocking, carbons, client state indication, offline
/// messages, server pings and entity capabilities.
pub fn register_im(reg: &mut ModuleRegistry, storage: &Storage, opts: &ImOptions) {
    reg.add_module(Arc::new(flood::PresenceFlood::new(
        opts.presence_burst,
        opts.presence_per_minute,
    )));
    if !opts.hide_version {
        reg.add_module(Arc::new(version::Version::new(opts.version_show_os)));
    }
    reg.add_module(Arc::new(time::EntityTime));
    reg.add_module(Arc::new(last::LastActivity::new(storage)));
    reg.add_module(Arc::new(vcard::VCardTemp::new(
        storage,
        opts.max_vcard_bytes,
    )));
    reg.add_module(Arc::new(private::PrivateStorage::new(
        storage,
        opts.max_private_bytes,
    )));
    reg.add_module(Arc::new(blocking::Blocking::new(
        storage,
        opts.max_blocklist_items,
    )));
    reg.add_module(Arc::new(carbons::Carbons));
    reg.add_module(Arc::new(csi::ClientState::new(opts.csi_max_held_presences)));
    reg.add_module(Arc::new(offline::OfflineMessages::new(
        storage,
        opts.offline_quota,
    )));
    if let Some(interval) = opts.server_ping_interval {
        reg.add_module(Arc::new(server_ping::ServerPing::new(interval)));
    }
    reg.add_module(Arc::new(caps::Caps));
}
