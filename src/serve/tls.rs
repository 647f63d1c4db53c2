//! HTTPS for the admission webhook: the API server calls webhooks over HTTPS only. The
//! certificate and key are PEM files (from cert-manager or a mounted Secret), re-read when they
//! change, so a rotated certificate is served without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let fail = |path: &Path, message: String| TlsError {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(cert, format!("cannot read PEM certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(fail(cert, "holds no certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| fail(key, format!("not a PEM private key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| fail(key, format!("unsupported private key: {e}")))?;
    Ok(CertifiedKey::new(chain, signing))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A verifier that accepts only clients with a certificate signed by the CAs in `ca_file`.
pub fn client_verifier(ca_file: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let fail = |message: String| TlsError {
        path: ca_file.to_path_buf(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| fail(format!("cannot read PEM certificates: {e}")))?
    {
        let cert = cert.map_err(|e| fail(format!("not a PEM CA bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no CA certificate".into()));
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| fail(format!("cannot verify clients with it: {e}")))
}

/// Serves the current certificate and re-reads the files when their modification times change.
#[derive(Debug)]
pub struct CertReloader {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl CertReloader {
    /// Loads the certificate chain and key.
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let loaded = load(cert, key)?;
        Ok(Arc::new(CertReloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(loaded)),
            stamps: Mutex::new((modified(cert), modified(key))),
        }))
    }

    /// Re-reads the files if they changed. A change that does not load (a key written before
    /// its certificate, say) keeps the previous pair until the next check.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = (modified(&self.cert), modified(&self.key));
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *stamps == now {
            return Ok(false);
        }
        let loaded = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        *stamps = now;
        Ok(true)
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Serves `router` over HTTPS on `listener` until `shutdown`, checking the certificate files
/// for changes every `check_every`; with `clients`, only clients it verifies are served.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    certificates: Arc<CertReloader>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
    check_every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let reloads = {
        let certificates = certificates.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(check_every);
            loop {
                ticks.tick().await;
                match certificates.reload_if_changed() {
                    Ok(true) => tracing::info!("TLS certificate reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS certificate changed but cannot be loaded; serving the previous one")
                    }
                }
            }
        })
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| unreachable!("ring supports the default protocol versions: {e}"));
    let mut config = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = TowerToHyperService::new(router);
            if let Err(e) = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    reloads.abort();
}
