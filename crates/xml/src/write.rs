//! Serialization of [`Element`] trees, and the escaping the stream header shares with it.
//!
//! Output is always well-formed UTF-8 that this crate parses back to an equal tree: characters
//! that XML cannot carry (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) are written as
//! U+FFFD instead of producing a document the peer must reject (RFC 6120 §11.5).

use crate::chars::{has_byte, has_byte_below, load_word};
use crate::element::{Element, Node};
use crate::{NS_STREAMS, NS_XML};

/// What a byte needs in text (1) or attribute values (2); 4 marks bytes that may start a
/// character outside `Char`.
const TEXT: u8 = 1;
const ATTR: u8 = 2;
const BAD: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = BAD;
        b += 1;
    }
    t[b'\t' as usize] = ATTR;
    t[b'\n' as usize] = ATTR;
    // CR would be turned into LF by the reader's end-of-line handling (XML 1.0 §2.11).
    t[b'\r' as usize] = TEXT | ATTR;
    t[b'&' as usize] = TEXT | ATTR;
    t[b'<' as usize] = TEXT | ATTR;
    // `>` only matters in `]]>`, but escaping it always is cheaper than looking back.
    t[b'>' as usize] = TEXT | ATTR;
    t[b'"' as usize] = ATTR;
    t[b'\'' as usize] = ATTR;
    t[0xEF] = BAD;
    t
};

/// Appends `s` escaped for character data: `&`, `<`, `>` and CR as references.
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, TEXT);
}

/// Appends `s` escaped for an attribute value in either kind of quotes: `&`, `<`, `>`, `"`, `'`,
/// and tab, LF, CR as character references so attribute-value normalization keeps them.
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, ATTR);
}

/// Whether eight bytes may need escaping, tested as one word: clean runs of text are copied
/// without looking at each byte.
#[inline]
fn word_is_plain(word: u64, mode: u8) -> bool {
    let plain = !has_byte_below(word, 0x20)
        && !has_byte(word, b'&')
        && !has_byte(word, b'<')
        && !has_byte(word, b'>')
        && !has_byte(word, 0xEF);
    plain && (mode == TEXT || !has_byte(word, b'"') && !has_byte(word, b'\''))
}

fn escape(s: &str, out: &mut Vec<u8>, mode: u8) {
    let bytes = s.as_bytes();
    let mask = mode | BAD;
    let mut done = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() && word_is_plain(load_word(&bytes[i..]), mode) {
            i += 8;
            continue;
        }
        let b = bytes[i];
        let class = CLASS[b as usize];
        if class & mask == 0 {
            i += 1;
            continue;
        }
        if class & mode == 0 {
            // A BAD byte: a C0 control, or 0xEF that may start U+FFFE/U+FFFF.
            if b == 0xEF {
                let is_nonchar = bytes.get(i + 1) == Some(&0xBF)
                    && matches!(bytes.get(i + 2), Some(0xBE | 0xBF));
                if !is_nonchar {
                    i += 1;
                    continue;
                }
                out.extend_from_slice(&bytes[done..i]);
                out.extend_from_slice("\u{FFFD}".as_bytes());
                i += 3;
                done = i;
                continue;
            }
            out.extend_from_slice(&bytes[done..i]);
            out.extend_from_slice("\u{FFFD}".as_bytes());
            i += 1;
            done = i;
            continue;
        }
        out.extend_from_slice(&bytes[done..i]);
        out.extend_from_slice(match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            _ => b"&#13;",
        });
        i += 1;
        done = i;
    }
    out.extend_from_slice(&bytes[done..]);
}

