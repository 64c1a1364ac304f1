//! The admin API: `causerie_admin`'s operations over HTTP and JSON (docs/admin-api.md).
//!
//! - `POST /v1/ops/{name}` with the arguments as a JSON object (an empty body counts as `{}`):
//!   `200` with the result, or an error status with `{"error": {"kind", "message"}}`.
//! - `GET /v1/ops`: the operations with what each needs. `GET /health`: `{"status": "ok"}`.
//!
//! On the Unix socket (mode 0600) the caller is the peer's Unix user (SO_PEERCRED): the user
//! the server runs as, or root, with every permission; any other user is refused (403). On
//! TCP the caller is a bearer token of `admin.token_file` with the token's permission; a
//! missing or wrong token is refused (401). Every refusal is written to the audit log, at most
//! [`REFUSALS_PER_MINUTE`] a minute (the others are counted in the next record).

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use causerie_admin::{Actor, AdminError, Context, ErrorKind, Permission, Registry};
use causerie_config::Config;
use causerie_storage::NewAuditEvent;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::HttpError;
use crate::serve::{self, ConnectionLimit, Peer};
use crate::tokens::Tokens;

/// Refusals written to the audit log per minute; a flood of wrong tokens must not fill it.
pub const REFUSALS_PER_MINUTE: u32 = 30;

/// The admin API's settings, from `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub socket: PathBuf,
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
    pub max_request_bytes: usize,
    pub max_connections: usize,
}

impl AdminOptions {
    pub fn from_config(config: &Config) -> Self {
        AdminOptions {
            socket: config.admin_socket(),
            listen: config.admin.listen.clone(),
            token_file: config.admin.token_file.clone(),
            max_request_bytes: config.admin.max_request_bytes,
            max_connections: config.admin.max_connections,
        }
    }
}

/// The socket file this server created, removed when the API stops (only if it is still the
/// same file: a later server may have replaced it).
struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Listeners bound, not yet served: the server binds early, so that a second server on the
/// same data folder stops before it touches anything, and serves once its core is built.
pub struct BoundAdmin {
    unix: UnixListener,
    file: SocketFile,
    /// The user the server runs as: the owner of the socket it created.
    server_uid: u32,
    tcp: Option<(TcpListener, SocketAddr)>,
    tokens: Option<Arc<Tokens>>,
    opts: AdminOptions,
}

/// Binds the socket (removing a stale one, refusing one a live server holds) and, when
/// configured, the TCP listener, after reading its token file.
pub async fn bind(opts: &AdminOptions) -> Result<BoundAdmin, HttpError> {
    let path = &opts.socket;
    let shown = path.display().to_string();
    let io = |source| HttpError::Socket {
        path: shown.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket nobody listens on is what a server that did not stop cleanly leaves.
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(HttpError::SocketInUse { path: shown }),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %shown, "removing a stale admin socket");
                    std::fs::remove_file(path).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
        }
        Ok(_) => return Err(HttpError::NotASocket { path: shown }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let unix = UnixListener::bind(path).map_err(io)?;
    // Connecting needs write permission on the socket: 0600 keeps everyone but the owner and
    // root out. (Until this line the mode is the umask's; the peer check below refuses other
    // users in any case.)
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let file = SocketFile {
        path: path.clone(),
        id: (meta.dev(), meta.ino()),
    };
    let tokens = match &opts.token_file {
        Some(f) if opts.listen.is_some() => Some(Arc::new(Tokens::open(f).map_err(|reason| {
            HttpError::Tokens {
                path: f.display().to_string(),
                reason,
            }
        })?)),
        _ => None,
    };
    let tcp = match &opts.listen {
        Some(addr) => {
            let err = |source| HttpError::Listen {
                addr: addr.clone(),
                source,
            };
            let l = TcpListener::bind(addr.as_str()).await.map_err(err)?;
            let local = l.local_addr().map_err(err)?;
            tracing::info!(addr = %local, "admin API listening on TCP");
            Some((l, local))
        }
        None => None,
    };
    tracing::info!(path = %shown, "admin API listening on the socket");
    Ok(BoundAdmin {
        unix,
        file,
        server_uid: meta.uid(),
        tcp,
        tokens,
        opts: opts.clone(),
    })
}

