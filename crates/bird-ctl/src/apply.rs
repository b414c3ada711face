//! Atomic apply of snippet changes (`docs/bird-notes.md` §5).
//!
//! 1. Stage a candidate tree: a persistent sibling staging directory (`.<include dir>.staging`,
//!    a dot name that no include glob matches) synchronised with the live snippets (hard links,
//!    so only changed entries cost a syscall) with the changes applied, plus a candidate main file (a dot file next to the live main file, so relative
//!    includes resolve the same) whose include of the live directory points at the staging one.
//! 2. `configure check "<candidate>"`. On `8002` nothing live was touched; the error names the
//!    live file.
//! 3. Commit: replace each changed file atomically (`evpn_base::fs::replace`: a temp file in the
//!    live directory, fsync, `rename()` over the live file), unlink removed files, fsync the
//!    directory once, all on tokio's blocking pool. The previous contents are kept in memory.
//! 4. `configure`; after `0004`/`0005` poll `configure status` until `0003`.
//! 5. Verify every protocol of every changed snippet: it must exist, and be `up`/`start` when
//!    enabled (or `up` when the policy asks for it) or `down` when disabled; removed protocols
//!    must be gone. The hot-added VXLAN device problem (§4.6) is detected (an `evpn_*` protocol
//!    stuck in `start` while its `bridge_*` companion is `up`) and recovered by waiting one device
//!    scan and restarting only that `evpn_*` protocol.
//! 6. On any failure after the commit, the previous files are restored and BIRD is configured
//!    again.
//!
//! Applies are serialised by a mutex inside the [`Applier`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::{BirdControl, ConfigureOutcome, wait_configured};
use crate::error::{BirdError, ConfigError};
use crate::snippet::RenderedSnippet;
use crate::status::ProtocolInfo;
use crate::validate::{self, ValidationError};

/// One change to the include directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create or replace `evpn-<slug>.conf`.
    Set(RenderedSnippet),
    /// Remove `evpn-<slug>.conf` (and with it the eVPN's protocols).
    Remove {
        /// The slug.
        slug: String,
        /// Protocol names that must be gone afterwards; when empty, the `protocol <type> <name>`
        /// lines of the file being removed are used.
        protocols: Vec<String>,
    },
}

/// §4.6 recovery settings.
#[derive(Debug, Clone)]
pub struct StuckRecovery {
    /// How long an `evpn_*` protocol may sit in `start` (with its bridge `up`) before it is
    /// considered stuck.
    pub grace: Duration,
    /// How long to wait before restarting, so that a device-protocol scan has run (match the
    /// main config's `protocol device { scan time N; }`).
    pub device_scan: Duration,
    /// Restart attempts per protocol.
    pub attempts: u32,
}

impl Default for StuckRecovery {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(1),
            device_scan: Duration::from_secs(5),
            attempts: 3,
        }
    }
}

/// What verification requires after `configure`.
#[derive(Debug, Clone)]
pub struct VerifyPolicy {
    /// `Some(t)`: enabled protocols must reach `up` within `t`. `None`: `start` is accepted
    /// (e.g. the devices do not exist yet).
    pub wait_up: Option<Duration>,
    /// How long transient states (`stop`, a disabled protocol still stopping, a removed one
    /// still present) may last.
    pub settle: Duration,
    /// Poll interval.
    pub poll: Duration,
    /// §4.6 handling; `None` disables it.
    pub stuck_recovery: Option<StuckRecovery>,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            wait_up: None,
            settle: Duration::from_secs(5),
            poll: Duration::from_millis(20),
            stuck_recovery: Some(StuckRecovery::default()),
        }
    }
}

/// Applier configuration.
#[derive(Debug, Clone)]
pub struct ApplierConfig {
    /// The main file BIRD runs with (`-c`). It must `include` the include directory by its
    /// absolute path, e.g. `include "/etc/bird/evpn.d/*.conf";`.
    pub main_config: PathBuf,
    /// The live include directory owned by `evpnd` (absolute).
    pub include_dir: PathBuf,
    /// How long to wait for `configure` to finish after `0004`/`0005`.
    pub configure_timeout: Duration,
    /// Verification policy.
    pub verify: VerifyPolicy,
    /// fsync each written snippet and the directory before BIRD reads them (default `true`;
    /// only worth turning off for an include directory on tmpfs).
    pub fsync: bool,
}

impl ApplierConfig {
    /// Defaults for the given files.
    pub fn new(main_config: impl Into<PathBuf>, include_dir: impl Into<PathBuf>) -> Self {
        Self {
            main_config: main_config.into(),
            include_dir: include_dir.into(),
            configure_timeout: Duration::from_secs(30),
            verify: VerifyPolicy::default(),
            fsync: true,
        }
    }
}

