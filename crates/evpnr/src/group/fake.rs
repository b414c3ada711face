//! The driver of the group machine against a fake southbound (the same
//! trait as the gRPC members): what a move sends, in which order, and what
//! the registry keeps when a member fails.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use evpn_daemon::events::{EventBroker, EventFilter};
use evpn_model::{Error, Mac, settle::SettleOutcome};
use futures::{StreamExt, future::BoxFuture};

use crate::{
    plan::{ActualBvi, ActualEvpn, Desired},
    registry::{Conn, MemberRt, Registry},
    southbound::{BindRequest, Listing, Southbound},
};

/// Records every call that changes a member; a release of a member in
/// `fail` fails; a member lists what `listing` holds for it (nothing by
/// default).
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail: Mutex<BTreeMap<String, Error>>,
    listing: Mutex<BTreeMap<String, Listing>>,
    /// Members whose eVPNs are disabled.
    disabled: Mutex<std::collections::BTreeSet<String>>,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Southbound<Registry> for Fake {
    fn list<'a>(&'a self, _: &'a Registry, id: &'a str) -> BoxFuture<'a, Result<Listing, Error>> {
        let l = self.listing.lock().unwrap().get(id).cloned();
        Box::pin(async move { Ok(l.unwrap_or_default()) })
    }
    fn create_evpn<'a>(
        &'a self,
        _: &'a Registry,
        id: &'a str,
        d: &'a Desired,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("create-evpn {id} {}", d.group));
        Box::pin(async { Ok(()) })
    }
    fn create_bvi<'a>(
        &'a self,
        _: &'a Registry,
        _: &'a str,
        _: &'a str,
        _: Mac,
        _: u32,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn replace_bvi<'a>(
        &'a self,
        _: &'a Registry,
        _: &'a str,
        _: &'a str,
        _: Mac,
        _: u32,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }
    fn delete_evpn<'a>(
        &'a self,
        _: &'a Registry,
        id: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("delete-evpn {id} {slug}"));
        Box::pin(async { Ok(true) })
    }
    fn bind<'a>(
        &'a self,
        _: &'a Registry,
        id: &'a str,
        b: &'a BindRequest,
    ) -> BoxFuture<'a, Result<Option<SettleOutcome>, Error>> {
        Box::pin(async move {
            let s = if b.settle.is_some() { "settle" } else { "" };
            self.calls.lock().unwrap().push(format!("bind {id} {s}"));
            Ok(None)
        })
    }
    fn evpn_enabled<'a>(
        &'a self,
        _: &'a Registry,
        id: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<bool>, Error>> {
        let on = !self.disabled.lock().unwrap().contains(id);
        Box::pin(async move { Ok(Some(on)) })
    }
    fn release<'a>(
        &'a self,
        _: &'a Registry,
        id: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::southbound::ReleaseEvidence>, Error>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(format!("release {id}"));
            match self.fail.lock().unwrap().get(id) {
                Some(e) => Err(e.clone()),
                None => Ok(None),
            }
        })
    }
}

/// A connected, ready member's run-time state (its client dials nowhere).
pub(crate) fn member_rt(id: &str) -> MemberRt {
    MemberRt {
        conn: Conn::Connected,
        ready: true,
        last_seen: None,
        last_error: String::new(),
        client: crate::client::client(id, "127.0.0.1:1", Default::default(), 1).unwrap(),
        cancel: tokio_util::sync::CancellationToken::new(),
        memberships: BTreeMap::new(),
        resync_pending: false,
        // No background resync: the calls seen are the operation's.
        resync_running: true,
        last_heartbeat: None,
        health: None,
        witnesses: Vec::new(),
        liveness: crate::model::Liveness::Unknown,
        addr: "127.0.0.1:1".into(),
    }
}

