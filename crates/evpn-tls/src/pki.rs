//! A development CA: one self-signed CA and certificates it issues for
//! instances, registries and users, as PEM files in one directory. For labs
//! and tests (`scripts/lab.sh --tls`, the test suite) — a production fleet
//! uses its own PKI with the same identity form (`docs/security.md`).
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{Error, Identity, TlsFiles};

/// The CA's certificate and key file names in its directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

/// How long an issued certificate is valid by default.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

/// A development CA in a directory.
pub struct DevCa {
    pub dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn gen_err(e: rcgen::Error) -> Error {
    Error::Config(format!("certificate generation: {e}"))
}

fn to_offset(t: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(t)
}

/// Write `data` to `path`, created with `mode`; an existing file is refused
/// unless `replace`.
fn write_new(path: &Path, data: &str, mode: u32, replace: bool) -> Result<(), Error> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(mode);
    if replace {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| io_err(path, e))?;
    f.write_all(data.as_bytes()).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// The files of an issued certificate: `<kind>-<name>.pem` / `.key`.
pub fn stem(id: &Identity) -> String {
    match id {
        Identity::Instance(n) => format!("instance-{n}"),
        Identity::Registry(n) => format!("registry-{n}"),
        Identity::User(n) => format!("user-{n}"),
    }
}

impl DevCa {
    /// Create a new CA in `dir` (created if missing); refuses to overwrite
    /// an existing one.
    pub fn create(dir: &Path, name: &str) -> Result<DevCa, Error> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.distinguished_name
            .push(DnType::OrganizationName, "vpp-evpn development CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = SystemTime::now();
        p.not_before = to_offset(now - Duration::from_secs(3600));
        p.not_after = to_offset(now + Duration::from_secs(10 * 365 * 24 * 3600));
        let cert = p.self_signed(&key).map_err(gen_err)?;
        write_new(&dir.join(CA_KEY), &key.serialize_pem(), 0o600, false)?;
        write_new(&dir.join(CA_CERT), &cert.pem(), 0o644, false)?;
        Ok(DevCa {
            dir: dir.to_path_buf(),
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Open the CA in `dir`.
    pub fn open(dir: &Path) -> Result<DevCa, Error> {
        let (c, k) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let cert_pem = std::fs::read_to_string(&c).map_err(|e| io_err(&c, e))?;
        let key_pem = std::fs::read_to_string(&k).map_err(|e| io_err(&k, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| io_err(&k, e))?;
        Ok(DevCa {
            dir: dir.to_path_buf(),
            cert_pem,
            key,
        })
    }

    /// Issue a certificate for `id`, valid from an hour ago for `valid_for`,
    /// into the CA's directory (see [`DevCa::issue_at`]).
    pub fn issue(
        &self,
        id: &Identity,
        valid_for: Duration,
        replace: bool,
    ) -> Result<TlsFiles, Error> {
        let now = SystemTime::now();
        self.issue_at(
            id,
            now - Duration::from_secs(3600),
            now + valid_for,
            &self.dir,
            replace,
        )
    }

    /// Issue a certificate for `id` valid from `not_before` to `not_after`
    /// into `dir`: the identity URI as its one `evpn://` URI SAN (also its
    /// CN, for humans), server and client use, a new P-256 key (mode 0600).
    pub fn issue_at(
        &self,
        id: &Identity,
        not_before: SystemTime,
        not_after: SystemTime,
        dir: &Path,
        replace: bool,
    ) -> Result<TlsFiles, Error> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(gen_err)?;
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, id.uri());
        p.subject_alt_names = vec![SanType::URI(
            id.uri()
                .try_into()
                .map_err(|e| Error::Config(format!("{e}")))?,
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.not_before = to_offset(not_before);
        p.not_after = to_offset(not_after);
        let cert = p.signed_by(&key, &issuer).map_err(gen_err)?;
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let s = stem(id);
        let files = TlsFiles {
            cert: dir.join(format!("{s}.pem")),
            key: dir.join(format!("{s}.key")),
            ca: self.dir.join(CA_CERT),
        };
        write_new(&files.key, &key.serialize_pem(), 0o600, replace)?;
        write_new(&files.cert, &cert.pem(), 0o644, replace)?;
        Ok(files)
    }
}