/// Durations of the phases of one apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyTimings {
    /// Staging the candidate tree.
    pub stage: Duration,
    /// `configure check`.
    pub check: Duration,
    /// Renames into the live directory.
    pub commit: Duration,
    /// `configure` and waiting for completion.
    pub configure: Duration,
    /// Protocol verification (including §4.6 recovery).
    pub verify: Duration,
    /// Everything.
    pub total: Duration,
}

/// Result of a successful apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Files written (created or replaced).
    pub written: Vec<String>,
    /// Files removed.
    pub removed: Vec<String>,
    /// `true` when nothing differed from the live directory (BIRD was not contacted).
    pub noop: bool,
    /// The `configure` outcome (None for a no-op).
    pub configure: Option<ConfigureOutcome>,
    /// The verified protocols' final state.
    pub protocols: Vec<ProtocolInfo>,
    /// Protocols restarted by the §4.6 recovery.
    pub recovered: Vec<String>,
    /// Phase durations.
    pub timings: ApplyTimings,
}

/// Why an apply failed. Unless the variant says otherwise, the live directory and BIRD's
/// running configuration are as they were before the call.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An input was refused before anything was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// `configure check` refused the candidate; `error.file` names the live file.
    #[error("BIRD rejected the candidate configuration: {0}")]
    Rejected(ConfigError),
    /// Verification failed after `configure`; the files were restored and BIRD reconfigured.
    #[error("verification of protocol {protocol} failed: {reason} (rolled back)")]
    Verify {
        /// The protocol that failed.
        protocol: String,
        /// Why.
        reason: String,
        /// Its last seen state.
        info: Option<Box<ProtocolInfo>>,
    },
    /// BIRD failed during `configure` (or a check command); rolled back when `rolled_back`.
    #[error("BIRD error during apply: {error} (rolled back: {rolled_back})")]
    Bird {
        /// The error.
        error: BirdError,
        /// Whether files had been committed and were restored.
        rolled_back: bool,
    },
    /// A file-system operation failed; rolled back when `rolled_back`.
    #[error("I/O error during apply: {error} (rolled back: {rolled_back})")]
    Io {
        /// The error.
        error: String,
        /// Whether files had been committed and were restored.
        rolled_back: bool,
    },
    /// The main config does not include the include directory by its path.
    #[error("{0}")]
    Setup(String),
    /// The rollback itself failed: the live directory or BIRD may be inconsistent.
    #[error("apply failed ({cause}) and the rollback failed too: {rollback}")]
    RollbackFailed {
        /// The original failure.
        cause: String,
        /// The rollback failure.
        rollback: String,
    },
}

fn io_err(ctx: &str, e: std::io::Error) -> String {
    format!("{ctx}: {e}")
}

/// Owns the include directory and applies changes to it atomically.
pub struct Applier<C> {
    pub(crate) control: C,
    pub(crate) cfg: ApplierConfig,
    staging_dir: PathBuf,
    candidate: PathBuf,
    pub(crate) lock: tokio::sync::Mutex<()>,
}

impl<C> std::fmt::Debug for Applier<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn sibling(path: &Path, suffix: &str) -> Result<PathBuf, ApplyError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ApplyError::Setup(format!("{} has no UTF-8 file name", path.display())))?;
    let parent = path
        .parent()
        .ok_or_else(|| ApplyError::Setup(format!("{} has no parent", path.display())))?;
    Ok(parent.join(format!(".{name}.{suffix}")))
}

/// Writes (`Some`) or removes (`None`) files of `dir`, each write atomic
/// ([`evpn_base::fs::replace`]), then fsyncs `dir` once. `keep_going`: try
/// every file and report the last failure (rollback) instead of stopping at
/// the first (commit). Blocking: run it through [`evpn_base::fs::blocking`].
fn replace_files(
    dir: &Path,
    files: &[(String, Option<Vec<u8>>)],
    fsync: bool,
    keep_going: bool,
) -> Result<(), String> {
    let mut err = None;
    for (name, data) in files {
        let live = dir.join(name);
        let r = match data {
            Some(d) => evpn_base::fs::replace(&live, d, fsync)
                .map_err(|e| io_err(&format!("replace {name}"), e)),
            None => match std::fs::remove_file(&live) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io_err(&format!("remove {name}"), e))
                }
                _ => Ok(()),
            },
        };
        if let Err(e) = r {
            if !keep_going {
                return Err(e);
            }
            err = Some(e);
        }
    }
    if fsync && let Err(e) = evpn_base::fs::sync_dir(dir) {
        err.get_or_insert(io_err("fsync include dir", e));
    }
    err.map_or(Ok(()), Err)
}

