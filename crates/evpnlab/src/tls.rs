//! Mutual TLS for the lab (`evpnlab --tls`) and the chaos fleet
//! (`evpnlab-chaos --tls`): a development CA in the work directory
//! (`pki/`), certificates for evpnr (`evpn://registry/evpnr`), every evpnd
//! (`evpn://instance/<id>`) and the lab's operator (`evpn://user/admin`:
//! role admin at evpnr, viewer at the evpnds, which take changes only from
//! evpnr), and the clients the lab's own tools dial with.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use evpn_tls::{ClientTls, Expect, Identity, TlsFiles, pki::DevCa};
use tonic::transport::{Channel, Endpoint};

/// evpnr's name in its identity (`evpn://registry/evpnr`).
pub const REGISTRY: &str = "evpnr";
/// The lab operator's name (`evpn://user/admin`).
pub const ADMIN: &str = "admin";

/// The lab's development CA and the certificates it issued.
pub struct LabPki {
    ca: DevCa,
    /// The operator's files (for evpnc: `EVPNC_TLS_*`).
    pub admin: TlsFiles,
    clients: Mutex<HashMap<Identity, Arc<ClientTls>>>,
}

/// A client's TLS and the server identity it accepts.
pub type Dial = Option<(Arc<ClientTls>, Expect)>;

impl LabPki {
    /// Create the CA in `dir` (which must not hold one) and the operator's
    /// certificate.
    pub fn create(dir: &Path) -> anyhow::Result<Arc<LabPki>> {
        let ca = DevCa::create(dir, "evpnlab development CA")?;
        let admin = ca.issue(
            &Identity::User(ADMIN.into()),
            evpn_tls::pki::DEFAULT_VALIDITY,
            false,
        )?;
        Ok(Arc::new(LabPki {
            ca,
            admin,
            clients: Mutex::new(HashMap::new()),
        }))
    }

    /// The CA's directory.
    pub fn dir(&self) -> &Path {
        &self.ca.dir
    }

    /// Issue (or issue again) the certificate of `id`.
    pub fn issue(&self, id: &Identity) -> anyhow::Result<TlsFiles> {
        Ok(self.ca.issue(id, evpn_tls::pki::DEFAULT_VALIDITY, true)?)
    }

    /// Client TLS as `id` (issued on first use); `None` is the operator.
    pub fn client(&self, id: Option<&Identity>) -> anyhow::Result<Arc<ClientTls>> {
        let id = id.cloned().unwrap_or_else(|| Identity::User(ADMIN.into()));
        let mut m = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = m.get(&id) {
            return Ok(c.clone());
        }
        let files = if id == Identity::User(ADMIN.into()) {
            self.admin.clone()
        } else {
            self.issue(&id)?
        };
        let c = ClientTls::load(files)?;
        m.insert(id, c.clone());
        Ok(c)
    }

    /// How the operator dials evpnr.
    pub fn to_evpnr(&self) -> anyhow::Result<Dial> {
        Ok(Some((
            self.client(None)?,
            Expect::Exactly(Identity::Registry(REGISTRY.into())),
        )))
    }

    /// How the operator dials instance `id`'s evpnd.
    pub fn to_evpnd(&self, id: &str) -> anyhow::Result<Dial> {
        Ok(Some((
            self.client(None)?,
            Expect::Exactly(Identity::Instance(id.into())),
        )))
    }

    /// evpnr's `tls:` section (indented for the `evpnr:` key): its
    /// registry certificate, the operator as admin. `extra` lines (indented
    /// by four) are added to it.
    pub fn evpnr_yaml(&self, extra: &str) -> anyhow::Result<String> {
        let f = self.issue(&Identity::Registry(REGISTRY.into()))?;
        Ok(tls_yaml(&f, "admin") + extra)
    }

    /// Instance `id`'s `tls:` section: its instance certificate, the
    /// operator as viewer.
    pub fn evpnd_yaml(&self, id: &str) -> anyhow::Result<String> {
        let f = self.issue(&Identity::Instance(id.into()))?;
        Ok(tls_yaml(&f, "viewer"))
    }

    /// The shell lines that point evpnc at this lab.
    pub fn exports(&self) -> String {
        format!(
            "export EVPNC_TLS_CERT={} EVPNC_TLS_KEY={} EVPNC_TLS_CA={}",
            self.admin.cert.display(),
            self.admin.key.display(),
            self.admin.ca.display()
        )
    }
}

fn tls_yaml(f: &TlsFiles, admin_role: &str) -> String {
    format!(
        "  tls:\n    cert: {}\n    key: {}\n    ca: {}\n    roles:\n      \"evpn://user/{ADMIN}\": {admin_role}\n",
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    )
}

/// The PKI directory of a lab work directory.
pub fn pki_dir(work: &Path) -> PathBuf {
    work.join("pki")
}

fn endpoint(addr: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?)
}

/// Connect to `addr` now: plaintext, or mutual TLS with `dial`.
pub async fn connect(addr: &str, dial: &Dial) -> anyhow::Result<Channel> {
    let ep = endpoint(addr)?.connect_timeout(Duration::from_secs(2));
    Ok(match dial {
        None => ep.connect().await?,
        Some((c, expect)) => {
            ep.connect_with_connector(c.connector(expect.clone()))
                .await?
        }
    })
}

/// A lazily connecting channel to `addr` with a per-request `timeout`.
pub fn connect_lazy(addr: &str, dial: &Dial, timeout: Duration) -> anyhow::Result<Channel> {
    let ep = endpoint(addr)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout);
    Ok(match dial {
        None => ep.connect_lazy(),
        Some((c, expect)) => ep.connect_with_connector_lazy(c.connector(expect.clone())),
    })
}

/// `GET path` over HTTP/1.0 (plaintext, or mutual TLS with `dial`, ALPN
/// `http/1.1` as a scraper would): the body.
pub async fn http_get(addr: &str, path: &str, dial: &Dial) -> anyhow::Result<String> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange(
        mut s: impl AsyncRead + AsyncWrite + Unpin,
        req: String,
    ) -> anyhow::Result<String> {
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf).await {
            Ok(_) => {}
            // A server closing without TLS close_notify after its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(String::from_utf8_lossy(&buf).to_string())
    }
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let text = match dial {
        None => exchange(tcp, req).await?,
        Some((c, expect)) => {
            let cfg = c.http_config(expect.clone())?;
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("evpn.invalid")?;
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await?;
            exchange(tls, req).await?
        }
    };
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}
