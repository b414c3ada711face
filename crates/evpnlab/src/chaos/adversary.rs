//! Attempts that must be refused and change nothing (issue 13): registrations
//! with wrong identities, state-changing calls straight to a managed evpnd
//! without a registry epoch, and operator input from the invalid classes
//! (overlapping or duplicate gateway addresses, addresses that are not host
//! addresses, a vMAC that collides where broadcast domains meet, duplicate or
//! too many route targets, 1 MB strings).
//!
//! Each attempt is counted per kind and outcome in [`Report::adversary`]
//! (`super::Report`). A violation is an attempt that is accepted, or refused
//! with a code that says something else went wrong, or that changed the
//! registry's record. Attempts draw their targets from the registry's
//! current record (`ListGroups`), never from the model, so they are precise.
//!
//! With TLS (`--tls`) each attempt calls with the certificate that gets it
//! furthest: a registration with an instance certificate (another member's
//! for an impostor, one of its own for a fresh ID), a call to an evpnd with
//! a registry certificate (not evpnr's epoch), operator input as the admin.
use std::time::Duration;

use evpn_api::v1;
use evpn_tls::Identity;
use rand::{Rng, seq::IndexedRandom};
use tonic::Code;

use super::Run;

/// What an attempt must be refused with (PERMISSION_DENIED: a certificate
/// that may not make the call, with TLS).
const REFUSED: &[Code] = &[
    Code::InvalidArgument,
    Code::FailedPrecondition,
    Code::PermissionDenied,
];

/// Codes that say the attempt did not get through at all (a daemon down or
/// too slow); neither a refusal nor a violation.
const NOT_THROUGH: &[Code] = &[Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled];

/// A group record without its timestamps (which a refused attempt may touch
/// and restore).
fn plain(mut g: v1::Group) -> v1::Group {
    g.created_at = None;
    g.modified_at = None;
    if let Some(b) = g.group_bvi.as_mut() {
        b.created_at = None;
        b.modified_at = None;
    }
    g
}

fn pfx(a: &str, l: u32) -> v1::Prefix {
    v1::Prefix {
        address: a.into(),
        prefix_len: l,
    }
}

/// The gateway addresses an operator must not be able to add to the GroupBVI
/// of the group whose pool is `172.16.<third>.0/24` / `fec0:<third>::/64`:
/// network and broadcast address of the prefix, "this network" (0/8),
/// link-local (169.254/16), reserved (240/4), IPv4-mapped and
/// IPv4-compatible IPv6, the IPv6 subnet-router anycast address.
pub(super) fn bad_addresses(third: u8) -> Vec<(&'static str, v1::Prefix)> {
    vec![
        ("network-address", pfx(&format!("172.16.{third}.0"), 24)),
        ("broadcast-address", pfx(&format!("172.16.{third}.255"), 24)),
        ("this-network-0/8", pfx("0.1.2.3", 8)),
        ("link-local-169.254/16", pfx("169.254.7.1", 16)),
        ("reserved-240/4", pfx("240.1.2.3", 24)),
        (
            "v4-mapped-ipv6",
            pfx(&format!("::ffff:172.16.{third}.9"), 120),
        ),
        (
            "v4-compatible-ipv6",
            pfx(&format!("::172.16.{third}.9"), 120),
        ),
    ]
}

/// How to take back an invalid input that was accepted.
enum Undo {
    /// Delete the fresh group.
    Group,
    /// Delete this group's GroupBVI.
    Bvi(String),
    /// Delete this address from this group's GroupBVI.
    Address(String, v1::Prefix),
}

/// `host:port` strings that are not.
const BAD_HOSTPORTS: &[&str] = &[
    "user@127.0.0.1:7000/path",
    "127.0.0.1",
    "http://127.0.0.1:7000",
    "127.0.0.1:99999",
    "127.0.0.1:0",
    "::1:7000",
    "",
];

/// One MiB of text.
fn huge() -> String {
    "x".repeat(1 << 20)
}

