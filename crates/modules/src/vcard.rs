//! XEP-0054 vcard-temp: an account publishes its vCard with an IQ-set to itself and anyone reads
//! it with an IQ-get to the account's bare JID, answered by the server (§3.3: never forwarded to a
//! resource). The document is kept serialized under the account data key `vcard`, as the client
//! sent it, up to a configured size.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::{AccountDataStore, Storage};
use causerie_xml::Element;

use crate::common::{parse_stored, store_error};

pub const NS: &str = "vcard-temp";
/// Account data key of the serialized vCard.
pub const KEY: &str = "vcard";

pub struct VCardTemp {
    store: Arc<dyn AccountDataStore>,
    max_bytes: usize,
}

impl VCardTemp {
    pub fn new(storage: &Storage, max_bytes: usize) -> Self {
        VCardTemp {
            store: storage.account_data.clone(),
            max_bytes,
        }
    }
}

impl Module for VCardTemp {
    fn name(&self) -> &'static str {
        "vcard"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, NS, "vCard", IqTarget::Account, self.clone());
        reg.iq(IqType::Set, NS, "vCard", IqTarget::Account, self.clone());
        // §4: the server reports the feature; accounts it answers for support it too.
        reg.feature(IqTarget::Both, NS);
    }
}

#[async_trait]
impl IqHandler for VCardTemp {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let account = req.to.to_bare();
        let Some(user) = account.node() else {
            return Err(StanzaError::new(Cond::ServiceUnavailable));
        };
        let own = req.from.to_bare() == account;
        match req.iq_type {
            IqType::Set => {
                // §3.2: only the owner may change a vCard.
                if !own {
                    return Err(StanzaError::new(Cond::Forbidden));
                }
                let xml = req.payload.to_xml();
                if xml.len() > self.max_bytes {
                    return Err(StanzaError::new(Cond::NotAcceptable)
                        .with_text(format!("a vCard may take at most {} bytes", self.max_bytes)));
                }
                self.store
                    .put(user, account.domain(), KEY, &xml)
                    .await
                    .map_err(|e| store_error("storing a vCard", &e))?;
                Ok(None)
            }
            _ => {
                let stored = self
                    .store
                    .get(user, account.domain(), KEY)
                    .await
                    .map_err(|e| store_error("reading a vCard", &e))?;
                match stored.as_deref().and_then(parse_stored) {
                    Some(card) => Ok(Some(card)),
                    // §3.1: the owner may get an empty vCard when none exists.
                    None if own => Ok(Some(Element::new("vCard", NS))),
                    // §3.3: for someone else's, an error, the same whether the account or only its
                    // vCard is missing, so that the answer does not reveal which accounts exist.
                    None => Err(StanzaError::new(Cond::ServiceUnavailable)),
                }
            }
        }
    }
}
