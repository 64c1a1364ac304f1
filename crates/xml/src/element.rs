//! The element tree that stanzas are framed into and built from.

use std::sync::Arc;

/// One XML element with its resolved namespace.
///
/// Namespace declarations are not attributes here: `ns()` is the element's namespace URI and the
/// serializer writes whatever `xmlns` declarations the output needs. Other attributes keep their
/// qualified names as written (`xml:lang` stays `"xml:lang"`). A prefixed attribute other than
/// `xml:` needs its prefix bound: the parser records the bindings its prefixed attributes used
/// (see [`Element::declare_prefix`]) so that the serializer can re-declare them.
///
/// Adjacent text is kept as one [`Node::Text`]; `push_text` and the parser merge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub(crate) name: String,
    /// Shared, because every element of a stanza usually carries the same namespace and a
    /// reference count costs less than one allocation per element.
    pub(crate) ns: Arc<str>,
    pub(crate) attrs: Vec<(String, String)>,
    /// Prefix bindings needed by prefixed attributes, as (prefix, namespace URI).
    pub(crate) prefixes: Vec<(String, String)>,
    pub(crate) nodes: Vec<Node>,
}

/// A child of an element: an element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An element with a local name and a namespace URI ("" for no namespace).
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Self::with_shared_ns(name.into(), Arc::from(ns.into()))
    }

    pub(crate) fn with_shared_ns(name: String, ns: Arc<str>) -> Self {
        Self {
            name,
            ns,
            attrs: Vec::new(),
            prefixes: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Builder form of [`set_attr`](Self::set_attr).
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`push_child`](Self::push_child).
    pub fn with_child(mut self, child: Element) -> Self {
        self.push_child(child);
        self
    }

    /// Builder form of [`push_text`](Self::push_text).
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    /// Builder form of [`declare_prefix`](Self::declare_prefix).
    pub fn with_prefix(mut self, prefix: impl Into<String>, ns: impl Into<String>) -> Self {
        self.declare_prefix(prefix, ns);
        self
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace URI ("" when the element is in no namespace).
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Whether this is the element `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && &*self.ns == ns
    }

    /// The value of the attribute with this qualified name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, replacing the value if it is already present (its position is kept).
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Removes an attribute and returns its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(n, _)| n == name)?;
        Some(self.attrs.remove(i).1)
    }

    /// Attributes as (qualified name, value), in document order.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Binds `prefix` to a namespace for this element's prefixed attributes (`prefix:name`).
    /// Replaces an earlier binding of the same prefix on this element.
    pub fn declare_prefix(&mut self, prefix: impl Into<String>, ns: impl Into<String>) {
        let prefix = prefix.into();
        let ns = ns.into();
        match self.prefixes.iter_mut().find(|(p, _)| *p == prefix) {
            Some(slot) => slot.1 = ns,
            None => self.prefixes.push((prefix, ns)),
        }
    }

    /// The prefix bindings recorded for prefixed attributes, as (prefix, namespace URI).
    pub fn prefixes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.prefixes.iter().map(|(p, n)| (p.as_str(), n.as_str()))
    }

    /// The namespace of a prefixed attribute on this element, from the recorded bindings
    /// (`xml:` resolves to the XML namespace).
    pub fn attr_ns(&self, qualified_name: &str) -> Option<&str> {
        let (prefix, _) = qualified_name.split_once(':')?;
        if prefix == "xml" {
            return Some(crate::NS_XML);
        }
        self.prefixes
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, n)| n.as_str())
    }

    /// All children, elements and text, in document order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Mutable access to the children. Adjacent text nodes pushed here are not merged.
    pub fn nodes_mut(&mut self) -> &mut Vec<Node> {
        &mut self.nodes
    }

    /// The child elements, in document order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Mutable iterator over the child elements.
    pub fn children_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.nodes.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    /// The first child element with this name and namespace, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children_mut().find(|c| c.is(name, ns))
    }

    /// Whether a child element with this name and namespace exists.
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.get_child(name, ns).is_some()
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.nodes.push(Node::Element(child));
    }

    /// Appends text, merged into the last node when that is text too. Empty text is ignored.
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.nodes.last_mut() {
            Some(Node::Text(last)) => last.push_str(&text),
            _ => self.nodes.push(Node::Text(text)),
        }
    }

    /// Removes the first child element with this name and namespace and returns it.
    pub fn remove_child(&mut self, name: &str, ns: &str) -> Option<Element> {
        let i = self
            .nodes
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is(name, ns)))?;
        match self.nodes.remove(i) {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        }
    }

    /// Moves this element and every descendant in namespace `from` to namespace `to` (a stanza
    /// crossing from a `jabber:server` stream to `jabber:client` ones, RFC 6120 §4.8.3).
    pub fn rename_ns(&mut self, from: &str, to: &str) {
        let target: Arc<str> = Arc::from(to);
        self.rename_ns_shared(from, &target);
    }

    fn rename_ns_shared(&mut self, from: &str, to: &Arc<str>) {
        if &*self.ns == from {
            self.ns = to.clone();
        }
        for node in &mut self.nodes {
            if let Node::Element(e) = node {
                e.rename_ns_shared(from, to);
            }
        }
    }

    /// The concatenation of the direct text children (not of descendants), borrowed when there
    /// is at most one of them (as there is once parsed: adjacent text is merged).
    pub fn text_ref(&self) -> std::borrow::Cow<'_, str> {
        let mut texts = self.nodes.iter().filter_map(|n| match n {
            Node::Text(t) => Some(t.as_str()),
            Node::Element(_) => None,
        });
        match (texts.next(), texts.next()) {
            (None, _) => std::borrow::Cow::Borrowed(""),
            (Some(t), None) => std::borrow::Cow::Borrowed(t),
            (Some(_), Some(_)) => std::borrow::Cow::Owned(self.text()),
        }
    }

    /// The concatenation of the direct text children (not of descendants).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_accessors() {
        let mut e = Element::new("message", "jabber:client")
            .with_attr("to", "a@b")
            .with_attr("type", "chat")
            .with_child(Element::new("body", "jabber:client").with_text("hi"))
            .with_text("x")
            .with_text("y");
        assert!(e.is("message", "jabber:client"));
        assert_eq!(e.attr("to"), Some("a@b"));
        assert_eq!(e.text_ref(), "xy");
        assert_eq!(
            e.get_child("body", "jabber:client").unwrap().text_ref(),
            "hi"
        );
        assert_eq!(Element::new("a", "b").text_ref(), "");
        e.set_attr("to", "c@d");
        assert_eq!(
            e.attrs().collect::<Vec<_>>(),
            [("to", "c@d"), ("type", "chat")]
        );
        assert_eq!(e.remove_attr("type").as_deref(), Some("chat"));
        assert_eq!(e.attr("type"), None);
        assert_eq!(e.text(), "xy");
        assert_eq!(e.nodes().len(), 2);
        assert!(e.has_child("body", "jabber:client"));
        assert!(!e.has_child("body", "urn:other"));
        e.get_child_mut("body", "jabber:client")
            .unwrap()
            .push_text("!");
        assert_eq!(e.get_child("body", "jabber:client").unwrap().text(), "hi!");
        let body = e.remove_child("body", "jabber:client").unwrap();
        assert_eq!(body.text(), "hi!");
        assert_eq!(e.children().count(), 0);
        e.push_text("");
        assert_eq!(e.nodes().len(), 1);
    }

    #[test]
    fn prefixed_attribute_namespace() {
        let e = Element::new("x", "")
            .with_attr("p:a", "1")
            .with_attr("xml:lang", "en")
            .with_prefix("p", "urn:p");
        assert_eq!(e.attr_ns("p:a"), Some("urn:p"));
        assert_eq!(e.attr_ns("xml:lang"), Some(crate::NS_XML));
        assert_eq!(e.attr_ns("a"), None);
    }
}
