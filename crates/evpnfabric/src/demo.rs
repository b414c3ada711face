//! The design article's demo (`docs/design.md`) on the real fabric, with every claim checked:
//! a group (here: the eVPN on every router and a BVI on each candidate),
//! a GroupBVI bound on one → the host's pings are answered and its
//! neighbour entries point at the vMAC; moves back and forth → BIRD on the
//! leaf shows the vMAC from exactly one VTEP, the leaf's FDB follows, the
//! pings come back; the primary's membership deleted → pings stop; the
//! group deleted → bridges, VXLAN devices, BVIs, snippets and BIRD
//! protocols are gone everywhere.
//!
//! This version drives the evpnds' own RPCs (CreateEvpnInstance, CreateBVI,
//! BindGroupBVI, ReleaseGroupBVI, GetMacAnnouncers, DeleteEvpnInstance):
//! exactly the calls evpnr makes for those steps.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evpn_api::v1;

use crate::{
    fabric::Fabric,
    prober::Prober,
    scenario::{self, Clients, Gateway, Wait},
};

/// Poll `f` (blocking) until it returns `Ok(true)`, for at most `timeout`
/// ([`evpn_testkit::eventually_blocking`]; the error names `what` and the last error of `f`).
pub fn eventually(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut last = None;
    evpn_testkit::eventually_blocking(what, timeout, || match f() {
        Ok(ok) => ok,
        Err(e) => {
            last = Some(e);
            false
        }
    })
    .map_err(|t| match last {
        Some(e) => anyhow::anyhow!("{t}: {e:#}"),
        None => anyhow::anyhow!("{t}"),
    })
}

/// The routes for `mac` in the leaf BIRD's `evpntab`: (RD net, next hops).
pub fn leaf_evpn_routes(f: &Fabric, mac: &str) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let c = f.leaf().bird_client();
    let mac = mac.to_string();
    f.block_on(async move {
        let r = c.show_route_mac("evpntab", &mac).await?;
        Ok(r.into_iter().map(|r| (r.net, r.next_hops)).collect())
    })
}

/// `evpn_<slug>` and `bridge_<slug>` are `up` in BIRD on routers `which`:
/// the devices were hot-added while BIRD ran, so this is the `docs/bird-notes.md` §4.6
/// recovery at work.
pub fn check_protocols_up(f: &Fabric, slug: &str, which: &[usize]) -> anyhow::Result<()> {
    for &i in which {
        let r = &f.routers[i];
        eventually(
            Duration::from_secs(10),
            &format!("evpn_{slug} and bridge_{slug} up on {}", r.id),
            || {
                let c = r.bird_client();
                let ps = f.block_on(async move { c.show_protocols(None, false).await })?;
                let up = |n: String| {
                    ps.iter()
                        .any(|p| p.name == n && p.state == bird_ctl::status::ProtoState::Up)
                };
                Ok(up(format!("evpn_{slug}")) && up(format!("bridge_{slug}")))
            },
        )?;
    }
    Ok(())
}

/// Check that the leaf sees the vMAC from exactly `vtep`: one EVPN MAC
/// route in BIRD's evpntab, the eVPN's eth table announcer, and the kernel
/// FDB entry of the VXLAN device.
pub fn check_one_announcer(
    f: &Fabric,
    cl: &Clients,
    gw: &Gateway,
    vtep: &str,
) -> anyhow::Result<()> {
    let leaf = f.routers.len() - 1;
    eventually(
        Duration::from_secs(5),
        &format!("vMAC only from {vtep}"),
        || {
            let routes = leaf_evpn_routes(f, &gw.vmac)?;
            let (cl2, gw2) = (cl.clone(), gw.clone());
            let ann = f.block_on(async move { scenario::announcers(&cl2, leaf, &gw2).await })?;
            let fdb = f.leaf_fdb_dsts(&gw.slug, &gw.vmac)?;
            let ok = routes.len() == 1
                && routes[0].1 == [vtep.to_string()]
                && ann == [vtep.to_string()]
                && fdb == [vtep.to_string()];
            if !ok {
                anyhow::bail!("evpntab {routes:?}, announcers {ann:?}, leaf FDB {fdb:?}");
            }
            Ok(true)
        },
    )
}

