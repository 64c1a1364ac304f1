//! The SASL exchange of a client stream (RFC 6120 §6), with credentials from the user store.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use causerie_sasl::{
    ChannelBindingType, ChannelBindings, Failure, Hash, Mechanism, ScramCredentials, ServerContext,
    ServerSession, Step,
};
use causerie_stanza::ns;
use causerie_stream::XmlStream;
use causerie_xml::{Element, FramerEvent};
use tokio::time::Instant;

use crate::listener::C2sServer;
use crate::negotiate::{Ended, fail, flush};

pub(crate) enum AuthOutcome {
    /// Authenticated as this (prepared) localpart.
    Success(String),
    /// A `<failure/>` was sent; the client may try again. `credentials` tells whether a password (or
    /// proof) was wrong, as opposed to a mechanism or channel binding the client could not use.
    Failed { credentials: bool },
}

/// The mechanisms this connection can offer: -PLUS only with channel-binding data, PLAIN only over TLS
/// and only when enabled.
pub(crate) fn offered(server: &C2sServer, stream: &XmlStream) -> Vec<Mechanism> {
    let tls = stream.is_tls();
    let (exporter, end_point) = stream.channel_bindings(&server.tls.certs);
    let has_cb = exporter.is_some() || end_point.is_some();
    let mut v: Vec<Mechanism> = server
        .settings
        .mechanisms
        .iter()
        .copied()
        .filter(|m| match m {
            Mechanism::Scram { plus: true, .. } => tls && has_cb,
            Mechanism::Scram { .. } => true,
            Mechanism::Plain | Mechanism::External => false,
        })
        .collect();
    if tls && server.settings.allow_plain {
        v.push(Mechanism::Plain);
    }
    v
}

fn offered_cb_types(server: &C2sServer, stream: &XmlStream) -> Vec<ChannelBindingType> {
    let (exporter, end_point) = stream.channel_bindings(&server.tls.certs);
    let mut v = Vec::new();
    if exporter.is_some() {
        v.push(ChannelBindingType::TlsExporter);
    }
    if end_point.is_some() {
        v.push(ChannelBindingType::TlsServerEndPoint);
    }
    v
}

pub(crate) fn mechanisms_element(server: &C2sServer, stream: &XmlStream) -> Element {
    let mut m = Element::new("mechanisms", ns::SASL);
    for mech in offered(server, stream) {
        m.push_child(Element::new("mechanism", ns::SASL).with_text(mech.name()));
    }
    m
}

/// XEP-0440: which channel-binding types the server supports on this connection.
pub(crate) fn channel_binding_element(server: &C2sServer, stream: &XmlStream) -> Option<Element> {
    let types = offered_cb_types(server, stream);
    if types.is_empty() {
        return None;
    }
    let mut e = Element::new("sasl-channel-binding", ns::SASL_CB);
    for t in types {
        e.push_child(Element::new("channel-binding", ns::SASL_CB).with_attr("type", t.name()));
    }
    Some(e)
}

fn failure(cond: &str, text: Option<&str>) -> Element {
    let mut f = Element::new("failure", ns::SASL).with_child(Element::new(cond, ns::SASL));
    if let Some(t) = text {
        f.push_child(
            Element::new("text", ns::SASL)
                .with_attr("xml:lang", "en")
                .with_text(t),
        );
    }
    f
}

/// Decodes SASL data: empty content is "no data", `=` is an empty response (RFC 6120 §6.4.2).
fn decode(el: &Element) -> Result<Vec<u8>, ()> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text).map_err(|_| ())
}

fn encode(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        B64.encode(data)
    }
}

