//! Crash-safe persistence of the registry state: a snapshot
//! (`registry.json`) plus a write-ahead journal (`registry.journal`).
//!
//! `save` appends one record (length, CRC-32, sequence number, the state as
//! JSON; see [`journal`]) to the journal, opened once with `O_APPEND`, and
//! `fdatasync`s it: that is the durable point, a change is acknowledged
//! only after it. Once the journal holds [`COMPACT_RECORDS`] records or
//! [`COMPACT_BYTES`], the save that got it there starts a compaction on a
//! thread of its own (issue 16: not inside the save, whose caller may be a
//! move waiting for its intent to be durable): the state of that save is
//! written as the snapshot the crash-safe way (temp file + fsync + rename +
//! fsync of the directory) carrying its sequence number, then the journal is
//! truncated — only if no record was appended meanwhile (else the next save
//! starts another compaction). `load` takes the snapshot, then the newest
//! valid journal record newer than it. At every instant the newest
//! acknowledged state is on disk: it is in the journal until a snapshot of
//! it (or of a newer state) is renamed in; records no newer than the
//! snapshot are skipped by their sequence numbers (so the truncation itself
//! needs no fsync); a torn last record (a crash during the append) was never
//! acknowledged and is cut off.
use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::model::State;

mod journal;

const FILE: &str = "registry.json";
const TMP: &str = "registry.json.tmp";
const JOURNAL: &str = "registry.journal";
/// A copy of a damaged journal, kept for inspection when `load` cuts it.
const CORRUPT: &str = "registry.journal.corrupt";
const FORMAT: u32 = 1;
/// Compact after this many journal records...
pub const COMPACT_RECORDS: usize = 64;
/// ...or this many journal bytes.
pub const COMPACT_BYTES: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    /// Sequence number of the last journal record folded in (absent in
    /// files written before the journal: 0).
    #[serde(default)]
    seq: u64,
    state: State,
}

/// The open journal.
#[derive(Debug)]
struct Journal {
    file: File,
    /// Sequence number of the newest state on disk.
    seq: u64,
    records: usize,
    bytes: u64,
}

/// The on-disk store in one directory. Clones share the open journal and
/// the compaction in flight.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    journal: Arc<Mutex<Option<Journal>>>,
    compactor: Arc<Compactor>,
}

