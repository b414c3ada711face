//! Mutual TLS end to end on loopback: a tonic server behind `ServerTls`,
//! clients through `ClientTls` (and a raw rustls client for what
//! `ClientTls` refuses to build), certificates from the development CA.
use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use evpn_tls::{ClientTls, Expect, Identity, Material, PeerInfo, ServerTls, TlsFiles, pki::DevCa};
use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn inst(n: &str) -> Identity {
    Identity::Instance(n.into())
}

struct Server {
    addr: String,
    tls: Arc<ServerTls>,
    seen: Arc<Mutex<Vec<Identity>>>,
    refused: Arc<Mutex<Vec<String>>>,
    reporter: tonic_health::server::HealthReporter,
    _task: tokio::task::JoinHandle<()>,
}

/// A health server behind mutual TLS with `files`, recording the identity
/// of every call and every refused connection.
async fn serve(files: TlsFiles) -> Server {
    let tls = ServerTls::load(files).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r = refused.clone();
    let incoming = tls.incoming(
        l,
        Arc::new(move |_, why: &str| r.lock().unwrap().push(why.to_string())),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let (reporter, health) = tonic_health::server::health_reporter();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(tonic::service::InterceptorLayer::new(
                move |req: tonic::Request<()>| {
                    let p = req.extensions().get::<PeerInfo>().cloned();
                    s.lock()
                        .unwrap()
                        .push(p.expect("PeerInfo on every request").identity);
                    Ok(req)
                },
            ))
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    Server {
        addr,
        tls,
        seen,
        refused,
        reporter,
        _task: task,
    }
}

/// One health check from a client with `files` to `addr`.
async fn check(files: &TlsFiles, addr: &str, expect: Expect) -> Result<(), tonic::Status> {
    let c = ClientTls::load(files.clone()).unwrap();
    let ch = c
        .channel(addr, expect, |e| e.connect_timeout(Duration::from_secs(5)))
        .unwrap();
    HealthClient::new(ch)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

async fn wait_refused(s: &Server, what: &str) -> String {
    for _ in 0..500 {
        if let Some(r) = s.refused.lock().unwrap().iter().find(|r| r.contains(what)) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no refusal containing {what:?}: {:?}",
        s.refused.lock().unwrap()
    );
}

#[tokio::test]
async fn mutual_tls_carries_identities_both_ways_and_checks_the_server_identity() {
    let d = tempfile::tempdir().unwrap();
    let ca = DevCa::create(d.path(), "test CA").unwrap();
    let r1 = ca.issue(&inst("r1"), DAY, false).unwrap();
    let reg = ca
        .issue(&Identity::Registry("evpnr".into()), DAY, false)
        .unwrap();
    let s = serve(r1).await;
    check(&reg, &s.addr, Expect::Exactly(inst("r1")))
        .await
        .unwrap();
    assert_eq!(
        s.seen.lock().unwrap().as_slice(),
        [Identity::Registry("evpnr".into())]
    );
    // evpnr dialling "r2" at an address where r1 answers: refused by the
    // client, whatever the address.
    let e = check(&reg, &s.addr, Expect::Exactly(inst("r2")))
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("names evpn://instance/r1, not evpn://instance/r2"),
        "{e:?}"
    );
    let e = check(&reg, &s.addr, Expect::AnyRegistry).await.unwrap_err();
    assert!(format!("{e:?}").contains("not a registry"), "{e:?}");
    assert_eq!(
        s.seen.lock().unwrap().len(),
        1,
        "a refused call reached the service"
    );
}

/// A rustls client with `cert` (or none) that accepts any server.
async fn raw_client(
    addr: &str,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> std::io::Result<Vec<u8>> {
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
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let p = evpn_tls::provider();
    let b = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(p)));
    let mut cfg = match cert {
        Some((c, k)) => b.with_client_auth_cert(c, k).unwrap(),
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("evpn.invalid").unwrap(), tcp)
        .await?;
    // TLS 1.3: the server judges the client's certificate after the
    // client's handshake is done; its verdict arrives on the first read.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
    let mut buf = vec![0; 64];
    let n = tls.read(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

fn pem_pair(f: &TlsFiles) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let c = CertificateDer::pem_file_iter(&f.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    (c, PrivateKeyDer::from_pem_file(&f.key).unwrap())
}

#[tokio::test]
async fn the_server_refuses_no_certificate_another_ca_and_an_expired_certificate() {
    let d = tempfile::tempdir().unwrap();
    let ca = DevCa::create(d.path(), "test CA").unwrap();
    let s = serve(ca.issue(&inst("r1"), DAY, false).unwrap()).await;
    // Control: a good client certificate gets the server's HTTP/2 preface.
    let good = ca
        .issue(&Identity::User("alice".into()), DAY, false)
        .unwrap();
    assert!(
        !raw_client(&s.addr, Some(pem_pair(&good)))
            .await
            .unwrap()
            .is_empty()
    );

    let r = raw_client(&s.addr, None).await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    wait_refused(&s, "peer sent no certificates").await;

    let other = DevCa::create(&d.path().join("other"), "other CA").unwrap();
    let foreign = other
        .issue(&Identity::User("mallory".into()), DAY, false)
        .unwrap();
    let r = raw_client(&s.addr, Some(pem_pair(&foreign))).await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    wait_refused(&s, "UnknownIssuer").await;

    let now = SystemTime::now();
    let old = ca
        .issue_at(
            &Identity::User("bob".into()),
            now - 10 * DAY,
            now - DAY,
            &d.path().join("old"),
            false,
        )
        .unwrap();
    let r = raw_client(&s.addr, Some(pem_pair(&old))).await;
    assert!(r.as_ref().map_or(true, |b| b.is_empty()), "{r:?}");
    wait_refused(&s, "certificate expired").await;
    assert!(
        s.seen.lock().unwrap().is_empty(),
        "a refused peer reached the service"
    );
}

#[test]
fn bad_material_is_a_clear_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let ca = DevCa::create(d.path(), "test CA").unwrap();
    let now = SystemTime::now();
    let good = ca.issue(&inst("r1"), DAY, false).unwrap();
    Material::load(&good).unwrap();

    let expired = ca
        .issue_at(
            &inst("r2"),
            now - 10 * DAY,
            now - DAY,
            &d.path().join("x"),
            false,
        )
        .unwrap();
    let e = Material::load(&expired).unwrap_err().to_string();
    assert!(
        e.contains("certificate expired on") && e.contains("instance-r2.pem"),
        "{e}"
    );

    let future = ca
        .issue_at(
            &inst("r3"),
            now + DAY,
            now + 2 * DAY,
            &d.path().join("y"),
            false,
        )
        .unwrap();
    let e = Material::load(&future).unwrap_err().to_string();
    assert!(e.contains("not valid yet"), "{e}");

    let other = DevCa::create(&d.path().join("other"), "other CA").unwrap();
    let wrong_ca = TlsFiles {
        ca: other.dir.join(evpn_tls::pki::CA_CERT),
        ..good.clone()
    };
    let e = Material::load(&wrong_ca).unwrap_err().to_string();
    assert!(
        e.contains("is not signed by the CA in") && e.contains("UnknownIssuer"),
        "{e}"
    );

    let r4 = ca.issue(&inst("r4"), DAY, false).unwrap();
    let mismatch = TlsFiles {
        key: r4.key.clone(),
        ..good.clone()
    };
    let e = Material::load(&mismatch).unwrap_err().to_string();
    assert!(
        e.contains("instance-r4.key") && e.contains("does not match the certificate"),
        "{e}"
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&good.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = Material::load(&good).unwrap_err().to_string();
    assert!(e.contains("readable by group or others (mode 0640)"), "{e}");
}

#[tokio::test]
async fn a_reload_keeps_open_streams_and_new_connections_get_the_new_certificate() {
    let d = tempfile::tempdir().unwrap();
    let ca = DevCa::create(d.path(), "test CA").unwrap();
    let r1 = ca.issue(&inst("r1"), DAY, false).unwrap();
    let s = serve(r1.clone()).await;
    let before = s.tls.material().not_after;
    let reg = ca
        .issue(&Identity::Registry("evpnr".into()), DAY, false)
        .unwrap();
    let c = ClientTls::load(reg.clone()).unwrap();
    s.reporter
        .set_service_status("svc", tonic_health::ServingStatus::NotServing)
        .await;
    let ch = c
        .channel(&s.addr, Expect::Exactly(inst("r1")), |e| e)
        .unwrap();
    let mut watch = HealthClient::new(ch)
        .watch(HealthCheckRequest {
            service: "svc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    // Rotate: a new certificate (longer validity) and key; a broken
    // reload first changes nothing.
    std::fs::write(&r1.cert, "not a certificate").unwrap();
    assert!(s.tls.reload().is_err());
    ca.issue(&inst("r1"), 2 * DAY, true).unwrap();
    assert_eq!(s.tls.reload().unwrap(), inst("r1"));
    assert!(s.tls.material().not_after > before);
    // The stream opened before the reload still delivers.
    s.reporter
        .set_service_status("svc", tonic_health::ServingStatus::Serving)
        .await;
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("the open stream went quiet after the reload")
        .unwrap()
        .unwrap();
    assert_ne!(first.status, next.status);
    // A new connection handshakes with the new certificate.
    check(&reg, &s.addr, Expect::Exactly(inst("r1")))
        .await
        .unwrap();
}
