//! The admin API of the running server: the operations of `causerie_admin` over the live core,
//! with the client and federation services behind the statistics.

use std::sync::Arc;

use causerie_admin::{Context, Live, Probe, Registry, S2sQueue, S2sStream};
use causerie_c2s::C2sServer;
use causerie_config::Config;
use causerie_core::Core;
use causerie_http::{AdminApi, BoundAdmin};
use causerie_s2s::S2s;
use causerie_storage::Storage;
use tokio::task::JoinHandle;

/// What the statistics read from the listeners.
struct Services {
    c2s: Arc<C2sServer>,
    s2s: Arc<S2s>,
}

impl Probe for Services {
    fn c2s_connections(&self) -> usize {
        self.c2s.connections()
    }

    fn s2s_connections(&self) -> usize {
        self.s2s.connections()
    }

    fn s2s_streams(&self) -> Vec<S2sStream> {
        self.s2s
            .streams()
            .into_iter()
            .map(|s| S2sStream {
                direction: s.direction.as_str().to_owned(),
                local: s.local,
                remote: s.remote,
                method: s.method.to_owned(),
            })
            .collect()
    }

    fn s2s_queues(&self) -> Vec<S2sQueue> {
        self.s2s
            .queue_depths()
            .into_iter()
            .map(|(local, remote, queued)| S2sQueue {
                local,
                remote,
                queued,
            })
            .collect()
    }
}

/// Serves the admin API on the listeners bound at start; returns it with the task that samples
/// the stanza counter (aborted with the other background tasks at shutdown).
pub(crate) fn serve(
    bound: BoundAdmin,
    config: &Config,
    storage: &Storage,
    core: &Arc<Core>,
    c2s: &Arc<C2sServer>,
    s2s: &Arc<S2s>,
) -> (AdminApi, JoinHandle<()>) {
    let probe = Services {
        c2s: c2s.clone(),
        s2s: s2s.clone(),
    };
    let live = Arc::new(Live::new(core.clone(), Some(Arc::new(probe))));
    let sampler = tokio::spawn(live.clone().sample_every_second());
    let ctx = Context::live(storage.clone(), config.clone(), live);
    let api = bound.serve(Arc::new(Registry::standard()), Arc::new(ctx));
    (api, sampler)
}
