//! Who a certificate names. The one documented form: exactly one URI
//! subject alternative name with the scheme `evpn://`:
//!
//! | URI | who |
//! |---|---|
//! | `evpn://instance/<id>` | the evpnd of instance `<id>` |
//! | `evpn://registry/<name>` | an evpnr (the registry) |
//! | `evpn://user/<name>` | an operator, or a trusted front-end acting for users |
//!
//! `<id>` and `<name>` follow the instance ID rule of every program (a DNS
//! label, `evpn_model::validate::validate_instance_id`). The subject CN and
//! DNS names are not identities (a DNS name may still be present for other
//! tools); a certificate with no `evpn://` URI, or with two, names nobody.
use std::fmt;

use crate::Error;

/// The scheme of every identity URI.
pub const SCHEME: &str = "evpn://";

/// A peer's identity, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// `evpn://instance/<id>`
    Instance(String),
    /// `evpn://registry/<name>`
    Registry(String),
    /// `evpn://user/<name>`
    User(String),
}

impl Identity {
    /// The URI form (what goes into the certificate and the role map).
    pub fn uri(&self) -> String {
        match self {
            Identity::Instance(i) => format!("{SCHEME}instance/{i}"),
            Identity::Registry(n) => format!("{SCHEME}registry/{n}"),
            Identity::User(n) => format!("{SCHEME}user/{n}"),
        }
    }

    /// Parse the URI form; `field` names the input in the error.
    pub fn parse(field: &str, uri: &str) -> Result<Identity, Error> {
        let bad = |reason: String| Error::Identity {
            field: field.to_string(),
            reason,
        };
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| {
            bad(format!(
                "{} does not start with {SCHEME}",
                evpn_model::validate::excerpt(uri)
            ))
        })?;
        let (kind, name) = rest.split_once('/').ok_or_else(|| {
            bad(format!(
                "{} is not {SCHEME}<instance|registry|user>/<name>",
                evpn_model::validate::excerpt(uri)
            ))
        })?;
        evpn_model::validate::validate_instance_id(field, name).map_err(|e| bad(e.to_string()))?;
        match kind {
            "instance" => Ok(Identity::Instance(name.to_string())),
            "registry" => Ok(Identity::Registry(name.to_string())),
            "user" => Ok(Identity::User(name.to_string())),
            k => Err(bad(format!(
                "kind {} is not instance, registry or user",
                evpn_model::validate::excerpt(k)
            ))),
        }
    }

    /// The identity a DER certificate names (see the module documentation).
    pub fn from_der(der: &[u8]) -> Result<Identity, Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| Error::Identity {
            field: "certificate".into(),
            reason: format!("not an X.509 certificate: {e}"),
        })?;
        let mut found = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::URI(u) = n
                    && u.starts_with(SCHEME)
                {
                    found.push(u.to_string());
                }
            }
        }
        match found.as_slice() {
            [one] => Identity::parse("certificate URI SAN", one),
            [] => Err(Error::Identity {
                field: "certificate".into(),
                reason: format!(
                    "names no identity: it has no {SCHEME} URI subject alternative name (subject {})",
                    evpn_model::validate::excerpt(&cert.subject().to_string())
                ),
            }),
            many => Err(Error::Identity {
                field: "certificate".into(),
                reason: format!(
                    "names {} identities ({}); exactly one {SCHEME} URI is allowed",
                    many.len(),
                    many.iter()
                        .map(|u| evpn_model::validate::excerpt(u))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_bad_ones_name_the_reason() {
        for id in [
            Identity::Instance("dpu0-ddln0".into()),
            Identity::Registry("evpnr".into()),
            Identity::User("alice".into()),
        ] {
            assert_eq!(Identity::parse("f", &id.uri()).unwrap(), id);
        }
        for (uri, why) in [
            ("https://instance/r1", "does not start with evpn://"),
            ("evpn://instance", "is not evpn://"),
            ("evpn://admin/r1", "kind"),
            ("evpn://instance/R1", "only a-z"),
            ("evpn://instance/", "must not be empty"),
        ] {
            let e = Identity::parse("tls.identity", uri)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && e.contains("tls.identity"), "{uri}: {e}");
        }
    }
}
