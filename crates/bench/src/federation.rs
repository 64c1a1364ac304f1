//! Throughput across a server-to-server stream: a sender logged in on one server sends chat
//! messages to a receiver logged in on another (RFC 6121 §5 between domains), with at most
//! `window` messages in flight, and the rate is what arrives per second. A first message sets
//! the stream up and is not counted, so the figure is the stream's, not the connection's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{Client, ClientConfig, Trust};
use causerie_xml::Element;
use tokio::sync::Notify;

use crate::scenario::require_loopback;

const NS_CLIENT: &str = "jabber:client";
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Most messages one run sends.
pub const MAX_MESSAGES: usize = 200_000;

/// One account on one server.
#[derive(Debug, Clone)]
pub struct Account {
    pub addr: std::net::SocketAddr,
    pub jid: String,
    pub password: String,
}

impl Account {
    /// `user@domain,password,ip:port`.
    pub fn parse(s: &str) -> Result<Account> {
        let mut parts = s.splitn(3, ',');
        let (Some(jid), Some(password), Some(addr)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("expected USER@DOMAIN,PASSWORD,IP:PORT, got {s}");
        };
        let addr = addr.parse().with_context(|| format!("address in {s}"))?;
        require_loopback(&addr)?;
        if !jid.contains('@') {
            bail!("{jid} is not a bare JID");
        }
        Ok(Account {
            addr,
            jid: jid.to_owned(),
            password: password.to_owned(),
        })
    }

    fn config(&self) -> ClientConfig {
        let (user, domain) = self.jid.split_once('@').unwrap_or((&self.jid, ""));
        let mut cfg = ClientConfig::new(self.addr, domain, user, &self.password);
        // The bench measures routing, not certificate checks; the servers are on loopback.
        cfg.trust = Trust::AnyCertificate;
        cfg.resource = Some(format!("bench-{}", std::process::id()));
        cfg
    }
}

#[derive(Debug, Clone)]
pub struct FederationReport {
    pub label: String,
    pub messages: usize,
    pub secs: f64,
    pub per_sec: f64,
    pub setup_ms: f64,
}

fn chat(to: &str, n: usize) -> Element {
    Element::new("message", NS_CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", format!("b{n}"))
        .with_child(Element::new("body", NS_CLIENT).with_text(format!("bench message {n}")))
}

fn is_bench_message(el: &Element) -> bool {
    el.name() == "message"
        && el.attr("type") == Some("chat")
        && el.attr("id").is_some_and(|id| id.starts_with('b'))
}

pub async fn run(
    label: &str,
    sender: &Account,
    receiver: &Account,
    messages: usize,
    window: usize,
) -> Result<FederationReport> {
    if messages == 0 || messages > MAX_MESSAGES {
        bail!("--messages must be 1..={MAX_MESSAGES}");
    }
    let window = window.max(1);
    let mut rx = Client::login(&receiver.config())
        .await
        .with_context(|| format!("login {}", receiver.jid))?;
    let mut tx = Client::login(&sender.config())
        .await
        .with_context(|| format!("login {}", sender.jid))?;
    let to = rx.jid().to_owned();

    // Warm-up: the s2s stream is set up (DNS, TCP, TLS, authentication) by this one.
    let t0 = Instant::now();
    tx.send(&chat(&to, 0)).await?;
    rx.recv_matching(SETUP_TIMEOUT, is_bench_message)
        .await
        .context("the first message did not arrive: is federation between the two set up?")?;
    let setup_ms = t0.elapsed().as_secs_f64() * 1000.0;

    let received = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let counter = received.clone();
    let wake = progress.clone();
    let reader = tokio::spawn(async move {
        while counter.load(Ordering::Relaxed) < messages {
            match rx.recv(SETUP_TIMEOUT).await {
                Ok(el) if is_bench_message(&el) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                    wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("receiver: {e}")),
            }
        }
        Ok(rx)
    });
    let start = Instant::now();
    for n in 1..=messages {
        while n - received.load(Ordering::Relaxed) > window {
            tokio::time::timeout(SETUP_TIMEOUT, progress.notified())
                .await
                .context("no progress for 30 s")?;
        }
        tx.send(&chat(&to, n)).await?;
    }
    let rx = reader.await.context("receiver task")??;
    let secs = start.elapsed().as_secs_f64();
    let _ = tx.close().await;
    let _ = rx.close().await;
    Ok(FederationReport {
        label: label.to_owned(),
        messages,
        secs,
        per_sec: messages as f64 / secs.max(1e-9),
        setup_ms,
    })
}

/// A table of the runs, with each run's rate as a ratio of the last one's (the reference).
pub fn table(reports: &[FederationReport]) -> String {
    let mut out = String::from("run\tmessages\tseconds\tmsgs/s\tfirst message ms\tratio to last\n");
    let reference = reports.last().map(|r| r.per_sec).unwrap_or(1.0);
    for r in reports {
        out.push_str(&format!(
            "{}\t{}\t{:.2}\t{:.0}\t{:.1}\t{:.2}\n",
            r.label,
            r.messages,
            r.secs,
            r.per_sec,
            r.setup_ms,
            r.per_sec / reference.max(1e-9)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_and_stay_on_loopback() {
        let a = Account::parse("dave@causerie.test,pw,127.0.0.2:5222").expect("parses");
        assert_eq!(a.jid, "dave@causerie.test");
        assert!(Account::parse("dave@causerie.test,pw,10.0.0.1:5222").is_err());
        assert!(Account::parse("dave,pw,127.0.0.2:5222").is_err());
        assert!(Account::parse("dave@x,pw").is_err());
    }

    #[test]
    fn table_shows_ratios_to_the_last_run() {
        let r = |label: &str, per_sec: f64| FederationReport {
            label: label.into(),
            messages: 10,
            secs: 1.0,
            per_sec,
            setup_ms: 1.0,
        };
        let t = table(&[r("a", 300.0), r("b", 100.0)]);
        assert!(t.contains("a\t10\t1.00\t300\t1.0\t3.00"), "{t}");
        assert!(t.contains("b\t10\t1.00\t100\t1.0\t1.00"), "{t}");
    }
}
