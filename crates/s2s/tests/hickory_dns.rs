//! `HickoryResolver` against a small authoritative DNS server on 127.0.0.1: the real
//! lookup path (names, SRV decoding, NXDOMAIN handling, error mapping) without network.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use causerie_s2s::{HickoryResolver, Resolve, ResolveError, Target, TlsPreference};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Message, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

type Zone = HashMap<(String, RecordType), Vec<RData>>;

fn name(text: &str) -> Name {
    match Name::from_ascii(text) {
        Ok(name) => name,
        Err(e) => panic!("bad test name {text}: {e}"),
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(priority, weight, port, name(target)))
}

fn a(octets: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(octets)))
}

fn zone() -> Zone {
    let mut zone = Zone::new();
    let mut add = |owner: &str, kind: RecordType, data: Vec<RData>| {
        zone.insert((owner.to_owned(), kind), data);
    };
    // Both kinds, interleaved priorities, weights all 0 so the order is fixed.
    add(
        "_xmpps-server._tcp.both.example.",
        RecordType::SRV,
        vec![
            srv(10, 0, 5270, "tls2.both.example."),
            srv(0, 0, 443, "tls1.both.example."),
        ],
    );
    add(
        "_xmpp-server._tcp.both.example.",
        RecordType::SRV,
        vec![
            srv(5, 0, 5269, "xmpp.both.example."),
            srv(0, 0, 5269, "xmpp0.both.example."),
        ],
    );
    // No SRV records, but an address: fallback to the domain on 5269.
    add("plain.example.", RecordType::A, vec![a([192, 0, 2, 1])]);
    // STARTTLS explicitly refused, no direct TLS records.
    add(
        "_xmpp-server._tcp.closed.example.",
        RecordType::SRV,
        vec![srv(0, 0, 0, ".")],
    );
    // Direct TLS refused, STARTTLS offered.
    add(
        "_xmpps-server._tcp.notls.example.",
        RecordType::SRV,
        vec![srv(0, 0, 0, ".")],
    );
    add(
        "_xmpp-server._tcp.notls.example.",
        RecordType::SRV,
        vec![srv(0, 0, 5269, "xmpp.notls.example.")],
    );
    // Direct TLS refused and nothing else: no address fallback (XEP-0368 §5).
    add(
        "_xmpps-server._tcp.dotonly.example.",
        RecordType::SRV,
        vec![srv(0, 0, 0, ".")],
    );
    add("dotonly.example.", RecordType::A, vec![a([192, 0, 2, 2])]);
    zone
}