/// The background compaction of a store (at most one at a time); the last
/// clone of the store to go waits for it.
#[derive(Debug, Default)]
struct Compactor {
    running: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tests: the next compaction waits for a message (or a hang-up) here
    /// before it starts.
    #[cfg(test)]
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl Compactor {
    fn handle(&self) -> std::sync::MutexGuard<'_, Option<std::thread::JoinHandle<()>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for the compaction in flight, if any.
    fn wait(&self) {
        let h = self.handle().take();
        if let Some(h) = h
            && h.join().is_err()
        {
            tracing::warn!("state-compaction-panicked");
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.wait();
    }
}

/// What a compaction needs (not the [`Store`]: its last clone waits for it).
struct Compaction {
    dir: PathBuf,
    journal: Arc<Mutex<Option<Journal>>>,
}

impl Store {
    /// Open (creating the directory if needed).
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            journal: Arc::default(),
            compactor: Arc::default(),
        })
    }

    /// Path of the state snapshot (the journal is beside it).
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// Load the state: the snapshot, then the newest valid journal record
    /// newer than it; nothing on disk is an empty registry. Leftover temp
    /// files (a crash before the rename; `TMP` is the name older versions
    /// used) are ignored and removed; a torn journal tail is cut off.
    pub fn load(&self) -> anyhow::Result<State> {
        let mut g = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let (state, j) = self.recover()?;
        *g = Some(j);
        Ok(state)
    }

    /// Read snapshot + journal, cut the journal back to its valid prefix and
    /// open it for appending.
    fn recover(&self) -> anyhow::Result<(State, Journal)> {
        let p = self.path();
        match fs::remove_file(self.dir.join(TMP)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(error = %e, "state-temp-not-removed");
            }
            _ => {}
        }
        if let Err(e) = evpn_base::fs::remove_temps(&p) {
            tracing::warn!(error = %e, "state-temp-not-removed");
        }
        let snap = match fs::read_to_string(&p) {
            Ok(text) => {
                let d: OnDisk = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("{}: not a registry state file: {e}", p.display())
                })?;
                if d.format != FORMAT {
                    anyhow::bail!("{}: unknown format {}", p.display(), d.format);
                }
                Some(d)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", p.display())),
        };
        let jp = self.journal_path();
        let bytes = match fs::read(&jp) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", jp.display())),
        };
        let scan = journal::scan(&bytes);
        let snap_seq = snap.as_ref().map_or(0, |d| d.seq);
        let state = match &scan.last {
            Some((seq, range)) if *seq > snap_seq => serde_json::from_slice(&bytes[range.clone()])
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: record {seq} is not a registry state: {e}",
                        jp.display()
                    )
                })?,
            _ => snap.map(|d| d.state).unwrap_or_default(),
        };
        let seq = scan.last.as_ref().map_or(0, |l| l.0).max(snap_seq);
        match &scan.stop {
            journal::Stop::End => {}
            journal::Stop::Torn => tracing::info!(
                path = %jp.display(),
                at = scan.good_end,
                "state-journal-torn-tail-cut"
            ),
            journal::Stop::Corrupt(why) => {
                let copy = self.dir.join(CORRUPT);
                tracing::error!(
                    path = %jp.display(),
                    error = %why,
                    copy = %copy.display(),
                    "state-journal-corrupt"
                );
                fs::write(&copy, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", copy.display()))?;
            }
        }
        let file = self.open_journal()?;
        if scan.stop != journal::Stop::End {
            file.set_len(scan.good_end as u64)?;
            file.sync_all()?;
        }
        Ok((
            state,
            Journal {
                file,
                seq,
                records: scan.records,
                bytes: scan.good_end as u64,
            },
        ))
    }

    /// Open the journal for appending; a journal created here is made
    /// durable in its directory (fsync of the directory).
    fn open_journal(&self) -> std::io::Result<File> {
        let jp = self.journal_path();
        let opts = || {
            let mut o = OpenOptions::new();
            o.append(true);
            o
        };
        match opts().create_new(true).open(&jp) {
            Ok(f) => {
                evpn_base::fs::sync_dir(&self.dir)?;
                Ok(f)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => opts().open(&jp),
            Err(e) => Err(e),
        }
    }

    /// Write the state durably (one journal append + `fdatasync`). Fails
    /// while a fault is injected (see
    /// [`evpn_daemon::durable::injected_fault`]).
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        evpn_daemon::durable::injected_fault(&self.dir)?;
        let payload = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        in_place(|| {
            let mut g = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            // The open journal must still be the one in the state directory:
            // appends to a file removed or replaced behind evpnr's back would
            // be acknowledged but lost. Not the same file: reopen (which fails
            // if the directory is gone, as a whole-file write did).
            if let Some(j) = g.as_ref()
                && !same_file(&self.journal_path(), &j.file)
            {
                tracing::warn!(dir = %self.dir.display(), "state-journal-replaced");
                *g = None;
            }
            if g.is_none() {
                let (_, j) = self.recover().map_err(std::io::Error::other)?;
                *g = Some(j);
            }
            let Some(j) = g.as_mut() else {
                unreachable!("journal opened above")
            };
            let rec = journal::encode(j.seq + 1, &payload);
            if let Err(e) = j.file.write_all(&rec).and_then(|()| j.file.sync_data()) {
                // Not acknowledged: cut the partial record off (best effort)
                // and recover from disk at the next save.
                let _ = j.file.set_len(j.bytes);
                *g = None;
                return Err(e);
            }
            j.seq += 1;
            j.records += 1;
            j.bytes += rec.len() as u64;
            if j.records >= COMPACT_RECORDS || j.bytes >= COMPACT_BYTES {
                let seq = j.seq;
                drop(g);
                self.start_compaction(seq, state);
            }
            Ok(())
        })
    }

    /// Compact to the state of record `seq` on a thread of its own, unless
    /// a compaction is still running (the next save starts one then: the
    /// journal is still over the threshold).
    fn start_compaction(&self, seq: u64, state: &State) {
        let mut h = self.compactor.handle();
        if h.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let c = Compaction {
            dir: self.dir.clone(),
            journal: self.journal.clone(),
        };
        let state = state.clone();
        #[cfg(test)]
        let gate = self.compactor.gate.lock().unwrap().take();
        let spawned = std::thread::Builder::new()
            .name("state-compaction".into())
            .spawn(move || {
                #[cfg(test)]
                if let Some(g) = gate {
                    let _ = g.recv();
                }
                if let Err(e) = c.run(seq, &state) {
                    // The state is durable in the journal; compaction is
                    // retried after the next save.
                    tracing::warn!(error = %e, "state-compaction-failed");
                }
            });
        match spawned {
            Ok(t) => *h = Some(t),
            Err(e) => tracing::warn!(error = %e, "state-compaction-failed"),
        }
    }

    /// Wait for the compaction in flight, if any (tests; shutdown).
    pub fn wait_compaction(&self) {
        self.compactor.wait();
    }
}

