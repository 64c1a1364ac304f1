//! Which remote domains may federate with this server, and what is trusted for each.
//!
//! Three sources meet here: the mode and the partners of the configuration file, and the
//! allow/deny entries that `causeriectl federation` keeps in the database. An entry in the
//! database decides for its domain; otherwise a configured partner is allowed, a domain in
//! `federation.deny` is refused, and the mode decides for everything else (`allowlist`: refused,
//! `denylist` and `open`: allowed). A domain matches only itself, not its sub-domains.

use std::collections::{HashMap, HashSet};

use causerie_tls::s2s::Pin;

use crate::resolve::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only partners (configured or allowed with `causeriectl`). With none, federation is closed.
    Allowlist,
    /// Everyone except the denied domains.
    Denylist,
    /// Everyone except the denied domains; stated separately so that the intent is explicit.
    Open,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "allowlist" => Some(Mode::Allowlist),
            "denylist" => Some(Mode::Denylist),
            "open" => Some(Mode::Open),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Allowlist => "allowlist",
            Mode::Denylist => "denylist",
            Mode::Open => "open",
        }
    }
}

/// What the configuration says about one partner.
#[derive(Debug, Clone, Default)]
pub struct PartnerSettings {
    /// A fixed address instead of DNS.
    pub route: Option<Target>,
    /// Trust pinned for this partner: its certificate must match, and dialback is refused.
    pub pin: Pin,
    /// Tests only: no TLS required and no certificate checked (dialback still authenticates).
    pub insecure: bool,
}

/// The decision for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused(&'static str),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// A snapshot of the federation policy; replaced whole when the partner list changes.
#[derive(Debug, Clone)]
pub struct FederationPolicy {
    pub mode: Mode,
    partners: HashMap<String, PartnerSettings>,
    config_denied: HashSet<String>,
    /// Entries from the database: `true` allow, `false` deny.
    managed: HashMap<String, bool>,
}

impl FederationPolicy {
    pub fn new(
        mode: Mode,
        partners: HashMap<String, PartnerSettings>,
        denied: impl IntoIterator<Item = String>,
    ) -> Self {
        FederationPolicy {
            mode,
            partners,
            config_denied: denied.into_iter().collect(),
            managed: HashMap::new(),
        }
    }

    /// The same policy with the database entries replaced.
    pub fn with_managed(&self, managed: impl IntoIterator<Item = (String, bool)>) -> Self {
        FederationPolicy {
            managed: managed.into_iter().collect(),
            ..self.clone()
        }
    }

    pub fn decide(&self, domain: &str) -> Decision {
        match self.managed.get(domain) {
            Some(true) => return Decision::Allowed,
            Some(false) => {
                return Decision::Refused("the domain is denied by the federation policy");
            }
            None => {}
        }
        if self.config_denied.contains(domain) {
            return Decision::Refused("the domain is denied by the federation policy");
        }
        if self.partners.contains_key(domain) {
            return Decision::Allowed;
        }
        match self.mode {
            Mode::Allowlist => Decision::Refused("the domain is not a federation partner"),
            Mode::Denylist | Mode::Open => Decision::Allowed,
        }
    }

    pub fn partner(&self, domain: &str) -> Option<&PartnerSettings> {
        self.partners.get(domain)
    }

    pub fn is_insecure(&self, domain: &str) -> bool {
        self.partner(domain).is_some_and(|p| p.insecure)
    }

    /// The pin for a domain, when one is configured.
    pub fn pin(&self, domain: &str) -> Option<&Pin> {
        self.partner(domain)
            .map(|p| &p.pin)
            .filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode) -> FederationPolicy {
        let mut partners = HashMap::new();
        partners.insert("partner.example".to_owned(), PartnerSettings::default());
        FederationPolicy::new(mode, partners, ["bad.example".to_owned()])
    }

    #[test]
    fn allowlist_admits_partners_only() {
        let p = policy(Mode::Allowlist);
        assert!(p.decide("partner.example").is_allowed());
        assert!(!p.decide("stranger.example").is_allowed());
        assert!(!p.decide("bad.example").is_allowed());
        // Sub-domains are other domains.
        assert!(!p.decide("muc.partner.example").is_allowed());
    }

    #[test]
    fn closed_without_partners() {
        let p = FederationPolicy::new(Mode::Allowlist, HashMap::new(), []);
        assert!(!p.decide("anyone.example").is_allowed());
    }

    #[test]
    fn denylist_and_open_admit_all_but_denied() {
        for mode in [Mode::Denylist, Mode::Open] {
            let p = policy(mode);
            assert!(p.decide("stranger.example").is_allowed());
            assert!(!p.decide("bad.example").is_allowed());
        }
    }

    #[test]
    fn database_entries_decide_for_their_domain() {
        let p = policy(Mode::Allowlist).with_managed([
            ("stranger.example".to_owned(), true),
            ("partner.example".to_owned(), false),
            ("bad.example".to_owned(), true),
        ]);
        assert!(p.decide("stranger.example").is_allowed());
        assert!(!p.decide("partner.example").is_allowed());
        assert!(p.decide("bad.example").is_allowed());
        // Replacing the entries forgets the old ones.
        let p = p.with_managed([]);
        assert!(!p.decide("stranger.example").is_allowed());
        assert!(p.decide("partner.example").is_allowed());
    }
}
