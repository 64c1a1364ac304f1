//! An interoperability check of the test client against a running server: for each SASL
//! mechanism and TLS mode, two users log in step by step, exchange a chat message each way and
//! close their streams; a wrong password must be refused with `<not-authorized/>`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{
    Client, ClientConfig, ClientError, NS_CLIENT, Negotiation, TlsMode,
};
use causerie_xml::Element;

use crate::scenario::{Scenario, Target};

const WAIT: Duration = Duration::from_secs(10);

/// Logs in with the step-by-step API, printing what the server offered.
async fn login_steps(cfg: &ClientConfig) -> Result<(Client, String)> {
    let mut n = Negotiation::connect(cfg).await?;
    n.header().await?;
    let mut features = n.features().await?;
    if cfg.tls == TlsMode::StartTls {
        n.starttls().await?;
        n.header().await?;
        features = n.features().await?;
    }
    let tls = n.tls().map(|t| {
        format!(
            "{:?}, tls-exporter {}, tls-server-end-point {}",
            t.version,
            if t.exporter.is_some() { "yes" } else { "no" },
            if t.server_end_point.is_some() {
                "yes"
            } else {
                "no"
            },
        )
    });
    let offered = format!(
        "mechanisms {:?}, XEP-0440 channel bindings {:?}, TLS {}",
        features.mechanisms,
        features.channel_bindings,
        tls.as_deref().unwrap_or("none")
    );
    let mechanism = n.choose_mechanism()?;
    n.auth(&mechanism).await?;
    n.restart().await?;
    n.header().await?;
    let features = n.features().await?;
    if !features.bind {
        bail!("no resource binding offered after authentication");
    }
    let resource = cfg.resource.clone();
    let jid = n.bind(resource.as_deref()).await?;
    if features.session == Some(false) {
        n.session().await?;
    }
    Ok((n.into_client(jid), offered))
}

async fn exchange(from: &mut Client, to: &mut Client, to_bare: &str, text: &str) -> Result<()> {
    let message = Element::new("message", NS_CLIENT)
        .with_attr("to", to_bare)
        .with_attr("type", "chat")
        .with_attr("id", "check-1")
        .with_child(Element::new("body", NS_CLIENT).with_text(text));
    from.send(&message).await?;
    let got = to
        .recv_matching(WAIT, |el| el.is("message", NS_CLIENT))
        .await
        .with_context(|| format!("waiting for the message at {}", to.jid()))?;
    let body = got.get_child("body", NS_CLIENT).map(|b| b.text());
    if body.as_deref() != Some(text) {
        bail!(
            "{} received {:?} instead of {text:?}",
            to.jid(),
            got.to_xml()
        );
    }
    let sender = got.attr("from").unwrap_or_default();
    if sender != from.jid() {
        bail!("the message came from {sender:?}, expected {}", from.jid());
    }
    Ok(())
}

async fn one(
    target: &Target,
    scenario: &Scenario,
    tls: TlsMode,
    mechanism: &str,
) -> Result<String> {
    let cfg = |n: usize| {
        let mut c = ClientConfig::new(
            target.addr,
            &target.domain,
            &scenario.username(n),
            &scenario.password(n),
        );
        c.tls = tls;
        c.trust = scenario.trust.clone();
        c.mechanism = Some(mechanism.to_string());
        c
    };
    let (cfg_a, cfg_b) = (cfg(0), cfg(1));
    let (mut a, offered) = login_steps(&cfg_a).await.context("first user")?;
    let mut b = Client::login(&cfg_b).await.context("second user")?;
    for (c, bare) in [(&a, cfg_a.bare_jid()), (&b, cfg_b.bare_jid())] {
        if !c.jid().starts_with(&format!("{bare}/")) {
            bail!("bound JID {} is not a full JID of {bare}", c.jid());
        }
    }
    for c in [&mut a, &mut b] {
        c.send_initial_presence(WAIT)
            .await
            .context("waiting for the server to reflect initial presence")?;
    }
    exchange(&mut a, &mut b, &cfg_b.bare_jid(), "ping from a").await?;
    exchange(&mut b, &mut a, &cfg_a.bare_jid(), "pong from b").await?;
    let (ja, jb) = (a.jid().to_string(), b.jid().to_string());
    a.close().await.context("closing the first stream")?;
    b.close().await.context("closing the second stream")?;

    let mut wrong = cfg(0);
    wrong.password.push_str("-wrong");
    match Client::login(&wrong).await {
        Err(ClientError::SaslFailure { condition, .. }) if condition == "not-authorized" => {}
        Err(e) => bail!("a wrong password gave {e}, expected <not-authorized/>"),
        Ok(_) => bail!("a wrong password was accepted"),
    }
    Ok(format!(
        "{ja} <-> {jb}: login, bind, a message each way, close; wrong password refused ({offered})"
    ))
}

/// Runs every combination and prints one line per check; fails if any check failed.
pub async fn run(
    target: &Target,
    scenario: &Scenario,
    mechanisms: &[String],
    direct_tls_port: Option<u16>,
) -> Result<()> {
    let mut modes = vec![(TlsMode::StartTls, target.clone())];
    if let Some(port) = direct_tls_port {
        let mut direct = target.clone();
        direct.addr.set_port(port);
        modes.push((TlsMode::DirectTls, direct));
    }
    let (mut passed, mut failed) = (0, 0);
    for (tls, target) in &modes {
        for mechanism in mechanisms {
            match one(target, scenario, *tls, mechanism).await {
                Ok(what) => {
                    passed += 1;
                    println!("ok     {tls:?} {mechanism} at {}: {what}", target.addr);
                }
                Err(e) => {
                    failed += 1;
                    println!("FAILED {tls:?} {mechanism} at {}: {e:#}", target.addr);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} interoperability checks failed");
    }
    Ok(())
}
