//! Serving the router on a listener, in plain HTTP or TLS (rustls), HTTP/1.1 and HTTP/2, with
//! graceful shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::HttpError;

/// How long a client may take for the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4096;

/// How long shutdown waits for open requests to finish before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. too many open files) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The PEM files of the server certificate (chain) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Facts about the connection a request came on, inserted into every request's extensions by
/// [`serve`].
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    /// Whether the connection is TLS (the default scheme of generated URLs).
    pub(crate) tls: bool,
    shutdown: watch::Receiver<bool>,
}

impl ConnectionInfo {
    /// Info for a connection; `shutdown` turns `true` when the server starts shutting down.
    pub(crate) fn new(tls: bool, shutdown: watch::Receiver<bool>) -> Self {
        ConnectionInfo { tls, shutdown }
    }

    /// Completes when the server starts shutting down; endless responses (events, followed
    /// logs) end then, so that graceful shutdown does not wait for them.
    pub(crate) async fn shutting_down(&mut self) {
        // An error means the server is gone: that is a shutdown too.
        let _ = self.shutdown.wait_for(|stopping| *stopping).await;
    }
}

/// Loads the certificate chain and key into a rustls server configuration (ring provider,
/// HTTP/2 and HTTP/1.1 by ALPN). Every error names the file concerned.
pub fn load_tls(files: &TlsFiles) -> Result<ServerConfig, HttpError> {
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| HttpError::InvalidPem {
            path: files.cert.clone(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(HttpError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => HttpError::NoPrivateKey {
            path: files.key.clone(),
        },
        other => HttpError::InvalidPem {
            path: files.key.clone(),
            reason: other.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|source| HttpError::TlsConfig {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, HttpError> {
    std::fs::read(path).map_err(|source| HttpError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Serves `router` on `listener` until `shutdown` completes, with TLS when `tls` is given
/// (the files are loaded before the first connection is accepted, so a bad certificate fails
/// here). On shutdown the listener is closed, endless streams end, and open requests get up to
/// 10 s to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let acceptor = match &tls {
        Some(files) => Some(TlsAcceptor::from(Arc::new(load_tls(files)?))),
        None => None,
    };
    let (stop, stopping) = watch::channel(false);
    let graceful = GracefulShutdown::new();
    let builder = connection_builder();
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting an HTTP connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let info = ConnectionInfo::new(acceptor.is_some(), stopping.clone());
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            watcher: graceful.watcher(),
            info,
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            connection.run(stream, acceptor).await;
            drop(slot);
        });
    }
    drop(listener);
    // Receivers may all be gone already; nothing to tell then.
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "HTTP connections still open after the shutdown grace period; dropping them"
        );
    }
    Ok(())
}

/// HTTP/1.1 and HTTP/2 with a timer, so that a client that never finishes its request headers
/// is disconnected after [`HEADER_READ_TIMEOUT`].
fn connection_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// One accepted connection, served on its own task.
struct Connection {
    router: Router,
    builder: Builder<TokioExecutor>,
    watcher: Watcher,
    info: ConnectionInfo,
}

impl Connection {
    async fn run(self, stream: TcpStream, acceptor: Option<TlsAcceptor>) {
        // hyper's protocol detection has no timer: a client that connects and sends nothing
        // would hold the connection forever.
        let mut first = [0u8; 1];
        match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(read)) if read > 0 => {}
            Ok(_) => return,
            Err(_) => {
                tracing::debug!("client sent nothing within the header read timeout");
                return;
            }
        }
        let Some(acceptor) = acceptor else {
            self.serve_io(stream).await;
            return;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => self.serve_io(tls_stream).await,
            Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
            Err(_) => tracing::debug!("TLS handshake timed out"),
        }
    }

    async fn serve_io<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            router,
            builder,
            watcher,
            info,
        } = self;
        let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(info.clone());
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        if let Err(error) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(error = %error, "HTTP connection ended with an error");
        }
    }
}
