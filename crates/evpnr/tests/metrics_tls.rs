//! `/metrics` over mutual TLS, black box: with TLS configured, evpnr's
//! metrics listener takes only clients with a certificate of its CA (a
//! scraper's `evpn://user/…` certificate works, HTTP/1.1 as Prometheus
//! speaks it); no certificate, or plaintext, gets nothing. `tls.metrics:
//! false` keeps plaintext metrics on loopback. Rotating evpnr's certificate
//! and sending SIGHUP changes the certificate new scrapes are served with.
use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
    time::Duration,
};

use evpn_testkit::{Daemon, http_get, metric_value};
use evpn_tls::{ClientTls, Expect, Identity, TlsFiles, pki::DevCa};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
};

const BIN: &str = env!("CARGO_BIN_EXE_evpnr");
const T: Duration = Duration::from_secs(20);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// evpnr with `tls:` (plus `extra` lines in it) and metrics on loopback.
/// A development CA in a temporary directory (kept while the first value
/// lives) and a scraper's certificate from it.
fn ca_and_scraper() -> (tempfile::TempDir, DevCa, TlsFiles) {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevCa::create(dir.path(), "metrics CA").unwrap();
    let prom = pki
        .issue(&Identity::User("prometheus".into()), DAY, false)
        .unwrap();
    (dir, pki, prom)
}

fn spawn(pki: &DevCa, extra: &str) -> Daemon {
    let f = pki
        .issue(&Identity::Registry("evpnr".into()), DAY, true)
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("evpnr-mtls-")
        .tempdir()
        .unwrap();
    let cfg = evpn_testkit::write_file(
        dir.path(),
        "evpnr.yaml",
        &format!(
            "evpnr:\n  grpc-addr: 127.0.0.1:0\n  metrics-addr: 127.0.0.1:0\n  state-dir: {}\n  tls:\n    cert: {}\n    key: {}\n    ca: {}\n{extra}",
            dir.path().join("state").display(),
            f.cert.display(),
            f.key.display(),
            f.ca.display()
        ),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    Daemon::spawn_in(dir, BIN, &["--config", &cfg], &[]).unwrap()
}

/// Accepts any server certificate (signatures still checked): a client
/// that presents no certificate of its own.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn no_client_cert() -> Arc<rustls::ClientConfig> {
    let p = evpn_tls::provider();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(p.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(p)))
            .with_no_client_auth(),
    )
}

fn with_cert(files: &TlsFiles) -> Arc<rustls::ClientConfig> {
    ClientTls::load(files.clone())
        .unwrap()
        .http_config(Expect::Exactly(Identity::Registry("evpnr".into())))
        .unwrap()
}

/// `GET /metrics` over TLS, HTTP/1.1 (ALPN `http/1.1`, as Prometheus).
fn https_get(addr: &str, cfg: Arc<rustls::ClientConfig>) -> anyhow::Result<(u16, String)> {
    https_get_cert(addr, cfg).map(|(code, body, _)| (code, body))
}

/// [`https_get`], and the certificate the server presented.
fn https_get_cert(
    addr: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> anyhow::Result<(u16, String, CertificateDer<'static>)> {
    let mut c = (*cfg).clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn = rustls::ClientConnection::new(Arc::new(c), "evpn.invalid".try_into()?)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        // A peer closing without close_notify after a full answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let leaf = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow::anyhow!("the server presented no certificate"))?
        .clone()
        .into_owned();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP header end in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok((code, body.to_string(), leaf))
}

#[test]
fn metrics_over_mutual_tls_need_a_client_certificate() {
    let (_pki_dir, pki, prom) = ca_and_scraper();
    let d = spawn(&pki, "");
    let listening = d.wait_log("metrics-listening", T).unwrap();
    assert_eq!(listening["tls"], true, "{listening}");
    let addr = d.metrics_addr().unwrap();

    // A scraper with a certificate of the CA gets the metrics.
    let (code, body) = https_get(&addr, with_cert(&prom)).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(metric_value(&body, "evpnr_build_info", &[]), Some(1.0));

    // Without a client certificate: refused, and logged as such.
    let r = https_get(&addr, no_client_cert());
    assert!(r.is_err(), "served without a client certificate: {r:?}");
    let refused = d.wait_log("tls-refused", T).unwrap();
    assert_eq!(refused["listener"], "metrics", "{refused}");

    // Plaintext HTTP gets no metrics.
    let plain = http_get(&addr, "/metrics");
    assert!(
        !matches!(&plain, Ok((200, _))),
        "plaintext scrape served: {plain:?}"
    );
}

#[test]
fn metrics_plaintext_on_loopback_when_tls_metrics_is_off() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = DevCa::create(pki_dir.path(), "metrics CA").unwrap();
    let d = spawn(&pki, "    metrics: false\n");
    let listening = d.wait_log("metrics-listening", T).unwrap();
    assert_eq!(listening["tls"], false, "{listening}");
    let (code, body) = http_get(&d.metrics_addr().unwrap(), "/metrics").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(metric_value(&body, "evpnr_build_info", &[]), Some(1.0));
}

/// Certificate rotation reaches `/metrics`: after new certificate and key
/// files and a SIGHUP, a new scrape is served with the new certificate and
/// the old one is no longer presented (the metrics listener accepts over
/// the daemon's reloadable acceptor, not a copy made at start-up).
#[test]
fn metrics_tls_rotation_on_sighup_serves_the_new_certificate() {
    let (_pki_dir, pki, prom) = ca_and_scraper();
    let d = spawn(&pki, "");
    d.wait_log("metrics-listening", T).unwrap();
    let addr = d.metrics_addr().unwrap();
    let (code, body, old) = https_get_cert(&addr, with_cert(&prom)).unwrap();
    assert_eq!(code, 200, "{body}");

    // Rotate evpnr's certificate and key in place (the paths it was
    // configured with), then SIGHUP.
    let files = pki
        .issue(&Identity::Registry("evpnr".into()), DAY, true)
        .unwrap();
    let new = evpn_tls::Material::load(&files).unwrap().chain[0].clone();
    assert_ne!(new, old, "the rotation issued the same certificate");
    d.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    let r = d.wait_log("tls-reloaded", T).unwrap();
    assert_eq!(r["identity"], "evpn://registry/evpnr", "{r}");

    let (code, body, served) = https_get_cert(&addr, with_cert(&prom)).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(metric_value(&body, "evpnr_build_info", &[]), Some(1.0));
    assert!(
        served != old,
        "a scrape after the rotation is still served with the old certificate"
    );
    assert!(
        served == new,
        "a scrape after the rotation is served with a certificate that is neither the old nor the new one"
    );
}
