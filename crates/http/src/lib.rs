//! HTTP services of the server, on axum over hyper (HTTP/1.1).
//!
//! Owns: the admin API ([`admin`]): `causerie_admin`'s operations as HTTP and JSON on a Unix
//! socket (mode 0600, callers identified by their Unix credentials) and optionally on TCP with
//! bearer tokens; the accept loops with their connection limit and header timeout
//! ([`serve`]), shared by every listener. Knows nothing of the operations beyond their
//! registry: no protocol logic. The public listener ([`public`]): Prometheus metrics at
//! `/metrics` and a health check at `/health` on the addresses of `http.listen`, on the same
//! loops; WebSocket and BOSH will join it.

pub mod admin;
pub mod public;
pub mod serve;
pub mod tokens;

pub use admin::{AdminApi, AdminOptions, BoundAdmin};
pub use public::{BoundPublic, PublicContext, PublicOptions, PublicServer};

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "admin socket {path}: another server is running and listening there (stop it first, or set admin.socket)"
    )]
    SocketInUse { path: String },
    #[error(
        "admin socket {path}: a file that is not a socket is in the way; remove it or set admin.socket"
    )]
    NotASocket { path: String },
    #[error("admin socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("admin API: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("http.listen: cannot listen on {addr}: {source}")]
    PublicListen {
        addr: String,
        source: std::io::Error,
    },
    #[error("admin.token_file {path}: {reason}")]
    Tokens { path: String, reason: String },
}
