//! evpnr with a failing state store (the `<state-dir>/.fault` hook; a real
//! full file system in `tmpfs_full_state_dir_*`), against real evpnd
//! processes on vppsim and real BIRD 2.20: a move whose intent cannot be
//! saved fails UNAVAILABLE, nothing binds while the store fails (not even
//! after a kill -9 and a restart), and orchestration resumes by itself once
//! a save succeeds. "Never two holders" is checked by replaying the vppsim
//! journals of all hosts in wall-clock order.
mod common;

use common::*;
use evpn_api::v1;
use evpn_testkit::metric_value;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

const PRIMARY: i32 = v1::bvi::Role::Primary as i32;
const CANDIDATE: i32 = v1::bvi::Role::Candidate as i32;

/// Wait until `primary` holds the GroupBVI and every other member is a
/// candidate, as the registry and the members (and their VPPs) report it.
async fn wait_converged(f: &Fleet, primary: &str, vmac: &str) {
    wait_for(&format!("converged on {primary}"), || async move {
        if f.group("test").await.primary_instance_id != primary {
            return false;
        }
        for h in &f.hosts {
            let is_p = h.id == primary;
            let role = f.bvi(&h.id, "test").await.map_or(-1, |b| b.role);
            if role != if is_p { PRIMARY } else { CANDIDATE } || h.holds(vmac) != is_p {
                return false;
            }
        }
        true
    })
    .await;
}

/// evpnr restarted on a full disk: its epoch is not on disk, so it stays
/// paused — not serving, nothing bound, the file's primary still named.
async fn restarted_paused(f: &Fleet, vmac: &str) {
    f.evpnr().wait_log("registry-epoch-not-saved", T).unwrap();
    assert_eq!(health(f).await, ServingStatus::NotServing);
    f.wait_ready(A).await;
    f.wait_ready(B).await;
    assert_eq!(f.group("test").await.primary_instance_id, A);
    assert!(!f.host(B).holds(vmac), "B bound while paused");
    f.check_vmac_exclusive(vmac, &[]).unwrap();
}

async fn health(f: &Fleet) -> ServingStatus {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", f.port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let st = HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: "evpn.v1.Evpnr".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(st).unwrap()
}

fn state_dir(f: &Fleet) -> std::path::PathBuf {
    f.dir.path().join("state")
}

fn inject(f: &Fleet, what: &str) {
    std::fs::write(state_dir(f).join(".fault"), what).unwrap();
}

fn clear(f: &Fleet) {
    std::fs::remove_file(state_dir(f).join(".fault")).unwrap();
}

fn assert_unavailable(r: Result<impl std::fmt::Debug, tonic::Status>, needle: &str) {
    let e = r.expect_err("must fail while the store fails");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains(needle), "{e:?}");
}

