//! The presence subscription state machine of RFC 6121 Appendix A, as pure functions.
//!
//! The state of a contact as seen from one account is one of the nine states of Appendix A.1
//! ("None", "None + Pending Out", …, "Both"). [`outbound`] is the table of Appendix A.2 (what the
//! account's own server does with a subscription stanza the account sends) and [`inbound`] the
//! table of Appendix A.3 (what it does with one addressed to the account). Pre-approval (§3.4) is
//! not part of those tables; the engine applies it on top of them.

use causerie_stanza::PresenceType;
use causerie_storage::roster::Subscription;

/// One of the nine states of RFC 6121 Appendix A.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubState {
    pub subscription: Subscription,
    /// The account asked to subscribe to the contact and has no answer yet.
    pub pending_out: bool,
    /// The contact asked to subscribe to the account and has no answer yet.
    pub pending_in: bool,
}

impl SubState {
    /// "None": no subscription, nothing pending.
    pub const NONE: SubState = SubState {
        subscription: Subscription::None,
        pending_out: false,
        pending_in: false,
    };

    /// Builds a state, dropping the flags Appendix A.1 does not allow with that subscription: a
    /// request cannot be pending in a direction that is already subscribed (a damaged or
    /// hand-edited store must not put the machine in a state the tables do not cover).
    pub fn new(subscription: Subscription, pending_out: bool, pending_in: bool) -> SubState {
        let mut s = SubState {
            subscription,
            pending_out,
            pending_in,
        };
        if s.has_to() {
            s.pending_out = false;
        }
        if s.has_from() {
            s.pending_in = false;
        }
        s
    }

    /// The account receives the contact's presence ("To" or "Both").
    pub fn has_to(self) -> bool {
        matches!(self.subscription, Subscription::To | Subscription::Both)
    }

    /// The contact receives the account's presence ("From" or "Both").
    pub fn has_from(self) -> bool {
        matches!(self.subscription, Subscription::From | Subscription::Both)
    }

    fn with_subscription(self, to: bool, from: bool) -> SubState {
        let subscription = match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        };
        SubState::new(subscription, self.pending_out, self.pending_in)
    }

    fn add_to(self) -> SubState {
        self.with_subscription(true, self.has_from())
    }

    fn remove_to(self) -> SubState {
        self.with_subscription(false, self.has_from())
    }

    fn add_from(self) -> SubState {
        self.with_subscription(self.has_to(), true)
    }

    fn remove_from(self) -> SubState {
        self.with_subscription(self.has_to(), false)
    }

    /// The name Appendix A.1 gives the state, e.g. `"None + Pending Out+In"`.
    pub fn rfc_name(self) -> &'static str {
        match (self.subscription, self.pending_out, self.pending_in) {
            (Subscription::None, false, false) => "None",
            (Subscription::None, true, false) => "None + Pending Out",
            (Subscription::None, false, true) => "None + Pending In",
            (Subscription::None, true, true) => "None + Pending Out+In",
            (Subscription::To, _, false) => "To",
            (Subscription::To, _, true) => "To + Pending In",
            (Subscription::From, false, _) => "From",
            (Subscription::From, true, _) => "From + Pending Out",
            (Subscription::Both, _, _) => "Both",
        }
    }

    /// The state named as in Appendix A.1.
    pub fn from_rfc_name(name: &str) -> Option<SubState> {
        let (subscription, out, inn) = match name {
            "None" => (Subscription::None, false, false),
            "None + Pending Out" => (Subscription::None, true, false),
            "None + Pending In" => (Subscription::None, false, true),
            "None + Pending Out+In" => (Subscription::None, true, true),
            "To" => (Subscription::To, false, false),
            "To + Pending In" => (Subscription::To, false, true),
            "From" => (Subscription::From, false, false),
            "From + Pending Out" => (Subscription::From, true, false),
            "Both" => (Subscription::Both, false, false),
            _ => return None,
        };
        Some(SubState::new(subscription, out, inn))
    }

    /// The nine states, in the order of Appendix A.1.
    pub const ALL: [&'static str; 9] = [
        "None",
        "None + Pending Out",
        "None + Pending In",
        "None + Pending Out+In",
        "To",
        "To + Pending In",
        "From",
        "From + Pending Out",
        "Both",
    ];
}