impl Compaction {
    /// Fold the journal into the snapshot (the state of record `seq`), then
    /// empty the journal if nothing was appended after `seq` meanwhile. A
    /// crash anywhere leaves either the journal with the newest record, or
    /// the snapshot of it with journal records that are no newer: skipped.
    fn run(&self, seq: u64, state: &State) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&OnDisk {
            format: FORMAT,
            seq,
            state: state.clone(),
        })
        .map_err(std::io::Error::other)?;
        evpn_base::fs::write_atomic(&self.dir.join(FILE), &text)?;
        self.truncate_if_at(seq)
    }

    /// Empty the journal if its newest record is still `seq` (which the
    /// snapshot holds). No fsync: should the truncation not survive a
    /// crash, the records left are no newer than the snapshot (skipped),
    /// and the next append's `fdatasync` makes the file's new length durable
    /// with it.
    fn truncate_if_at(&self, seq: u64) -> std::io::Result<()> {
        let mut g = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let Some(j) = g.as_mut() else {
            return Ok(());
        };
        if j.seq != seq || !same_file(&self.dir.join(JOURNAL), &j.file) {
            return Ok(());
        }
        if let Err(e) = j.file.set_len(0) {
            // Recovered from disk at the next save.
            *g = None;
            return Err(e);
        }
        j.records = 0;
        j.bytes = 0;
        Ok(())
    }
}

