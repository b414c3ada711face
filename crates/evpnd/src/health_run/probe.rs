//! The probes behind the checks: thin I/O, one call each, behind
//! [`Probe`] so the runner and the core are testable without BIRD or VPP.
//! The runner bounds every probe with the check's timeout (a command is
//! killed when it runs out).
use std::{path::Path, process::Stdio, sync::Arc};

use bird_ctl::{BirdClient, BirdError, status::ProtoState};
use tokio::io::AsyncReadExt;

use crate::dataplane::Dataplane;
use crate::health::{Sample, Scope};

/// One check's probe.
#[tonic::async_trait]
pub trait Probe: Send + Sync + 'static {
    /// One round. `slugs`: the enabled eVPNs of this host (per-eVPN probes
    /// answer one sample for each; host probes answer one for the host).
    async fn sample(&self, slugs: &[String]) -> Vec<(Scope, Sample)>;
}

fn host(s: Sample) -> Vec<(Scope, Sample)> {
    vec![(Scope::Host, s)]
}

/// `dataplane`: VPP answers `control_ping` (on the Linux dataplane the
/// kernel is always there: the per-eVPN `devices` check covers it).
pub struct DataplaneProbe(pub Arc<dyn Dataplane>);

#[tonic::async_trait]
impl Probe for DataplaneProbe {
    async fn sample(&self, _: &[String]) -> Vec<(Scope, Sample)> {
        host(match self.0.alive().await {
            Ok(()) => Sample::ok(),
            Err(e) => Sample::fail(e.to_string()),
        })
    }
}

/// `devices` (per eVPN, Linux dataplane): the eVPN's bridge and VXLAN
/// devices exist and are up.
pub struct DevicesProbe(pub Arc<dyn Dataplane>);

#[tonic::async_trait]
impl Probe for DevicesProbe {
    async fn sample(&self, slugs: &[String]) -> Vec<(Scope, Sample)> {
        let mut out = Vec::with_capacity(slugs.len());
        for s in slugs {
            let r = match self.0.devices_up(s).await {
                Ok(()) => Sample::ok(),
                Err(e) => Sample::fail(e.to_string()),
            };
            out.push((Scope::Evpn(s.clone()), r));
        }
        out
    }
}

/// `bird`: BIRD's control socket answers `show status`. A failure is
/// fatal (BIRD died or hangs: see [`super::fence`]).
pub struct BirdProbe(pub Arc<BirdClient>);

#[tonic::async_trait]
impl Probe for BirdProbe {
    async fn sample(&self, _: &[String]) -> Vec<(Scope, Sample)> {
        host(match self.0.show_status().await {
            Ok(_) => Sample::ok(),
            Err(e) if bird_gone(&e) => Sample::gone(e.to_string()),
            Err(e) => Sample::fatal(e.to_string()),
        })
    }
}

/// Whether `e` proves BIRD is not running (its control socket refuses
/// connections or is gone), as opposed to slow or confused: the `bird`
/// check then goes down at once (a hard failure), without waiting `fall`.
pub fn bird_gone(e: &BirdError) -> bool {
    match e {
        BirdError::Io(m) => {
            m.starts_with("connect ")
                && (m.contains("Connection refused") || m.contains("No such file"))
        }
        _ => false,
    }
}

/// Watch BIRD's control socket at `path` for BIRD's death: connect, then
/// wait for the socket to close (BIRD sends nothing unasked, so the only
/// thing that ends the wait is BIRD exiting, or being killed, which closes
/// it at once). `Some(why)` when a watched socket closed; `None` when it
/// could not be opened (the periodic probe reports that).
pub async fn bird_closed(path: &Path) -> Option<String> {
    let mut s = tokio::net::UnixStream::connect(path).await.ok()?;
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return Some("BIRD closed its control socket (BIRD exited)".into()),
            Ok(_) => {}
            Err(e) => return Some(format!("BIRD control socket: {e}")),
        }
    }
}

/// `bgp`: at least `min` of the counted BGP sessions are established.
pub struct BgpProbe {
    pub client: Arc<BirdClient>,
    pub min: u32,
    /// Counted protocols; empty: every BGP protocol.
    pub names: Vec<String>,
}

#[tonic::async_trait]
impl Probe for BgpProbe {
    async fn sample(&self, _: &[String]) -> Vec<(Scope, Sample)> {
        host(match self.client.show_protocols(None, false).await {
            Ok(p) => crate::health::bgp_rule(&p, self.min, &self.names),
            // BIRD itself is the `bird` check; here it is no evidence.
            Err(e) => Sample::fail(format!("BIRD: {e}")),
        })
    }
}

/// `protocol` (per eVPN): BIRD's `evpn_<slug>` is up.
pub struct ProtocolProbe(pub Arc<BirdClient>);