/// The sequence: the move's intent cannot be saved (ENOSPC) after
/// the old primary was released. The move fails UNAVAILABLE; the undo
/// cannot be saved either, yet nothing binds while the store fails (before
/// the fix, the target was bound from memory and, after a kill -9 and a
/// restart, the file's primary too: two holders). After the restart the
/// fleet converges on the file's primary with exactly one holder; with the
/// fault cleared, orchestration resumes by itself (no restart) and moves
/// work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_fault_mid_move_never_two_holders_and_resumes_by_itself() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "store_fault_mid_move_never_two_holders_and_resumes_by_itself",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_converged(&f, A, &vmac).await;
    assert_eq!(health(&f).await, ServingStatus::Serving);

    // 1. The disk fills up; the next move cannot persist its intent.
    inject(&f, "enospc");
    let n = f.evpnr().lines().len();
    assert_unavailable(f.move_to(B, false).await, "No space left on device");
    f.evpnr()
        .wait_log_after(n, "state-store-failed", T)
        .unwrap();
    // The undo triggered resyncs; they are paused, not acting.
    f.evpnr().wait_log_after(n, "resync-paused", T).unwrap();
    assert!(!f.host(B).holds(&vmac), "B bound from an unsaved state");
    assert_eq!(health(&f).await, ServingStatus::NotServing);
    let m = f.metrics();
    assert_eq!(metric_value(&m, "evpnr_store_healthy", &[]), Some(0.0));
    assert!(metric_value(&m, "evpnr_store_failures_total", &[]).is_some_and(|v| v >= 1.0));
    // Reads work; the registry does not claim the move happened.
    assert_eq!(f.group("test").await.primary_instance_id, A);
    // Mutating RPCs are refused, naming the store's error.
    assert_unavailable(f.move_to(B, false).await, "No space left on device");
    let mtu = f
        .client()
        .await
        .set_group_mtu(v1::SetGroupMtuRequest {
            group_id: "test".into(),
            mtu: 1400,
        })
        .await;
    assert_unavailable(mtu, "state store");
    f.check_vmac_exclusive(&vmac, &[]).unwrap();

    // 2. kill -9 and a restart while the disk is still full: the new run's
    // registry epoch cannot be saved, so evpnr starts paused (reads only)
    // and binds nothing: the file's primary stays released until the disk
    // takes writes, never two holders.
    f.restart_evpnr();
    restarted_paused(&f, &vmac).await;

    // 3. Fail a move again, then free the disk: without a restart, the
    // pending state is saved, a recovery event is emitted, resyncs rebind
    // the primary, and moves work again.
    let n = f.evpnr().lines().len();
    assert_unavailable(f.move_to(B, false).await, "No space left on device");
    f.evpnr().wait_log_after(n, "resync-paused", T).unwrap();
    assert!(!f.host(B).holds(&vmac));
    clear(&f);
    f.evpnr()
        .wait_log_after(n, "state-store-recovered", T)
        .unwrap();
    wait_converged(&f, A, &vmac).await;
    assert_eq!(health(&f).await, ServingStatus::Serving);
    assert_eq!(
        metric_value(&f.metrics(), "evpnr_store_healthy", &[]),
        Some(1.0)
    );
    f.move_to(B, false).await.unwrap();
    wait_converged(&f, B, &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// A size-limited tmpfs mounted over a directory (root); unmounted on drop.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Fill the file system until it refuses more data.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|_| f.sync_all()) {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                return;
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// A full file system still takes appends to evpnr's journal while they fit
/// in its last, partly used page (they are durable: the store rightly
/// succeeds). Restart evpnr (each start appends its new epoch, a record of
/// the same size each time) until a start cannot save its epoch: from then
/// on no record of the state fits.
async fn exhaust_journal_slack(f: &mut Fleet) {
    for _ in 0..16 {
        f.restart_evpnr();
        let mut failed = false;
        wait_for("evpnr's epoch saved or refused", async || {
            let lines = f.evpnr().lines();
            failed = lines.iter().any(|l| l.contains("registry-epoch-not-saved"));
            failed || lines.iter().any(|l| l.contains("registry-epoch"))
        })
        .await;
        if failed {
            return;
        }
        // Let the members register with this one before the next restart.
        f.wait_ready(A).await;
        f.wait_ready(B).await;
    }
    panic!("evpnr kept saving its epoch on a full file system");
}

/// The same sequence at process level with a real full file system: evpnr's
/// state directory is a size-limited tmpfs that is filled up mid-life (and
/// its journal's last page with it, `exhaust_journal_slack`; a save failing
/// under a running evpnr is the `.fault` test above). A move fails UNAVAILABLE, nothing binds while the disk is full (not even
/// after a kill -9 and a restart), and freeing space resumes orchestration
/// without a restart. Needs root (mount).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmpfs_full_state_dir_pauses_moves_then_resumes() {
    const TEST: &str = "tmpfs_full_state_dir_pauses_moves_then_resumes";
    evpn_testkit::bird::require_root(TEST);
    let _s = serial().await;
    let mut f = Fleet::new(TEST, &[A, B]).await;
    // evpnr keeps its journal open: restarted after the mount, it writes to
    // the tmpfs (its state is still empty; no evpnd has seen its epoch).
    let fs = Tmpfs::mount(&state_dir(&f), "512k");
    f.restart_evpnr();
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_converged(&f, A, &vmac).await;

    fs.fill();
    exhaust_journal_slack(&mut f).await;
    restarted_paused(&f, &vmac).await;
    assert_unavailable(f.move_to(B, false).await, "No space left on device");
    assert!(!f.host(B).holds(&vmac), "B bound from an unsaved state");
    assert_eq!(f.group("test").await.primary_instance_id, A);

    f.restart_evpnr();
    restarted_paused(&f, &vmac).await;

    let n = f.evpnr().lines().len();
    assert_unavailable(f.move_to(B, false).await, "No space left on device");
    fs.free();
    f.evpnr()
        .wait_log_after(n, "state-store-recovered", T)
        .unwrap();
    wait_converged(&f, A, &vmac).await;
    assert_eq!(health(&f).await, ServingStatus::Serving);
    f.move_to(B, false).await.unwrap();
    wait_converged(&f, B, &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    // `fs` is unmounted before `f` removes its directories.
}
