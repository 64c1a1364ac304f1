use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use crate::error::JidError;
use crate::prep;

/// The shared representation: the canonical string of a JID, stored once, and the
/// offsets of its separators. A bare view of a full JID shares the same string and only
/// stops earlier, so `to_bare()` is a reference-count increment.
///
/// Invariants (established by `Repr::build`, relied on by the accessors):
/// - `node_len` is 0 when there is no localpart, otherwise the byte index of the `@`;
/// - `domain_end` is the byte index just past the domainpart;
/// - `end` is either `domain_end` (bare view) or `s.len()` with `s[domain_end] == '/'`;
/// - every part is at most 1023 octets, so every offset fits in a `u16`.
#[derive(Clone)]
struct Repr {
    s: Arc<str>,
    node_len: u16,
    domain_end: u16,
    end: u16,
}

impl Repr {
    /// Prepares the parts and assembles the canonical string.
    fn build(
        original: Option<&str>,
        node: Option<&str>,
        domain: &str,
        resource: Option<&str>,
    ) -> Result<Repr, JidError> {
        let node = node.map(prep::localpart).transpose()?;
        let domain = prep::domainpart(domain)?;
        let resource = resource.map(prep::resourcepart).transpose()?;

        let node_len = node.as_ref().map_or(0, |n| n.len());
        let domain_start = if node.is_some() { node_len + 1 } else { 0 };
        let domain_end = domain_start + domain.len();
        let total = domain_end + resource.as_ref().map_or(0, |r| r.len() + 1);

        // When preparation changed nothing (the usual case for JIDs read off the wire),
        // the input already is the canonical string.
        let unchanged = |c: &Option<Cow<'_, str>>| !matches!(c, Some(Cow::Owned(_)));
        let s: Arc<str> = match original {
            Some(orig)
                if orig.len() == total
                    && unchanged(&node)
                    && matches!(domain, Cow::Borrowed(_))
                    && unchanged(&resource) =>
            {
                Arc::from(orig)
            }
            _ => {
                let mut out = String::with_capacity(total);
                if let Some(n) = &node {
                    out.push_str(n);
                    out.push('@');
                }
                out.push_str(&domain);
                if let Some(r) = &resource {
                    out.push('/');
                    out.push_str(r);
                }
                Arc::from(out)
            }
        };
        // Each part is at most 1023 octets (checked by `prep`), so the total is at most
        // 3 * 1023 + 2 octets and the conversions cannot fail.
        let to_u16 =
            |v: usize| u16::try_from(v).map_err(|_| JidError::TooLong(crate::JidPart::Domainpart));
        Ok(Repr {
            node_len: to_u16(node_len)?,
            domain_end: to_u16(domain_end)?,
            end: to_u16(total)?,
            s,
        })
    }

    fn parse(s: &str) -> Result<Repr, JidError> {
        // RFC 7622 §3.1: split off the resourcepart at the first '/', then the localpart
        // at the first '@' before it; what remains is the domainpart.
        let (rest, resource) = match s.split_once('/') {
            Some((rest, resource)) => (rest, Some(resource)),
            None => (s, None),
        };
        let (node, domain) = match rest.split_once('@') {
            Some((node, domain)) => (Some(node), domain),
            None => (None, rest),
        };
        Repr::build(Some(s), node, domain, resource)
    }

    #[inline]
    fn as_str(&self) -> &str {
        self.s.get(..usize::from(self.end)).unwrap_or_default()
    }

    #[inline]
    fn node(&self) -> Option<&str> {
        if self.node_len == 0 {
            return None;
        }
        self.s.get(..usize::from(self.node_len))
    }

    #[inline]
    fn domain_start(&self) -> usize {
        if self.node_len == 0 {
            0
        } else {
            usize::from(self.node_len) + 1
        }
    }

    #[inline]
    fn domain(&self) -> &str {
        self.s
            .get(self.domain_start()..usize::from(self.domain_end))
            .unwrap_or_default()
    }

    fn resource(&self) -> Option<&str> {
        if self.end == self.domain_end {
            return None;
        }
        self.s
            .get(usize::from(self.domain_end) + 1..usize::from(self.end))
    }

