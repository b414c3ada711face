//! The server side: TLS 1.3 with a mandatory client certificate signed by
//! the configured CA, over an acceptor of our own whose configuration can
//! be swapped at run time ([`ServerTls::reload`], on SIGHUP): a reload
//! changes what new connections see; connections already open (and their
//! gRPC streams) keep going untouched.
use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use rustls::{ServerConfig, server::WebPkiClientVerifier};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

use crate::{Error, Identity, Material, TlsFiles, material::provider};

/// The longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a server knows of a peer: its address and the identity its
/// certificate names. gRPC handlers find it in the request's extensions
/// (`req.extensions().get::<PeerInfo>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    pub identity: Identity,
}

/// A refused connection: who (address), and why.
pub type OnRefused = Arc<dyn Fn(SocketAddr, &str) + Send + Sync>;

/// A server's TLS, reloadable.
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<(Arc<ServerConfig>, Material)>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

fn server_config(m: &Material) -> Result<ServerConfig, Error> {
    let p = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(m.roots.clone(), p.clone())
        .build()
        .map_err(|e| Error::Config(format!("client verifier: {e}")))?;
    let mut c = ServerConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(m.chain.clone(), m.key.clone_key())
        .map_err(|e| Error::Config(format!("certificate and key: {e}")))?;
    c.alpn_protocols = vec![b"h2".to_vec()];
    Ok(c)
}

impl ServerTls {
    /// Load and check the files (see [`Material::load_at`]).
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, Error> {
        let m = Material::load(&files)?;
        let c = Arc::new(server_config(&m)?);
        Ok(Arc::new(ServerTls {
            files,
            current: RwLock::new((c, m)),
        }))
    }

    /// Read the files again; on success new connections use them (open
    /// ones are untouched). On an error nothing changes and the error says
    /// what is wrong with the new files.
    pub fn reload(&self) -> Result<Identity, Error> {
        let m = Material::load(&self.files)?;
        let c = Arc::new(server_config(&m)?);
        let id = m.identity.clone();
        if let Ok(mut cur) = self.current.write() {
            *cur = (c, m);
        }
        Ok(id)
    }

    /// The material in use.
    pub fn material(&self) -> Material {
        self.current
            .read()
            .map(|c| c.1.clone())
            .unwrap_or_else(|p| p.into_inner().1.clone())
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .map(|c| c.0.clone())
            .unwrap_or_else(|p| p.into_inner().0.clone())
    }

    /// Accept TLS connections on `listener`, for
    /// `tonic::transport::Server::serve_with_incoming`. Each handshake runs
    /// on its own task (a slow or silent client holds up nobody) with the
    /// configuration current when the TCP connection arrived; a failed one
    /// is reported to `on_refused` and dropped.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
        on_refused: OnRefused,
    ) -> impl futures::Stream<Item = std::io::Result<TlsConn>> + Send + 'static {
        self.accept_loop(listener, on_refused, false)
    }

    /// Like [`ServerTls::incoming`], for a plain HTTP server (`/metrics`):
    /// the same certificate, CA and mandatory client certificate, but ALPN
    /// offers `http/1.1` as well as `h2` (scrapers such as Prometheus speak
    /// HTTP/1.1).
    pub fn incoming_http(
        self: &Arc<Self>,
        listener: TcpListener,
        on_refused: OnRefused,
    ) -> impl futures::Stream<Item = std::io::Result<TlsConn>> + Send + 'static {
        self.accept_loop(listener, on_refused, true)
    }

    fn accept_loop(
        self: &Arc<Self>,
        listener: TcpListener,
        on_refused: OnRefused,
        http1: bool,
    ) -> impl futures::Stream<Item = std::io::Result<TlsConn>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving.
                        on_refused(SocketAddr::from(([0, 0, 0, 0], 0)), &format!("accept: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let mut config = me.config();
                if http1 {
                    let mut c = (*config).clone();
                    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                    config = Arc::new(c);
                }
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                let (tx2, on_refused) = (tx.clone(), on_refused.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => match peer_identity(tls.get_ref().1) {
                            Ok(identity) => {
                                let conn = TlsConn {
                                    inner: tls,
                                    peer: PeerInfo { addr, identity },
                                };
                                let _ = tx2.send(Ok(conn)).await;
                            }
                            Err(e) => on_refused(addr, &e.to_string()),
                        },
                        Ok(Err(e)) => on_refused(addr, &format!("TLS handshake failed: {e}")),
                        Err(_) => on_refused(
                            addr,
                            &format!("TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}"),
                        ),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

fn peer_identity(c: &rustls::ServerConnection) -> Result<Identity, Error> {
    let cert = c
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Error::Handshake("the client presented no certificate".into()))?;
    Identity::from_der(cert)
}

/// An accepted TLS connection with its peer's identity.
pub struct TlsConn {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl TlsConn {
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
