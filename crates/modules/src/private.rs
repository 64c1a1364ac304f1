//! XEP-0049 Private XML Storage: an account keeps small XML documents on the server, one per
//! namespace (bookmarks, client settings), readable and writable by the account itself only.
//! Each namespace's elements are kept serialized under the account data key `private:` + the
//! namespace, wrapped in the `<query/>` they arrived in, up to a configured size.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, Module, ModuleRegistry};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond, ns};
use causerie_storage::{AccountDataStore, Storage};
use causerie_xml::Element;

use crate::common::{parse_stored, store_error};

pub const NS: &str = "jabber:iq:private";

/// Namespaces no document may be stored under: the stanza namespaces and this protocol's own.
const RESERVED: [&str; 3] = [ns::CLIENT, ns::SERVER, NS];

/// Longest namespace accepted, so that `private:` + namespace fits the store's key limit.
const MAX_NS_BYTES: usize = 1000;

pub struct PrivateStorage {
    store: Arc<dyn AccountDataStore>,
    max_bytes: usize,
}

impl PrivateStorage {
    pub fn new(storage: &Storage, max_bytes: usize) -> Self {
        PrivateStorage {
            store: storage.account_data.clone(),
            max_bytes,
        }
    }
}

fn key(namespace: &str) -> String {
    format!("private:{namespace}")
}

/// The namespace of a document; `None` when it may not be stored under it (XEP-0049 §2.3:
/// reserved namespaces are "Not Acceptable").
fn document_ns(el: &Element) -> Option<&str> {
    let namespace = el.ns();
    (!namespace.is_empty() && !RESERVED.contains(&namespace) && namespace.len() <= MAX_NS_BYTES)
        .then_some(namespace)
}

fn refused_ns() -> StanzaError {
    StanzaError::new(Cond::NotAcceptable).with_text(
        "private data must be in a namespace of its own, not a reserved one, of at most 1000 bytes",
    )
}

impl Module for PrivateStorage {
    fn name(&self) -> &'static str {
        "private"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, NS, "query", IqTarget::Account, self.clone());
        reg.iq(IqType::Set, NS, "query", IqTarget::Account, self.clone());
    }
}

#[async_trait]
impl IqHandler for PrivateStorage {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let account = req.to.to_bare();
        // §2.3: another user's data is off limits ("Forbidden" is preferred over the older
        // "Service Unavailable").
        if req.from.to_bare() != account {
            return Err(StanzaError::new(Cond::Forbidden));
        }
        let Some(user) = account.node() else {
            return Err(StanzaError::new(Cond::Forbidden));
        };
        let children: Vec<&Element> = req.payload.children().collect();
        if children.is_empty() {
            // §2.3: at least one child element is required.
            return Err(StanzaError::new(Cond::NotAcceptable)
                .with_text("name the namespace of the private data"));
        }
        match req.iq_type {
            IqType::Set => {
                // §2.3: a set may carry several elements; each namespace is one document.
                let mut documents: Vec<(&str, Element)> = Vec::new();
                for child in children {
                    let namespace = document_ns(child).ok_or_else(refused_ns)?;
                    match documents.iter_mut().find(|(n, _)| *n == namespace) {
                        Some((_, doc)) => doc.push_child(child.clone()),
                        None => documents.push((
                            namespace,
                            Element::new("query", NS).with_child(child.clone()),
                        )),
                    }
                }
                let mut serialized = Vec::with_capacity(documents.len());
                for (namespace, doc) in &documents {
                    let xml = doc.to_xml();
                    if xml.len() > self.max_bytes {
                        return Err(StanzaError::new(Cond::NotAcceptable).with_text(format!(
                            "private data may take at most {} bytes per namespace",
                            self.max_bytes
                        )));
                    }
                    serialized.push((key(namespace), xml));
                }
                for (k, xml) in serialized {
                    self.store
                        .put(user, account.domain(), &k, &xml)
                        .await
                        .map_err(|e| store_error("storing private data", &e))?;
                }
                Ok(None)
            }
            _ => {
                // §2.3: a get asks for exactly one namespace.
                let [wanted] = children.as_slice() else {
                    return Err(StanzaError::new(Cond::BadRequest)
                        .with_text("ask for one namespace at a time"));
                };
                let namespace = document_ns(wanted).ok_or_else(refused_ns)?;
                let stored = self
                    .store
                    .get(user, account.domain(), &key(namespace))
                    .await
                    .map_err(|e| store_error("reading private data", &e))?;
                let mut answer = Element::new("query", NS);
                match stored.as_deref().and_then(parse_stored) {
                    Some(doc) => {
                        for child in doc.children() {
                            answer.push_child(child.clone());
                        }
                    }
                    // Nothing stored: the element asked for comes back empty, as clients expect.
                    None => answer.push_child(Element::new(wanted.name(), namespace)),
                }
                Ok(Some(answer))
            }
        }
    }
}
