//! Accept loops shared by the HTTP listeners: a bound on the connections served at once, a
//! timeout for reading request headers, graceful shutdown, and the connection's identity
//! handed to the handlers as a request extension.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{Semaphore, watch};

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is at the other end of a connection, as the kernel tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A Unix socket client: its user and group ids (SO_PEERCRED) and process id.
    Unix {
        uid: u32,
        gid: u32,
        pid: Option<i32>,
    },
    /// A TCP client.
    Tcp(SocketAddr),
}

/// Connections served at once by every loop that shares it.
#[derive(Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    max: u32,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        let max = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// Waits until every connection has ended, at most `grace`; whether they all did.
    pub async fn wait_idle(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.permits.acquire_many(self.max))
            .await
            .is_ok_and(|p| p.is_ok())
    }
}

/// Resolves once shutdown is asked for (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves HTTP/1.1 on one connection until it ends, or until shutdown, when the request in
/// progress finishes first.
async fn connection<I>(io: I, router: Router, peer: Peer, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, req).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Accepts on a Unix socket until shutdown.
pub async fn unix(
    listener: UnixListener,
    router: Router,
    limit: ConnectionLimit,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let Ok(permit) = limit.permits.clone().try_acquire_owned() else {
            tracing::warn!("admin API: too many connections, closing a new one");
            continue;
        };
        let peer = match stream.peer_cred() {
            Ok(cred) => Peer::Unix {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: no peer credentials, closing");
                continue;
            }
        };
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(stream, router, peer, shutdown).await;
            drop(permit);
        });
    }
}

/// Accepts on TCP until shutdown; `name` says which listener in the log ("admin API", "HTTP").
pub async fn tcp(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limit: ConnectionLimit,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, listener = name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let Ok(permit) = limit.permits.clone().try_acquire_owned() else {
            tracing::warn!(peer = %addr, listener = name, "too many connections, closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection(stream, router, Peer::Tcp(addr), shutdown).await;
            drop(permit);
        });
    }
}
