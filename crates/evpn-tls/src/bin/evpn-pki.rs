//! `evpn-pki`: a development CA and certificates for vpp-evpn's mutual TLS.
use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use evpn_tls::{Identity, pki::DevCa};

/// A development CA and certificates for vpp-evpn's mutual TLS (labs and
/// tests; production fleets use their own PKI with the same identity form,
/// see docs/security.md).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The CA's directory (ca.pem, ca.key and the issued files).
    #[arg(long, env = "EVPN_PKI_DIR", default_value = "pki")]
    dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the CA (refuses to overwrite one).
    Init {
        /// The CA certificate's common name.
        #[arg(long, default_value = "vpp-evpn dev CA")]
        name: String,
    },
    /// Issue a certificate and key for an identity: `evpn://instance/<id>`,
    /// `evpn://registry/<name>` or `evpn://user/<name>` (or the short
    /// forms `instance/<id>`, `registry/<name>`, `user/<name>`).
    Issue {
        /// The identity.
        identity: String,
        /// Days of validity.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
        days: u64,
        /// Overwrite existing files of this identity.
        #[arg(long)]
        replace: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    match a.cmd {
        Cmd::Init { name } => {
            let ca = DevCa::create(&a.dir, &name)?;
            println!(
                "created CA {}",
                ca.dir.join(evpn_tls::pki::CA_CERT).display()
            );
        }
        Cmd::Issue {
            identity,
            days,
            replace,
        } => {
            let uri = if identity.starts_with(evpn_tls::SCHEME) {
                identity
            } else {
                format!("{}{identity}", evpn_tls::SCHEME)
            };
            let id = Identity::parse("identity", &uri)?;
            let ca = DevCa::open(&a.dir)?;
            let f = ca.issue(&id, Duration::from_secs(days * 24 * 3600), replace)?;
            println!(
                "issued {id}: cert {} key {} ca {}",
                f.cert.display(),
                f.key.display(),
                f.ca.display()
            );
        }
    }
    Ok(())
}
