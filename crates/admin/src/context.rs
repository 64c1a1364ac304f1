//! What operations run against: the database and the configuration always, the running
//! server's core when there is one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use causerie_config::Config;
use causerie_core::Core;
use causerie_storage::Storage;
use serde::{Deserialize, Serialize};

/// Everything an operation may use. Inside the server it holds the live core; in
/// `causeriectl`'s offline mode only the database and the configuration.
pub struct Context {
    pub storage: Storage,
    pub config: Config,
    pub live: Option<Arc<Live>>,
}

impl Context {
    /// For operations run without the server: against the database only.
    pub fn offline(storage: Storage, config: Config) -> Self {
        Context {
            storage,
            config,
            live: None,
        }
    }

    /// For operations run inside the server.
    pub fn live(storage: Storage, config: Config, live: Arc<Live>) -> Self {
        Context {
            storage,
            config,
            live: Some(live),
        }
    }

    /// The live server, or the error an operation that needs it returns.
    pub fn require_live(&self, what: &str) -> Result<&Arc<Live>, crate::AdminError> {
        self.live.as_ref().ok_or_else(|| {
            crate::AdminError::unavailable(format!("{what} needs the running server"))
        })
    }
}

/// A server-to-server stream as the statistics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S2sStream {
    /// `inbound` or `outbound`.
    pub direction: String,
    pub local: String,
    pub remote: String,
    /// How the remote domain was authenticated (`sasl-external`, `dialback`, …).
    pub method: String,
}

/// The stanzas waiting for one remote domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S2sQueue {
    pub local: String,
    pub remote: String,
    pub queued: usize,
}

/// What the core does not know about the listeners: the server wires an implementation over
/// its client and federation services.
pub trait Probe: Send + Sync {
    /// Open client connections, bound to an account or not yet.
    fn c2s_connections(&self) -> usize;
    /// Open server-to-server connections, authenticated or not.
    fn s2s_connections(&self) -> usize;
    /// Authenticated server-to-server streams.
    fn s2s_streams(&self) -> Vec<S2sStream>;
    /// Outbound server-to-server queues.
    fn s2s_queues(&self) -> Vec<S2sQueue>;
}

/// Samples of the stanza counter kept for rates: one a second for a minute.
const SAMPLES: usize = 61;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The running server, as operations see it.
pub struct Live {
    pub core: Arc<Core>,
    pub probe: Option<Arc<dyn Probe>>,
    started: Instant,
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Live {
    pub fn new(core: Arc<Core>, probe: Option<Arc<dyn Probe>>) -> Self {
        let started = Instant::now();
        let first = (started, core.stanzas_processed());
        Live {
            core,
            probe,
            started,
            samples: Mutex::new(VecDeque::from([first])),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the stanza counter now; [`Live::sample_every_second`] calls it.
    pub fn sample(&self) {
        let now = (Instant::now(), self.core.stanzas_processed());
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(now);
    }

    /// Samples the stanza counter once a second, forever; the server runs it as a task and
    /// aborts it at shutdown.
    pub async fn sample_every_second(self: Arc<Self>) {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.sample();
        }
    }

    /// Stanzas per second over about the last `window` (at most a minute), from the oldest
    /// sample in the window to the counter now; over the time since start when there are no
    /// older samples.
    pub fn stanza_rate(&self, window: Duration) -> f64 {
        let now = Instant::now();
        let count = self.core.stanzas_processed();
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let from = samples
            .iter()
            .find(|(at, _)| now.duration_since(*at) <= window + SAMPLE_EVERY / 2)
            .or_else(|| samples.back())
            .copied();
        drop(samples);
        let Some((at, then)) = from else {
            return 0.0;
        };
        let secs = now.duration_since(at).as_secs_f64();
        if secs < 0.001 {
            return 0.0;
        }
        count.saturating_sub(then) as f64 / secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causerie_core::CoreBuilder;

    #[tokio::test(start_paused = true)]
    async fn rates_come_from_the_samples() {
        let core = CoreBuilder::new(["localhost".to_owned()]).build();
        let live = Live::new(core.clone(), None);
        assert_eq!(live.stanza_rate(Duration::from_secs(10)), 0.0);
        // Nothing counts stanzas but `process`; feed it stanzas that go nowhere.
        for _ in 0..20 {
            let el = causerie_xml::Element::new("message", causerie_stanza::ns::CLIENT)
                .with_attr("to", "nobody@localhost");
            let _ = core.process(&causerie_core::Origin::Server, el).await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        live.sample();
        let rate = live.stanza_rate(Duration::from_secs(10));
        assert!((rate - 10.0).abs() < 0.01, "{rate}");
    }
}
