//! Where to connect for a remote domain: RFC 6120 §3.2 with XEP-0368 and RFC 2782.
//!
//! A domain publishes `_xmpps-server._tcp` SRV records for direct TLS (XEP-0368) and
//! `_xmpp-server._tcp` records for STARTTLS (RFC 6120 §3.2.1). Both sets are merged into
//! one list of candidates, tried in order: lowest priority first, and within a priority
//! in the order of RFC 2782's weighted random selection. The ordering is a pure function
//! ([`order_candidates`]) over the two answers, so it is tested without DNS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use async_trait::async_trait;
use causerie_tls::dane::Tlsa;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};

/// Port of the fallback connection when a domain has no SRV records (RFC 6120 §3.2.2,
/// IANA "xmpp-server").
pub const DEFAULT_PORT: u16 = 5269;

/// At most this many records are kept from one SRV answer (the lowest priorities win).
/// A DNS answer over TCP can carry thousands of records; a peer domain has no reason to
/// publish more than a handful, and every candidate may cost a connection attempt.
pub const MAX_SRV_RECORDS: usize = 32;

const SERVICE_DIRECT_TLS: &str = "_xmpps-server._tcp";
const SERVICE_STARTTLS: &str = "_xmpp-server._tcp";

/// One connection candidate for a remote domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host name (without trailing dot) or IP address to connect to.
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (XEP-0368) rather than STARTTLS (RFC 6120 §5).
    pub direct_tls: bool,
}

impl Target {
    fn fallback(domain: &str) -> Self {
        Target {
            host: domain.to_owned(),
            port: DEFAULT_PORT,
            direct_tls: false,
        }
    }
}

/// Why no candidate could be found for a domain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The domain states that it offers no server-to-server service: an SRV answer whose
    /// only target is "." (RFC 2782), or a "." for direct TLS with no STARTTLS records
    /// (XEP-0368 §5 forbids the address fallback then).
    #[error("the domain offers no XMPP server-to-server service")]
    NoService,
    /// The domain does not exist or has no address.
    #[error("the domain was not found in DNS")]
    NotFound,
    /// The DNS servers did not answer in time.
    #[error("DNS lookup timed out")]
    Timeout,
    /// Any other DNS failure (server failure, refused, malformed name…).
    #[error("DNS lookup failed: {0}")]
    Other(String),
}

/// Finds connection candidates for a remote domain, in the order to try them.
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, domain: &str) -> Result<Vec<Target>, ResolveError>;

    /// The TLSA records of `_PORT._tcp.HOST` (RFC 6698, RFC 7673 §3) that DNSSEC proved
    /// authentic, for DANE. Records that were not validated are never returned: without
    /// DNSSEC, or when the lookup fails, the answer is empty and DANE does not apply.
    async fn tlsa(&self, _host: &str, _port: u16) -> Vec<Tlsa> {
        Vec::new()
    }
}

/// One SRV resource record (RFC 2782), as far as ordering needs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Target host, without trailing dot; "." (or empty) is the root name.
    pub target: String,
}

impl SrvRecord {
    fn is_root(&self) -> bool {
        self.target.is_empty() || self.target == "."
    }
}

/// The outcome of one SRV lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SrvAnswer {
    /// No records of this service (NXDOMAIN or an empty answer).
    Absent,
    /// The target "." alone: the service is decidedly not available (RFC 2782).
    NotAvailable,
    /// Usable records, sorted by priority and at most [`MAX_SRV_RECORDS`] of them.
    Records(Vec<SrvRecord>),
}

impl SrvAnswer {
    /// Classifies the records of one answer. RFC 2782 gives "." its meaning only as the
    /// sole record; a "." mixed with real targets is meaningless and skipped.
    pub fn from_records(mut records: Vec<SrvRecord>) -> Self {
        if records.is_empty() {
            return SrvAnswer::Absent;
        }
        if records.iter().all(SrvRecord::is_root) {
            return SrvAnswer::NotAvailable;
        }
        records.retain(|r| !r.is_root());
        records.sort_by_key(|r| r.priority);
        records.truncate(MAX_SRV_RECORDS);
        SrvAnswer::Records(records)
    }
}

/// How direct TLS and STARTTLS records of the same priority are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPreference {
    /// One weighted selection over both kinds, so the domain's weights decide (XEP-0368
    /// §3 rule 1: both kinds SHOULD be treated as one record set).
    #[default]
    Mixed,
    /// Within a priority, all direct TLS records before STARTTLS ones, each kind in
    /// weighted order (XEP-0368 §3 rule 1 lets an initiator prefer one kind).
    DirectTlsFirst,
}

