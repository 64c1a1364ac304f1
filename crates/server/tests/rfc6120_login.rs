//! RFC 6120 §5 (STARTTLS), §6 (SASL), §7 (bind) against the running server over real TCP and TLS.

mod common;

use causerie_sasl::ChannelBindingType;
use causerie_testkit::client::{Client, ClientError, Negotiation, TlsMode};
use common::*;

#[tokio::test]
async fn every_scram_variant_logs_in_over_starttls() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let mut cfg = s.client("alice", "wonderland");
        cfg.mechanism = Some(mech.into());
        let c = Client::login(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{mech}: {e}"));
        assert!(
            c.jid().starts_with("alice@localhost/"),
            "{mech}: bound {}",
            c.jid()
        );
        c.close().await.expect("clean close");
    }
    s.stop().await;
}

#[tokio::test]
async fn every_plus_variant_with_both_channel_bindings() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    for mech in [
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-512-PLUS",
    ] {
        for cb in [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ] {
            let mut cfg = s.client("alice", "wonderland");
            cfg.mechanism = Some(mech.into());
            cfg.cb_type = Some(cb);
            let c = Client::login(&cfg)
                .await
                .unwrap_or_else(|e| panic!("{mech} {}: {e}", cb.name()));
            c.close().await.expect("clean close");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn direct_tls_login() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut cfg = s.direct_client("alice", "wonderland");
    cfg.mechanism = Some("SCRAM-SHA-256".into());
    let c = Client::login(&cfg).await.expect("direct TLS login");
    c.close().await.expect("close");
    s.stop().await;
}

#[tokio::test]
async fn features_offer_plus_and_channel_binding_types_but_not_plain() {
    let s = server_with_users(&[]).await;
    let mut n = Negotiation::connect(&s.client("x", "y"))
        .await
        .expect("connect");
    n.header().await.expect("header");
    let f = n.features().await.expect("features");
    assert_eq!(f.starttls, Some(true), "STARTTLS must be required");
    assert!(
        f.mechanisms.is_empty(),
        "no mechanisms before TLS: {:?}",
        f.mechanisms
    );
    n.starttls().await.expect("starttls");
    n.header().await.expect("header");
    let f = n.features().await.expect("features");
    for m in [
        "SCRAM-SHA-512-PLUS",
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
    ] {
        assert!(f.offers(m), "{m} missing from {:?}", f.mechanisms);
    }
    assert!(!f.offers("PLAIN"), "PLAIN is off by default");
    let cb = f.channel_bindings.clone().unwrap_or_default();
    assert!(cb.iter().any(|t| t == "tls-exporter"), "{cb:?}");
    assert!(cb.iter().any(|t| t == "tls-server-end-point"), "{cb:?}");
    s.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_not_authorized() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    for (user, pw) in [("alice", "wrong"), ("nobody", "wonderland")] {
        let mut cfg = s.client(user, pw);
        cfg.mechanism = Some("SCRAM-SHA-256".into());
        match Client::login(&cfg).await {
            Err(ClientError::SaslFailure { condition, .. }) => {
                assert_eq!(condition, "not-authorized")
            }
            Err(e) => panic!("{user}: unexpected error {e}"),
            Ok(_) => panic!("{user}: login must fail"),
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn plain_works_over_tls_only_when_enabled() {
    let s = causerie_testkit::harness::TestServer::start_with(|c| c.auth.allow_plain = true)
        .await
        .expect("start");
    s.add_user("alice", "wonderland").await.expect("user");
    let mut cfg = s.client("alice", "wonderland");
    cfg.mechanism = Some("PLAIN".into());
    Client::login(&cfg)
        .await
        .expect("PLAIN login")
        .close()
        .await
        .expect("close");
    cfg.password = "bad".into();
    assert!(matches!(
        Client::login(&cfg).await,
        Err(ClientError::SaslFailure { .. })
    ));
    s.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_account() {
    let s = causerie_testkit::harness::TestServer::start_with(|c| {
        c.auth.max_failures_per_account = 2;
    })
    .await
    .expect("start");
    s.add_user("alice", "wonderland").await.expect("user");
    let mut bad = s.client("alice", "nope");
    bad.mechanism = Some("SCRAM-SHA-256".into());
    for _ in 0..2 {
        assert!(
            matches!(Client::login(&bad).await, Err(ClientError::SaslFailure { ref condition, .. }) if condition == "not-authorized")
        );
    }
    // Even the right password is refused while the account is over its limit.
    let mut good = s.client("alice", "wonderland");
    good.mechanism = Some("SCRAM-SHA-256".into());
    match Client::login(&good).await {
        Err(ClientError::SaslFailure { condition, .. }) => {
            assert_eq!(condition, "temporary-auth-failure")
        }
        other => panic!(
            "expected temporary-auth-failure, got {:?}",
            other.map(|c| c.jid().to_owned())
        ),
    }
    s.stop().await;
}

#[tokio::test]
async fn auth_before_starttls_is_refused() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut n = Negotiation::connect(&s.client("alice", "wonderland"))
        .await
        .expect("connect");
    n.header().await.expect("header");
    n.features().await.expect("features");
    n.send_raw(
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>=</auth>",
    )
    .await
    .expect("send");
    let e = n.recv().await.expect_err("must be refused");
    assert_eq!(stream_error(&e), Some("policy-violation"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn unknown_host_is_refused_with_host_unknown() {
    let s = server_with_users(&[]).await;
    let mut cfg = s.client("alice", "x");
    cfg.domain = "elsewhere.example".into();
    let mut n = Negotiation::connect(&cfg).await.expect("connect");
    let e = match n.header().await {
        Ok(_) => n.recv().await.expect_err("must be refused"),
        Err(e) => e,
    };
    assert_eq!(stream_error(&e), Some("host-unknown"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn bind_conflict_replaces_the_older_session() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut cfg = s.client("alice", "wonderland");
    cfg.resource = Some("phone".into());
    let mut first = Client::login(&cfg).await.expect("first");
    let second = Client::login(&cfg).await.expect("second");
    assert_eq!(first.jid(), "alice@localhost/phone");
    assert_eq!(second.jid(), "alice@localhost/phone");
    let e = first.recv(T).await.expect_err("older session is closed");
    assert_eq!(stream_error(&e), Some("conflict"), "{e}");
    second.close().await.expect("close");
    s.stop().await;
}

#[tokio::test]
async fn server_generates_a_resource_when_none_is_asked() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let a = Client::login(&s.client("alice", "wonderland"))
        .await
        .expect("a");
    let b = Client::login(&s.client("alice", "wonderland"))
        .await
        .expect("b");
    assert_ne!(a.jid(), b.jid());
    assert!(a.jid().len() > "alice@localhost/".len());
    s.stop().await;
}

#[tokio::test]
async fn stanzas_before_bind_close_the_stream() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let mut n = Negotiation::connect(&s.client("alice", "wonderland"))
        .await
        .expect("connect");
    n.header().await.expect("h");
    n.features().await.expect("f");
    n.starttls().await.expect("tls");
    n.header().await.expect("h");
    n.features().await.expect("f");
    n.auth("SCRAM-SHA-256").await.expect("auth");
    n.restart().await.expect("restart");
    n.header().await.expect("h");
    n.features().await.expect("f");
    n.send(&chat("bob@localhost", "early")).await.expect("send");
    let e = n.recv().await.expect_err("closed");
    assert_eq!(stream_error(&e), Some("not-authorized"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn direct_tls_mode_negotiates_without_starttls() {
    let s = server_with_users(&[("alice", "wonderland")]).await;
    let cfg = s.direct_client("alice", "wonderland");
    assert_eq!(cfg.tls, TlsMode::DirectTls);
    let mut n = Negotiation::connect(&cfg).await.expect("connect");
    n.header().await.expect("h");
    let f = n.features().await.expect("f");
    assert_eq!(f.starttls, None, "no STARTTLS inside TLS");
    assert!(f.offers("SCRAM-SHA-256-PLUS"));
    s.stop().await;
}
