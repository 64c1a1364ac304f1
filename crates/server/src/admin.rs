//! The admin API of the running server: the operations of `causerie_admin` over the live core,
//! with the client and federation services behind the statistics. The XEP-0133 commands run the
//! same registry in the same context.

use std::sync::Arc;

use causerie_admin::adhoc::ServiceAdmin;
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

/// Serves the admin API on the listeners bound at start, and hands the same registry and
/// context to the XEP-0133 commands; returns the API, the task that samples the stanza counter
/// (aborted with the other background tasks at shutdown) and the context, which the caller
/// keeps for as long as the server runs.
pub(crate) fn serve(
    bound: BoundAdmin,
    config: &Config,
    storage: &Storage,
    core: &Arc<Core>,
    (c2s, s2s): (&Arc<C2sServer>, &Arc<S2s>),
    service_admin: &ServiceAdmin,
) -> (AdminApi, JoinHandle<()>, Arc<Context>) {
    let probe = Services {
        c2s: c2s.clone(),
        s2s: s2s.clone(),
    };
    let live = Arc::new(Live::new(core.clone(), Some(Arc::new(probe))));
    let sampler = tokio::spawn(live.clone().sample_every_second());
    let ctx = Arc::new(Context::live(storage.clone(), config.clone(), live));
    let registry = Arc::new(Registry::standard());
    service_admin.attach(registry.clone(), &ctx);
    let api = bound.serve(registry, ctx.clone());
    (api, sampler, ctx)
}
