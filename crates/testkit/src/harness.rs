//! An in-process Causerie on ephemeral loopback ports, with its data in a temporary folder.

use std::net::SocketAddr;
use std::path::PathBuf;

use causerie_config::Config;
use causerie_server::Running;

use crate::client::{ClientConfig, TlsMode, Trust};

/// A server started for one test. Dropping it without [`TestServer::stop`] aborts its tasks with the
/// runtime; `stop` shuts it down the way SIGTERM does.
pub struct TestServer {
    pub running: Option<Running>,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Domain `localhost`, STARTTLS and direct TLS on 127.0.0.1, SQLite in a temporary folder, a
    /// self-signed certificate generated on start.
    pub async fn start() -> anyhow::Result<TestServer> {
        TestServer::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with the configuration adjusted by `f` first.
    pub async fn start_with(f: impl FnOnce(&mut Config)) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::default();
        config.server.domains = vec!["localhost".into()];
        config.server.data_dir = dir.path().join("data");
        config.server.shutdown_grace_secs = 5;
        config.c2s.starttls_listen = vec!["127.0.0.1:0".into()];
        config.c2s.direct_tls_listen = vec!["127.0.0.1:0".into()];
        config.s2s.listen = vec!["127.0.0.1:0".into()];
        config.s2s.direct_tls_listen = vec!["127.0.0.1:0".into()];
        config.http.listen = vec!["127.0.0.1:0".into()];
        // Tests never depend on the machine's DNS or CA bundle.
        config.s2s.use_system_roots = false;
        f(&mut config);
        config
            .validate()
            .map_err(|p| anyhow::anyhow!("test configuration invalid: {p:?}"))?;
        let running = causerie_server::start(&config).await?;
        Ok(TestServer {
            running: Some(running),
            config,
            dir,
        })
    }

    fn running(&self) -> &Running {
        // `running` is only taken by `stop`, which consumes the server.
        self.running
            .as_ref()
            .unwrap_or_else(|| unreachable!("server already stopped"))
    }

    pub fn starttls_addr(&self) -> SocketAddr {
        self.running().starttls_addrs[0]
    }

    pub fn direct_tls_addr(&self) -> SocketAddr {
        self.running().direct_tls_addrs[0]
    }

    /// The first server-to-server STARTTLS listener.
    pub fn s2s_addr(&self) -> SocketAddr {
        self.running().s2s_addrs[0]
    }

    pub fn s2s(&self) -> &std::sync::Arc<causerie_s2s::S2s> {
        &self.running().s2s
    }

    pub fn storage(&self) -> &causerie_storage::Storage {
        &self.running().storage
    }

    pub fn domain(&self) -> &str {
        &self.config.server.domains[0]
    }

    /// The generated certificate of the first domain (PEM), for clients that verify it.
    pub fn certificate_path(&self) -> PathBuf {
        causerie_tls_paths(&self.config, self.domain())
    }

    /// The admin API's Unix socket.
    pub fn admin_socket(&self) -> &std::path::Path {
        &self.running().admin_socket
    }

    /// The admin API's TCP address, when `admin.listen` is set.
    pub fn admin_tcp_addr(&self) -> Option<SocketAddr> {
        self.running().admin_tcp_addr
    }

    /// The public HTTP listener (`/metrics`, `/health`), unless `http.listen` was emptied.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.running().http_addrs.first().copied()
    }

    pub fn core(&self) -> &std::sync::Arc<causerie_core::Core> {
        &self.running().core
    }

    /// Creates an account through the same code path as `causeriectl user add`.
    pub async fn add_user(&self, local: &str, password: &str) -> anyhow::Result<()> {
        self.add_account(&format!("{local}@{}", self.domain()), password)
            .await
    }

    /// Creates an account on any hosted domain.
    pub async fn add_account(&self, jid: &str, password: &str) -> anyhow::Result<()> {
        let jid = causerie_server::users::account_jid(&self.config, jid)?;
        causerie_server::users::add(
            self.running().storage.users.as_ref(),
            &jid,
            password,
            self.config.auth.scram_iterations,
        )
        .await?;
        Ok(())
    }

    /// A client configuration for `local` over STARTTLS that trusts this server's certificate.
    pub fn client(&self, local: &str, password: &str) -> ClientConfig {
        let mut c = ClientConfig::new(self.starttls_addr(), self.domain(), local, password);
        c.trust = self.trust();
        c
    }

    /// The same over direct TLS (XEP-0368).
    pub fn direct_client(&self, local: &str, password: &str) -> ClientConfig {
        let mut c = ClientConfig::new(self.direct_tls_addr(), self.domain(), local, password);
        c.tls = TlsMode::DirectTls;
        c.trust = self.trust();
        c
    }

    /// Trust anchored on the server's self-signed certificate, so name checks run as in production.
    pub fn trust(&self) -> Trust {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        match CertificateDer::pem_file_iter(self.certificate_path())
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        {
            Ok(certs) if !certs.is_empty() => Trust::Roots(certs),
            _ => Trust::AnyCertificate,
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Shuts the server down the way SIGTERM does, then starts it again with the same
    /// configuration on the same data folder, so that tests see what survives a restart. The
    /// listeners are bound anew: with the default `127.0.0.1:0` addresses the ports change, so
    /// take client configurations from the returned server.
    pub async fn restart(mut self) -> anyhow::Result<TestServer> {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let running = causerie_server::start(&self.config).await?;
        Ok(TestServer {
            running: Some(running),
            config: self.config,
            dir: self.dir,
        })
    }
}

fn causerie_tls_paths(config: &Config, domain: &str) -> PathBuf {
    config
        .server
        .data_dir
        .join("tls")
        .join(format!("{domain}.crt"))
}
