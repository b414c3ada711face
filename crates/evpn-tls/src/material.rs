//! A program's own certificate, key and CA, loaded from PEM files and
//! checked up front, so a wrong file is a clear error at start-up (or at a
//! reload) rather than an opaque handshake failure later.
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use rustls::{RootCertStore, crypto::CryptoProvider, sign::CertifiedKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};

use crate::{Error, Identity};

/// Where a program's TLS files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Its certificate (PEM; the leaf first, then any intermediates).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8 / SEC1 / PKCS#1); must not be readable
    /// by group or others.
    pub key: PathBuf,
    /// The CA certificate(s) it trusts for its peers (PEM).
    pub ca: PathBuf,
}

/// Loaded and checked TLS material.
#[derive(Debug, Clone)]
pub struct Material {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    pub roots: Arc<RootCertStore>,
    /// Who the certificate names.
    pub identity: Identity,
    /// When the certificate expires.
    pub not_after: SystemTime,
}

/// The one crypto provider of every program: ring (pure Rust and
/// assembly, no C toolchain or OpenSSL). rustls marks it deprecated because
/// ring has no post-quantum key exchange; that is a known trade-off here.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Material {
    /// Load and check `files` now.
    pub fn load(files: &TlsFiles) -> Result<Material, Error> {
        Self::load_at(files, SystemTime::now())
    }

    /// Load and check `files` as of `now`: the key file's mode (not
    /// readable by group or others), every PEM parses, the key matches the
    /// certificate, the certificate is valid at `now`, is signed by the CA
    /// (through the chain's intermediates), and names one identity.
    pub fn load_at(files: &TlsFiles, now: SystemTime) -> Result<Material, Error> {
        check_key_mode(&files.key)?;
        let chain = read_certs(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| file_err(&files.key, format!("no usable private key: {e}")))?;
        let ca = read_certs(&files.ca)?;
        let mut roots = RootCertStore::empty();
        for c in &ca {
            roots
                .add(c.clone())
                .map_err(|e| file_err(&files.ca, format!("not a usable CA certificate: {e}")))?;
        }
        let p = provider();
        let signing = p
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| file_err(&files.key, format!("unsupported private key: {e}")))?;
        CertifiedKey::new(chain.clone(), signing)
            .keys_match()
            .map_err(|_| {
                file_err(
                    &files.key,
                    format!(
                        "this key does not match the certificate in {}",
                        files.cert.display()
                    ),
                )
            })?;
        let not_after = check_validity(&files.cert, &chain[0], now)?;
        let leaf = webpki::EndEntityCert::try_from(&chain[0])
            .map_err(|e| file_err(&files.cert, format!("unusable certificate: {e}")))?;
        let unix = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        leaf.verify_for_usage(
            p.signature_verification_algorithms.all,
            &roots.roots,
            &chain[1..],
            unix,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| {
            file_err(
                &files.cert,
                format!(
                    "is not signed by the CA in {} ({e}): wrong CA file, or a certificate of another CA",
                    files.ca.display()
                ),
            )
        })?;
        let identity =
            Identity::from_der(&chain[0]).map_err(|e| file_err(&files.cert, e.to_string()))?;
        Ok(Material {
            chain,
            key: Arc::new(key),
            roots: Arc::new(roots),
            identity,
            not_after,
        })
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no certificate"));
    }
    Ok(certs)
}

/// A private key readable by group or others is refused (as ssh does).
fn check_key_mode(path: &Path) -> Result<(), Error> {
    let md = std::fs::metadata(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(file_err(
            path,
            format!(
                "private key is readable by group or others (mode {mode:04o}); make it 0600 (chmod 600) and owned by the daemon's user"
            ),
        ));
    }
    Ok(())
}

/// The certificate is valid at `now`; returns its expiry.
fn check_validity(path: &Path, der: &[u8], now: SystemTime) -> Result<SystemTime, Error> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| file_err(path, format!("not an X.509 certificate: {e}")))?;
    let v = c.validity();
    let ts = |t: &x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.timestamp().max(0) as u64)
    };
    let (nb, na) = (ts(&v.not_before), ts(&v.not_after));
    if now < nb {
        return Err(file_err(
            path,
            format!(
                "certificate is not valid yet: valid from {} (is this host's clock right?)",
                v.not_before
            ),
        ));
    }
    if now > na {
        return Err(file_err(
            path,
            format!("certificate expired on {}", v.not_after),
        ));
    }
    Ok(na)
}