fn response_to(query: &Message, zone: &Zone) -> Message {
    let Some(question) = query.queries.first() else {
        return Message::error_msg(query.metadata.id, OpCode::Query, ResponseCode::FormErr);
    };
    let owner = question.name().to_ascii().to_ascii_lowercase();
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    if owner.starts_with("servfail.") || owner.contains(".servfail.") {
        response.metadata.response_code = ResponseCode::ServFail;
        return response;
    }
    match zone.get(&(owner.clone(), question.query_type())) {
        Some(data) => {
            for rdata in data {
                response.add_answer(Record::from_rdata(
                    question.name().clone(),
                    300,
                    rdata.clone(),
                ));
            }
        }
        // An existing name without records of that type is an empty NOERROR answer.
        None if zone.keys().any(|(known, _)| *known == owner) => {}
        None => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response
}

/// Serves `zone` over UDP until the task is aborted.
async fn start_server(zone: Zone) -> (SocketAddr, JoinHandle<()>) {
    let socket = match UdpSocket::bind("127.0.0.1:0").await {
        Ok(socket) => socket,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match socket.local_addr() {
        Ok(addr) => addr,
        Err(e) => panic!("local_addr: {e}"),
    };
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if let Ok(bytes) = response_to(&query, &zone).to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    (addr, task)
}

fn target(host: &str, port: u16, direct_tls: bool) -> Target {
    Target {
        host: host.to_owned(),
        port,
        direct_tls,
    }
}

async fn resolver_for(addr: SocketAddr) -> HickoryResolver {
    match HickoryResolver::with_name_servers(&[addr]) {
        Ok(resolver) => resolver,
        Err(e) => panic!("resolver: {e}"),
    }
}

#[tokio::test]
async fn srv_records_of_both_kinds_are_merged_by_priority() {
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    let targets = resolver.resolve("both.example").await;
    // Priority 0: the direct TLS record before the STARTTLS one (all weights 0 keep the
    // working-list order); then priority 5 and 10.
    assert_eq!(
        targets,
        Ok(vec![
            target("tls1.both.example", 443, true),
            target("xmpp0.both.example", 5269, false),
            target("xmpp.both.example", 5269, false),
            target("tls2.both.example", 5270, true),
        ])
    );
    // Same answer for the fully qualified and differently cased spelling.
    let again = resolver
        .with_preference(TlsPreference::DirectTlsFirst)
        .resolve("Both.Example.")
        .await;
    assert_eq!(again.map(|t| t.len()), Ok(4));
    server.abort();
}

#[tokio::test]
async fn no_srv_records_fall_back_to_the_domain() {
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    assert_eq!(
        resolver.resolve("plain.example").await,
        Ok(vec![target("plain.example", 5269, false)])
    );
    server.abort();
}

#[tokio::test]
async fn dot_targets_mean_no_service() {
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    assert_eq!(
        resolver.resolve("closed.example").await,
        Err(ResolveError::NoService)
    );
    assert_eq!(
        resolver.resolve("dotonly.example").await,
        Err(ResolveError::NoService)
    );
    assert_eq!(
        resolver.resolve("notls.example").await,
        Ok(vec![target("xmpp.notls.example", 5269, false)])
    );
    server.abort();
}

#[tokio::test]
async fn unknown_domain_is_not_found() {
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    assert_eq!(
        resolver.resolve("nowhere.example").await,
        Err(ResolveError::NotFound)
    );
    server.abort();
}

#[tokio::test]
async fn one_service_and_addresses_for_diagnostics() {
    use causerie_s2s::{SrvAnswer, SrvRecord};
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    assert_eq!(
        resolver.srv("_xmpp-server._tcp", "notls.example.").await,
        Ok(SrvAnswer::Records(vec![SrvRecord {
            priority: 0,
            weight: 0,
            port: 5269,
            target: "xmpp.notls.example".to_owned(),
        }]))
    );
    assert_eq!(
        resolver.srv("_xmpps-server._tcp", "notls.example").await,
        Ok(SrvAnswer::NotAvailable)
    );
    assert_eq!(
        resolver.srv("_xmpp-client._tcp", "plain.example").await,
        Ok(SrvAnswer::Absent)
    );
    assert_eq!(
        resolver.addresses("plain.example").await,
        Ok(vec![std::net::IpAddr::from([192, 0, 2, 1])])
    );
    assert_eq!(
        resolver.addresses("nowhere.example").await,
        Err(ResolveError::NotFound)
    );
    server.abort();
}

#[tokio::test]
async fn server_failure_is_reported() {
    let (addr, server) = start_server(zone()).await;
    let resolver = resolver_for(addr).await;
    let result = resolver.resolve("servfail.example").await;
    assert!(matches!(result, Err(ResolveError::Other(_))), "{result:?}");
    server.abort();
}

#[tokio::test]
async fn silent_server_times_out() {
    // A bound socket that never answers.
    let silent = match std::net::UdpSocket::bind("127.0.0.1:0") {
        Ok(socket) => socket,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match silent.local_addr() {
        Ok(addr) => addr,
        Err(e) => panic!("local_addr: {e}"),
    };
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let config =
        ResolverConfig::from_name_servers(vec![NameServerConfig::new(addr.ip(), true, vec![udp])]);
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_millis(100);
    options.attempts = 1;
    let built = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build();
    let resolver = match built {
        Ok(resolver) => HickoryResolver::from_resolver(resolver),
        Err(e) => panic!("resolver: {e}"),
    };
    assert_eq!(
        resolver.resolve("slow.example").await,
        Err(ResolveError::Timeout)
    );
}