/// Whether `path` names the open file `f` (same device and inode).
fn same_file(path: &Path, f: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Run blocking file work `f` from a synchronous caller that may itself run
/// on an async worker (a save under a std mutex from a gRPC handler): on
/// tokio's multi-thread runtime the worker hands its other tasks over for
/// the duration (`block_in_place`), elsewhere it just runs.
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, GroupBvi, Member};
    use std::time::{Instant, SystemTime};

    /// A distinct state per `n` (one member, the epoch).
    fn st(n: u64) -> State {
        let mut st = State {
            epoch: n,
            ..State::default()
        };
        st.members.insert(
            format!("m{n}"),
            Member {
                id: format!("m{n}"),
                grpc_address: "127.0.0.1:1".into(),
                version: "0.1.0".into(),
                registered_at: SystemTime::UNIX_EPOCH,
            },
        );
        st
    }

    fn journal_len(dir: &Path) -> usize {
        fs::read(dir.join(JOURNAL)).unwrap().len()
    }

    fn journal_records(dir: &Path) -> usize {
        let s = journal::scan(&fs::read(dir.join(JOURNAL)).unwrap());
        assert_eq!(s.stop, journal::Stop::End);
        s.records
    }

    #[test]
    fn round_trip_and_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("sub")).unwrap();
        assert_eq!(s.load().unwrap(), State::default());
        let st = st(1);
        s.save(&st).unwrap();
        // A crash after writing a partial temp file leaves the old state.
        fs::write(dir.path().join("sub").join(TMP), b"{\"format\":1,\"sta").unwrap();
        assert_eq!(s.load().unwrap(), st);
        assert!(!dir.path().join("sub").join(TMP).exists());
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        fs::write(s.path(), b"nope").unwrap();
        assert!(s.load().is_err());
    }

    #[test]
    fn many_saves_then_load_is_the_last_across_compaction_boundaries() {
        let k = COMPACT_RECORDS as u64;
        // (saves, journal records left, snapshot written)
        let cases = [
            (1, 1, false),
            (k - 1, k - 1, false),
            (k, 0, true),
            (k + 1, 1, true),
            (2 * k + 3, 3, true),
        ];
        for (n, left, snapshot) in cases {
            let dir = tempfile::tempdir().unwrap();
            let s = Store::open(dir.path()).unwrap();
            for i in 1..=n {
                s.save(&st(i)).unwrap();
                // Each compaction done before the next save (see
                // `a_save_never_waits_for_a_compaction` for the overlap).
                s.wait_compaction();
            }
            assert_eq!(journal_records(dir.path()), left as usize, "n={n}");
            assert_eq!(s.path().exists(), snapshot, "n={n}");
            assert_eq!(s.load().unwrap(), st(n), "n={n}");
            // A restarted registry continues the sequence.
            let again = Store::open(dir.path()).unwrap();
            assert_eq!(again.load().unwrap(), st(n), "n={n}");
            again.save(&st(n + 1)).unwrap();
            assert_eq!(
                Store::open(dir.path()).unwrap().load().unwrap(),
                st(n + 1),
                "n={n}"
            );
        }
    }

    #[test]
    fn a_torn_last_record_at_every_offset_gives_the_previous_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=3 {
            s.save(&st(i)).unwrap();
        }
        let whole = fs::read(dir.path().join(JOURNAL)).unwrap();
        let last = journal::encode(3, &serde_json::to_vec(&st(3)).unwrap()).len();
        let two = whole.len() - last;
        for cut in two..whole.len() {
            let d = tempfile::tempdir().unwrap();
            fs::write(d.path().join(JOURNAL), &whole[..cut]).unwrap();
            let s = Store::open(d.path()).unwrap();
            assert_eq!(s.load().unwrap(), st(2), "cut at {cut}");
            assert_eq!(journal_len(d.path()), two, "cut back, cut at {cut}");
            s.save(&st(9)).unwrap();
            assert_eq!(
                Store::open(d.path()).unwrap().load().unwrap(),
                st(9),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_in_the_middle_stops_there_and_keeps_a_copy() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=3 {
            s.save(&st(i)).unwrap();
        }
        let mut bytes = fs::read(dir.path().join(JOURNAL)).unwrap();
        let one = bytes.len() / 3;
        bytes[one + journal::HEADER + 2] ^= 0x20;
        fs::write(dir.path().join(JOURNAL), &bytes).unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().load().unwrap(), st(1));
        assert_eq!(fs::read(dir.path().join(CORRUPT)).unwrap(), bytes);
        assert_eq!(journal_len(dir.path()), one);
    }

    #[test]
    fn an_old_format_state_file_without_journal_loads() {
        let dir = tempfile::tempdir().unwrap();
        let old = serde_json::json!({ "format": 1, "state": st(7) });
        fs::write(dir.path().join(FILE), old.to_string()).unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap(), st(7));
        s.save(&st(8)).unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().load().unwrap(), st(8));
    }

    #[test]
    fn a_crash_between_snapshot_and_journal_truncation_loads_the_newest() {
        let k = COMPACT_RECORDS as u64;
        // The journal as it was just before the truncation (records 1..=k),
        // and with its last record torn.
        for torn in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let s = Store::open(dir.path()).unwrap();
            for i in 1..k {
                s.save(&st(i)).unwrap();
            }
            let mut stale = fs::read(dir.path().join(JOURNAL)).unwrap();
            s.save(&st(k)).unwrap(); // compaction: snapshot k, journal emptied
            s.wait_compaction();
            assert_eq!(journal_len(dir.path()), 0);
            drop(s);
            stale.extend(journal::encode(k, &serde_json::to_vec(&st(k)).unwrap()));
            if torn {
                stale.pop();
            }
            fs::write(dir.path().join(JOURNAL), &stale).unwrap();
            let s = Store::open(dir.path()).unwrap();
            assert_eq!(s.load().unwrap(), st(k), "torn={torn}");
            s.save(&st(k + 1)).unwrap();
            assert_eq!(
                Store::open(dir.path()).unwrap().load().unwrap(),
                st(k + 1),
                "torn={torn}"
            );
        }
    }

    /// The snapshot's sequence number as written.
    fn snapshot_seq(dir: &Path) -> Option<u64> {
        let text = fs::read_to_string(dir.join(FILE)).ok()?;
        Some(serde_json::from_str::<OnDisk>(&text).unwrap().seq)
    }

    /// The directory as a crash would leave it now (snapshot and journal
    /// copied), loaded by a fresh store.
    fn load_after_crash(dir: &Path) -> State {
        let d = tempfile::tempdir().unwrap();
        for f in [FILE, JOURNAL] {
            if dir.join(f).exists() {
                fs::copy(dir.join(f), d.path().join(f)).unwrap();
            }
        }
        Store::open(d.path()).unwrap().load().unwrap()
    }

    /// Issue 16: the save that crosses the threshold does not write the
    /// snapshot itself (one move in 32 paid its fsyncs); saves go on while
    /// a compaction runs, and a crash at any point loads the newest
    /// acknowledged state.
    #[test]
    fn a_save_never_waits_for_a_compaction() {
        let k = COMPACT_RECORDS as u64;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let (go, gate) = std::sync::mpsc::channel();
        *s.compactor.gate.lock().unwrap() = Some(gate);
        for i in 1..=k {
            s.save(&st(i)).unwrap();
        }
        // The compaction is held: the saves returned without a snapshot.
        assert_eq!(snapshot_seq(dir.path()), None);
        assert_eq!(journal_records(dir.path()), k as usize);
        assert_eq!(load_after_crash(dir.path()), st(k));
        // A save while it runs, acknowledged in the journal.
        s.save(&st(k + 1)).unwrap();
        go.send(()).unwrap();
        s.wait_compaction();
        // The snapshot holds record k; the journal was not cut (record
        // k + 1 is newer) and wins on load.
        assert_eq!(snapshot_seq(dir.path()), Some(k));
        assert_eq!(journal_records(dir.path()), k as usize + 1);
        assert_eq!(load_after_crash(dir.path()), st(k + 1));
        // The next save compacts again, this time to the end.
        s.save(&st(k + 2)).unwrap();
        s.wait_compaction();
        assert_eq!(snapshot_seq(dir.path()), Some(k + 2));
        assert_eq!(journal_len(dir.path()), 0);
        assert_eq!(load_after_crash(dir.path()), st(k + 2));
        // And the sequence goes on after a restart.
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap(), st(k + 2));
        s.save(&st(k + 3)).unwrap();
        assert_eq!(load_after_crash(dir.path()), st(k + 3));
    }

    /// Every crash point of a compaction that overlaps a save, in order:
    /// before the snapshot, after its rename with the journal not cut,
    /// after a truncation that did not reach the disk (old records left
    /// behind the snapshot), after the truncation.
    #[test]
    fn a_crash_at_each_point_of_a_compaction_loads_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        for i in 1..=3 {
            s.save(&st(i)).unwrap();
        }
        let c = Compaction {
            dir: dir.path().to_path_buf(),
            journal: s.journal.clone(),
        };
        let three = fs::read(dir.path().join(JOURNAL)).unwrap();
        // A compaction to record 2 (its save crossed the threshold) whose
        // truncation comes after save 3: the snapshot is written, the
        // journal kept.
        assert_eq!(load_after_crash(dir.path()), st(3), "before the snapshot");
        c.run(2, &st(2)).unwrap();
        assert_eq!(snapshot_seq(dir.path()), Some(2));
        assert_eq!(journal_records(dir.path()), 3);
        assert_eq!(load_after_crash(dir.path()), st(3), "journal not cut");
        // To record 3: cut.
        c.run(3, &st(3)).unwrap();
        assert_eq!(journal_len(dir.path()), 0);
        assert_eq!(load_after_crash(dir.path()), st(3), "after the truncation");
        // The truncation lost in a crash: records 1..=3 behind snapshot 3.
        let d = tempfile::tempdir().unwrap();
        fs::copy(dir.path().join(FILE), d.path().join(FILE)).unwrap();
        fs::write(d.path().join(JOURNAL), &three).unwrap();
        assert_eq!(load_after_crash(d.path()), st(3), "truncation not durable");
        // The next save appends record 4 to the emptied journal.
        s.save(&st(4)).unwrap();
        assert_eq!(journal_records(dir.path()), 1);
        assert_eq!(load_after_crash(dir.path()), st(4));
    }

    #[test]
    fn an_injected_fault_fails_the_save_and_leaves_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.save(&st(1)).unwrap();
        let fault = dir.path().join(evpn_daemon::durable::FAULT_FILE);
        fs::write(&fault, "erofs").unwrap();
        let e = s.save(&st(2)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem);
        fs::remove_file(&fault).unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().load().unwrap(), st(1));
    }

    /// A state of 50 groups (two members each, a GroupBVI).
    fn realistic(n: u64) -> State {
        let mut s = st(n);
        let now = SystemTime::UNIX_EPOCH;
        for i in 0..50u32 {
            s.groups.insert(
                format!("group-{i}"),
                Group {
                    id: format!("group-{i}"),
                    vni: 1000 + i,
                    import_rts: vec![format!("65000:{i}")],
                    export_rts: vec![format!("65000:{i}")],
                    mtu: 1500,
                    vmac: format!("42:6c:fa:d6:82:{:02x}", i).parse().unwrap(),
                    members: ["a".to_string(), "b".to_string()].into(),
                    primary: Some("a".into()),
                    holders: ["a".to_string()].into(),
                    bvi: Some(GroupBvi {
                        addresses: vec![format!("172.16.{i}.1/24").parse().unwrap()],
                        created_at: now,
                        modified_at: now,
                    }),
                    created_at: now,
                    modified_at: now,
                    failover: Default::default(),
                    priorities: Default::default(),
                },
            );
        }
        s
    }

    /// `cargo test -p evpnr --lib store::tests::save_latency -- --ignored
    /// --nocapture`: 200 saves of a 50-group state, the snapshot-per-save
    /// way (as before the journal) against the journal, in one run.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn save_latency() {
        let dir = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
        let s = Store::open(dir.path()).unwrap();
        let pct = |mut v: Vec<f64>, q: f64| {
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * q) as usize]
        };
        let mut old = vec![];
        let mut new = vec![];
        for i in 0..200 {
            let state = realistic(i);
            let t = Instant::now();
            let text = serde_json::to_vec_pretty(&OnDisk {
                format: FORMAT,
                seq: 0,
                state: state.clone(),
            })
            .unwrap();
            evpn_base::fs::write_atomic(&dir.path().join("old.json"), &text).unwrap();
            old.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            s.save(&state).unwrap();
            new.push(t.elapsed().as_secs_f64() * 1e3);
        }
        for (name, v) in [("snapshot per save", old), ("journal", new)] {
            let max = pct(v.clone(), 1.0);
            println!(
                "{name}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {max:.3} ms",
                pct(v.clone(), 0.5),
                pct(v.clone(), 0.9),
                pct(v, 0.99)
            );
        }
    }
}