/// A registry over `fake` with members "a" and "b" (connected, ready) in
/// group "g" (GroupBVI, bound on "a").
fn registry(fake: Arc<Fake>) -> (Arc<Registry>, tempfile::TempDir) {
    use clap::Parser;
    let cfg = crate::config::load(&crate::config::Args::parse_from(["evpnr"]))
        .unwrap()
        .cfg;
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(cfg));
    std::mem::forget(tx);
    let dir = tempfile::tempdir().unwrap();
    let mut preg = prometheus_client::registry::Registry::default();
    let reg = Arc::new(Registry::new(
        crate::model::State::default(),
        crate::store::Store::open(dir.path()).unwrap(),
        evpn_daemon::durable::StoreHealth::register(
            &mut preg,
            EventBroker::new("", 64),
            tokio::sync::watch::channel(true).0,
        ),
        EventBroker::new("", 64),
        crate::metrics::RegistryMetrics::register(&mut preg),
        rx,
        tokio_util::sync::CancellationToken::new(),
        fake,
    ));
    for id in ["a", "b"] {
        reg.lock().rt.insert(id.into(), member_rt(id));
    }
    reg.create_group(crate::groups::NewGroup {
        id: "g".into(),
        vni: 100,
        mtu: 1500,
        vmac: None,
        import_rts: vec![],
        export_rts: vec![],
    })
    .unwrap();
    reg.mutate(|s| {
        let g = s.groups.get_mut("g").unwrap();
        g.members = ["a".to_string(), "b".to_string()].into();
        g.primary = Some("a".into());
        g.holders = ["a".to_string()].into();
        g.bvi = Some(crate::model::GroupBvi {
            addresses: vec!["192.0.2.1/24".parse().unwrap()],
            created_at: std::time::SystemTime::UNIX_EPOCH,
            modified_at: std::time::SystemTime::UNIX_EPOCH,
        });
        Ok(())
    })
    .unwrap();
    (reg, dir)
}

#[tokio::test]
async fn a_move_releases_then_binds_and_ends_with_one_holder() {
    let fake = Arc::new(Fake::default());
    let (reg, _d) = registry(fake.clone());
    let mut ev = reg.broker.subscribe(EventFilter::default());
    let g = reg.move_bvi("g", "b", false).await.unwrap();
    assert_eq!(fake.calls(), ["release a", "bind b settle"]);
    assert_eq!(g.primary.as_deref(), Some("b"));
    assert_eq!(g.holders, ["b".to_string()].into());
    // On disk before the bind: the store has the intent.
    let disk = crate::store::Store::open(_d.path())
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(disk.groups["g"].primary.as_deref(), Some("b"));
    let mut names = vec![];
    while names.last().is_none_or(|n| n != "move-finished") {
        names.push(ev.next().await.unwrap().message.clone());
    }
    assert_eq!(
        names,
        [
            "move-started",
            "groupbvi-released",
            "groupbvi-bound",
            "move-settle-no-evidence",
            "move-finished"
        ]
    );
}