/// RFC 2782 weighted random ordering of records that share one priority.
///
/// `random(max)` must return a uniformly distributed value in `0..=max`; a value above
/// `max` is clamped. Following RFC 2782 ("Usage rules"): records of weight 0 go first in
/// the working list, a running sum of weights is computed, a number in `0..=sum` is drawn
/// and the first record whose running sum reaches it is taken; repeat with the rest. A
/// weight-0 record is thus only taken on a draw of 0 (a small chance when other weights
/// are positive), and when all weights are 0 the order is the input order.
pub fn weighted_order<T>(
    items: Vec<T>,
    weight: impl Fn(&T) -> u16,
    random: &mut impl FnMut(u64) -> u64,
) -> Vec<T> {
    let (mut pool, heavy): (Vec<T>, Vec<T>) = items.into_iter().partition(|i| weight(i) == 0);
    pool.extend(heavy);
    let mut ordered = Vec::with_capacity(pool.len());
    while !pool.is_empty() {
        let total: u64 = pool.iter().map(|i| u64::from(weight(i))).sum();
        let draw = random(total).min(total);
        let mut running = 0u64;
        let mut chosen = pool.len() - 1;
        for (index, item) in pool.iter().enumerate() {
            running += u64::from(weight(item));
            if running >= draw {
                chosen = index;
                break;
            }
        }
        // `remove` keeps the remaining order, so weight-0 records stay at the front.
        ordered.push(pool.remove(chosen));
    }
    ordered
}

/// The connection candidates for `domain` given its direct TLS (`_xmpps-server`) and
/// STARTTLS (`_xmpp-server`) SRV answers.
///
/// - Neither service has records: the domain itself on port 5269 with STARTTLS
///   (RFC 6120 §3.2.2).
/// - Both say "." or one says "." and the other has nothing: [`ResolveError::NoService`]
///   (RFC 2782; XEP-0368 §5 forbids the address fallback after a direct TLS ".").
/// - Otherwise the records of both kinds, lowest priority first, ordered within a
///   priority by [`weighted_order`] according to `preference`.
pub fn order_candidates(
    domain: &str,
    direct_tls: SrvAnswer,
    starttls: SrvAnswer,
    preference: TlsPreference,
    random: &mut impl FnMut(u64) -> u64,
) -> Result<Vec<Target>, ResolveError> {
    let mut records: Vec<(SrvRecord, bool)> = Vec::new();
    match (direct_tls, starttls) {
        (SrvAnswer::Absent, SrvAnswer::Absent) => return Ok(vec![Target::fallback(domain)]),
        (
            SrvAnswer::NotAvailable | SrvAnswer::Absent,
            SrvAnswer::NotAvailable | SrvAnswer::Absent,
        ) => {
            return Err(ResolveError::NoService);
        }
        (direct, plain) => {
            if let SrvAnswer::Records(rs) = direct {
                records.extend(rs.into_iter().map(|r| (r, true)));
            }
            if let SrvAnswer::Records(rs) = plain {
                records.extend(rs.into_iter().map(|r| (r, false)));
            }
        }
    }
    // Stable, so within a priority direct TLS records come first, then STARTTLS ones.
    records.sort_by_key(|(r, _)| r.priority);

    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.0.priority;
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|(r, _)| r.priority == priority) {
            group.push(next);
        }
        match preference {
            TlsPreference::Mixed => {
                ordered.extend(weighted_order(group, |(r, _)| r.weight, random))
            }
            TlsPreference::DirectTlsFirst => {
                let (direct, plain): (Vec<_>, Vec<_>) = group.into_iter().partition(|(_, d)| *d);
                ordered.extend(weighted_order(direct, |(r, _)| r.weight, random));
                ordered.extend(weighted_order(plain, |(r, _)| r.weight, random));
            }
        }
    }
    Ok(ordered
        .into_iter()
        .map(|(r, direct_tls)| Target {
            host: r.target,
            port: r.port,
            direct_tls,
        })
        .collect())
}