impl BoundAdmin {
    pub fn socket_path(&self) -> &Path {
        &self.file.path
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|(_, a)| *a)
    }

    /// Starts serving the operations of `registry` against `ctx`.
    pub fn serve(self, registry: Arc<Registry>, ctx: Arc<Context>) -> AdminApi {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let limit = ConnectionLimit::new(self.opts.max_connections);
        let tcp_addr = self.tcp_addr();
        let state = Arc::new(ApiState {
            registry,
            ctx,
            tokens: self.tokens,
            server_uid: self.server_uid,
            max_body: self.opts.max_request_bytes,
            refusals: Mutex::new(Refusals::default()),
        });
        let router = router(state);
        let mut tasks = vec![tokio::spawn(serve::unix(
            self.unix,
            router.clone(),
            limit.clone(),
            shutdown_rx.clone(),
        ))];
        if let Some((l, _)) = self.tcp {
            tasks.push(tokio::spawn(serve::tcp(
                "admin API",
                l,
                router,
                limit.clone(),
                shutdown_rx,
            )));
        }
        AdminApi {
            shutdown_tx,
            tasks,
            limit,
            file: self.file,
            tcp_addr,
        }
    }
}

/// The running admin API.
pub struct AdminApi {
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    limit: ConnectionLimit,
    file: SocketFile,
    tcp_addr: Option<SocketAddr>,
}

impl AdminApi {
    pub fn socket_path(&self) -> &Path {
        &self.file.path
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Stops accepting, lets the requests in progress finish (at most `grace`), and removes
    /// the socket file.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if !self.limit.wait_idle(grace).await {
            tracing::warn!("admin API requests still running at the end of the grace period");
        }
        drop(self.file);
    }
}

/// Refusals written and left out in the current minute.
#[derive(Default)]
struct Refusals {
    window: Option<Instant>,
    written: u32,
    skipped: u64,
}

struct ApiState {
    registry: Arc<Registry>,
    ctx: Arc<Context>,
    tokens: Option<Arc<Tokens>>,
    server_uid: u32,
    max_body: usize,
    refusals: Mutex<Refusals>,
}

fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/ops", get(catalogue))
        .route("/v1/ops/{name}", post(execute))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                &AdminError::not_found("no such endpoint; see docs/admin-api.md"),
            )
        })
        .with_state(state)
}

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The status of each kind of error.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Exists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(status: StatusCode, e: &AdminError) -> Response {
    let body = serde_json::json!({"error": {"kind": e.kind.as_str(), "message": e.message}});
    let mut r = json(status, body.to_string());
    if e.kind == ErrorKind::Unauthorized {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"causerie-admin\""),
        );
    }
    r
}

async fn health() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

/// The login name of a uid, from `/etc/passwd` (names from other sources show as the number).
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The connection's peer and the `Authorization` header, taken out of the request (whose body
/// cannot be held by reference across an await).
fn credentials(req: &Request) -> (Option<Peer>, Option<String>) {
    let peer = req.extensions().get::<Peer>().cloned();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (peer, authorization)
}