/// R13 holds for a takeover too: its candidate is asked, under the group's
/// lock, whether the group's eVPN is enabled there, and a disabled one is
/// refused before anything is released. (Session 14 tried trusting the
/// candidate's last heartbeat instead; the chaos run, seed 1, then bound a
/// candidate whose eVPN had been disabled a second earlier next to the old
/// primary: its empty table of the eVPN showed no announcer.)
#[tokio::test]
async fn a_takeover_onto_a_disabled_evpn_is_refused_before_any_release() {
    let fake = Arc::new(Fake::default());
    fake.disabled.lock().unwrap().insert("b".into());
    let (reg, _d) = registry(fake.clone());
    let input = super::types::Input::Move {
        target: "b".into(),
        force: true,
        op: super::types::MoveOp::Takeover,
    };
    let how = super::driver::Drive {
        target: Some("b"),
        ..super::driver::Drive::default()
    };
    let e = reg.drive("g", input, how).await.unwrap_err();
    assert!(
        matches!(&e, Error::FailedPrecondition(m) if m.contains("disabled")),
        "{e}"
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    assert_eq!(reg.group("g").unwrap().primary.as_deref(), Some("a"));
}

#[tokio::test]
async fn an_old_primary_that_cannot_be_released_is_never_joined_by_the_target() {
    let fake = Arc::new(Fake::default());
    fake.fail
        .lock()
        .unwrap()
        .insert("a".into(), Error::Unavailable("down".into()));
    let (reg, _d) = registry(fake.clone());
    let e = reg.move_bvi("g", "b", false).await.unwrap_err();
    assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
    assert_eq!(fake.calls(), ["release a"]);
    let g = reg.group("g").unwrap();
    assert_eq!(g.primary.as_deref(), Some("a"));
    assert!(g.holders.contains("a"));
    // Forced, the unreachable holder is skipped and stays a holder.
    reg.move_bvi("g", "b", true).await.unwrap();
    assert_eq!(fake.calls(), ["release a", "release a", "bind b settle"]);
    let g = reg.group("g").unwrap();
    assert_eq!(g.primary.as_deref(), Some("b"));
    assert!(g.holders.contains("a") && g.holders.contains("b"));
}

#[tokio::test]
async fn a_group_bvi_deletion_that_cannot_be_saved_changes_nothing() {
    // Found in review: the take-back restored the machine's flag but not
    // the GroupBVI itself, so the deletion reached the disk at the next
    // successful save although the operator was told nothing changed.
    let fake = Arc::new(Fake::default());
    let (reg, d) = registry(fake.clone());
    let before = reg.group("g").unwrap();
    std::fs::write(d.path().join(evpn_daemon::durable::FAULT_FILE), "enospc").unwrap();
    let e = reg.delete_bvi("g").await.expect_err("the store fails");
    assert_eq!(
        tonic::Status::from(e).code(),
        tonic::Code::Unavailable,
        "refused as unavailable"
    );
    let g = reg.group("g").unwrap();
    assert_eq!(
        g.bvi, before.bvi,
        "the GroupBVI is still there, addresses included"
    );
    assert_eq!(g.primary.as_deref(), Some("a"));
    assert_eq!(
        fake.calls(),
        Vec::<String>::new(),
        "no member was told anything"
    );
}

/// What member `id` lists when it is configured for `g` and holds its
/// GroupBVI (bound with the stored addresses).
fn bound(g: &crate::model::Group, id: &str) -> Listing {
    let evpn = ActualEvpn {
        slug: g.id.clone(),
        vni: g.vni,
        import_rts: vec![],
        export_rts: vec![],
    };
    let bvi = ActualBvi {
        slug: g.id.clone(),
        mac: g.vmac,
        instance_mac: g.bvi_mac(id),
        mtu: g.mtu,
        primary: true,
        addresses: g
            .bvi
            .as_ref()
            .map(|b| b.addresses.clone())
            .unwrap_or_default(),
    };
    (vec![evpn], vec![bvi])
}

/// The store's fault file as a FIFO: a save blocks on it (holding the
/// state writer) until the test answers, and then fails. Dropping the
/// answer (also when the test panics) lets the save fail and removes the
/// FIFO, so later saves succeed.
struct BlockedSave {
    fifo: std::path::PathBuf,
    writer: Option<std::fs::File>,
}

impl BlockedSave {
    fn arm(dir: &std::path::Path) -> BlockedSave {
        let fifo = dir.join(evpn_daemon::durable::FAULT_FILE);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        BlockedSave { fifo, writer: None }
    }

    /// Wait until a save has opened the fault file (it is under way).
    async fn wait_for_save(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        // A non-blocking open for writing fails (ENXIO) until a reader has
        // the FIFO open.
        let w = evpn_testkit::eventually(
            "a save opening the fault file",
            std::time::Duration::from_secs(10),
            async || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                    .open(&self.fifo)
            },
        )
        .await
        .unwrap();
        self.writer = Some(w);
    }
}