/// The state an item records (the `pending_in` flag is kept on the item only once the contact is
/// in the roster; see the engine for requests from contacts that are not).
pub fn visible(item: &causerie_storage::roster::RosterItem) -> SubState {
    SubState::new(item.subscription, item.pending_out, item.pending_in)
}

/// The four presence types that manage subscriptions (RFC 6121 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl SubKind {
    pub fn of(t: PresenceType) -> Option<SubKind> {
        match t {
            PresenceType::Subscribe => Some(SubKind::Subscribe),
            PresenceType::Subscribed => Some(SubKind::Subscribed),
            PresenceType::Unsubscribe => Some(SubKind::Unsubscribe),
            PresenceType::Unsubscribed => Some(SubKind::Unsubscribed),
            _ => None,
        }
    }

    /// The value of the `type` attribute.
    pub fn name(self) -> &'static str {
        match self {
            SubKind::Subscribe => "subscribe",
            SubKind::Subscribed => "subscribed",
            SubKind::Unsubscribe => "unsubscribe",
            SubKind::Unsubscribed => "unsubscribed",
        }
    }
}

/// What the account's server does with a subscription stanza the account sent (Appendix A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundRule {
    /// The new state; `None` is the tables' "no state change".
    pub new: Option<SubState>,
    /// Whether the stanza is routed to the contact.
    pub route: bool,
}

/// What the account's server does with a subscription stanza addressed to the account
/// (Appendix A.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundRule {
    /// The new state; `None` is the tables' "no state change".
    pub new: Option<SubState>,
    /// Whether the stanza is delivered to the account's resources.
    pub deliver: bool,
    /// A stanza the server answers with on the account's behalf (A.3.1: a subscription request
    /// from a contact that is already subscribed is answered with `subscribed`).
    pub auto_reply: Option<SubKind>,
}

fn changed(before: SubState, after: SubState) -> Option<SubState> {
    (before != after).then_some(after)
}

/// RFC 6121 Appendix A.2: the account sends `kind` to a contact whose state is `s`.
pub fn outbound(kind: SubKind, s: SubState) -> OutboundRule {
    match kind {
        // A.2.1: always routed (a contact may have lost its state); asking again while already
        // subscribed or already asking changes nothing.
        SubKind::Subscribe => {
            let mut n = s;
            if !s.has_to() {
                n.pending_out = true;
            }
            OutboundRule {
                new: changed(s, n),
                route: true,
            }
        }
        // A.2.2: approving a request only means something while one is pending.
        SubKind::Subscribed => {
            if s.pending_in {
                let n = SubState {
                    pending_in: false,
                    ..s
                }
                .add_from();
                OutboundRule {
                    new: changed(s, n),
                    route: true,
                }
            } else {
                OutboundRule {
                    new: None,
                    route: false,
                }
            }
        }
        // A.2.3: always routed; ends the account's subscription to the contact and any pending
        // request for one.
        SubKind::Unsubscribe => {
            let n = SubState {
                pending_out: false,
                ..s
            }
            .remove_to();
            OutboundRule {
                new: changed(s, n),
                route: true,
            }
        }
        // A.2.4: denies a pending request, or cancels the contact's subscription.
        SubKind::Unsubscribed => {
            if s.pending_in {
                OutboundRule {
                    new: changed(
                        s,
                        SubState {
                            pending_in: false,
                            ..s
                        },
                    ),
                    route: true,
                }
            } else if s.has_from() {
                OutboundRule {
                    new: changed(s, s.remove_from()),
                    route: true,
                }
            } else {
                OutboundRule {
                    new: None,
                    route: false,
                }
            }
        }
    }
}