impl ApiState {
    /// Who is calling, or the refusal (already audited).
    async fn identify(
        &self,
        peer: Option<Peer>,
        authorization: Option<String>,
    ) -> Result<Actor, Response> {
        match peer.as_ref() {
            Some(Peer::Unix { uid, pid, .. }) => {
                let who = user_name(*uid).unwrap_or_else(|| format!("uid={uid}"));
                let origin = Some(match pid {
                    Some(p) => format!("unix:pid={p}"),
                    None => "unix".to_owned(),
                });
                if *uid == self.server_uid || *uid == 0 {
                    return Ok(Actor::new(format!("unix:{who}"), origin, Permission::Admin));
                }
                let e = AdminError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "uid {uid} may not use the admin socket: only the server's user (uid {}) and root may",
                        self.server_uid
                    ),
                );
                self.refused(&format!("unix:{who}"), origin, &e).await;
                Err(error(StatusCode::FORBIDDEN, &e))
            }
            Some(Peer::Tcp(addr)) => {
                let origin = Some(addr.to_string());
                let presented = authorization.as_deref().and_then(|v| {
                    // RFC 6750 §2.1; the scheme is case-insensitive (RFC 9110 §11.1).
                    let (scheme, token) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                });
                let found = match (presented, &self.tokens) {
                    (Some(t), Some(tokens)) => tokens.check(t).ok_or("wrong bearer token"),
                    (Some(_), None) => Err("no tokens are configured"),
                    (None, _) => Err("missing bearer token"),
                };
                match found {
                    Ok((name, permission)) => {
                        Ok(Actor::new(format!("token:{name}"), origin, permission))
                    }
                    Err(why) => {
                        let e = AdminError::new(ErrorKind::Unauthorized, why);
                        self.refused("anonymous", origin, &e).await;
                        Err(error(StatusCode::UNAUTHORIZED, &e))
                    }
                }
            }
            None => Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &AdminError::internal("connection without a peer"),
            )),
        }
    }

    /// Writes a refused connection to the audit log, unless this minute already has its
    /// share; the ones left out are counted in the next record written.
    async fn refused(&self, actor: &str, origin: Option<String>, e: &AdminError) {
        tracing::warn!(actor, origin = ?origin, reason = %e.message, "admin API access refused");
        let skipped = {
            let mut r = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if r.window
                .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60))
            {
                r.window = Some(now);
                r.written = 0;
            }
            if r.written >= REFUSALS_PER_MINUTE {
                r.skipped += 1;
                return;
            }
            r.written += 1;
            std::mem::take(&mut r.skipped)
        };
        let mut detail = e.message.clone();
        if skipped > 0 {
            detail.push_str(&format!(
                " ({skipped} earlier refusal(s) not recorded: more than {REFUSALS_PER_MINUTE} a minute)"
            ));
        }
        let event = NewAuditEvent {
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            actor: actor.to_owned(),
            action: "admin.auth".to_owned(),
            subject: String::new(),
            outcome: "refused".to_owned(),
            detail,
            remote_addr: origin,
        };
        if let Err(e) = self.ctx.storage.audit.append(&event).await {
            tracing::error!(error = %e, "cannot write an audit record");
        }
    }
}

async fn catalogue(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let (peer, authorization) = credentials(&req);
    if let Err(refused) = state.identify(peer, authorization).await {
        return refused;
    }
    match serde_json::to_string(&state.registry.list()) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &AdminError::internal(e.to_string()),
        ),
    }
}

async fn execute(
    State(state): State<Arc<ApiState>>,
    UrlPath(name): UrlPath<String>,
    req: Request,
) -> Response {
    let (peer, authorization) = credentials(&req);
    let actor = match state.identify(peer, authorization).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let body: Body = req.into_body();
    let bytes = match to_bytes(body, state.max_body).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &AdminError::bad_input(format!(
                    "the request is larger than admin.max_request_bytes ({} bytes) or was cut short",
                    state.max_body
                )),
            );
        }
    };
    let args = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &AdminError::bad_input(format!("the body is not JSON: {e}")),
                );
            }
        }
    };
    match state
        .registry
        .execute(&state.ctx, &actor, &name, args)
        .await
    {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => error(status(e.kind), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(socket: PathBuf) -> AdminOptions {
        AdminOptions {
            socket,
            listen: None,
            token_file: None,
            max_request_bytes: 1024,
            max_connections: 2,
        }
    }

    #[tokio::test]
    async fn the_socket_is_private_never_replaces_a_file_and_goes_away() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("admin.sock");
        std::fs::write(&path, "not a socket").expect("write");
        match bind(&opts(path.clone())).await {
            Err(HttpError::NotASocket { .. }) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a regular file was replaced"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).expect("kept"),
            "not a socket"
        );
        std::fs::remove_file(&path).expect("rm");

        let bound = bind(&opts(path.clone())).await.expect("bind");
        let meta = std::fs::symlink_metadata(&path).expect("socket");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        match bind(&opts(path.clone())).await {
            Err(HttpError::SocketInUse { .. }) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("two listeners on one socket"),
        }
        drop(bound);
        assert!(!path.exists(), "removed with the listener");
    }

    #[test]
    fn every_kind_has_its_status() {
        assert_eq!(status(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status(ErrorKind::Exists), StatusCode::CONFLICT);
        assert_eq!(status(ErrorKind::BadInput), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(ErrorKind::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(ErrorKind::Forbidden), StatusCode::FORBIDDEN);
        assert_eq!(status(ErrorKind::Unauthorized), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(ErrorKind::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
