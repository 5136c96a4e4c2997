//! HTTPS: the certificate and key from PEM files, re-read when either file changes (checked at
//! most once a second, at a handshake) or on SIGHUP, so a renewed certificate needs no restart.

use config::TlsSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    stamp: Stamp,
    current: Arc<CertifiedKey>,
    checked: Instant,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

const CHECK_EVERY: Duration = Duration::from_secs(1);

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(cert), m(key))
}

fn load(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    use anyhow::Context;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("server.tls.cert_file: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("server.tls.cert_file: {} is not PEM", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "server.tls.cert_file: no certificate in {}",
        cert.display()
    );
    let k = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("server.tls.key_file: no private key in {}", key.display()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&k)
        .with_context(|| format!("server.tls.key_file: unsupported key in {}", key.display()))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match()
        .context("server.tls: the key does not belong to the certificate")?;
    Ok(ck)
}

impl ReloadingCert {
    pub fn open(t: &TlsSettings) -> anyhow::Result<Self> {
        let current = Arc::new(load(&t.cert_file, &t.key_file)?);
        Ok(Self {
            state: Mutex::new(State {
                stamp: stamp(&t.cert_file, &t.key_file),
                current,
                checked: Instant::now(),
            }),
            cert: t.cert_file.clone(),
            key: t.key_file.clone(),
        })
    }

    /// Re-reads the files if they changed (or always, with `force`); a bad pair is logged and the
    /// previous one kept.
    pub fn refresh(&self, force: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !force && st.checked.elapsed() < CHECK_EVERY {
            return;
        }
        st.checked = Instant::now();
        let now = stamp(&self.cert, &self.key);
        if !force && now == st.stamp {
            return;
        }
        st.stamp = now;
        match load(&self.cert, &self.key) {
            Ok(ck) => {
                st.current = Arc::new(ck);
                tracing::info!(cert = %self.cert.display(), "TLS certificate loaded");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS certificate not reloaded; keeping the previous one")
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh(false);
        Some(
            self.state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .current
                .clone(),
        )
    }
}

/// The acceptor, and the resolver (for SIGHUP).
pub fn acceptor(
    t: &TlsSettings,
) -> anyhow::Result<(tokio_rustls::TlsAcceptor, Arc<ReloadingCert>)> {
    let certs = Arc::new(ReloadingCert::open(t)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), certs))
}
