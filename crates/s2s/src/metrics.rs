//! Server-to-server stream decisions, through the `metrics` facade (docs/metrics.md). The
//! streams open now are sampled when the metrics are read.

use crate::server::Direction;

/// Counts an authentication decision on a stream: the remote domain proved who it is, or the
/// stream was refused (policy, certificate, dialback).
pub(crate) fn stream_authentication(direction: Direction, accepted: bool) {
    let result = if accepted { "accepted" } else { "refused" };
    metrics::counter!(
        "causerie_s2s_stream_authentications_total",
        "direction" => direction.as_str(),
        "result" => result
    )
    .increment(1);
}
