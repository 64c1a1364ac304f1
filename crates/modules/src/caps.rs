//! XEP-0115 Entity Capabilities for the server itself: a `<c/>` stream feature (§6.3) announcing
//! the hash of the server's disco#info, so that clients that have seen this server version before
//! can skip the query. Disco answers `node#ver` queries with the same information (§6.2).

use std::sync::Arc;

use causerie_core::{Core, Identity, IqTarget, Module, ModuleRegistry};
use causerie_xml::Element;

use crate::common::caps_ver;

pub const NS: &str = "http://jabber.org/protocol/caps";

pub struct Caps;

impl Caps {
    /// The XEP-0115 §5.1 verification string for these identities, features and extended
    /// information forms (XEP-0128).
    pub fn verification_string<'a>(
        identities: &[Identity],
        features: impl IntoIterator<Item = &'a str>,
        forms: &[Element],
    ) -> String {
        caps_ver::ver(identities, features, forms)
    }

    /// The `<c/>` element for the server's current identities, features and extended forms.
    pub fn element(core: &Core) -> Element {
        Element::new("c", NS)
            .with_attr("hash", "sha-1")
            .with_attr("node", caps_ver::CAPS_NODE)
            .with_attr("ver", caps_ver::server_ver(core))
    }
}

impl Module for Caps {
    fn name(&self) -> &'static str {
        "caps"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.feature(IqTarget::Server, NS);
        reg.stream_feature(Arc::new(|core: &Core| Some(Caps::element(core))));
    }
}