/// [`replace_files`] on tokio's blocking pool: the fsyncs never run on an
/// async worker (the apply lock is a tokio mutex other applies wait on).
async fn replace_files_off_runtime(
    dir: &Path,
    files: Vec<(String, Option<Vec<u8>>)>,
    fsync: bool,
    keep_going: bool,
) -> Result<(), String> {
    let dir = dir.to_path_buf();
    evpn_base::fs::blocking(move || replace_files(&dir, &files, fsync, keep_going))
        .await
        .map_err(|e| io_err("file task", e))?
}

impl<C: BirdControl> Applier<C> {
    /// Creates the applier: checks that the main config includes the include directory, creates
    /// the directory if needed and removes leftover temporary files.
    pub fn new(control: C, cfg: ApplierConfig) -> Result<Self, ApplyError> {
        if !cfg.include_dir.is_absolute() || !cfg.main_config.is_absolute() {
            return Err(ApplyError::Setup(
                "main_config and include_dir must be absolute paths".into(),
            ));
        }
        std::fs::create_dir_all(&cfg.include_dir)
            .map_err(|e| ApplyError::Setup(io_err("create include dir", e)))?;
        let staging_dir = sibling(&cfg.include_dir, "staging")?;
        let candidate = sibling(&cfg.main_config, "candidate")?;
        let a = Self {
            control,
            cfg,
            staging_dir,
            candidate,
            lock: tokio::sync::Mutex::new(()),
        };
        a.candidate_text()?;
        if let Ok(rd) = std::fs::read_dir(&a.cfg.include_dir) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if evpn_base::fs::is_temp_name(&n) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(a)
    }

    /// The BIRD control used.
    pub fn control(&self) -> &C {
        &self.control
    }

    /// The configuration.
    pub fn config(&self) -> &ApplierConfig {
        &self.cfg
    }

    /// Snippet file names currently in the live directory (sorted).
    pub fn live_files(&self) -> Result<Vec<String>, ApplyError> {
        let mut v: Vec<String> = std::fs::read_dir(&self.cfg.include_dir)
            .map_err(|e| ApplyError::Io {
                error: io_err("read include dir", e),
                rolled_back: false,
            })?
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        Ok(v)
    }

    fn candidate_text(&self) -> Result<String, ApplyError> {
        let main = std::fs::read_to_string(&self.cfg.main_config).map_err(|e| {
            ApplyError::Setup(io_err(
                &format!("read {}", self.cfg.main_config.display()),
                e,
            ))
        })?;
        let dir = self
            .cfg
            .include_dir
            .to_str()
            .ok_or_else(|| ApplyError::Setup("include_dir must be valid UTF-8".into()))?;
        let dir = dir.trim_end_matches('/');
        let staging = self.staging_dir.to_str().unwrap_or_default();
        let needle = format!("\"{dir}/");
        let mut hits = 0;
        let mut out = String::with_capacity(main.len() + 64);
        for line in main.split_inclusive('\n') {
            if line.trim_start().starts_with("include") && line.contains(&needle) {
                hits += 1;
                out.push_str(&line.replace(&needle, &format!("\"{staging}/")));
            } else {
                out.push_str(line);
            }
        }
        if hits == 0 {
            return Err(ApplyError::Setup(format!(
                "{} has no `include \"{dir}/…\";` line",
                self.cfg.main_config.display()
            )));
        }
        Ok(out)
    }

    /// Makes BIRD run what is in the live tree: `configure check` of the live main file, then
    /// `configure` and wait for completion. For `evpnd`'s start-up reconcile (an apply whose
    /// files already match is a no-op and does not contact BIRD) and after
    /// [`ApplyError::RollbackFailed`].
    pub async fn reconfigure(&self) -> Result<ConfigureOutcome, ApplyError> {
        let _g = self.lock.lock().await;
        let bird = |error| ApplyError::Bird {
            error,
            rolled_back: false,
        };
        match self.control.configure_check(&self.cfg.main_config).await {
            Ok(()) => {}
            Err(BirdError::Config(e)) => return Err(ApplyError::Rejected(e)),
            Err(e) => return Err(bird(e)),
        }
        self.configure_and_wait().await.map_err(bird)
    }

