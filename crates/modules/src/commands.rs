//! XEP-0050 Ad-Hoc Commands on the server's JID: runs the commands other modules registered with
//! `ModuleRegistry::command`. This module checks what every command shares (the node exists, the
//! requester may run it, the action is one XEP-0050 defines) and hands the request to the command,
//! which owns sessions, stages and the `<command/>` it answers. Service discovery lists the
//! commands (XEP-0050 §2.2); the `http://jabber.org/protocol/commands` feature is announced only
//! while at least one command is registered.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{COMMANDS_NS, Core, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{ErrorType, IqType, StanzaError, StanzaErrorCondition as Cond};
use causerie_xml::Element;

pub const NS: &str = COMMANDS_NS;

/// The values of the `action` attribute (XEP-0050 §4.1); absent means `execute`.
const ACTIONS: [&str; 5] = ["execute", "cancel", "prev", "next", "complete"];

pub struct AdHocCommands;

impl Module for AdHocCommands {
    fn name(&self) -> &'static str {
        "commands"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Set, NS, "command", IqTarget::Server, self);
        // Decided once the core is built, so that modules registered after this one count.
        reg.feature_when(IqTarget::Server, NS, has_commands);
    }
}

fn has_commands(core: &Core) -> bool {
    core.commands().next().is_some()
}

#[async_trait]
impl IqHandler for AdHocCommands {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // XEP-0050 §4.1: the node identifies the command and MUST be present.
        let Some(node) = req.payload.attr("node") else {
            return Err(StanzaError::new(Cond::BadRequest).with_text("the command has no node"));
        };
        // XEP-0050 §4.4: an unknown node is item-not-found; a command this requester may not run
        // is forbidden. Both come before looking at the action, which a requester that may not
        // run the command has no business having checked.
        let Some(cmd) = req.core.command(node) else {
            return Err(StanzaError::new(Cond::ItemNotFound));
        };
        if !cmd.allowed(req.core, &req.from) {
            return Err(StanzaError::new(Cond::Forbidden).with_type(ErrorType::Cancel));
        }
        if let Some(action) = req.payload.attr("action")
            && !ACTIONS.contains(&action)
        {
            return Err(
                StanzaError::new(Cond::BadRequest).with_app(Element::new("malformed-action", NS))
            );
        }
        let cmd = cmd.clone();
        let answer = cmd.execute(req).await?;
        if !answer.is("command", NS) {
            // A bug in the command, not the requester's fault.
            tracing::warn!(
                node,
                answer = answer.name(),
                "an ad-hoc command answered with something other than <command/>"
            );
            return Err(StanzaError::new(Cond::InternalServerError));
        }
        Ok(Some(answer))
    }
}
