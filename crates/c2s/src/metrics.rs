//! Client logins, through the `metrics` facade (docs/metrics.md).

use causerie_sasl::Mechanism;
use causerie_xml::Element;

use crate::auth::AuthOutcome;
use crate::negotiate::Ended;

/// Counts one SASL exchange started by `auth`, by mechanism and result. The mechanism label
/// is one of the names the server knows, or `other`, so a client cannot add label values.
pub(crate) fn login(auth: &Element, outcome: &Result<AuthOutcome, Ended>) {
    let mechanism = auth
        .attr("mechanism")
        .and_then(Mechanism::parse)
        .map_or("other", |m| m.name());
    let result = match outcome {
        Ok(AuthOutcome::Success(_)) => "success",
        // The proof or password was wrong (RFC 6120 §6.5.10 `not-authorized`).
        Ok(AuthOutcome::Failed { credentials: true }) => "bad_credentials",
        // A mechanism not offered, throttling, a locked account, an aborted exchange, a store
        // that did not answer.
        Ok(AuthOutcome::Failed { credentials: false }) => "refused",
        // The stream ended during the exchange (closed, timed out, or a stream error).
        Err(_) => "closed",
    };
    metrics::counter!("causerie_logins_total", "mechanism" => mechanism, "result" => result)
        .increment(1);
}