impl Element {
    /// Appends this element as XML.
    ///
    /// `parent_ns` is the default namespace in effect where the element is written: for a
    /// stanza, the stream's content namespace (`jabber:client`, `jabber:server`), so that
    /// `<message/>` comes out without `xmlns`. An `xmlns` declaration is written only where an
    /// element's namespace differs from the default in effect. Elements in the streams namespace
    /// are written as `stream:NAME`, relying on the prefix declared by the stream header
    /// (RFC 6120 §4.8.5), and elements in the XML namespace as `xml:NAME`.
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        self.write_in(out, parent_ns, true);
    }

    /// This element as a standalone XML string (no default namespace assumed).
    pub fn to_xml(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out, "");
        // Every byte written comes from `&str`s or ASCII markup; lossy conversion is a no-op.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `stream_prefix_ok` is false below an element that rebinds the `stream` prefix for one of
    /// its attributes, where `stream:` no longer means the streams namespace.
    fn write_in(&self, out: &mut Vec<u8>, default_ns: &str, stream_prefix_ok: bool) {
        let stream_ok = match self.prefixes.iter().find(|(p, _)| p == "stream") {
            Some((_, uri)) => uri == NS_STREAMS,
            None => stream_prefix_ok,
        };
        let ns: &str = &self.ns;
        let prefix = if ns == NS_STREAMS && stream_ok {
            Some("stream")
        } else if ns == NS_XML {
            Some("xml")
        } else {
            None
        };
        let mut child_default = default_ns;
        out.push(b'<');
        write_qname(out, prefix, &self.name);
        if prefix.is_none() && ns != default_ns {
            out.extend_from_slice(b" xmlns='");
            escape_attr(ns, out);
            out.push(b'\'');
            child_default = ns;
        }
        for (p, uri) in &self.prefixes {
            if p == "xml" || p == "xmlns" {
                continue;
            }
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(uri, out);
            out.push(b'\'');
        }
        for (name, value) in &self.attrs {
            // Declarations come from `ns` and `prefixes`; a stray one would duplicate them.
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(value, out);
            out.push(b'\'');
        }
        if self.nodes.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for node in &self.nodes {
            match node {
                Node::Element(child) => child.write_in(out, child_default, stream_ok),
                Node::Text(text) => escape_text(text, out),
            }
        }
        out.extend_from_slice(b"</");
        write_qname(out, prefix, &self.name);
        out.push(b'>');
    }
}

fn write_qname(out: &mut Vec<u8>, prefix: Option<&str>, name: &str) {
    if let Some(p) = prefix {
        out.extend_from_slice(p.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        escape_text(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn attr(s: &str) -> String {
        let mut out = Vec::new();
        escape_attr(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_escaping() {
        assert_eq!(text("plain été"), "plain été");
        assert_eq!(
            text("a<b&c>d]]>e\"'\t\n"),
            "a&lt;b&amp;c&gt;d]]&gt;e\"'\t\n"
        );
        assert_eq!(text("a\r\nb"), "a&#13;\nb");
        assert_eq!(
            text("x\u{1}y\u{FFFF}z\u{FFFE}\u{EFFF}"),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}\u{EFFF}"
        );
    }

    #[test]
    fn attribute_escaping() {
        assert_eq!(
            attr("a<b&c>d\"e'f\tg\nh\ri"),
            "a&lt;b&amp;c&gt;d&quot;e&apos;f&#9;g&#10;h&#13;i"
        );
        assert_eq!(attr("\u{0}"), "\u{FFFD}");
    }

    #[test]
    fn stanza_in_stream_namespace_has_no_xmlns() {
        let msg = Element::new("message", "jabber:client")
            .with_attr("to", "juliet@example.com")
            .with_child(Element::new("body", "jabber:client").with_text("Art thou <here>?"))
            .with_child(Element::new("request", "urn:xmpp:receipts"));
        let mut out = Vec::new();
        msg.write_to(&mut out, "jabber:client");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<message to='juliet@example.com'><body>Art thou &lt;here&gt;?</body>\
             <request xmlns='urn:xmpp:receipts'/></message>"
        );
        assert_eq!(
            Element::new("a", "urn:a")
                .with_child(Element::new("b", ""))
                .to_xml(),
            "<a xmlns='urn:a'><b xmlns=''/></a>"
        );
    }

    #[test]
    fn streams_namespace_uses_the_header_prefix() {
        let features = Element::new("features", NS_STREAMS)
            .with_child(Element::new("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
        let mut out = Vec::new();
        features.write_to(&mut out, "jabber:client");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
        );
        // Below a rebinding of `stream`, the prefix cannot be used.
        let e = Element::new("x", "jabber:client")
            .with_prefix("stream", "urn:other")
            .with_attr("stream:a", "1")
            .with_child(Element::new("error", NS_STREAMS));
        let mut out = Vec::new();
        e.write_to(&mut out, "jabber:client");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<x xmlns:stream='urn:other' stream:a='1'>\
             <error xmlns='http://etherx.jabber.org/streams'/></x>"
        );
    }

    #[test]
    fn stray_xmlns_attributes_are_not_written() {
        let e = Element::new("a", "urn:a")
            .with_attr("xmlns", "urn:b")
            .with_attr("xmlns:p", "urn:p");
        assert_eq!(e.to_xml(), "<a xmlns='urn:a'/>");
    }
}
