//! How a command reaches the operations of `causerie_admin`: through the running server's admin
//! API on its Unix socket (HTTP/1.1 and JSON, docs/admin-api.md), or, when the server is not
//! running, straight against the database through the same registry ("offline"), for the
//! operations that can do without the server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use causerie_admin::{Actor, AdminError, Context, ErrorKind, Permission, Registry};
use causerie_config::Config;
use causerie_config::HttpUrl;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use crate::federation::actor;

/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one operation may take: an import of many accounts derives keys for each.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest answer read.
const MAX_RESPONSE_BYTES: usize = 512 * 1024 * 1024;

/// Exit code: the command needs the running server and it is not running (or not reachable).
pub(crate) const EXIT_NO_SERVER: u8 = 4;
/// Exit code: the server refused the caller (socket permissions, token, permission level).
pub(crate) const EXIT_DENIED: u8 = 5;

/// The exit code of each kind of error (see the header of main.rs).
pub(crate) fn exit_code(kind: ErrorKind) -> ExitCode {
    ExitCode::from(match kind {
        ErrorKind::NotFound | ErrorKind::Exists | ErrorKind::Conflict => 1,
        ErrorKind::BadInput => 2,
        ErrorKind::Internal => 3,
        ErrorKind::Unavailable => EXIT_NO_SERVER,
        ErrorKind::Forbidden | ErrorKind::Unauthorized => EXIT_DENIED,
    })
}

/// Prints an operation's error and returns its exit code.
pub(crate) fn failed(e: &AdminError) -> ExitCode {
    eprintln!("causeriectl: {}", e.message);
    exit_code(e.kind)
}

/// Where commands go: the options every command shares.
pub(crate) struct Target {
    pub config: Config,
    pub endpoint: Endpoint,
    /// `--offline`: never contact the server.
    pub offline: bool,
    /// Set once the server was found not running, so that later calls of the same command
    /// (the pages of an export) go to the database without asking again.
    down: std::cell::Cell<bool>,
}

/// Why the socket could not be used.
enum Unreachable {
    /// Nothing listens there: no socket file, a stale one, or no data folder.
    NotRunning(String),
    /// The socket is there but this user may not connect to it.
    Denied(String),
    /// Anything else (a timeout, a broken answer).
    Broken(String),
}

fn classify(socket: &Path, e: &std::io::Error) -> Unreachable {
    use std::io::ErrorKind as K;
    let at = socket.display();
    match e.kind() {
        K::NotFound | K::ConnectionRefused | K::NotADirectory => {
            Unreachable::NotRunning(format!("nothing listens on {at}"))
        }
        K::PermissionDenied => Unreachable::Denied(format!(
            "permission denied on the admin socket {at}: run causeriectl as the user the server \
             runs as, or as root"
        )),
        _ => Unreachable::Broken(format!("admin socket {at}: {e}")),
    }
}

/// Where the admin API is: the server's Unix socket, or its TCP listener with a bearer token.
pub(crate) enum Endpoint {
    Socket(PathBuf),
    Tcp {
        url: HttpUrl,
        /// Never printed.
        token: String,
        /// Extra trust anchors for an `https://` URL (a proxy's private CA).
        ca_file: Option<PathBuf>,
    },
}

impl Endpoint {
    fn describe(&self) -> String {
        match self {
            Endpoint::Socket(p) => format!("admin socket {}", p.display()),
            Endpoint::Tcp { url, .. } => format!("admin API at {}", url.origin()),
        }
    }

    /// Connects and runs one request: the status and the body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), Unreachable> {
        let at = self.describe();
        let timed_out = || {
            Unreachable::Broken(format!(
                "{at}: no answer within {} seconds",
                CONNECT_TIMEOUT.as_secs()
            ))
        };
        match self {
            Endpoint::Socket(socket) => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| classify(socket, &e))?;
                run_exchange(stream, &at, method, path, "localhost", None, body).await
            }
            Endpoint::Tcp {
                url,
                token,
                ca_file,
            } => {
                let connect = TcpStream::connect((url.host.as_str(), url.port));
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::ConnectionRefused => {
                            Unreachable::NotRunning(format!("nothing listens at {}", url.origin()))
                        }
                        _ => Unreachable::Broken(format!("{at}: {e}")),
                    })?;
                let _ = stream.set_nodelay(true);
                let host = url.authority();
                if !url.https {
                    run_exchange(stream, &at, method, path, &host, Some(token), body).await
                } else {
                    let tls = causerie_tls::https::client_config_with(ca_file.as_deref())
                        .map_err(|e| Unreachable::Broken(format!("{at}: {e}")))?;
                    let name = ServerName::try_from(url.host.clone())
                        .map_err(|e| Unreachable::Broken(format!("{at}: {e}")))?;
                    let stream = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        TlsConnector::from(tls).connect(name, stream),
                    )
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| Unreachable::Broken(format!("{at}: TLS: {e}")))?;
                    run_exchange(stream, &at, method, path, &host, Some(token), body).await
                }
            }
        }
    }
}