impl Run {
    fn attempt(&mut self, kind: &str, outcome: &str) {
        *self
            .report
            .adversary
            .entry(kind.to_string())
            .or_default()
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// Judges a refusal: `Ok` outcomes and unexpected codes are violations.
    fn judge<T>(&mut self, step: usize, kind: &str, what: &str, r: &Result<T, tonic::Status>) {
        let (outcome, bad) = match r {
            Ok(_) => ("OK".to_string(), Some("was accepted".to_string())),
            Err(s) if REFUSED.contains(&s.code()) => (format!("{:?}", s.code()), None),
            Err(s) if NOT_THROUGH.contains(&s.code()) => (format!("{:?}", s.code()), None),
            Err(s) => (
                format!("{:?}", s.code()),
                Some(format!(
                    "was refused with {:?}, not INVALID_ARGUMENT, FAILED_PRECONDITION or \
                     PERMISSION_DENIED",
                    s.code()
                )),
            ),
        };
        if let Err(s) = r
            && s.message().len() > 2048
        {
            self.report.violations.push(format!(
                "step {step}: {kind}: {what}: the error echoes {} bytes of input",
                s.message().len()
            ));
        }
        let msg = match r {
            Ok(_) => "OK".to_string(),
            Err(s) => format!(
                "{:?}: {}",
                s.code(),
                s.message().chars().take(160).collect::<String>()
            ),
        };
        self.log(format!("step {step}: attempt {kind}: {what}: {msg}"));
        self.attempt(kind, &outcome);
        if let Some(b) = bad {
            self.report
                .violations
                .push(format!("step {step}: {kind}: {what} {b}"));
        }
    }

    async fn groups_now(&self) -> anyhow::Result<Vec<v1::Group>> {
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        Ok(c.list_groups(v1::Empty {}).await?.into_inner().groups)
    }

    /// Maybe make one adversarial attempt before step `step`.
    pub(super) async fn adversary(&mut self, step: usize) -> anyhow::Result<()> {
        if !self.rng.random_bool(self.cfg.adversary_rate) {
            return Ok(());
        }
        let k = self.rng.random_range(0..100u32);
        let before = match self.groups_now().await {
            Ok(g) => g,
            Err(e) => {
                self.log(format!("step {step}: attempt skipped: {e:#}"));
                return Ok(());
            }
        };
        match k {
            0..=14 => self.impostor_registration(step).await?,
            15..=24 => self.fake_id_registration(step, &before).await?,
            25..=32 => self.bad_address_registration(step).await?,
            33..=49 => self.epochless_call(step, &before).await?,
            _ => self.invalid_input(step, &before).await?,
        }
        // Nothing an attempt did may show in the registry's groups.
        let after = match self.groups_now().await {
            Ok(g) => g,
            Err(_) => return Ok(()),
        };
        // With failover on, the driver may move a primary in between.
        let free = self.cfg.failover;
        let cmp = |g: v1::Group| {
            let mut g = plain(g);
            if free {
                g.primary_instance_id.clear();
            }
            g
        };
        let (b, a): (Vec<v1::Group>, Vec<v1::Group>) = (
            before.into_iter().map(cmp).collect(),
            after.into_iter().map(cmp).collect(),
        );
        if a != b {
            self.report.violations.push(format!(
                "step {step}: a refused attempt changed the registry's groups: before {b:?}, after {a:?}"
            ));
        }
        Ok(())
    }

    /// RegisterInstance of an existing member's ID with another member's
    /// address: refused while the member answers at its own address. Accepted
    /// only when the old address refuses connections (its evpnd is down);
    /// evpnr must then not use the evpnd it dials there (it is another
    /// instance), and the real one takes its ID back when it registers again.
    async fn impostor_registration(&mut self, step: usize) -> anyhow::Result<()> {
        let n = self.hosts.len();
        let x = self.rng.random_range(0..n);
        let y = (x + self.rng.random_range(1..n)) % n;
        let (victim, addr) = (self.hosts[x].clone(), self.fleet.hosts[y].grpc.clone());
        let answers = self.fleet.evpnd_up(x)
            && self
                .fleet
                .wait_connected(std::slice::from_ref(&victim), Duration::from_millis(300))
                .await;
        // With TLS: member y's certificate claiming the victim's ID.
        let mut c = self.fleet.client_as(
            &Identity::Instance(self.hosts[y].clone()),
            Duration::from_secs(10),
        )?;
        let r = c.register_instance(impostor(&victim, &addr)).await;
        let what = format!(
            "RegisterInstance {victim} at {}'s address {addr} ({victim} {})",
            self.hosts[y],
            if answers { "answers" } else { "may be down" }
        );
        if r.is_ok() && !answers {
            // The old address is provably gone: allowed.
            self.log(format!(
                "step {step}: attempt impostor-registration: {what}: OK (the old address was gone; \
                 {victim} takes its ID back when its evpnd registers)"
            ));
            self.attempt("impostor-registration", "OK (old address gone)");
            return Ok(());
        }
        self.judge(step, "impostor-registration", &what, &r);
        Ok(())
    }

    /// A fresh ID registered at a live member's address: evpnr must report an
    /// identity mismatch and never use it (a join is refused); then it is
    /// deleted again.
    async fn fake_id_registration(
        &mut self,
        step: usize,
        groups: &[v1::Group],
    ) -> anyhow::Result<()> {
        let y = self.rng.random_range(0..self.hosts.len());
        let fake = format!("impostor-{step}");
        let addr = self.fleet.hosts[y].grpc.clone();
        let group = groups.choose(&mut self.rng).map(|g| g.group_id.clone());
        // With TLS: a valid certificate of the fresh ID; evpnr must then
        // refuse the certificate at the address it dials.
        let r = self
            .fleet
            .client_as(&Identity::Instance(fake.clone()), Duration::from_secs(10))?
            .register_instance(impostor(&fake, &addr))
            .await;
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        if let Err(s) = r {
            self.log(format!(
                "step {step}: attempt fake-id-registration: RegisterInstance {fake} at {}'s address: {:?}: {}",
                self.hosts[y],
                s.code(),
                s.message()
            ));
            self.attempt("fake-id-registration", &format!("{:?}", s.code()));
            return Ok(());
        }
        self.fakes.push(fake.clone());
        // Poll until evpnr says who really answers there.
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            if let Ok(l) = c.list_instances(v1::Empty {}).await
                && let Some(i) = l
                    .into_inner()
                    .instances
                    .into_iter()
                    .find(|i| i.instance_id == fake)
            {
                if i.state == v1::instance::State::Connected as i32 {
                    self.report.violations.push(format!(
                        "step {step}: evpnr connected to {}'s evpnd as the fake instance {fake}",
                        self.hosts[y]
                    ));
                    break;
                }
                seen = i.last_error;
                if seen.contains("identity mismatch") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let outcome = if seen.contains("identity mismatch") {
            "identity mismatch reported"
        } else {
            "not dialled in time"
        };
        self.log(format!(
            "step {step}: attempt fake-id-registration: {fake} at {}'s address {addr}: {outcome} ({seen})",
            self.hosts[y]
        ));
        self.attempt("fake-id-registration", outcome);
        if let Some(g) = group {
            let r = c
                .add_group_member(v1::GroupMemberRequest {
                    group_id: g.clone(),
                    instance_id: fake.clone(),
                })
                .await;
            let what = format!("AddGroupMember {g} {fake}");
            let outcome = match &r {
                Ok(_) => "OK".to_string(),
                Err(s) => format!("{:?}", s.code()),
            };
            self.log(format!(
                "step {step}: attempt fake-id-join: {what}: {outcome}"
            ));
            self.attempt("fake-id-join", &outcome);
            if r.is_ok() {
                self.report.violations.push(format!(
                    "step {step}: {what} was accepted for an instance that never proved its identity"
                ));
                let _ = c
                    .remove_group_member(v1::GroupMemberRequest {
                        group_id: g,
                        instance_id: fake.clone(),
                    })
                    .await;
            }
        }
        self.delete_fakes().await;
        Ok(())
    }

    /// Deletes the fake registrations made so far (kept for a later try when
    /// evpnr does not answer).
    pub(super) async fn delete_fakes(&mut self) {
        let Ok(mut c) = self.fleet.client(Duration::from_secs(10)) else {
            return;
        };
        let mut left = Vec::new();
        for f in std::mem::take(&mut self.fakes) {
            match c
                .delete_instance(v1::InstanceRef {
                    instance_id: f.clone(),
                })
                .await
            {
                Ok(_) => {}
                Err(s) if s.code() == Code::NotFound => {}
                Err(_) => left.push(f),
            }
        }
        self.fakes = left;
    }

    async fn bad_address_registration(&mut self, step: usize) -> anyhow::Result<()> {
        let addr = *BAD_HOSTPORTS.choose(&mut self.rng).unwrap_or(&"");
        let id = format!("badaddr-{step}");
        let mut c = self
            .fleet
            .client_as(&Identity::Instance(id.clone()), Duration::from_secs(10))?;
        let r = c
            .register_instance(v1::RegisterInstanceRequest {
                instance_id: id.clone(),
                grpc_address: addr.into(),
                version: "x".into(),
                ..Default::default()
            })
            .await;
        if r.is_ok() {
            self.fakes.push(id.clone());
        }
        self.judge(
            step,
            "bad-address-registration",
            &format!("RegisterInstance {id} at {addr:?}"),
            &r,
        );
        self.delete_fakes().await;
        Ok(())
    }

    /// A state-changing call straight to a managed evpnd, without the
    /// registry's epoch: a bind of a group's vMAC on a candidate, a release
    /// of the primary, or a delete of a member's eVPN. Must be refused with
    /// FAILED_PRECONDITION.
    async fn epochless_call(&mut self, step: usize, groups: &[v1::Group]) -> anyhow::Result<()> {
        let with_members: Vec<&v1::Group> =
            groups.iter().filter(|g| !g.members.is_empty()).collect();
        let Some(g) = with_members.choose(&mut self.rng).copied().cloned() else {
            return Ok(());
        };
        let Some(h) = g.members.choose(&mut self.rng).cloned() else {
            return Ok(());
        };
        let Some(hi) = self.hosts.iter().position(|x| *x == h) else {
            return Ok(());
        };
        if !self.fleet.evpnd_up(hi) {
            return Ok(());
        }
        // With TLS: a registry certificate, but not evpnr's epoch.
        let mut d =
            self.fleet.hosts[hi].client_as(&Identity::Registry("chaos-adversary".into()))?;
        let kind = self.rng.random_range(0..3u32);
        let (what, r) = match kind {
            0 if g.primary_instance_id != h => {
                let r = d
                    .bind_group_bvi(v1::HostBindGroupBviRequest {
                        instance_id: h.clone(),
                        slug: g.group_id.clone(),
                        group_id: g.group_id.clone(),
                        vmac: g.vmac.clone(),
                        addresses: g
                            .group_bvi
                            .as_ref()
                            .map(|b| b.addresses.clone())
                            .unwrap_or_default(),
                        settle: None,
                    })
                    .await
                    .map(|_| ());
                ("BindGroupBVI of the vMAC on a candidate", r)
            }
            1 if g.primary_instance_id == h => {
                let r = d
                    .release_group_bvi(v1::HostReleaseGroupBviRequest {
                        instance_id: h.clone(),
                        slug: g.group_id.clone(),
                        group_id: g.group_id.clone(),
                    })
                    .await
                    .map(|_| ());
                ("ReleaseGroupBVI of the primary", r)
            }
            _ => {
                let r = d
                    .delete_evpn_instance(v1::EvpnRef {
                        instance_id: h.clone(),
                        slug: g.group_id.clone(),
                    })
                    .await
                    .map(|_| ());
                ("DeleteEvpnInstance of a member", r)
            }
        };
        let what = format!("{what} {} straight to {h}'s evpnd", g.group_id);
        let r = r.map_err(|s| {
            // Only FAILED_PRECONDITION (no current registry epoch) is right.
            if s.code() == Code::InvalidArgument {
                tonic::Status::internal(format!("INVALID_ARGUMENT: {}", s.message()))
            } else {
                s
            }
        });
        self.judge(step, "epochless-evpnd-call", &what, &r);
        Ok(())
    }

    /// Operator input from the invalid classes, through evpnr's API.
    async fn invalid_input(&mut self, step: usize, groups: &[v1::Group]) -> anyhow::Result<()> {
        let with_bvi: Vec<v1::Group> = groups
            .iter()
            .filter(|g| g.group_bvi.is_some())
            .cloned()
            .collect();
        let no_bvi: Vec<v1::Group> = groups
            .iter()
            .filter(|g| g.group_bvi.is_none())
            .cloned()
            .collect();
        let with_members: Vec<v1::Group> = groups
            .iter()
            .filter(|g| !g.members.is_empty())
            .cloned()
            .collect();
        let mut c = self.fleet.client(Duration::from_secs(20))?;
        let fresh = format!("bad-{step}");
        let fresh_vni = 700_000 + u32::try_from(step).unwrap_or(0);
        let class = self.rng.random_range(0..7u32);
        let kind;
        let what;
        let r: Result<(), tonic::Status>;
        let mut undo = Undo::Group;
        match class {
            // An address that overlaps one the GroupBVI has (another length).
            0 if !with_bvi.is_empty() => {
                let g = with_bvi.choose(&mut self.rng).cloned().unwrap_or_default();
                let have = g.group_bvi.clone().unwrap_or_default().addresses;
                let Some(a) = have.choose(&mut self.rng).cloned() else {
                    return Ok(());
                };
                let len = if a.address.contains(':') { 80 } else { 25 };
                let p = pfx(&a.address, len);
                undo = Undo::Address(g.group_id.clone(), p.clone());
                kind = "overlapping-address";
                what = format!(
                    "AddGroupBVIAddress {} {}/{len} (it has {}/{})",
                    g.group_id, p.address, a.address, a.prefix_len
                );
                r = c
                    .add_group_bvi_address(v1::GroupBviAddAddressRequest {
                        group_id: g.group_id.clone(),
                        address: Some(p),
                    })
                    .await
                    .map(|_| ());
            }
            // The same address twice in one request.
            1 if !no_bvi.is_empty() => {
                let g = no_bvi.choose(&mut self.rng).cloned().unwrap_or_default();
                let a = pfx(&format!("172.16.{}.7", g.vni % 250), 24);
                kind = "duplicate-address";
                what = format!(
                    "CreateGroupBVI {} [{a}/24 {a}/24]",
                    g.group_id,
                    a = a.address
                );
                undo = Undo::Bvi(g.group_id.clone());
                r = c
                    .create_group_bvi(v1::GroupBviRequest {
                        group_id: g.group_id.clone(),
                        addresses: vec![a.clone(), a],
                    })
                    .await
                    .map(|_| ());
            }
            // Not a host address.
            2 if !with_bvi.is_empty() => {
                let g = with_bvi.choose(&mut self.rng).cloned().unwrap_or_default();
                let third = g.group_id.trim_start_matches('g').parse().unwrap_or(0);
                let (class, p) = bad_addresses(third)
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or(("none", pfx("0.0.0.0", 8)));
                undo = Undo::Address(g.group_id.clone(), p.clone());
                kind = "not-a-host-address";
                what = format!(
                    "AddGroupBVIAddress {} {}/{} ({class})",
                    g.group_id, p.address, p.prefix_len
                );
                r = c
                    .add_group_bvi_address(v1::GroupBviAddAddressRequest {
                        group_id: g.group_id.clone(),
                        address: Some(p),
                    })
                    .await
                    .map(|_| ());
            }
            // A vMAC that is another group's vMAC or a member's per-host MAC
            // there, with a route target that lets the broadcast domains meet.
            3 if !with_members.is_empty() => {
                let g = with_members
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_default();
                let (mac, whose) = match g.members.choose(&mut self.rng) {
                    Some(m) if self.rng.random_bool(0.5) => (
                        evpn_model::Mac::derived(&[&g.group_id, m]).to_string(),
                        format!("the per-host MAC of {m} in {}", g.group_id),
                    ),
                    _ => (g.vmac.clone(), format!("the vMAC of {}", g.group_id)),
                };
                kind = "colliding-vmac";
                what = format!(
                    "CreateGroup {fresh} vmac {mac} ({whose}) import RT 65000:{}",
                    g.vni
                );
                r = c
                    .create_group(v1::CreateGroupRequest {
                        group_id: fresh.clone(),
                        vni: fresh_vni,
                        vmac: mac,
                        import_route_targets: vec![format!("65000:{}", g.vni)],
                        ..Default::default()
                    })
                    .await
                    .map(|_| ());
            }
            // Duplicate route targets, or more than 64.
            4 => {
                let rts: Vec<String> = if self.rng.random_bool(0.5) {
                    vec!["65000:77".into(), "65000:77".into()]
                } else {
                    (1..=65).map(|i| format!("65000:{i}")).collect()
                };
                kind = "route-targets";
                what = format!(
                    "CreateGroup {fresh} with {} export route targets ({} distinct)",
                    rts.len(),
                    rts.iter().collect::<std::collections::BTreeSet<_>>().len()
                );
                r = c
                    .create_group(v1::CreateGroupRequest {
                        group_id: fresh.clone(),
                        vni: fresh_vni,
                        export_route_targets: rts,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ());
            }
            // 1 MiB strings.
            _ => {
                kind = "1MiB-string";
                match self.rng.random_range(0..4u32) {
                    0 => {
                        what = "CreateGroup with a 1 MiB group_id".to_string();
                        r = c
                            .create_group(v1::CreateGroupRequest {
                                group_id: huge(),
                                vni: fresh_vni,
                                ..Default::default()
                            })
                            .await
                            .map(|_| ());
                    }
                    1 => {
                        what = format!("CreateGroup {fresh} with a 1 MiB vmac");
                        r = c
                            .create_group(v1::CreateGroupRequest {
                                group_id: fresh.clone(),
                                vni: fresh_vni,
                                vmac: huge(),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ());
                    }
                    2 => {
                        let g = groups.choose(&mut self.rng).map(|g| g.group_id.clone());
                        let g = g.unwrap_or_else(|| "g0".into());
                        what = format!("AddGroupMember {g} with a 1 MiB instance_id");
                        r = c
                            .add_group_member(v1::GroupMemberRequest {
                                group_id: g,
                                instance_id: huge(),
                            })
                            .await
                            .map(|_| ());
                    }
                    _ => {
                        what = format!("RegisterInstance big-{step} with a 1 MiB version");
                        let id = format!("big-{step}");
                        r = self
                            .fleet
                            .client_as(&Identity::Instance(id.clone()), Duration::from_secs(20))?
                            .register_instance(v1::RegisterInstanceRequest {
                                instance_id: id.clone(),
                                grpc_address: "127.0.0.1:9".into(),
                                version: huge(),
                                ..Default::default()
                            })
                            .await
                            .map(|_| ());
                        if r.is_ok() {
                            self.fakes.push(id);
                        }
                    }
                }
            }
        }
        self.judge(step, kind, &what, &r);
        if r.is_ok() {
            // Undo what should never have been accepted, so the run goes on
            // testing the rest (the violation is recorded).
            let _ = match undo {
                Undo::Group => c
                    .delete_group(v1::GroupRef { group_id: fresh })
                    .await
                    .map(|_| ()),
                Undo::Bvi(g) => c
                    .delete_group_bvi(v1::GroupRef { group_id: g })
                    .await
                    .map(|_| ()),
                Undo::Address(g, p) => c
                    .delete_group_bvi_address(v1::GroupBviDeleteAddressRequest {
                        group_id: g,
                        address: Some(p),
                    })
                    .await
                    .map(|_| ()),
            };
            self.delete_fakes().await;
        }
        Ok(())
    }
}

/// A registration an attacker or a careless operator would send.
fn impostor(id: &str, addr: &str) -> v1::RegisterInstanceRequest {
    v1::RegisterInstanceRequest {
        instance_id: id.into(),
        grpc_address: addr.into(),
        version: "impostor".into(),
        ready: true,
        ..Default::default()
    }
}