    /// Applies a set of changes atomically (see the module docs). Changes to the same slug: the
    /// last one wins.
    pub async fn apply(&self, changes: Vec<Change>) -> Result<ApplyReport, ApplyError> {
        let _g = self.lock.lock().await;
        let t0 = Instant::now();
        let mut report = ApplyReport::default();

        // Desired content per file name: Some(text) to write, None to remove.
        let mut desired: BTreeMap<String, (Option<String>, Vec<String>, bool)> = BTreeMap::new();
        for c in changes {
            match c {
                Change::Set(r) => {
                    validate::slug(&r.slug)?;
                    if r.file_name != crate::snippet::file_name(&r.slug) {
                        return Err(ValidationError::new(
                            "file_name",
                            format!("{:?} does not match slug {:?}", r.file_name, r.slug),
                        )
                        .into());
                    }
                    desired.insert(r.file_name, (Some(r.text), r.protocols, r.enabled));
                }
                Change::Remove { slug, protocols } => {
                    validate::slug(&slug)?;
                    desired.insert(crate::snippet::file_name(&slug), (None, protocols, false));
                }
            }
        }
        // Previous contents, and drop changes that change nothing.
        let mut prev: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        desired.retain(|name, (text, _, _)| {
            let old = std::fs::read(self.cfg.include_dir.join(name)).ok();
            let same = match (&old, text) {
                (Some(o), Some(t)) => o == t.as_bytes(),
                (None, None) => true,
                _ => false,
            };
            if !same {
                prev.insert(name.clone(), old);
            }
            !same
        });
        // Removals without protocol names: take them from the file being removed.
        for (name, (text, protocols, _)) in desired.iter_mut() {
            if text.is_none()
                && protocols.is_empty()
                && let Some(Some(old)) = prev.get(name)
            {
                *protocols = protocol_names(&String::from_utf8_lossy(old));
            }
        }
        if desired.is_empty() {
            report.noop = true;
            report.timings.total = t0.elapsed();
            return Ok(report);
        }

        // 1. Stage.
        let t = Instant::now();
        let candidate_text = self.candidate_text()?;
        self.stage(&desired, &candidate_text).map_err(|e| {
            // Start from scratch next time.
            let _ = std::fs::remove_dir_all(&self.staging_dir);
            ApplyError::Io {
                error: e,
                rolled_back: false,
            }
        })?;
        report.timings.stage = t.elapsed();

        // 2. Check.
        let t = Instant::now();
        let check = self.control.configure_check(&self.candidate).await;
        report.timings.check = t.elapsed();
        match check {
            Ok(()) => {}
            Err(BirdError::Config(mut e)) => {
                let staging = self.staging_dir.to_string_lossy().into_owned();
                if let Some(rest) = e.file.strip_prefix(&staging) {
                    e.file = format!("{}{rest}", self.cfg.include_dir.display());
                } else if e.file == self.candidate.to_string_lossy() {
                    e.file = self.cfg.main_config.display().to_string();
                }
                return Err(ApplyError::Rejected(e));
            }
            Err(e) => {
                return Err(ApplyError::Bird {
                    error: e,
                    rolled_back: false,
                });
            }
        }

        // 3. Commit.
        let t = Instant::now();
        if let Err(e) = self.commit(&desired).await {
            return Err(self
                .rollback(
                    &prev,
                    ApplyError::Io {
                        error: e,
                        rolled_back: true,
                    },
                )
                .await);
        }
        report.timings.commit = t.elapsed();
        for (name, (text, _, _)) in &desired {
            if text.is_some() {
                report.written.push(name.clone());
            } else {
                report.removed.push(name.clone());
            }
        }

        // 4. Configure.
        let t = Instant::now();
        match self.configure_and_wait().await {
            Ok(o) => report.configure = Some(o),
            Err(e) => {
                return Err(self
                    .rollback(
                        &prev,
                        ApplyError::Bird {
                            error: e,
                            rolled_back: true,
                        },
                    )
                    .await);
            }
        }
        report.timings.configure = t.elapsed();

        // 5. Verify.
        let t = Instant::now();
        if let Err(e) = self.verify(&desired, &mut report).await {
            return Err(self.rollback(&prev, e).await);
        }
        report.timings.verify = t.elapsed();
        report.timings.total = t0.elapsed();
        tracing::info!(
            written = ?report.written,
            removed = ?report.removed,
            total_us = report.timings.total.as_micros() as u64,
            "bird config applied"
        );
        Ok(report)
    }

