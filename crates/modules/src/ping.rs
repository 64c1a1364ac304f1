//! XEP-0199 XMPP Ping: the server answers pings addressed to it or to an account.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError, ns};
use causerie_xml::Element;

pub struct Ping;

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, ns::PING, "ping", IqTarget::Both, self.clone());
        reg.feature(IqTarget::Server, ns::PING);
    }
}

#[async_trait]
impl IqHandler for Ping {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0199 §4.2: a ping to an account is answered by the server only for the account's owner;
        // for others it is the account's business, and without a resource there is none to ask.
        if req.to.node().is_some() && req.from.to_bare() != req.to.to_bare() {
            return Err(StanzaError::new(
                causerie_stanza::StanzaErrorCondition::ServiceUnavailable,
            ));
        }
        Ok(None)
    }
}