    fn bare(&self) -> Repr {
        Repr {
            end: self.domain_end,
            ..self.clone()
        }
    }

    fn is_bare(&self) -> bool {
        self.end == self.domain_end
    }

    /// Ordering groups JIDs by domain, then localpart, then resource; it is consistent
    /// with equality because the canonical string is determined by its parts.
    fn sort_key(&self) -> (&str, Option<&str>, Option<&str>) {
        (self.domain(), self.node(), self.resource())
    }
}

macro_rules! common_impls {
    ($ty:ident) => {
        impl $ty {
            /// The canonical string form (`localpart@domainpart/resourcepart`).
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The localpart, if any.
            #[inline]
            pub fn node(&self) -> Option<&str> {
                self.0.node()
            }

            /// The domainpart.
            #[inline]
            pub fn domain(&self) -> &str {
                self.0.domain()
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $ty {}

        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.sort_key().cmp(&other.0.sort_key())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($ty))
                    .field(&self.as_str())
                    .finish()
            }
        }

        impl FromStr for $ty {
            type Err = JidError;

            fn from_str(s: &str) -> Result<Self, JidError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// Any JID: bare (`localpart@domainpart`, `domainpart`) or full (with a resourcepart).
/// Cloning is a reference-count increment.
#[derive(Clone)]
pub struct Jid(Repr);

/// A JID without a resourcepart: `localpart@domainpart` or `domainpart`.
#[derive(Clone)]
pub struct BareJid(Repr);

/// A JID with a resourcepart: `[localpart@]domainpart/resourcepart`.
#[derive(Clone)]
pub struct FullJid(Repr);

common_impls!(Jid);
common_impls!(BareJid);
common_impls!(FullJid);

impl Jid {
    /// Parses and normalizes a JID (RFC 7622 §3.1).
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        Repr::parse(s).map(Jid)
    }

    /// Builds a JID from its parts, preparing each one.
    pub fn new(node: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Jid, JidError> {
        Repr::build(None, node, domain, resource).map(Jid)
    }

    /// The resourcepart, if any.
    pub fn resource(&self) -> Option<&str> {
        self.0.resource()
    }

    /// The bare JID (the same JID without its resourcepart), sharing this JID's storage.
    pub fn to_bare(&self) -> BareJid {
        BareJid(self.0.bare())
    }

    /// Whether this JID has no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.0.is_bare()
    }

    /// The full JID, or this JID back when it has no resourcepart.
    pub fn try_into_full(self) -> Result<FullJid, Jid> {
        if self.0.is_bare() {
            Err(self)
        } else {
            Ok(FullJid(self.0))
        }
    }

    /// The bare JID, or this JID back when it has a resourcepart.
    pub fn try_into_bare(self) -> Result<BareJid, Jid> {
        if self.0.is_bare() {
            Ok(BareJid(self.0))
        } else {
            Err(self)
        }
    }
}

impl BareJid {
    /// Parses a bare JID; a resourcepart is an error.
    pub fn parse(s: &str) -> Result<BareJid, JidError> {
        let repr = Repr::parse(s)?;
        if !repr.is_bare() {
            return Err(JidError::UnexpectedResource);
        }
        Ok(BareJid(repr))
    }

    /// Builds a bare JID from its parts, preparing each one.
    pub fn new(node: Option<&str>, domain: &str) -> Result<BareJid, JidError> {
        Repr::build(None, node, domain, None).map(BareJid)
    }

    /// This JID with a resourcepart added (the resourcepart is prepared).
    pub fn with_resource(&self, res: &str) -> Result<FullJid, JidError> {
        let resource = prep::resourcepart(res)?;
        let mut s = String::with_capacity(self.as_str().len() + 1 + resource.len());
        s.push_str(self.as_str());
        s.push('/');
        s.push_str(&resource);
        let end =
            u16::try_from(s.len()).map_err(|_| JidError::TooLong(crate::JidPart::Resourcepart))?;
        Ok(FullJid(Repr {
            s: Arc::from(s),
            node_len: self.0.node_len,
            domain_end: self.0.domain_end,
            end,
        }))
    }

    /// The JID of this JID's domain (no localpart).
    pub fn domain_jid(&self) -> BareJid {
        if self.0.node_len == 0 {
            return self.clone();
        }
        // The domainpart runs from just past the '@' to `domain_end`.
        let len = self
            .0
            .domain_end
            .saturating_sub(self.0.node_len)
            .saturating_sub(1);
        BareJid(Repr {
            s: Arc::from(self.domain()),
            node_len: 0,
            domain_end: len,
            end: len,
        })
    }
}

impl FullJid {
    /// Parses a full JID; a missing resourcepart is an error.
    pub fn parse(s: &str) -> Result<FullJid, JidError> {
        let repr = Repr::parse(s)?;
        if repr.is_bare() {
            return Err(JidError::MissingResource);
        }
        Ok(FullJid(repr))
    }

    /// Builds a full JID from its parts, preparing each one.
    pub fn new(node: Option<&str>, domain: &str, resource: &str) -> Result<FullJid, JidError> {
        Repr::build(None, node, domain, Some(resource)).map(FullJid)
    }

    /// The resourcepart.
    pub fn resource(&self) -> &str {
        self.0.resource().unwrap_or_default()
    }

    /// The bare JID, sharing this JID's storage.
    pub fn to_bare(&self) -> BareJid {
        BareJid(self.0.bare())
    }
}

impl From<BareJid> for Jid {
    fn from(j: BareJid) -> Jid {
        Jid(j.0)
    }
}

impl From<FullJid> for Jid {
    fn from(j: FullJid) -> Jid {
        Jid(j.0)
    }
}

impl TryFrom<Jid> for BareJid {
    type Error = JidError;

    fn try_from(j: Jid) -> Result<BareJid, JidError> {
        j.try_into_bare().map_err(|_| JidError::UnexpectedResource)
    }
}

impl TryFrom<Jid> for FullJid {
    type Error = JidError;

    fn try_from(j: Jid) -> Result<FullJid, JidError> {
        j.try_into_full().map_err(|_| JidError::MissingResource)
    }
}

macro_rules! cross_eq {
    ($a:ident, $b:ident) => {
        impl PartialEq<$b> for $a {
            fn eq(&self, other: &$b) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$a> for $b {
            fn eq(&self, other: &$a) -> bool {
                self.as_str() == other.as_str()
            }
        }
    };
}

cross_eq!(Jid, BareJid);
cross_eq!(Jid, FullJid);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JidPart;

    #[test]
    fn parts_and_views() {
        let j = Jid::parse("Juliet@Example.COM/Balcony").unwrap();
        assert_eq!(j.node(), Some("juliet"));
        assert_eq!(j.domain(), "example.com");
        assert_eq!(j.resource(), Some("Balcony"));
        assert_eq!(j.as_str(), "juliet@example.com/Balcony");
        assert!(!j.is_bare());
        let bare = j.to_bare();
        assert_eq!(bare.as_str(), "juliet@example.com");
        assert_eq!(bare.node(), Some("juliet"));
        assert_eq!(bare.domain(), "example.com");
        // The bare view shares the storage of the full JID.
        assert!(Arc::ptr_eq(&bare.0.s, &j.0.s));
        assert_eq!(bare, Jid::parse("juliet@example.com").unwrap());
        assert_eq!(Jid::parse("juliet@example.com").unwrap(), bare);
        assert_eq!(bare.domain_jid().as_str(), "example.com");
        assert_eq!(bare.domain_jid().node(), None);

        let full = j.clone().try_into_full().unwrap();
        assert_eq!(full.resource(), "Balcony");
        assert_eq!(full, j);
        assert_eq!(j, full);
        assert_eq!(full.to_bare(), bare);
        assert_eq!(Jid::from(full.clone()), j);
        assert_eq!(
            Jid::from(bare.clone()),
            Jid::parse("juliet@example.com").unwrap()
        );
        assert_ne!(Jid::from(bare.clone()), j);

        let again = bare.with_resource("Chamber").unwrap();
        assert_eq!(again.as_str(), "juliet@example.com/Chamber");
        assert_eq!(again.node(), Some("juliet"));
        assert_eq!(again.domain(), "example.com");
        assert_eq!(again.resource(), "Chamber");
        assert_eq!(again, FullJid::parse("juliet@example.com/Chamber").unwrap());
    }

    #[test]
    fn unchanged_input_is_reused_verbatim() {
        let j = Jid::parse("juliet@example.com/balcony").unwrap();
        assert_eq!(j.as_str(), "juliet@example.com/balcony");
        let d = Jid::parse("example.com").unwrap();
        assert_eq!(d.node(), None);
        assert_eq!(d.resource(), None);
        assert!(d.is_bare());
        assert_eq!(d.as_str(), "example.com");
    }

    #[test]
    fn bare_and_full_constructors_check_the_resource() {
        assert_eq!(BareJid::parse("a@b/c"), Err(JidError::UnexpectedResource));
        assert_eq!(FullJid::parse("a@b"), Err(JidError::MissingResource));
        assert!(Jid::parse("a@b").unwrap().try_into_full().is_err());
        assert!(Jid::parse("a@b/c").unwrap().try_into_bare().is_err());
        assert_eq!(
            FullJid::try_from(Jid::parse("a@b").unwrap()),
            Err(JidError::MissingResource)
        );
        assert_eq!(
            BareJid::try_from(Jid::parse("a@b/c").unwrap()),
            Err(JidError::UnexpectedResource)
        );
        let d = BareJid::new(None, "Example.com").unwrap();
        assert_eq!(d.as_str(), "example.com");
        assert_eq!(d.domain_jid(), d);
        let f = FullJid::new(Some("Romeo"), "example.net", "orchard").unwrap();
        assert_eq!(f.as_str(), "romeo@example.net/orchard");
        assert_eq!(
            Jid::new(Some(""), "example.net", None),
            Err(JidError::Empty(JidPart::Localpart))
        );
        assert_eq!(
            Jid::new(Some("a/b"), "example.net", None),
            Err(JidError::ForbiddenLocalpartChar('/'))
        );
        assert_eq!(
            BareJid::new(None, "example.net").unwrap().with_resource(""),
            Err(JidError::Empty(JidPart::Resourcepart))
        );
    }

    #[test]
    fn ordering_groups_by_domain() {
        let mut v: Vec<Jid> = [
            "b@a.example",
            "a.example",
            "z.example",
            "a@a.example/r",
            "a@a.example",
        ]
        .iter()
        .map(|s| Jid::parse(s).unwrap())
        .collect();
        v.sort();
        let s: Vec<&str> = v.iter().map(Jid::as_str).collect();
        assert_eq!(
            s,
            [
                "a.example",
                "a@a.example",
                "a@a.example/r",
                "b@a.example",
                "z.example"
            ]
        );
    }

    #[test]
    fn hash_follows_equality() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(Jid::parse("JULIET@example.com").unwrap());
        assert!(set.contains(&Jid::parse("juliet@EXAMPLE.com.").unwrap()));
        assert!(set.contains(&Jid::from(
            Jid::parse("juliet@example.com/x").unwrap().to_bare()
        )));
    }

    #[test]
    fn debug_and_display() {
        let j = Jid::parse("a@b/c").unwrap();
        assert_eq!(j.to_string(), "a@b/c");
        assert_eq!(format!("{j:?}"), "Jid(\"a@b/c\")");
        assert_eq!(format!("{:?}", j.to_bare()), "BareJid(\"a@b\")");
        let parsed: FullJid = "a@b/c".parse().unwrap();
        assert_eq!(parsed.as_ref(), "a@b/c");
    }

    #[test]
    fn maximum_lengths_fit() {
        let node = "n".repeat(1023);
        let domain = format!("{}.{}", "d".repeat(63), "e".repeat(63));
        let res = "r".repeat(1023);
        let j = Jid::new(Some(&node), &domain, Some(&res)).unwrap();
        assert_eq!(j.node(), Some(node.as_str()));
        assert_eq!(j.domain(), domain);
        assert_eq!(j.resource(), Some(res.as_str()));
        assert_eq!(Jid::parse(j.as_str()).unwrap(), j);
    }
}