/// Runs one SASL exchange started by `<auth/>`.
pub(crate) async fn authenticate(
    server: &Arc<C2sServer>,
    stream: &mut XmlStream,
    auth: &Element,
    domain: &str,
    deadline: Instant,
) -> Result<AuthOutcome, Ended> {
    let ip = stream.peer().ip();
    let offered_now = offered(server, stream);
    let mech = auth
        .attr("mechanism")
        .and_then(Mechanism::parse)
        .filter(|m| offered_now.contains(m));
    let Some(mech) = mech else {
        stream.queue(&failure("invalid-mechanism", None));
        flush(stream, domain).await?;
        return Ok(AuthOutcome::Failed { credentials: false });
    };
    if !server.limiter.ip_allowed(ip) {
        tracing::warn!(peer = %stream.peer(), "login refused: too many failures from this address");
        stream.queue(&failure(
            "temporary-auth-failure",
            Some("too many failed attempts; try again later"),
        ));
        flush(stream, domain).await?;
        return Ok(AuthOutcome::Failed { credentials: false });
    }
    let (exporter, end_point) = stream.channel_bindings(&server.tls.certs);
    let ctx = ServerContext {
        offered: offered_now,
        channel_bindings: ChannelBindings {
            tls_exporter: exporter,
            tls_server_end_point: end_point,
        },
        offered_cb_types: offered_cb_types(server, stream),
        secret: server.sasl_secret,
    };
    let mut session =
        ServerSession::new(mech, ctx).with_fake_iterations(server.settings.scram_iterations);
    let mut input = match decode(auth) {
        Ok(d) => Some(d),
        Err(()) => {
            stream.queue(&failure("incorrect-encoding", None));
            flush(stream, domain).await?;
            return Ok(AuthOutcome::Failed { credentials: false });
        }
    };
    // The account being tried, once the mechanism has named it.
    let mut account: Option<(String, String)> = None;
    if input.as_deref() == Some(&[]) && matches!(mech, Mechanism::Scram { .. } | Mechanism::Plain) {
        // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
        input = None;
    }
    loop {
        let step = match input.take() {
            Some(data) => session.step(&data),
            None => Ok(Step::Challenge(Vec::new())),
        };
        let step = match step {
            Ok(Step::NeedCredentials {
                username,
                authzid: _,
                hash,
            }) => {
                let local = match causerie_jid::prepare_localpart(&username) {
                    Ok(l) => l,
                    Err(_) => {
                        // Not a valid localpart: no such account. Go on with no credentials so the
                        // exchange fails like any unknown user.
                        username.clone()
                    }
                };
                let acct = format!("{local}@{domain}");
                if !server.limiter.account_allowed(&acct) {
                    tracing::warn!(account = %acct, peer = %stream.peer(), "login refused: too many failures for this account");
                    stream.queue(&failure(
                        "temporary-auth-failure",
                        Some("too many failed attempts; try again later"),
                    ));
                    flush(stream, domain).await?;
                    return Ok(AuthOutcome::Failed { credentials: false });
                }
                let Ok(creds) = lookup(server, &local, domain, hash).await else {
                    stream.queue(&failure(
                        "temporary-auth-failure",
                        Some("the account store is unavailable"),
                    ));
                    flush(stream, domain).await?;
                    return Ok(AuthOutcome::Failed { credentials: false });
                };
                account = Some((local, acct));
                session.provide_credentials(creds)
            }
            other => other,
        };
        match step {
            Ok(Step::Challenge(data)) => {
                stream.queue(&Element::new("challenge", ns::SASL).with_text(encode(&data)));
                flush(stream, domain).await?;
                let el = match tokio::time::timeout_at(deadline, stream.read_event()).await {
                    Ok(Ok(FramerEvent::Element(el))) => el,
                    Ok(Ok(_)) | Ok(Err(_)) => return Err(Ended::Closed),
                    Err(_) => {
                        let e = causerie_stanza::StreamError::new(
                            causerie_stanza::StreamErrorCondition::ConnectionTimeout,
                        );
                        return fail(stream, domain, e).await;
                    }
                };
                if el.is("abort", ns::SASL) {
                    stream.queue(&failure("aborted", None));
                    flush(stream, domain).await?;
                    return Ok(AuthOutcome::Failed { credentials: false });
                }
                if !el.is("response", ns::SASL) {
                    let e = causerie_stanza::StreamError::new(
                        causerie_stanza::StreamErrorCondition::NotAuthorized,
                    )
                    .with_text("expected a SASL response");
                    return fail(stream, domain, e).await;
                }
                match decode(&el) {
                    Ok(d) => input = Some(d),
                    Err(()) => {
                        stream.queue(&failure("incorrect-encoding", None));
                        flush(stream, domain).await?;
                        return Ok(AuthOutcome::Failed { credentials: false });
                    }
                }
            }
            Ok(Step::Success {
                username: _,
                authzid,
                additional_data,
            }) => {
                let Some((local, acct)) = account else {
                    stream.queue(&failure("not-authorized", None));
                    flush(stream, domain).await?;
                    return Ok(AuthOutcome::Failed { credentials: false });
                };
                // RFC 6120 §6.3.8: an authorization identity other than the account's own is refused.
                if let Some(z) = authzid.filter(|z| !z.is_empty())
                    && causerie_jid::BareJid::parse(&z)
                        .map(|j| j.as_str() != acct)
                        .unwrap_or(true)
                {
                    stream.queue(&failure("invalid-authzid", None));
                    flush(stream, domain).await?;
                    return Ok(AuthOutcome::Failed { credentials: false });
                }
                // RFC 6120 §6.5.2: a locked account is refused, and only once the credentials
                // are proven, so that the lock tells nothing to whoever does not have them.
                match locked(server, &local, domain).await {
                    Ok(None) => {}
                    Ok(Some(text)) => {
                        tracing::info!(account = %acct, peer = %stream.peer(), "login refused: the account is locked");
                        stream.queue(&failure(Failure::AccountDisabled.condition(), Some(&text)));
                        flush(stream, domain).await?;
                        return Ok(AuthOutcome::Failed { credentials: false });
                    }
                    Err(()) => {
                        stream.queue(&failure(
                            "temporary-auth-failure",
                            Some("the account store is unavailable"),
                        ));
                        flush(stream, domain).await?;
                        return Ok(AuthOutcome::Failed { credentials: false });
                    }
                }
                server.limiter.record_success(&acct);
                let mut ok = Element::new("success", ns::SASL);
                if let Some(d) = additional_data {
                    ok.push_text(encode(&d));
                }
                stream.queue(&ok);
                flush(stream, domain).await?;
                tracing::info!(account = %acct, peer = %stream.peer(), mechanism = mech.name(), "authenticated");
                return Ok(AuthOutcome::Success(local));
            }
            Ok(Step::NeedCredentials { .. }) => {
                // A mechanism asks for credentials once; a second request is a bug in the mechanism.
                stream.queue(&failure("temporary-auth-failure", None));
                flush(stream, domain).await?;
                return Ok(AuthOutcome::Failed { credentials: false });
            }
            Err(f) => {
                let credentials = matches!(f, Failure::NotAuthorized);
                if credentials {
                    server
                        .limiter
                        .record_failure(ip, account.as_ref().map(|(_, a)| a.as_str()));
                    tracing::info!(account = account.as_ref().map(|(_, a)| a.as_str()).unwrap_or("-"), peer = %stream.peer(), "authentication failed");
                }
                stream.queue(&failure(f.condition(), None));
                flush(stream, domain).await?;
                return Ok(AuthOutcome::Failed { credentials });
            }
        }
    }
}

