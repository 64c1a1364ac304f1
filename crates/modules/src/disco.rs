//! XEP-0030 Service Discovery: identities and features of the server and of accounts, items of the
//! server (its components, none yet) and of accounts (none). The server's information is also
//! answered on its XEP-0115 capabilities node (`node#ver`, XEP-0115 §6.2).

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond, ns};
use causerie_xml::Element;

use crate::common::caps_ver;

pub struct Disco {
    name: String,
    users: Arc<dyn causerie_storage::UserStore>,
}

impl Disco {
    pub fn new(name: &str, storage: &causerie_storage::Storage) -> Self {
        Disco {
            name: name.to_owned(),
            users: storage.users.clone(),
        }
    }
}

impl Module for Disco {
    fn name(&self) -> &'static str {
        "disco"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(
            IqType::Get,
            ns::DISCO_INFO,
            "query",
            IqTarget::Both,
            self.clone(),
        );
        reg.iq(
            IqType::Get,
            ns::DISCO_ITEMS,
            "query",
            IqTarget::Both,
            self.clone(),
        );
        reg.feature(IqTarget::Both, ns::DISCO_INFO);
        reg.feature(IqTarget::Server, ns::DISCO_ITEMS);
        reg.identity("server", "im", Some(&self.name));
    }
}

#[async_trait]
impl IqHandler for Disco {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let is_server = req.to.node().is_none();
        if let Some(user) = req.to.node() {
            // RFC 6121 §8.5.1: an IQ to an account that does not exist gets service-unavailable.
            let exists = self
                .users
                .user_exists(user, req.to.domain())
                .await
                .map_err(|e| crate::common::store_error("looking up an account", &e))?;
            if !exists {
                return Err(StanzaError::new(Cond::ServiceUnavailable));
            }
        }
        let mut q = Element::new("query", req.payload.ns());
        if let Some(node) = req.payload.attr("node") {
            // XEP-0115 §6.2: the capabilities node has the same information as the entity, and
            // the answer names the node. No other node is published.
            if !is_server
                || req.payload.ns() != ns::DISCO_INFO
                || node != caps_ver::server_node(req.core)
            {
                return Err(StanzaError::new(Cond::ItemNotFound));
            }
            q.set_attr("node", node);
        }
        if req.payload.ns() == ns::DISCO_ITEMS {
            return Ok(Some(q));
        }
        if is_server {
            for id in req.core.identities() {
                let mut e = Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", id.category.as_str())
                    .with_attr("type", id.kind.as_str());
                if let Some(n) = &id.name {
                    e.set_attr("name", n.as_str());
                }
                q.push_child(e);
            }
        } else {
            // XEP-0030 §3.2 / RFC 6121: an account is an `account/registered` entity; others only learn
            // that much about it.
            q.push_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "account")
                    .with_attr("type", "registered"),
            );
        }
        let target = if is_server {
            IqTarget::Server
        } else {
            IqTarget::Account
        };
        for f in req.core.features(target) {
            q.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", f));
        }
        Ok(Some(q))
    }
}
