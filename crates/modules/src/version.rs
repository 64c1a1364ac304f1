//! XEP-0092 Software Version: the server tells its software name and version (and, when the
//! operator allows it, its operating system) to whoever asks the server's domain.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError};
use causerie_xml::Element;

pub const NS: &str = "jabber:iq:version";

/// Answers `jabber:iq:version` queries to the server. Not registered at all when the operator
/// hides the version, so that such queries get `service-unavailable` like any unknown one.
pub struct Version {
    show_os: bool,
}

impl Version {
    pub fn new(show_os: bool) -> Self {
        Version { show_os }
    }
}

impl Module for Version {
    fn name(&self) -> &'static str {
        "version"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, NS, "query", IqTarget::Server, self.clone());
        reg.feature(IqTarget::Server, NS);
    }
}

#[async_trait]
impl IqHandler for Version {
    async fn handle(&self, _req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0092 §2: <name/> and <version/> are required, <os/> optional.
        let mut q = Element::new("query", NS)
            .with_child(Element::new("name", NS).with_text("Causerie"))
            .with_child(Element::new("version", NS).with_text(env!("CARGO_PKG_VERSION")));
        if self.show_os {
            q.push_child(Element::new("os", NS).with_text(std::env::consts::OS));
        }
        Ok(Some(q))
    }
}