/// Play the demo with `moves` moves (evidence-based wait); `say` gets one
/// line per step.
pub fn demo_direct(
    f: &Fabric,
    gw: &Gateway,
    moves: usize,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let cl = Clients::connect(f)?;
    let n = f.routers.len();
    let bvi = format!("bvi-{}", gw.slug);
    scenario::setup(f, &cl, gw)?;
    for i in 0..n - 1 {
        let links = f.evpn_links(i)?;
        if !links.contains(&bvi) {
            bail!("{} has no {bvi}: {links:?}", f.routers[i].id);
        }
    }
    check_protocols_up(f, &gw.slug, &(0..n).collect::<Vec<_>>())?;
    say(&format!(
        "eVPN {} (VNI {}) on {} routers, BIRD's evpn/bridge protocols up; {bvi} on {}",
        gw.slug,
        gw.vni,
        n,
        f.routers[..n - 1]
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let epoch = Instant::now();
    let prober = Prober::start(
        &f.host.name,
        gw.v4.0,
        gw.v6.0,
        Duration::from_millis(1),
        epoch,
    )?;
    let (cl2, gw2) = (cl.clone(), gw.clone());
    f.block_on(async move { scenario::bind(&cl2, 0, &gw2).await })?;
    if !prober.wait_answered(Duration::from_secs(10)) {
        bail!("the host's pings to the gateway are not answered after the bind on r1");
    }
    for ip in [gw.v4.0.to_string(), gw.v6.0.to_string()] {
        eventually(
            Duration::from_secs(5),
            &format!("host neighbour {ip}"),
            || Ok(f.host_neigh(&ip)?.as_deref() == Some(gw.vmac.as_str())),
        )?;
    }
    check_one_announcer(f, &cl, gw, &f.routers[0].addr.to_string())?;
    say(&format!(
        "GroupBVI {} {}/{} {}/{} bound on r1: pings answered, host neighbours -> vMAC",
        gw.vmac, gw.v4.0, gw.v4.1, gw.v6.0, gw.v6.1
    ));
    let mut primary = 0;
    for m in 0..moves {
        let to = if primary == 0 { 1 } else { 0 };
        let (cl2, gw2) = (cl.clone(), gw.clone());
        let (t, _timeline) = f.block_on(async move {
            scenario::move_gw(&cl2, primary, to, &gw2, Wait::Evidence, epoch).await
        })?;
        check_one_announcer(f, &cl, gw, &f.routers[to].addr.to_string())?;
        if !prober.wait_answered(Duration::from_secs(5)) {
            bail!(
                "pings not answered after move {} to {}",
                m + 1,
                f.routers[to].id
            );
        }
        let (s4, s6) = prober.window(t.t0, t.bound + 50_000);
        say(&format!(
            "move {}: {} -> {} in {:.1} ms; leaf sees the vMAC only from {}; lost v4/v6 {}/{}, gap {:.1}/{:.1} ms",
            m + 1,
            f.routers[primary].id,
            f.routers[to].id,
            (t.bound - t.t0) as f64 / 1000.0,
            f.routers[to].addr,
            s4.lost,
            s6.lost,
            s4.gap_ms,
            s6.gap_ms
        ));
        primary = to;
    }
    // Delete the primary's membership: its eVPN (and BVI) go.
    let (id, a, mut c) = cl.evpnd[primary].clone();
    let slug = gw.slug.clone();
    f.block_on(async move {
        c.delete_evpn_instance(v1::EvpnRef {
            instance_id: id,
            slug,
        })
        .await
    })
    .context("DeleteEvpnInstance on the primary")?;
    // No reply for 300 ms: the pings stopped.
    eventually(Duration::from_secs(4), "pings stop", || {
        Ok(prober.recent_replies(Duration::from_millis(300)) == (0, 0))
    })?;
    eventually(Duration::from_secs(5), "vMAC withdrawn at the leaf", || {
        Ok(leaf_evpn_routes(f, &gw.vmac)?.is_empty()
            && f.leaf_fdb_dsts(&gw.slug, &gw.vmac)?.is_empty())
    })?;
    say(&format!(
        "membership of {} ({a}) deleted: pings stop, vMAC withdrawn",
        f.routers[primary].id
    ));
    // Delete the group: the eVPN goes from every other router.
    for i in (0..n).filter(|i| *i != primary) {
        let (id, _, mut c) = cl.evpnd[i].clone();
        let slug = gw.slug.clone();
        f.block_on(async move {
            c.delete_evpn_instance(v1::EvpnRef {
                instance_id: id,
                slug,
            })
            .await
        })
        .with_context(|| format!("DeleteEvpnInstance on {}", f.routers[i].id))?;
    }
    check_all_clean(f)?;
    say("group deleted: no bridge, VXLAN device, BVI, snippet or BIRD protocol left on any router");
    Ok(())
}

/// A client for evpnr (call inside [`Fabric::block_on`]).
pub async fn evpnr_client(
    url: String,
) -> anyhow::Result<evpn_api::v1::evpnr_client::EvpnrClient<tonic::transport::Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(evpn_api::v1::evpnr_client::EvpnrClient::new(
        ep.connect().await.with_context(|| url.clone())?,
    ))
}

/// evpnr client type.
pub type EvpnrClient = evpn_api::v1::evpnr_client::EvpnrClient<tonic::transport::Channel>;

fn call<T>(
    f: &Fabric,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tonic::Status>> + Send + 'static,
) -> anyhow::Result<T>
where
    T: Send + 'static,
{
    f.block_on(fut).with_context(|| what.to_string())
}

/// The registry part of the demo up to the GroupBVI: wait until the
/// candidates are registered and ready, create the leaf's access eVPN and
/// attach the host, CreateGroup, AddGroupMember for r1 and r2 (each gains
/// the BVI), CreateGroupBVI with the IPv4 and IPv6 prefixes.
pub fn setup_registry(
    f: &Fabric,
    gw: &Gateway,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(EvpnrClient, Clients, Vec<String>)> {
    if gw.slug != gw.group {
        bail!("evpnr names a group's eVPN after the group: slug must equal group");
    }
    let n = f.routers.len();
    let leaf = n - 1;
    let members: Vec<String> = f.routers[..2].iter().map(|r| r.id.clone()).collect();
    let r = f.block_on(evpnr_client(f.evpnr_url()))?;
    let cl = Clients::connect(f)?;
    // The candidates registered and ready.
    let cands: Vec<String> = f.routers[..n - 1].iter().map(|r| r.id.clone()).collect();
    eventually(
        Duration::from_secs(30),
        "candidates registered and ready",
        || {
            let mut r = r.clone();
            let l = f.block_on(async move { r.list_instances(v1::Empty {}).await })?;
            let ready: Vec<String> = l
                .into_inner()
                .instances
                .into_iter()
                .filter(|i| i.ready)
                .map(|i| i.instance_id)
                .collect();
            Ok(cands.iter().all(|c| ready.contains(c)))
        },
    )?;
    say(&format!("evpnr has {} ready", cands.join(", ")));
    // The leaf's access eVPN, then the host on it.
    let (lid, _, mut lc) = cl.evpnd[leaf].clone();
    let req = crate::fabric::create_evpn_req(&lid, &gw.slug, gw.vni);
    f.block_on(async move { lc.create_evpn_instance(req).await })
        .context("CreateEvpnInstance on the leaf")?;
    f.attach_host(&gw.slug)?;
    {
        let mut r = r.clone();
        let req = v1::CreateGroupRequest {
            group_id: gw.group.clone(),
            vni: gw.vni,
            vmac: gw.vmac.clone(),
            ..Default::default()
        };
        call(f, "CreateGroup", async move {
            r.create_group(req).await.map(|_| ())
        })?;
    }
    let bvi = format!("bvi-{}", gw.slug);
    for (i, m) in members.iter().enumerate() {
        let mut r = r.clone();
        let req = v1::GroupMemberRequest {
            group_id: gw.group.clone(),
            instance_id: m.clone(),
        };
        call(f, "AddGroupMember", async move {
            r.add_group_member(req).await.map(|_| ())
        })?;
        eventually(Duration::from_secs(10), &format!("{bvi} on {m}"), || {
            Ok(f.evpn_links(i)?.contains(&bvi))
        })?;
    }
    check_protocols_up(f, &gw.slug, &[0, 1, leaf])?;
    say(&format!(
        "group {} (VNI {}, vMAC {}) with members {}: each has {bvi}, BIRD's evpn/bridge protocols up",
        gw.group,
        gw.vni,
        gw.vmac,
        members.join(", ")
    ));
    {
        let mut r = r.clone();
        let req = v1::GroupBviRequest {
            group_id: gw.group.clone(),
            addresses: gw.prefixes(),
        };
        call(f, "CreateGroupBVI", async move {
            r.create_group_bvi(req).await.map(|_| ())
        })?;
    }
    Ok((r, cl, members))
}

/// The demo through evpnr (the fabric must run evpnr with the candidates
/// registered): CreateGroup, AddGroupMember ×2 (each gains the BVI),
/// CreateGroupBVI with an IPv4 and an IPv6 prefix, BindGroupBVI on r1,
/// `moves` × MoveGroupBVI back and forth, RemoveGroupMember of the primary,
/// DeleteGroup. The leaf is the host's access router, not a member: its
/// eVPN is created and finally deleted directly on its (unregistered)
/// evpnd.
pub fn demo_registry(
    f: &Fabric,
    gw: &Gateway,
    moves: usize,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let (r, cl, members) = setup_registry(f, gw, say)?;
    let leaf = f.routers.len() - 1;
    let epoch = Instant::now();
    let prober = Prober::start(
        &f.host.name,
        gw.v4.0,
        gw.v6.0,
        Duration::from_millis(1),
        epoch,
    )?;
    {
        let mut r = r.clone();
        let req = v1::BindGroupBviRequest {
            group_id: gw.group.clone(),
            instance_id: members[0].clone(),
        };
        call(f, "BindGroupBVI", async move {
            r.bind_group_bvi(req).await.map(|_| ())
        })?;
    }
    if !prober.wait_answered(Duration::from_secs(10)) {
        bail!("the host's pings are not answered after BindGroupBVI on r1");
    }
    for ip in [gw.v4.0.to_string(), gw.v6.0.to_string()] {
        eventually(
            Duration::from_secs(5),
            &format!("host neighbour {ip}"),
            || Ok(f.host_neigh(&ip)?.as_deref() == Some(gw.vmac.as_str())),
        )?;
    }
    check_one_announcer(f, &cl, gw, &f.routers[0].addr.to_string())?;
    say(&format!(
        "GroupBVI {}/{} {}/{} primary r1: pings answered, host neighbours -> vMAC",
        gw.v4.0, gw.v4.1, gw.v6.0, gw.v6.1
    ));
    let mut primary = 0;
    for m in 0..moves {
        let to = 1 - primary;
        let mut r2 = r.clone();
        let req = v1::MoveGroupBviRequest {
            group_id: gw.group.clone(),
            instance_id: members[to].clone(),
            force: false,
        };
        let t0 = prober.now_us();
        let g = f
            .block_on(async move { r2.move_group_bvi(req).await })
            .with_context(|| format!("MoveGroupBVI to {}", members[to]))?
            .into_inner();
        let t1 = prober.now_us();
        if g.primary_instance_id != members[to] {
            bail!("after the move the primary is {:?}", g.primary_instance_id);
        }
        check_one_announcer(f, &cl, gw, &f.routers[to].addr.to_string())?;
        if !prober.wait_answered(Duration::from_secs(5)) {
            bail!("pings not answered after move {} to {}", m + 1, members[to]);
        }
        let (s4, s6) = prober.window(t0, t1 + 50_000);
        say(&format!(
            "MoveGroupBVI {}: {} -> {} in {:.1} ms; leaf sees the vMAC only from {}; lost v4/v6 {}/{}, gap {:.1}/{:.1} ms",
            m + 1,
            members[primary],
            members[to],
            (t1 - t0) as f64 / 1000.0,
            f.routers[to].addr,
            s4.lost,
            s6.lost,
            s4.gap_ms,
            s6.gap_ms
        ));
        primary = to;
    }
    {
        let mut r = r.clone();
        let req = v1::GroupMemberRequest {
            group_id: gw.group.clone(),
            instance_id: members[primary].clone(),
        };
        call(f, "RemoveGroupMember", async move {
            r.remove_group_member(req).await.map(|_| ())
        })?;
    }
    // No reply for 300 ms: the pings stopped.
    eventually(Duration::from_secs(4), "pings stop", || {
        Ok(prober.recent_replies(Duration::from_millis(300)) == (0, 0))
    })?;
    eventually(Duration::from_secs(5), "vMAC withdrawn at the leaf", || {
        Ok(leaf_evpn_routes(f, &gw.vmac)?.is_empty()
            && f.leaf_fdb_dsts(&gw.slug, &gw.vmac)?.is_empty())
    })?;
    eventually(
        Duration::from_secs(10),
        "the removed member's eVPN is gone",
        || Ok(f.evpn_links(primary)?.is_empty()),
    )?;
    say(&format!(
        "RemoveGroupMember {}: pings stop, vMAC withdrawn, its eVPN and BVI gone",
        members[primary]
    ));
    {
        let mut r = r.clone();
        let req = v1::GroupRef {
            group_id: gw.group.clone(),
        };
        call(f, "DeleteGroup", async move {
            r.delete_group(req).await.map(|_| ())
        })?;
    }
    let (lid, _, mut lc) = cl.evpnd[leaf].clone();
    let slug = gw.slug.clone();
    f.block_on(async move {
        lc.delete_evpn_instance(v1::EvpnRef {
            instance_id: lid,
            slug,
        })
        .await
    })
    .context("DeleteEvpnInstance on the leaf")?;
    check_all_clean(f)?;
    say(
        "DeleteGroup (and the leaf's access eVPN): no bridge, VXLAN device, BVI, snippet or BIRD protocol left on any router",
    );
    Ok(())
}

/// Every router is free of eVPN devices, snippets and BIRD protocols.
pub fn check_all_clean(f: &Fabric) -> anyhow::Result<()> {
    for (i, r) in f.routers.iter().enumerate() {
        eventually(Duration::from_secs(10), &format!("{} clean", r.id), || {
            let links = f.evpn_links(i)?;
            if !links.is_empty() {
                bail!("{} still has {links:?}", r.id);
            }
            let snippets: Vec<_> = std::fs::read_dir(&r.include_dir)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".conf"))
                .collect();
            if !snippets.is_empty() {
                bail!("{} still has snippets {snippets:?}", r.id);
            }
            let c = r.bird_client();
            let protos = f.block_on(async move { c.show_protocols(None, false).await })?;
            let left: Vec<_> = protos
                .iter()
                .filter(|p| p.name.starts_with("evpn_") || p.name.starts_with("bridge_"))
                .map(|p| p.name.clone())
                .collect();
            if !left.is_empty() {
                bail!("{}: BIRD still runs {left:?}", r.id);
            }
            Ok(true)
        })?;
    }
    Ok(())
}