/// One HTTP/1.1 exchange on a connected stream, within [`REQUEST_TIMEOUT`].
async fn run_exchange<I>(
    io: I,
    at: &str,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<(StatusCode, Bytes), Unreachable>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let broken =
        |what: &str, e: &dyn std::fmt::Display| Unreachable::Broken(format!("{at}: {what}: {e}"));
    let exchange = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| broken("handshake", &e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| broken("request", &e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| broken("request", &e))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| broken("answer", &e))?
            .to_bytes();
        Ok((status, bytes))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Unreachable::Broken(format!(
            "{at}: no answer within {} minutes",
            REQUEST_TIMEOUT.as_secs() / 60
        ))),
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: AdminError,
}

impl Target {
    pub(crate) fn new(config: Config, endpoint: Option<Endpoint>, offline: bool) -> Self {
        let endpoint = endpoint.unwrap_or_else(|| Endpoint::Socket(config.admin_socket()));
        Target {
            config,
            endpoint,
            offline,
            down: std::cell::Cell::new(false),
        }
    }

    /// Runs operation `name` with `args` and returns its result as JSON text, or prints why
    /// not and returns the exit code. Through the server when it runs; otherwise offline when
    /// the operation allows it (`needs_server` false) and the error of exit code 4 when not.
    pub(crate) async fn call<A: Serialize>(
        &self,
        name: &str,
        args: &A,
        needs_server: bool,
    ) -> Result<String, ExitCode> {
        let args = serde_json::to_value(args).map_err(|e| {
            eprintln!("causeriectl: encoding the arguments: {e}");
            ExitCode::from(2)
        })?;
        if self.down.get() {
            return self.offline_call(name, args).await;
        }
        let reason = if self.offline {
            "--offline".to_owned()
        } else {
            let body = args.to_string().into_bytes();
            let path = format!("/v1/ops/{name}");
            match self.endpoint.request("POST", &path, body).await {
                Ok((status, bytes)) => return answer(status, &bytes),
                Err(Unreachable::NotRunning(why))
                    if matches!(self.endpoint, Endpoint::Tcp { .. }) =>
                {
                    // The database of a server reached over TCP is not this machine's to open.
                    eprintln!("causeriectl: cannot reach the server: {why}");
                    return Err(ExitCode::from(EXIT_NO_SERVER));
                }
                Err(Unreachable::NotRunning(why)) => format!("the server is not running ({why})"),
                Err(Unreachable::Denied(why)) => {
                    eprintln!("causeriectl: {why}");
                    return Err(ExitCode::from(EXIT_DENIED));
                }
                Err(Unreachable::Broken(why)) => {
                    eprintln!("causeriectl: cannot reach the server: {why}");
                    return Err(ExitCode::from(EXIT_NO_SERVER));
                }
            }
        };
        if needs_server {
            eprintln!("causeriectl: {reason}; {name} needs the running server");
            return Err(ExitCode::from(EXIT_NO_SERVER));
        }
        if !self.offline {
            eprintln!("causeriectl: {reason}; running {name} offline against the database");
        }
        self.down.set(true);
        self.offline_call(name, args).await
    }

    async fn offline_call(&self, name: &str, args: serde_json::Value) -> Result<String, ExitCode> {
        let storage = crate::open_storage(&self.config).await?;
        let ctx = Context::offline(storage, self.config.clone());
        let who = Actor::new(actor(), None, Permission::Admin);
        let result = Registry::standard().execute(&ctx, &who, name, args).await;
        ctx.storage.close().await;
        result.map_err(|e| failed(&e))
    }

    /// Like [`Target::call`], with the result decoded.
    pub(crate) async fn call_as<A: Serialize, T: DeserializeOwned>(
        &self,
        name: &str,
        args: &A,
        needs_server: bool,
    ) -> Result<(String, T), ExitCode> {
        let json = self.call(name, args, needs_server).await?;
        match serde_json::from_str(&json) {
            Ok(v) => Ok((json, v)),
            Err(e) => {
                eprintln!("causeriectl: the answer of {name} does not decode: {e}");
                Err(ExitCode::from(3))
            }
        }
    }
}

/// The result of an API call, or its error printed with its exit code.
fn answer(status: StatusCode, body: &[u8]) -> Result<String, ExitCode> {
    if status.is_success() {
        return String::from_utf8(body.to_vec()).map_err(|_| {
            eprintln!("causeriectl: the server answered with text that is not UTF-8");
            ExitCode::from(3)
        });
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => Err(failed(&b.error)),
        Err(_) => {
            eprintln!(
                "causeriectl: the server answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            );
            Err(ExitCode::from(match status {
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => 2,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => EXIT_DENIED,
                _ => 3,
            }))
        }
    }
}
