//! Counters of the stanza path, through the `metrics` facade (names and labels in
//! docs/metrics.md).
//!
//! The per-stanza counters are registered once, on first use, and kept in a table indexed by
//! stream and kind: counting a stanza is one atomic addition, with no label formatting or map
//! lookup. Without a recorder installed (no public HTTP listener) the handles do nothing. A
//! process installs its recorder before the first stanza; handles taken earlier would stay
//! inert.

use std::sync::OnceLock;

use causerie_stanza::{StanzaErrorCondition, StanzaKind};
use metrics::Counter;

/// The kind of stream a stanza crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// A client stream (RFC 6120, `jabber:client`).
    C2s,
    /// A stream with another server (`jabber:server`).
    S2s,
}

impl Stream {
    const ALL: [Stream; 2] = [Stream::C2s, Stream::S2s];

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::C2s => "c2s",
            Stream::S2s => "s2s",
        }
    }
}

const KINDS: [StanzaKind; 3] = [StanzaKind::Message, StanzaKind::Presence, StanzaKind::Iq];

fn kind_label(kind: StanzaKind) -> &'static str {
    match kind {
        StanzaKind::Message => "message",
        StanzaKind::Presence => "presence",
        StanzaKind::Iq => "iq",
    }
}

fn kind_index(kind: StanzaKind) -> usize {
    match kind {
        StanzaKind::Message => 0,
        StanzaKind::Presence => 1,
        StanzaKind::Iq => 2,
    }
}

/// One counter per stream and stanza kind.
type Table = [[Counter; 3]; 2];

struct Handles {
    received: Table,
    sent: Table,
}

fn table(name: &'static str) -> Table {
    Stream::ALL.map(|stream| {
        KINDS.map(
            |kind| metrics::counter!(name, "stream" => stream.as_str(), "kind" => kind_label(kind)),
        )
    })
}

fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| Handles {
        received: table("causerie_stanzas_received_total"),
        sent: table("causerie_stanzas_sent_total"),
    })
}

/// A stanza read from a stream, before any check of its content.
pub fn stanza_received(stream: Stream, kind: StanzaKind) {
    handles().received[stream as usize][kind_index(kind)].increment(1);
}

/// A stanza written to a stream.
pub fn stanza_sent(stream: Stream, kind: StanzaKind) {
    handles().sent[stream as usize][kind_index(kind)].increment(1);
}

/// A stanza error the server generated in answer to a stanza (RFC 6120 §8.3).
pub fn stanza_error(condition: StanzaErrorCondition) {
    // Errors are not the common path: the handle is looked up by its labels each time.
    metrics::counter!("causerie_stanza_errors_total", "condition" => condition.name()).increment(1);
}