impl Drop for BlockedSave {
    fn drop(&mut self) {
        if let Some(mut w) = self.writer.take() {
            use std::io::Write;
            let _ = w.write_all(b"enospc");
        }
        let _ = std::fs::remove_file(&self.fifo);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unassignment_is_neither_seen_nor_acted_on_before_it_is_on_disk() {
    // Found in review: RemoveGroupMember of the primary was published in
    // memory before it was saved, so a resync of that member running
    // meanwhile deleted its eVPN (the member had left, as far as it could
    // see); then the save failed and the registry took the change back:
    // evpnr had acted on a state that was never durable.
    let fake = Arc::new(Fake::default());
    let (reg, d) = registry(fake.clone());
    let before = reg.group("g").unwrap();
    // "a" holds the GroupBVI as stored: its resync has nothing to change.
    fake.listing
        .lock()
        .unwrap()
        .insert("a".into(), bound(&before, "a"));
    let mut save = BlockedSave::arm(d.path());
    let r = reg.clone();
    let op = tokio::spawn(async move { r.remove_member("g", "a").await });
    save.wait_for_save().await;
    // While the unassignment is being written, readers see the group as it
    // is on disk.
    let seen = reg.group("g").unwrap();
    assert_eq!(seen.primary.as_deref(), Some("a"), "unassignment published");
    assert!(seen.members.contains("a"), "leave published before saved");
    // A resync of "a" now finds nothing to do. (Acting on the unsaved
    // state, it would delete "a"'s eVPN and then wait for the state writer.)
    let r = reg.clone();
    let resync = tokio::spawn(async move { r.resync("a").await });
    evpn_testkit::eventually(
        "the resync finished, or sent something",
        std::time::Duration::from_secs(10),
        async || resync.is_finished() || !fake.calls().is_empty(),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.calls(),
        Vec::<String>::new(),
        "something was sent on the basis of an unsaved unassignment"
    );
    // The save fails: the operation changes nothing.
    drop(save);
    let e = op.await.unwrap().expect_err("the store fails");
    assert_eq!(tonic::Status::from(e).code(), tonic::Code::Unavailable);
    resync.await.unwrap().unwrap();
    let g = reg.group("g").unwrap();
    assert_eq!(
        (g.primary, g.holders, g.members),
        (before.primary, before.holders, before.members)
    );
    assert_eq!(
        fake.calls(),
        Vec::<String>::new(),
        "no member was told anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_leaves_a_group_alone_while_an_operation_on_it_is_in_flight() {
    // Found on the real fabric (session 10): a takeover from a primary that
    // was alive and announcing waited for the fabric's evidence; meanwhile
    // the old primary's resync saw it holding the vMAC next to the stored
    // intent (the new primary) and released it as a stray, so the takeover
    // the fabric refused became a move. R18: deferred until the operation
    // has ended.
    let fake = Arc::new(Fake::default());
    let (reg, _d) = registry(fake.clone());
    let before = reg.group("g").unwrap();
    fake.listing
        .lock()
        .unwrap()
        .insert("a".into(), bound(&before, "a"));
    // A takeover's intent: "b" is the primary, "a" still a possible holder.
    reg.mutate(|s| {
        let g = s.groups.get_mut("g").unwrap();
        g.primary = Some("b".into());
        g.holders = ["a".to_string(), "b".to_string()].into();
        Ok(())
    })
    .unwrap();
    let gl = reg.group_lock("g");
    let op = gl.lock().await;
    reg.resync("a").await.unwrap();
    assert_eq!(
        fake.calls(),
        Vec::<String>::new(),
        "a resync acted on a group whose operation is in flight"
    );
    // The operation ends: the deferred resync runs (in the background,
    // which this fake keeps off until now), and the stray goes.
    reg.lock().rt.get_mut("a").unwrap().resync_running = false;
    drop(op);
    evpn_testkit::eventually(
        "the deferred resync released the stray holder",
        std::time::Duration::from_secs(10),
        async || fake.calls().iter().any(|c| c == "release a"),
    )
    .await
    .unwrap();
}
