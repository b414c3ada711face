//! Per-interface IPv6 sysctls (`/proc/sys/net/ipv6/conf/<if>/<key>`).
//!
//! `/proc/sys/net` resolves against the network namespace of the *calling thread*, so these
//! calls act on the same namespace as a [`crate::Netlink`] opened on that thread.

use crate::error::{Error, Op, Result};
use crate::names::is_valid_ifname;

fn path(ifname: &str, key: &str) -> Result<String> {
    if !is_valid_ifname(ifname) {
        return Err(Error::NotFound {
            op: Op::SetSysctl,
            target: ifname.to_string(),
        });
    }
    Ok(format!("/proc/sys/net/ipv6/conf/{ifname}/{key}"))
}

/// Write an integer IPv6 sysctl of `ifname`.
pub fn write_ipv6_conf(ifname: &str, key: &str, value: i32) -> Result<()> {
    let p = path(ifname, key)?;
    std::fs::write(&p, format!("{value}\n"))
        .map_err(|e| Error::from_io(Op::SetSysctl, format!("{ifname} {key}"), e))
}

/// Read an integer IPv6 sysctl of `ifname`.
pub fn read_ipv6_conf(ifname: &str, key: &str) -> Result<i32> {
    let p = path(ifname, key)?;
    let s = std::fs::read_to_string(&p)
        .map_err(|e| Error::from_io(Op::GetSysctl, format!("{ifname} {key}"), e))?;
    s.trim().parse().map_err(|_| Error::Os {
        op: Op::GetSysctl,
        target: format!("{ifname} {key}"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, s.trim().to_string()),
    })
}