/// Combines the outcomes of the two lookups. A failed lookup is ignored when the other one
/// found usable records (they are enough to connect); otherwise the failure stands, since
/// concluding "no records" from it could wrongly trigger the address fallback.
fn combine_lookups(
    direct_tls: Result<SrvAnswer, ResolveError>,
    starttls: Result<SrvAnswer, ResolveError>,
) -> Result<(SrvAnswer, SrvAnswer), ResolveError> {
    match (direct_tls, starttls) {
        (Ok(d), Ok(s)) => Ok((d, s)),
        (Err(e), Ok(s @ SrvAnswer::Records(_))) => {
            tracing::debug!(error = %e, "direct TLS SRV lookup failed, using STARTTLS records");
            Ok((SrvAnswer::Absent, s))
        }
        (Ok(d @ SrvAnswer::Records(_)), Err(e)) => {
            tracing::debug!(error = %e, "STARTTLS SRV lookup failed, using direct TLS records");
            Ok((d, SrvAnswer::Absent))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// An address literal as XMPP domainpart (RFC 7622 §3.2: IPv4, or IPv6 in brackets; a
/// bare IPv6 is accepted too). Such domains have no DNS records to look up.
fn ip_literal(domain: &str) -> Option<IpAddr> {
    if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    domain.parse::<IpAddr>().ok()
}

/// `domain` without a trailing dot, which names the same domain.
fn trim_root(domain: &str) -> &str {
    domain.strip_suffix('.').unwrap_or(domain)
}

/// A uniformly distributed value in `0..=max` from the operating system's generator. The
/// modulo bias is below 2^-40 for any total of SRV weights. Should the generator fail,
/// 0 still yields a valid RFC 2782 order (the first eligible record each time).
fn os_random(max: u64) -> u64 {
    match getrandom::u64() {
        Ok(value) if max == u64::MAX => value,
        Ok(value) => value % (max + 1),
        Err(_) => 0,
    }
}

/// [`Resolve`] over DNS with hickory-resolver.
#[derive(Clone)]
pub struct HickoryResolver {
    resolver: TokioResolver,
    preference: TlsPreference,
    /// A second resolver that validates DNSSEC, for TLSA lookups only, so that a zone with
    /// broken signatures does not stop ordinary SRV and address lookups.
    dane: Option<TokioResolver>,
}

impl HickoryResolver {
    /// A resolver configured from the system (`/etc/resolv.conf` on Unix).
    pub fn from_system_conf() -> Result<Self, ResolveError> {
        let resolver = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| map_error(&e))?;
        Ok(Self::from_resolver(resolver))
    }

    /// A resolver asking the given DNS servers (UDP, and TCP for truncated answers).
    pub fn with_name_servers(servers: &[SocketAddr]) -> Result<Self, ResolveError> {
        let resolver = TokioResolver::builder_with_config(
            name_server_config(servers),
            TokioRuntimeProvider::default(),
        )
        .build()
        .map_err(|e| map_error(&e))?;
        Ok(Self::from_resolver(resolver))
    }

    /// The resolver of the `s2s.resolver` setting: the given servers (`IP:PORT`; entries that
    /// do not parse were refused by the configuration's validation), or the system's when
    /// there are none. Also returns the servers, which DANE lookups ask too.
    pub fn configured(servers: &[String]) -> (Result<Self, ResolveError>, Vec<SocketAddr>) {
        let servers: Vec<SocketAddr> = servers.iter().filter_map(|s| s.parse().ok()).collect();
        let made = if servers.is_empty() {
            Self::from_system_conf()
        } else {
            Self::with_name_servers(&servers)
        };
        (made, servers)
    }

    /// Wraps an already configured hickory resolver.
    pub fn from_resolver(resolver: TokioResolver) -> Self {
        HickoryResolver {
            resolver,
            preference: TlsPreference::default(),
            dane: None,
        }
    }

    /// Enables DANE: TLSA records are looked up with DNSSEC validation against the root trust
    /// anchor, using the same name servers (from the system, or `servers` when given).
    pub fn with_dane(mut self, servers: &[SocketAddr]) -> Result<Self, ResolveError> {
        let builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| map_error(&e))?
        } else {
            TokioResolver::builder_with_config(
                name_server_config(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let mut builder = builder;
        builder.options_mut().validate = true;
        self.dane = Some(builder.build().map_err(|e| map_error(&e))?);
        Ok(self)
    }

    /// Sets how records of equal priority are ordered between direct TLS and STARTTLS.
    pub fn with_preference(mut self, preference: TlsPreference) -> Self {
        self.preference = preference;
        self
    }

    async fn lookup_srv(&self, service: &str, domain: &Name) -> Result<SrvAnswer, ResolveError> {
        let name = Name::from_ascii(service)
            .and_then(|s| s.append_domain(domain))
            .map_err(|e| ResolveError::Other(e.to_string()))?;
        match self.resolver.srv_lookup(name).await {
            Ok(lookup) => {
                let records = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::SRV(srv) => Some(SrvRecord {
                            priority: srv.priority,
                            weight: srv.weight,
                            port: srv.port,
                            target: trim_root(&srv.target.to_ascii()).to_owned(),
                        }),
                        _ => None,
                    })
                    .collect();
                Ok(SrvAnswer::from_records(records))
            }
            Err(e) if e.is_no_records_found() => Ok(SrvAnswer::Absent),
            Err(e) => Err(map_error(&e)),
        }
    }

    /// The SRV records of one service of `domain` as published (`service` is
    /// `_xmpp-client._tcp`, `_xmpps-server._tcp`…), for diagnostics such as `causeriectl
    /// check`; federation itself asks [`Resolve::resolve`].
    pub async fn srv(&self, service: &str, domain: &str) -> Result<SrvAnswer, ResolveError> {
        let name = fqdn(domain)?;
        self.lookup_srv(service, &name).await
    }

    /// The addresses (A and AAAA records) of `host`; [`ResolveError::NotFound`] when it has
    /// none.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let name = fqdn(host)?;
        let found = self
            .resolver
            .lookup_ip(name)
            .await
            .map_err(|e| map_error(&e))?;
        let addresses: Vec<IpAddr> = found.iter().collect();
        if addresses.is_empty() {
            return Err(ResolveError::NotFound);
        }
        Ok(addresses)
    }

    /// RFC 6120 §3.2.2 falls back to the domain's own addresses; checking that it has any
    /// turns an unknown domain into [`ResolveError::NotFound`] instead of a connection
    /// failure later.
    async fn check_addresses(&self, domain: &Name) -> Result<(), ResolveError> {
        match self.resolver.lookup_ip(domain.clone()).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_no_records_found() => Err(ResolveError::NotFound),
            Err(e) => Err(map_error(&e)),
        }
    }
}

