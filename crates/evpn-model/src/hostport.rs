//! `host:port` addresses that one daemon gives another to dial (an evpnd's
//! `grpc_address` in `RegisterInstance`). Only `host:port` is accepted: host
//! is an IPv4 literal, a bracketed IPv6 literal or a DNS name (RFC 1123
//! labels); port is 1..65535. No scheme, user, path, query or fragment.
use crate::{Error, validate::excerpt};

/// Longest accepted `host:port` (a full DNS name, `:`, five digits).
pub const HOSTPORT_MAX_LEN: usize = 253 + 6;

/// Validate `v` as `host:port`; the error names `field` and quotes at most a
/// short prefix of `v`.
pub fn validate_host_port(field: &str, v: &str) -> Result<(), Error> {
    let bad = |why: &str| Error::invalid(field, format!("{} is not host:port: {why}", excerpt(v)));
    if v.is_empty() {
        return Err(Error::invalid(field, "required (host:port)"));
    }
    if v.len() > HOSTPORT_MAX_LEN {
        return Err(bad("too long"));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number 1..65535"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| bad("unclosed ["))?;
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| bad("not an IPv6 address in brackets"));
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if host.contains(':') {
        return Err(bad("an IPv6 address must be in brackets"));
    }
    dns_name(host).map_err(bad)
}

fn dns_name(h: &str) -> Result<(), &'static str> {
    if h.is_empty() || h.len() > 253 {
        return Err("the host name is empty or too long");
    }
    for label in h.strip_suffix('.').unwrap_or(h).split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("the host is not an IP address or a DNS name");
        }
    }
    // All-numeric dotted names are malformed IPv4 literals, not names.
    if h.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("not a valid IPv4 address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_table() {
        let ok = [
            "127.0.0.1:9191",
            "[::1]:9191",
            "[fe80::1]:1",
            "router-1.example.net:65535",
            "r1:9191",
            "r1.:9191",
        ];
        for v in ok {
            assert!(validate_host_port("a", v).is_ok(), "{v}");
        }
        let bad = [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "user@host:1",
            "host:1/path",
            "http://host:1",
            "::1:9191",
            "[::1:9191",
            "-host:1",
            "ho_st:1",
            "1.2.3:80",
            "host:port",
            "a..b:1",
        ];
        for v in bad {
            let e = validate_host_port("grpc_address", v)
                .unwrap_err()
                .to_string();
            assert!(e.contains("grpc_address"), "{v}: {e}");
        }
        let long = format!("{}:1", "a".repeat(1 << 20));
        let e = validate_host_port("grpc_address", &long)
            .unwrap_err()
            .to_string();
        assert!(e.len() < 120, "{e}");
    }
}