    /// Brings the persistent staging directory in line with the live directory plus `desired`.
    ///
    /// Unchanged live files are hard links in the staging directory; an entry is kept only if
    /// it is still the same inode as the live file (compared by `d_ino`, no `stat`), so this is
    /// O(changes) syscalls plus two directory reads, and it corrects itself on every apply.
    /// Files of `desired` are always written fresh (never through a link to a live file).
    fn stage(
        &self,
        desired: &BTreeMap<String, (Option<String>, Vec<String>, bool)>,
        candidate_text: &str,
    ) -> Result<(), String> {
        use std::collections::HashMap;
        use std::ffi::OsString;
        use std::os::unix::fs::DirEntryExt;

        let sd = &self.staging_dir;
        std::fs::create_dir_all(sd).map_err(|e| io_err("create staging dir", e))?;
        let list = |dir: &Path, what: &str| -> Result<HashMap<OsString, u64>, String> {
            let mut m = HashMap::new();
            for e in std::fs::read_dir(dir)
                .map_err(|e| io_err(what, e))?
                .flatten()
            {
                let name = e.file_name();
                if name.as_encoded_bytes().starts_with(b".")
                    || !e.file_type().map(|t| t.is_file()).unwrap_or(false)
                {
                    continue;
                }
                m.insert(name, e.ino());
            }
            Ok(m)
        };
        let live = list(&self.cfg.include_dir, "read include dir")?;
        let staged = list(sd, "read staging dir")?;
        let is_desired = |n: &OsString| n.to_str().is_some_and(|n| desired.contains_key(n));
        for (name, ino) in &staged {
            if is_desired(name) || live.get(name) != Some(ino) {
                std::fs::remove_file(sd.join(name)).map_err(|e| io_err("clean staging dir", e))?;
            }
        }
        for (name, ino) in &live {
            if is_desired(name) || staged.get(name) == Some(ino) {
                continue;
            }
            let (src, dst) = (self.cfg.include_dir.join(name), sd.join(name));
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).map_err(|e| io_err("copy into staging", e))?;
            }
        }
        for (name, (text, _, _)) in desired {
            if let Some(t) = text {
                std::fs::write(sd.join(name), t).map_err(|e| io_err("write staging file", e))?;
            }
        }
        std::fs::write(&self.candidate, candidate_text).map_err(|e| io_err("write candidate", e))
    }

    async fn commit(
        &self,
        desired: &BTreeMap<String, (Option<String>, Vec<String>, bool)>,
    ) -> Result<(), String> {
        let files = desired
            .iter()
            .map(|(name, (text, _, _))| {
                (name.clone(), text.as_ref().map(|t| t.clone().into_bytes()))
            })
            .collect();
        replace_files_off_runtime(&self.cfg.include_dir, files, self.cfg.fsync, false).await
    }

    async fn configure_and_wait(&self) -> Result<ConfigureOutcome, BirdError> {
        let o = self.control.configure().await?;
        match o {
            ConfigureOutcome::Done => {}
            ConfigureOutcome::InProgress | ConfigureOutcome::Queued => {
                wait_configured(
                    &self.control,
                    self.cfg.verify.poll,
                    self.cfg.configure_timeout,
                )
                .await?;
            }
            ConfigureOutcome::ShuttingDown => {
                return Err(BirdError::Unexpected {
                    command: "configure".into(),
                    reply: "0006 Reconfiguration ignored, shutting down".into(),
                });
            }
        }
        Ok(o)
    }

    /// Restores the previous files and configures BIRD again; returns the error to report.
    async fn rollback(
        &self,
        prev: &BTreeMap<String, Option<Vec<u8>>>,
        cause: ApplyError,
    ) -> ApplyError {
        tracing::warn!(error = %cause, "bird apply failed, rolling back");
        let files = prev
            .iter()
            .map(|(name, old)| (name.clone(), old.clone()))
            .collect();
        let fs_err = replace_files_off_runtime(&self.cfg.include_dir, files, self.cfg.fsync, true)
            .await
            .err();
        if let Some(e) = fs_err {
            return ApplyError::RollbackFailed {
                cause: cause.to_string(),
                rollback: e,
            };
        }
        if let Err(e) = self.configure_and_wait().await {
            return ApplyError::RollbackFailed {
                cause: cause.to_string(),
                rollback: format!("configure after restoring files: {e}"),
            };
        }
        cause
    }
}

/// The names of the `protocol <type> <name>` stanzas of a snippet (quotes stripped).
pub fn protocol_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == "protocol").then_some(())?;
            let _kind = it.next()?;
            let name = it.next()?.trim_matches('\'');
            (name != "{").then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_snippet() {
        let t = "eth table x;\nprotocol bridge 'bridge_a-b' {\n}\nprotocol evpn evpn_a {\n}\nprotocol device {\n}\n";
        assert_eq!(protocol_names(t), vec!["bridge_a-b", "evpn_a"]);
    }
}