/// `domain` as an absolute DNS name: a hosted or peer domain is never relative to the
/// machine's search list.
fn fqdn(domain: &str) -> Result<Name, ResolveError> {
    let mut name =
        Name::from_utf8(trim_root(domain)).map_err(|e| ResolveError::Other(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

fn name_server_config(servers: &[SocketAddr]) -> ResolverConfig {
    let name_servers = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    ResolverConfig::from_name_servers(name_servers)
}

fn map_error(error: &NetError) -> ResolveError {
    match error {
        NetError::Timeout => ResolveError::Timeout,
        e if e.is_no_records_found() => ResolveError::NotFound,
        e => ResolveError::Other(e.to_string()),
    }
}

#[async_trait]
impl Resolve for HickoryResolver {
    async fn resolve(&self, domain: &str) -> Result<Vec<Target>, ResolveError> {
        let domain = trim_root(domain);
        if let Some(ip) = ip_literal(domain) {
            return Ok(vec![Target::fallback(&ip.to_string())]);
        }
        let mut name = Name::from_utf8(domain).map_err(|e| ResolveError::Other(e.to_string()))?;
        // Fully qualified: a peer domain is never relative to our search list.
        name.set_fqdn(true);
        let (direct, plain) = tokio::join!(
            self.lookup_srv(SERVICE_DIRECT_TLS, &name),
            self.lookup_srv(SERVICE_STARTTLS, &name),
        );
        let (direct, plain) = combine_lookups(direct, plain)?;
        let fallback = matches!((&direct, &plain), (SrvAnswer::Absent, SrvAnswer::Absent));
        let targets = order_candidates(domain, direct, plain, self.preference, &mut os_random)?;
        if fallback {
            self.check_addresses(&name).await?;
        }
        Ok(targets)
    }

    async fn tlsa(&self, host: &str, port: u16) -> Vec<Tlsa> {
        let Some(dane) = &self.dane else {
            return Vec::new();
        };
        if ip_literal(host).is_some() {
            // TLSA records are published for host names only.
            return Vec::new();
        }
        let Ok(mut name) = Name::from_utf8(format!("_{port}._tcp.{}", trim_root(host))) else {
            return Vec::new();
        };
        name.set_fqdn(true);
        match dane.tlsa_lookup(name).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter(|r| r.proof.is_secure())
                .filter_map(|r| match &r.data {
                    RData::TLSA(t) => Some(Tlsa {
                        usage: u8::from(t.cert_usage),
                        selector: u8::from(t.selector),
                        matching: u8::from(t.matching),
                        data: t.cert_data.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::debug!(host, port, error = %e, "TLSA lookup gave nothing usable");
                Vec::new()
            }
        }
    }
}

/// [`Resolve`] from a fixed table: tests, and static routes from the configuration.
/// Domains are matched case-insensitively and without a trailing dot; a domain missing
/// from the table is [`ResolveError::NotFound`], an entry with no targets is
/// [`ResolveError::NoService`].
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    routes: HashMap<String, Vec<Target>>,
    /// TLSA records by (host, port), answered as if DNSSEC had validated them.
    tlsa: HashMap<(String, u16), Vec<Tlsa>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(domain: &str) -> String {
        trim_root(domain).to_ascii_lowercase()
    }

    /// Adds or replaces the candidates for `domain`, tried in the given order.
    pub fn insert(&mut self, domain: &str, targets: Vec<Target>) {
        self.routes.insert(Self::key(domain), targets);
    }

    /// Adds TLSA records for a target, as a validating resolver would return them.
    pub fn with_tlsa(mut self, host: &str, port: u16, records: Vec<Tlsa>) -> Self {
        self.tlsa.insert((Self::key(host), port), records);
        self
    }

    /// Builder form of [`StaticResolver::insert`].
    pub fn with(mut self, domain: &str, targets: Vec<Target>) -> Self {
        self.insert(domain, targets);
        self
    }
}

#[async_trait]
impl Resolve for StaticResolver {
    async fn resolve(&self, domain: &str) -> Result<Vec<Target>, ResolveError> {
        match self.routes.get(&Self::key(domain)) {
            Some(targets) if targets.is_empty() => Err(ResolveError::NoService),
            Some(targets) => Ok(targets.clone()),
            None => Err(ResolveError::NotFound),
        }
    }

    async fn tlsa(&self, host: &str, port: u16) -> Vec<Tlsa> {
        self.tlsa
            .get(&(Self::key(host), port))
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marsaglia's xorshift64: a deterministic stand-in for the OS generator.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below_or_equal(&mut self, max: u64) -> u64 {
            if max == u64::MAX {
                self.next()
            } else {
                self.next() % (max + 1)
            }
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.to_owned(),
        }
    }

    fn target(host: &str, port: u16, direct_tls: bool) -> Target {
        Target {
            host: host.to_owned(),
            port,
            direct_tls,
        }
    }

    fn hosts(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.host.as_str()).collect()
    }

    /// A random source that replays fixed draws and records the bounds it was asked for.
    fn scripted(
        draws: &[u64],
    ) -> (
        impl FnMut(u64) -> u64 + '_,
        std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
    ) {
        let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = asked.clone();
        let mut index = 0;
        let f = move |max: u64| {
            log.borrow_mut().push(max);
            let value = draws.get(index).copied().unwrap_or(0);
            index += 1;
            value
        };
        (f, asked)
    }

    // ---- RFC 2782 weighted selection ----

    #[test]
    fn weighted_order_follows_running_sums() {
        // Weights 1, 2, 3: running sums 1, 3, 6. A draw of 4 takes the third record; then
        // weights 1, 2 (sums 1, 3): a draw of 1 takes the first; the last is taken with
        // a draw over a total of 2.
        let items = vec![("a", 1), ("b", 2), ("c", 3)];
        let (mut random, asked) = scripted(&[4, 1, 0]);
        let order = weighted_order(items, |(_, w)| *w, &mut random);
        assert_eq!(order, vec![("c", 3), ("a", 1), ("b", 2)]);
        assert_eq!(*asked.borrow(), vec![6, 3, 2]);
    }

    #[test]
    fn weighted_order_boundaries() {
        // A draw equal to a running sum selects that record, one above selects the next.
        let items = vec![("a", 5), ("b", 5)];
        let (mut random, _) = scripted(&[5]);
        assert_eq!(
            weighted_order(items.clone(), |(_, w)| *w, &mut random)[0].0,
            "a"
        );
        let (mut random, _) = scripted(&[6]);
        assert_eq!(weighted_order(items, |(_, w)| *w, &mut random)[0].0, "b");
    }

    #[test]
    fn weight_zero_records_are_taken_only_on_a_zero_draw() {
        // The weight-0 record is moved to the front of the working list, so a draw of 0
        // selects it, and any positive draw skips it.
        let items = vec![("heavy", 10), ("zero", 0)];
        let (mut random, _) = scripted(&[0]);
        assert_eq!(
            weighted_order(items.clone(), |(_, w)| *w, &mut random)[0].0,
            "zero"
        );
        let (mut random, _) = scripted(&[1]);
        assert_eq!(
            weighted_order(items, |(_, w)| *w, &mut random),
            vec![("heavy", 10), ("zero", 0)]
        );
    }

    #[test]
    fn all_zero_weights_keep_the_input_order() {
        let items = vec![("a", 0), ("b", 0), ("c", 0)];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut random = |max| rng.below_or_equal(max);
        assert_eq!(
            weighted_order(items.clone(), |(_, w)| *w, &mut random),
            items
        );
    }

    #[test]
    fn out_of_range_draws_are_clamped() {
        let items = vec![("a", 1), ("b", 1)];
        let mut random = |_| u64::MAX;
        assert_eq!(
            weighted_order(items, |(_, w)| *w, &mut random),
            vec![("b", 1), ("a", 1)]
        );
    }

    #[test]
    fn weighted_order_is_a_permutation() {
        let mut rng = XorShift(42);
        let mut random = |max| rng.below_or_equal(max);
        let items: Vec<(u16, u16)> = (0..20).map(|i| (i, (i * 7) % 13)).collect();
        let mut order = weighted_order(items.clone(), |(_, w)| *w, &mut random);
        order.sort();
        assert_eq!(order, items);
    }

    #[test]
    fn first_pick_frequency_follows_weights() {
        // Weights 10, 30, 60 with draws in 0..=100: the first record also wins the draw
        // of 0, so the expected shares are 11/101, 30/101 and 60/101.
        const DRAWS: u32 = 100_000;
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut random = |max| rng.below_or_equal(max);
        let mut firsts = [0u32; 3];
        for _ in 0..DRAWS {
            let items = vec![(0usize, 10u16), (1, 30), (2, 60)];
            let order = weighted_order(items, |(_, w)| *w, &mut random);
            firsts[order[0].0] += 1;
        }
        let expected = [11.0 / 101.0, 30.0 / 101.0, 60.0 / 101.0];
        for (count, share) in firsts.iter().zip(expected) {
            let observed = f64::from(*count) / f64::from(DRAWS);
            assert!(
                (observed - share).abs() < 0.01,
                "observed {observed}, expected {share} ({firsts:?})"
            );
        }
    }

    #[test]
    fn weight_zero_is_rarely_first_among_weighted_records() {
        // Weights 0, 10, 10: the weight-0 record is first only on a draw of 0 out of
        // 0..=20 (1/21) and otherwise last.
        const DRAWS: u32 = 50_000;
        let mut rng = XorShift(7);
        let mut random = |max| rng.below_or_equal(max);
        let mut zero_first = 0u32;
        let mut zero_last = 0u32;
        for _ in 0..DRAWS {
            let items = vec![("x", 10u16), ("zero", 0), ("y", 10)];
            let order = weighted_order(items, |(_, w)| *w, &mut random);
            if order[0].0 == "zero" {
                zero_first += 1;
            }
            if order[2].0 == "zero" {
                zero_last += 1;
            }
        }
        let first_share = f64::from(zero_first) / f64::from(DRAWS);
        assert!((first_share - 1.0 / 21.0).abs() < 0.01, "{first_share}");
        // Otherwise it stays at the front of the working list and wins the later draw
        // over a total of 10 only with a 0 (1/11): last with probability 20/21 * 10/11.
        let last_share = f64::from(zero_last) / f64::from(DRAWS);
        assert!((last_share - 200.0 / 231.0).abs() < 0.01, "{last_share}");
    }

    // ---- answers ----

    #[test]
    fn single_dot_target_means_not_available() {
        assert_eq!(
            SrvAnswer::from_records(vec![srv(0, 0, 0, ".")]),
            SrvAnswer::NotAvailable
        );
        assert_eq!(
            SrvAnswer::from_records(vec![srv(0, 0, 0, "")]),
            SrvAnswer::NotAvailable
        );
        assert_eq!(SrvAnswer::from_records(vec![]), SrvAnswer::Absent);
    }

    #[test]
    fn dot_among_real_targets_is_skipped() {
        assert_eq!(
            SrvAnswer::from_records(vec![srv(0, 0, 5269, "."), srv(5, 0, 5269, "a.example")]),
            SrvAnswer::Records(vec![srv(5, 0, 5269, "a.example")])
        );
    }

    #[test]
    fn answers_are_sorted_and_capped() {
        let records: Vec<_> = (0..100u16)
            .rev()
            .map(|p| srv(p, 0, 5269, &format!("h{p}")))
            .collect();
        let SrvAnswer::Records(kept) = SrvAnswer::from_records(records) else {
            panic!("expected records");
        };
        assert_eq!(kept.len(), MAX_SRV_RECORDS);
        assert_eq!(kept[0].target, "h0");
        assert_eq!(
            kept[MAX_SRV_RECORDS - 1].target,
            format!("h{}", MAX_SRV_RECORDS - 1)
        );
    }

    // ---- candidate order ----

    fn zero(_: u64) -> u64 {
        0
    }

    #[test]
    fn no_records_fall_back_to_the_domain() {
        let targets = order_candidates(
            "example.org",
            SrvAnswer::Absent,
            SrvAnswer::Absent,
            TlsPreference::Mixed,
            &mut zero,
        );
        assert_eq!(targets, Ok(vec![target("example.org", 5269, false)]));
    }

    #[test]
    fn dot_answers_mean_no_service() {
        use SrvAnswer::{Absent, NotAvailable};
        for (direct, plain) in [
            (Absent, NotAvailable),
            (NotAvailable, Absent),
            (NotAvailable, NotAvailable),
        ] {
            assert_eq!(
                order_candidates(
                    "example.org",
                    direct,
                    plain,
                    TlsPreference::Mixed,
                    &mut zero
                ),
                Err(ResolveError::NoService)
            );
        }
    }

    #[test]
    fn direct_tls_dot_leaves_starttls_records() {
        // XEP-0368 §5: "." for xmpps-server only means no direct TLS.
        let targets = order_candidates(
            "example.org",
            SrvAnswer::NotAvailable,
            SrvAnswer::Records(vec![srv(0, 0, 5269, "xmpp.example.org")]),
            TlsPreference::Mixed,
            &mut zero,
        );
        assert_eq!(targets, Ok(vec![target("xmpp.example.org", 5269, false)]));
    }

    #[test]
    fn starttls_dot_leaves_direct_tls_records() {
        let targets = order_candidates(
            "example.org",
            SrvAnswer::Records(vec![srv(0, 0, 5270, "tls.example.org")]),
            SrvAnswer::NotAvailable,
            TlsPreference::Mixed,
            &mut zero,
        );
        assert_eq!(targets, Ok(vec![target("tls.example.org", 5270, true)]));
    }

    #[test]
    fn priorities_interleave_both_kinds() {
        let direct = SrvAnswer::from_records(vec![srv(20, 0, 5270, "d20"), srv(5, 0, 443, "d5")]);
        let plain = SrvAnswer::from_records(vec![srv(10, 0, 5269, "p10"), srv(30, 0, 5269, "p30")]);
        let targets = order_candidates(
            "example.org",
            direct,
            plain,
            TlsPreference::Mixed,
            &mut zero,
        )
        .unwrap_or_default();
        assert_eq!(
            targets,
            vec![
                target("d5", 443, true),
                target("p10", 5269, false),
                target("d20", 5270, true),
                target("p30", 5269, false),
            ]
        );
    }

    #[test]
    fn mixed_preference_lets_weights_decide_across_kinds() {
        // Same priority; STARTTLS weight 90 against direct TLS weight 10. The working list
        // is [direct 10, starttls 90]; a draw of 50 takes the STARTTLS record.
        let direct = SrvAnswer::from_records(vec![srv(0, 10, 5270, "tls")]);
        let plain = SrvAnswer::from_records(vec![srv(0, 90, 5269, "plain")]);
        let (mut random, asked) = scripted(&[50, 0]);
        let targets = order_candidates(
            "example.org",
            direct,
            plain,
            TlsPreference::Mixed,
            &mut random,
        )
        .unwrap_or_default();
        assert_eq!(hosts(&targets), vec!["plain", "tls"]);
        assert_eq!(asked.borrow()[0], 100);
    }

    #[test]
    fn direct_tls_first_preference_within_a_priority() {
        let direct =
            SrvAnswer::from_records(vec![srv(0, 10, 5270, "tls"), srv(9, 0, 5270, "tls-late")]);
        let plain = SrvAnswer::from_records(vec![srv(0, 90, 5269, "plain")]);
        // Every draw at its maximum: the mixed order would start with "plain".
        let mut random = |max| max;
        let targets = order_candidates(
            "example.org",
            direct,
            plain,
            TlsPreference::DirectTlsFirst,
            &mut random,
        )
        .unwrap_or_default();
        assert_eq!(hosts(&targets), vec!["tls", "plain", "tls-late"]);
    }

    #[test]
    fn equal_priority_with_zero_weights_puts_direct_tls_first_in_both_modes() {
        // All-zero weights keep the working-list order, which lists direct TLS first.
        for preference in [TlsPreference::Mixed, TlsPreference::DirectTlsFirst] {
            let direct = SrvAnswer::from_records(vec![srv(0, 0, 5270, "tls")]);
            let plain = SrvAnswer::from_records(vec![srv(0, 0, 5269, "plain")]);
            let mut random = |max| max;
            let targets = order_candidates("example.org", direct, plain, preference, &mut random)
                .unwrap_or_default();
            assert_eq!(hosts(&targets), vec!["tls", "plain"]);
        }
    }

    // ---- lookup combination, literals, static table ----

    #[test]
    fn a_failed_lookup_is_ignored_only_when_the_other_has_records() {
        let records = SrvAnswer::Records(vec![srv(0, 0, 5269, "a")]);
        assert_eq!(
            combine_lookups(Err(ResolveError::Timeout), Ok(records.clone())),
            Ok((SrvAnswer::Absent, records.clone()))
        );
        assert_eq!(
            combine_lookups(Ok(records.clone()), Err(ResolveError::Timeout)),
            Ok((records, SrvAnswer::Absent))
        );
        assert_eq!(
            combine_lookups(Err(ResolveError::Timeout), Ok(SrvAnswer::Absent)),
            Err(ResolveError::Timeout)
        );
        assert_eq!(
            combine_lookups(
                Ok(SrvAnswer::NotAvailable),
                Err(ResolveError::Other("x".into()))
            ),
            Err(ResolveError::Other("x".into()))
        );
        assert_eq!(
            combine_lookups(Err(ResolveError::Timeout), Err(ResolveError::NotFound)),
            Err(ResolveError::Timeout)
        );
    }

    #[test]
    fn address_literals() {
        assert_eq!(ip_literal("192.0.2.7"), "192.0.2.7".parse().ok());
        assert_eq!(ip_literal("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(ip_literal("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(ip_literal("[192.0.2.7]"), None);
        assert_eq!(ip_literal("example.org"), None);
        assert_eq!(ip_literal("[example.org]"), None);
    }

    #[tokio::test]
    async fn hickory_resolver_skips_dns_for_address_literals() {
        // No name server is configured: any DNS query would fail.
        let resolver = HickoryResolver::with_name_servers(&[]).map_err(|e| e.to_string());
        let Ok(resolver) = resolver else {
            panic!("resolver: {resolver:?}", resolver = resolver.err());
        };
        assert_eq!(
            resolver.resolve("[2001:db8::1]").await,
            Ok(vec![target("2001:db8::1", 5269, false)])
        );
        assert_eq!(
            resolver.resolve("192.0.2.7").await,
            Ok(vec![target("192.0.2.7", 5269, false)])
        );
    }

    #[tokio::test]
    async fn static_resolver_table() {
        let routes = vec![
            target("10.0.0.1", 5270, true),
            target("peer.internal", 5269, false),
        ];
        let resolver = StaticResolver::new()
            .with("Peer.Example.", routes.clone())
            .with("closed.example", vec![]);
        assert_eq!(resolver.resolve("peer.example").await, Ok(routes.clone()));
        assert_eq!(resolver.resolve("PEER.example.").await, Ok(routes));
        assert_eq!(
            resolver.resolve("closed.example").await,
            Err(ResolveError::NoService)
        );
        assert_eq!(
            resolver.resolve("other.example").await,
            Err(ResolveError::NotFound)
        );
        // Usable behind the trait object the federation code holds.
        let dynamic: &dyn Resolve = &resolver;
        assert_eq!(
            dynamic.resolve("other.example").await,
            Err(ResolveError::NotFound)
        );
    }
}