/// RFC 6121 Appendix A.3: a contact whose state is `s` sends `kind` to the account.
pub fn inbound(kind: SubKind, s: SubState) -> InboundRule {
    let ignore = InboundRule {
        new: None,
        deliver: false,
        auto_reply: None,
    };
    match kind {
        // A.3.1: a request from a contact that is already subscribed is answered by the server;
        // one that is already pending is not delivered twice.
        SubKind::Subscribe => {
            if s.has_from() {
                InboundRule {
                    auto_reply: Some(SubKind::Subscribed),
                    ..ignore
                }
            } else if s.pending_in {
                ignore
            } else {
                InboundRule {
                    new: changed(
                        s,
                        SubState {
                            pending_in: true,
                            ..s
                        },
                    ),
                    deliver: true,
                    auto_reply: None,
                }
            }
        }
        // A.3.2: the contact withdraws its request or ends its subscription to the account.
        SubKind::Unsubscribe => {
            if s.pending_in || s.has_from() {
                let n = SubState {
                    pending_in: false,
                    ..s
                }
                .remove_from();
                InboundRule {
                    new: changed(s, n),
                    deliver: true,
                    auto_reply: None,
                }
            } else {
                ignore
            }
        }
        // A.3.3: an approval counts only while the account's request is pending.
        SubKind::Subscribed => {
            if s.pending_out {
                let n = SubState {
                    pending_out: false,
                    ..s
                }
                .add_to();
                InboundRule {
                    new: changed(s, n),
                    deliver: true,
                    auto_reply: None,
                }
            } else {
                ignore
            }
        }
        // A.3.4: the contact denies the account's request or cancels its subscription.
        SubKind::Unsubscribed => {
            if s.pending_out || s.has_to() {
                let n = SubState {
                    pending_out: false,
                    ..s
                }
                .remove_to();
                InboundRule {
                    new: changed(s, n),
                    deliver: true,
                    auto_reply: None,
                }
            } else {
                ignore
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(name: &str) -> SubState {
        SubState::from_rfc_name(name).unwrap_or_else(|| panic!("unknown state {name}"))
    }

    /// (state before, route?, state after or "no state change"), as in the RFC tables.
    type Row = (&'static str, bool, &'static str);

    fn check_out(kind: SubKind, rows: [Row; 9]) {
        for (before, route, after) in rows {
            let r = outbound(kind, st(before));
            let want = if after == "no state change" {
                None
            } else {
                Some(st(after))
            };
            assert_eq!(r.route, route, "{} from {before}: route", kind.name());
            assert_eq!(r.new, want, "{} from {before}: new state", kind.name());
        }
    }

    fn check_in(kind: SubKind, rows: [Row; 9]) {
        for (before, deliver, after) in rows {
            let r = inbound(kind, st(before));
            let want = if after == "no state change" {
                None
            } else {
                Some(st(after))
            };
            assert_eq!(r.deliver, deliver, "{} from {before}: deliver", kind.name());
            assert_eq!(r.new, want, "{} from {before}: new state", kind.name());
        }
    }

    #[test]
    fn names_round_trip() {
        for name in SubState::ALL {
            assert_eq!(st(name).rfc_name(), name);
        }
        // Flags the RFC does not allow with the subscription are dropped.
        assert_eq!(SubState::new(Subscription::Both, true, true), st("Both"));
        assert_eq!(SubState::new(Subscription::To, true, false), st("To"));
        assert_eq!(SubState::new(Subscription::From, false, true), st("From"));
    }

    #[test]
    fn a_2_1_outbound_subscribe() {
        check_out(
            SubKind::Subscribe,
            [
                ("None", true, "None + Pending Out"),
                ("None + Pending Out", true, "no state change"),
                ("None + Pending In", true, "None + Pending Out+In"),
                ("None + Pending Out+In", true, "no state change"),
                ("To", true, "no state change"),
                ("To + Pending In", true, "no state change"),
                ("From", true, "From + Pending Out"),
                ("From + Pending Out", true, "no state change"),
                ("Both", true, "no state change"),
            ],
        );
    }

    #[test]
    fn a_2_2_outbound_unsubscribe() {
        check_out(
            SubKind::Unsubscribe,
            [
                ("None", true, "no state change"),
                ("None + Pending Out", true, "None"),
                ("None + Pending In", true, "no state change"),
                ("None + Pending Out+In", true, "None + Pending In"),
                ("To", true, "None"),
                ("To + Pending In", true, "None + Pending In"),
                ("From", true, "no state change"),
                ("From + Pending Out", true, "From"),
                ("Both", true, "From"),
            ],
        );
    }

    #[test]
    fn a_2_3_outbound_subscribed() {
        check_out(
            SubKind::Subscribed,
            [
                ("None", false, "no state change"),
                ("None + Pending Out", false, "no state change"),
                ("None + Pending In", true, "From"),
                ("None + Pending Out+In", true, "From + Pending Out"),
                ("To", false, "no state change"),
                ("To + Pending In", true, "Both"),
                ("From", false, "no state change"),
                ("From + Pending Out", false, "no state change"),
                ("Both", false, "no state change"),
            ],
        );
    }

    #[test]
    fn a_2_4_outbound_unsubscribed() {
        check_out(
            SubKind::Unsubscribed,
            [
                ("None", false, "no state change"),
                ("None + Pending Out", false, "no state change"),
                ("None + Pending In", true, "None"),
                ("None + Pending Out+In", true, "None + Pending Out"),
                ("To", false, "no state change"),
                ("To + Pending In", true, "To"),
                ("From", true, "None"),
                ("From + Pending Out", true, "None + Pending Out"),
                ("Both", true, "To"),
            ],
        );
    }

    #[test]
    fn a_3_1_inbound_subscribe() {
        check_in(
            SubKind::Subscribe,
            [
                ("None", true, "None + Pending In"),
                ("None + Pending Out", true, "None + Pending Out+In"),
                ("None + Pending In", false, "no state change"),
                ("None + Pending Out+In", false, "no state change"),
                ("To", true, "To + Pending In"),
                ("To + Pending In", false, "no state change"),
                ("From", false, "no state change"),
                ("From + Pending Out", false, "no state change"),
                ("Both", false, "no state change"),
            ],
        );
        for s in ["From", "From + Pending Out", "Both"] {
            assert_eq!(
                inbound(SubKind::Subscribe, st(s)).auto_reply,
                Some(SubKind::Subscribed),
                "{s}"
            );
        }
        for s in ["None", "None + Pending In", "To + Pending In"] {
            assert_eq!(inbound(SubKind::Subscribe, st(s)).auto_reply, None, "{s}");
        }
    }

    #[test]
    fn a_3_2_inbound_unsubscribe() {
        check_in(
            SubKind::Unsubscribe,
            [
                ("None", false, "no state change"),
                ("None + Pending Out", false, "no state change"),
                ("None + Pending In", true, "None"),
                ("None + Pending Out+In", true, "None + Pending Out"),
                ("To", false, "no state change"),
                ("To + Pending In", true, "To"),
                ("From", true, "None"),
                ("From + Pending Out", true, "None + Pending Out"),
                ("Both", true, "To"),
            ],
        );
    }

    #[test]
    fn a_3_3_inbound_subscribed() {
        check_in(
            SubKind::Subscribed,
            [
                ("None", false, "no state change"),
                ("None + Pending Out", true, "To"),
                ("None + Pending In", false, "no state change"),
                ("None + Pending Out+In", true, "To + Pending In"),
                ("To", false, "no state change"),
                ("To + Pending In", false, "no state change"),
                ("From", false, "no state change"),
                ("From + Pending Out", true, "Both"),
                ("Both", false, "no state change"),
            ],
        );
    }

    #[test]
    fn a_3_4_inbound_unsubscribed() {
        check_in(
            SubKind::Unsubscribed,
            [
                ("None", false, "no state change"),
                ("None + Pending Out", true, "None"),
                ("None + Pending In", false, "no state change"),
                ("None + Pending Out+In", true, "None + Pending In"),
                ("To", true, "None"),
                ("To + Pending In", true, "None + Pending In"),
                ("From", false, "no state change"),
                ("From + Pending Out", true, "From"),
                ("Both", true, "From"),
            ],
        );
    }
}