#[tonic::async_trait]
impl Probe for ProtocolProbe {
    async fn sample(&self, slugs: &[String]) -> Vec<(Scope, Sample)> {
        let all = self.0.show_protocols(None, false).await;
        slugs
            .iter()
            .map(|s| {
                let name = bird_ctl::snippet::evpn_protocol(s);
                let r = match &all {
                    Err(e) => Sample::fail(format!("BIRD: {e}")),
                    Ok(all) => match all.iter().find(|p| p.name == name) {
                        None => Sample::fail(format!("{name} is not in BIRD")),
                        Some(p) if p.state == ProtoState::Up => Sample::ok(),
                        Some(p) => Sample::fail(
                            format!("{name} is {:?} {}", p.state, p.info)
                                .to_lowercase()
                                .trim_end()
                                .to_string(),
                        ),
                    },
                };
                (Scope::Evpn(s.clone()), r)
            })
            .collect()
    }
}

/// `underlay:<if>`: a tracked interface has its link up.
pub struct UnderlayProbe {
    pub dp: Arc<dyn Dataplane>,
    pub ifname: String,
}

#[tonic::async_trait]
impl Probe for UnderlayProbe {
    async fn sample(&self, _: &[String]) -> Vec<(Scope, Sample)> {
        host(match self.dp.link_up(&self.ifname).await {
            Ok(true) => Sample::ok(),
            Ok(false) => Sample::fail(format!("{} link is down", self.ifname)),
            Err(e) => Sample::fail(e.to_string()),
        })
    }
}

/// `command:<name>`: an operator command exits 0. No shell; stdin, stdout
/// and stderr are closed; the child is killed when the runner's timeout
/// drops this future.
pub struct CommandProbe {
    pub argv: Vec<String>,
}

#[tonic::async_trait]
impl Probe for CommandProbe {
    async fn sample(&self, _: &[String]) -> Vec<(Scope, Sample)> {
        let Some((prog, args)) = self.argv.split_first() else {
            return host(Sample::fail("empty argv"));
        };
        let r = tokio::process::Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        host(match r {
            Ok(s) if s.success() => Sample::ok(),
            Ok(s) => Sample::fail(format!("{} exited with {s}", evpn_model::excerpt(prog))),
            Err(e) => Sample::fail(format!("{}: {e}", evpn_model::excerpt(prog))),
        })
    }
}

/// How long each part of a release's look (rule F15) may take: BIRD's
/// control socket, one tracked interface. Past it the part counts as
/// unknown (BIRD) or not up (an interface), never as evidence.
pub const RELEASE_LOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(50);

/// What a host saw of its own links to the fabric right after it released
/// its BVI (rule F15): a fresh look, not the periodic checks' last result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLook {
    /// BIRD: `Some(false)` not running (its control socket refused the
    /// connection or does not exist), `Some(true)` running (it accepted),
    /// `None` unknown (a hang, a timeout, any other error).
    pub bird_running: Option<bool>,
    /// Each tracked underlay interface, in configuration order: `Ok` when it
    /// exists and is up, else why not.
    pub underlay: Vec<(String, Result<(), String>)>,
}

/// Whether BIRD is running, from one connection attempt to its control
/// socket at `path` (see [`ReleaseLook::bird_running`]). Nothing is sent.
pub async fn bird_running(path: &Path) -> Option<bool> {
    use std::io::ErrorKind;
    match tokio::time::timeout(RELEASE_LOOK_TIMEOUT, tokio::net::UnixStream::connect(path)).await {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            Some(false)
        }
        _ => None,
    }
}

/// The look of a release (rule F15): BIRD at `bird` and the tracked
/// underlay interfaces `ifs`, all at once.
pub async fn release_look(bird: &Path, dp: &dyn Dataplane, ifs: &[String]) -> ReleaseLook {
    let links = ifs.iter().map(|i| async move {
        let r = match tokio::time::timeout(RELEASE_LOOK_TIMEOUT, dp.link_up(i)).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(format!("{i} link is down")),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                RELEASE_LOOK_TIMEOUT.as_millis()
            )),
        };
        (i.clone(), r)
    });
    let (bird_running, underlay) =
        tokio::join!(bird_running(bird), futures::future::join_all(links));
    ReleaseLook {
        bird_running,
        underlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F15's BIRD look: "not running" only when the control socket is
    /// missing or refuses; accepted is running; anything else is unknown.
    #[tokio::test]
    async fn bird_is_not_running_only_when_its_socket_is_gone_or_refuses() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bird.ctl");
        assert_eq!(bird_running(&p).await, Some(false), "no socket");
        let l = tokio::net::UnixListener::bind(&p).unwrap();
        assert_eq!(bird_running(&p).await, Some(true), "listening");
        drop(l);
        assert!(p.exists());
        assert_eq!(bird_running(&p).await, Some(false), "nobody listens");
        // A path the kernel cannot even try (longer than sun_path).
        let long = d.path().join("x".repeat(200));
        assert_eq!(bird_running(&long).await, None, "unknown");
    }
}
