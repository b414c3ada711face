//! The client side: TLS 1.3 presenting our certificate, and verifying the
//! server's against the CA **and the identity we meant to reach** — when
//! evpnr dials member `r1` it checks that the certificate says
//! `evpn://instance/r1`, not that it matches the address it dialled (a
//! custom verifier; host names and IPs in certificates are ignored).
use std::sync::{Arc, RwLock};

use hyper_util::rt::TokioIo;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use crate::{Error, Identity, Material, TlsFiles, material::provider};

/// Which server identity a connection accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this identity.
    Exactly(Identity),
    /// Any registry (`evpn://registry/<name>`): an evpnd dialling evpnr.
    AnyRegistry,
    /// Any identity the CA signed (evpnc: the operator chose the address).
    Any,
}

impl Expect {
    fn accepts(&self, id: &Identity) -> bool {
        match self {
            Expect::Exactly(want) => want == id,
            Expect::AnyRegistry => matches!(id, Identity::Registry(_)),
            Expect::Any => true,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Exactly(i) => write!(f, "{i}"),
            Expect::AnyRegistry => f.write_str("a registry (evpn://registry/…)"),
            Expect::Any => f.write_str("any identity"),
        }
    }
}

#[derive(Debug)]
struct IdentityVerifier {
    roots: Arc<rustls::RootCertStore>,
    expect: Expect,
    provider: Arc<CryptoProvider>,
}

fn pki_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as W;
    rustls::Error::InvalidCertificate(match e {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        e => CertificateError::Other(rustls::OtherError(Arc::new(e))),
    })
}

impl ServerCertVerifier for IdentityVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(pki_error)?;
        let id = Identity::from_der(end_entity)
            .map_err(|e| rustls::Error::General(format!("the server's certificate {e}")))?;
        if !self.expect.accepts(&id) {
            return Err(rustls::Error::General(format!(
                "the server's certificate names {id}, not {}",
                self.expect
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client's TLS, reloadable (a reload affects connections made after it).
#[derive(Debug)]
pub struct ClientTls {
    files: TlsFiles,
    current: RwLock<Material>,
}

impl ClientTls {
    /// Load and check the files (see [`Material::load_at`]).
    pub fn load(files: TlsFiles) -> Result<Arc<ClientTls>, Error> {
        let m = Material::load(&files)?;
        Ok(Arc::new(ClientTls {
            files,
            current: RwLock::new(m),
        }))
    }

    /// Read the files again (see [`crate::ServerTls::reload`]).
    pub fn reload(&self) -> Result<Identity, Error> {
        let m = Material::load(&self.files)?;
        let id = m.identity.clone();
        if let Ok(mut cur) = self.current.write() {
            *cur = m;
        }
        Ok(id)
    }

    /// Our own identity.
    pub fn identity(&self) -> Identity {
        self.material().identity
    }

    fn material(&self) -> Material {
        self.current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// A rustls client configuration accepting only `expect`.
    pub fn config(&self, expect: Expect) -> Result<Arc<ClientConfig>, Error> {
        let m = self.material();
        let p = provider();
        let verifier = Arc::new(IdentityVerifier {
            roots: m.roots.clone(),
            expect,
            provider: p.clone(),
        });
        let mut c = ClientConfig::builder_with_provider(p)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| Error::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(m.chain.clone(), m.key.clone_key())
            .map_err(|e| Error::Config(format!("certificate and key: {e}")))?;
        c.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(c))
    }

    /// Like [`ClientTls::config`] for plain HTTP/1.1 (a `/metrics` scrape):
    /// ALPN `http/1.1`.
    pub fn http_config(&self, expect: Expect) -> Result<Arc<ClientConfig>, Error> {
        let mut c = (*self.config(expect)?).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(c))
    }

    /// A connector for tonic's `Endpoint::connect_with_connector(_lazy)`:
    /// TCP to the URI's host and port, then TLS accepting only a server that
    /// `expect` accepts, with the material current at each (re)connect.
    pub fn connector(
        self: &Arc<Self>,
        expect: Expect,
    ) -> impl tower::Service<
        http::Uri,
        Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
        Error = std::io::Error,
        Future = impl Future<
            Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>,
        > + Send,
    > + Clone
    + Send
    + 'static {
        let me = self.clone();
        tower::service_fn(move |uri: http::Uri| {
            let (me, expect) = (me.clone(), expect.clone());
            async move {
                let host = uri
                    .host()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_string();
                let port = uri.port_u16().unwrap_or(443);
                let cfg = me.config(expect).map_err(std::io::Error::other)?;
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                let _ = tcp.set_nodelay(true);
                // The name is not checked (the identity is); rustls needs one.
                let name = ServerName::try_from(host)
                    .unwrap_or_else(|_| ServerName::try_from("evpn.invalid").expect("valid name"));
                let tls = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await?;
                Ok(TokioIo::new(tls))
            }
        })
    }

    /// A lazily connecting tonic channel to `addr` (`host:port`) over TLS,
    /// accepting only a server that `expect` accepts; `endpoint` sets the
    /// endpoint's options (timeouts).
    pub fn channel(
        self: &Arc<Self>,
        addr: &str,
        expect: Expect,
        endpoint: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
    ) -> Result<tonic::transport::Channel, Error> {
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::Config(format!("address {addr:?}: {e}")))?;
        Ok(endpoint(ep).connect_with_connector_lazy(self.connector(expect)))
    }
}