async fn lookup(
    server: &C2sServer,
    local: &str,
    domain: &str,
    hash: Hash,
) -> Result<Option<ScramCredentials>, ()> {
    match server.users.credential(local, domain, hash.name()).await {
        Ok(Some(c)) => Ok(Some(ScramCredentials {
            hash,
            salt: c.salt,
            iterations: c.iterations,
            stored_key: c.stored_key,
            server_key: c.server_key,
        })),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "credential lookup failed");
            Err(())
        }
    }
}

/// The `<text/>` of the refusal when the account is locked now, `None` when it is not.
async fn locked(server: &C2sServer, local: &str, domain: &str) -> Result<Option<String>, ()> {
    let lock = match server.users.user_lock(local, domain).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "account lock lookup failed");
            return Err(());
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok(lock
        .filter(|l| l.holds_at(now))
        .map(|l| lock_text(l.until, now)))
}

/// What a locked account is told: how long the lock still holds, in minutes rounded up.
fn lock_text(until: Option<i64>, now: i64) -> String {
    match until {
        None => "the account is locked until an administrator unlocks it".to_owned(),
        Some(until) => {
            let minutes = until.saturating_sub(now).saturating_add(59) / 60;
            format!(
                "the account is locked for {minutes} more minute{}",
                if minutes == 1 { "" } else { "s" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lock_text;

    #[test]
    fn a_lock_says_how_long_it_holds() {
        assert_eq!(
            lock_text(None, 5),
            "the account is locked until an administrator unlocks it"
        );
        assert_eq!(
            lock_text(Some(100), 99),
            "the account is locked for 1 more minute"
        );
        assert_eq!(
            lock_text(Some(100 + 1800), 100),
            "the account is locked for 30 more minutes"
        );
        assert_eq!(
            lock_text(Some(100 + 1801), 100),
            "the account is locked for 31 more minutes"
        );
    }
}
