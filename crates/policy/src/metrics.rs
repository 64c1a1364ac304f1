//! Usage-policy and compliance events, through the `metrics` facade (docs/metrics.md). None of
//! them is per stanza: the handles are looked up by their labels when an event happens.

use crate::compliance::rules::Action;

/// What happened to a session at the usage-policy gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateEvent {
    /// Bound with a version to accept (or with the policy unreadable): restricted.
    Restricted,
    /// A version was accepted and its receipt stored.
    Accepted,
    /// A version was declined; the session is closed.
    Declined,
    /// Still restricted when the acceptance timeout ran out; the session is closed.
    TimedOut,
}

impl GateEvent {
    fn as_str(self) -> &'static str {
        match self {
            GateEvent::Restricted => "restricted",
            GateEvent::Accepted => "accepted",
            GateEvent::Declined => "declined",
            GateEvent::TimedOut => "timed_out",
        }
    }
}

pub(crate) fn gate(event: GateEvent) {
    metrics::counter!("causerie_policy_gate_events_total", "event" => event.as_str()).increment(1);
}

/// Counts the actions one rule match carried out (one count per action of the match).
pub(crate) fn compliance_actions(actions: &[Action]) {
    for action in actions {
        metrics::counter!("causerie_compliance_actions_total", "action" => action.name())
            .increment(1);
    }
}

/// An evidence record handed to the writer task.
pub(crate) fn evidence_queued() {
    metrics::gauge!("causerie_compliance_evidence_pending").increment(1.0);
}

/// An evidence record stored by the writer task.
pub(crate) fn evidence_written() {
    metrics::gauge!("causerie_compliance_evidence_pending").decrement(1.0);
    metrics::counter!("causerie_compliance_evidence_records_total").increment(1);
}
