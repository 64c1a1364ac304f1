//! XEP-0030 Service Discovery: identities and features of the server and of accounts, items of the
//! server (its components, none yet) and of accounts (none). The server's information carries the
//! extended forms modules registered (XEP-0128) and is also answered on its XEP-0115 capabilities
//! node (`node#ver`, XEP-0115 §6.2). The server's ad-hoc commands are nodes of its JID (XEP-0050
//! §2.2): listed under `http://jabber.org/protocol/commands` to requesters allowed to run them,
//! each described on its own node.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{COMMANDS_NS, Command, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond, ns};
use causerie_xml::Element;

use crate::common::{NS_DATA_FORMS, caps_ver};

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
            // Nodes are published on the server's JID only, and every answer names its node.
            if !is_server {
                return Err(StanzaError::new(Cond::ItemNotFound));
            }
            q.set_attr("node", node);
            if node == COMMANDS_NS {
                return command_list(&req, q).map(Some);
            }
            if let Some((name, cmd)) = req
                .core
                .commands()
                .find(|(n, _, _)| *n == node)
                .map(|(_, name, cmd)| (name, cmd))
            {
                return command_node(&req, q, name, cmd).map(Some);
            }
            // XEP-0115 §6.2: the capabilities node has the same information as the entity.
            if req.payload.ns() != ns::DISCO_INFO || node != caps_ver::server_node(req.core) {
                return Err(StanzaError::new(Cond::ItemNotFound));
            }
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
            q.push_child(feature(f));
        }
        if is_server {
            // XEP-0128: extended information follows the features.
            for form in req.core.disco_forms() {
                q.push_child(form.clone());
            }
        }
        Ok(Some(q))
    }
}

fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

/// The well-known commands node (XEP-0050 §2.2): its items are the commands the requester may
/// run; its identity is `automation/command-list`. Without any command the node does not exist,
/// just as the server then does not announce the feature.
fn command_list(req: &IqRequest<'_>, mut q: Element) -> Result<Element, StanzaError> {
    if req.core.commands().next().is_none() {
        return Err(StanzaError::new(Cond::ItemNotFound));
    }
    if req.payload.ns() == ns::DISCO_INFO {
        q.push_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "automation")
                .with_attr("type", "command-list"),
        );
        q.push_child(feature(ns::DISCO_INFO));
        q.push_child(feature(ns::DISCO_ITEMS));
        return Ok(q);
    }
    // XEP-0050 §2.2: the list need not be the same for every requester; a command the requester
    // may not run is not shown to it.
    for (node, name, cmd) in req.core.commands() {
        if cmd.allowed(req.core, &req.from) {
            q.push_child(
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", req.to.as_str())
                    .with_attr("node", node)
                    .with_attr("name", name),
            );
        }
    }
    Ok(q)
}

/// A command's own node (XEP-0050 §2.2): an `automation/command-node` identity named like the
/// command, and no items.
fn command_node(
    req: &IqRequest<'_>,
    mut q: Element,
    name: &str,
    cmd: &Arc<dyn Command>,
) -> Result<Element, StanzaError> {
    // XEP-0050 §2.2: a command that exists but is not available to this requester is forbidden
    // (a node that does not exist at all is item-not-found, above).
    if !cmd.allowed(req.core, &req.from) {
        return Err(StanzaError::new(Cond::Forbidden));
    }
    if req.payload.ns() == ns::DISCO_INFO {
        q.push_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "automation")
                .with_attr("type", "command-node")
                .with_attr("name", name),
        );
        q.push_child(feature(COMMANDS_NS));
        q.push_child(feature(NS_DATA_FORMS));
    }
    Ok(q)
}
