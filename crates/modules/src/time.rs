//! XEP-0202 Entity Time: the server's current time in UTC. The server always reports UTC, so its
//! offset is `Z` (a valid XEP-0082 time zone definition).

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError};
use causerie_xml::Element;

use crate::common::datetime;

pub const NS: &str = "urn:xmpp:time";

pub struct EntityTime;

impl EntityTime {
    /// The `<time/>` answer for a moment given in seconds since the Unix epoch.
    pub fn answer(unix_secs: i64) -> Element {
        Element::new("time", NS)
            .with_child(Element::new("tzo", NS).with_text("Z"))
            .with_child(Element::new("utc", NS).with_text(datetime::format_utc(unix_secs)))
    }
}

impl Module for EntityTime {
    fn name(&self) -> &'static str {
        "time"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, NS, "time", IqTarget::Server, self.clone());
        reg.feature(IqTarget::Server, NS);
    }
}

#[async_trait]
impl IqHandler for EntityTime {
    async fn handle(&self, _req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        Ok(Some(Self::answer(datetime::unix_now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_has_offset_and_utc() {
        let t = EntityTime::answer(1_700_000_000);
        assert_eq!(
            t.get_child("tzo", NS).map(|e| e.text()).as_deref(),
            Some("Z")
        );
        assert_eq!(
            t.get_child("utc", NS).map(|e| e.text()).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }
}
