//! Durable file replacement: write a temp file in the same directory, fsync
//! it, rename it over the target, fsync the directory. After a crash at any
//! moment the target holds either the old or the new content, never a torn
//! one.
//!
//! The functions here block (fsync can take milliseconds to seconds on a
//! loaded disk). Async callers use [`write_atomic_async`] or wrap a batch in
//! [`blocking`], so the fsync never runs on an async worker thread (and
//! never under an async lock that other tasks wait on with a worker).
//!
//! Temp files are named `.<name>.<pid>.<seq>.tmp` next to the target
//! ([`is_temp_name`] recognises them), so a directory scan can remove the
//! leftovers of a crash between write and rename.
use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Whether `name` (a file name, no directory) is a temp file of [`replace`].
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Remove the temp files [`replace`] left next to `path` (a crash between
/// write and rename); for a store's load at startup, before any write.
/// Returns how many were removed.
pub fn remove_temps(path: &Path) -> std::io::Result<usize> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let prefix = format!(".{name}.");
    let mut n = 0;
    let dir = match std::fs::read_dir(parent_dir(path)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for e in dir {
        let f = e?.file_name();
        let f = f.to_string_lossy();
        if f.starts_with(&prefix) && is_temp_name(&f) {
            std::fs::remove_file(parent_dir(path).join(&*f))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Replace `path` with `bytes` atomically: a unique temp file in the same
/// directory, fsynced when `fsync`, renamed over `path`. The directory is
/// not fsynced (see [`sync_dir`]; [`write_atomic`] does both), so several
/// files of one directory can share one directory fsync. The temp file is
/// removed on failure.
pub fn replace(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        // Best effort: the write already failed and is reported; a temp
        // file left behind is recognised by `is_temp_name`.
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// fsync directory `dir`, making renames and unlinks in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Atomically and durably replace `path` with `bytes` ([`replace`] with
/// fsync, then [`sync_dir`] of its directory). Blocking.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, true)?;
    sync_dir(parent_dir(path))
}

/// [`write_atomic`] on tokio's blocking pool: for async callers.
pub async fn write_atomic_async(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    blocking(move || write_atomic(&path, &bytes)).await?
}

/// [`write_atomic`] for a synchronous caller that may itself run on an
/// async worker thread (a store's `save` called under a std mutex from a
/// gRPC handler): on tokio's multi-thread runtime the worker hands its other
/// tasks over for the duration of the write (`block_in_place`), so the fsync
/// does not stall them; on a blocking thread, a current-thread runtime or
/// outside tokio it is a plain [`write_atomic`]. Async code should prefer
/// [`write_atomic_async`].
pub fn write_atomic_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let multi =
        Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(|| write_atomic(path, bytes))
    } else {
        write_atomic(path, bytes)
    }
}

/// Run blocking file work `f` on tokio's blocking pool and wait for it. A
/// panic in `f` is an error, not a panic of the caller.
pub async fn blocking<T, F>(f: F) -> std::io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("blocking file task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(d.path()), ["x"]);
        replace(&p, b"three", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        assert_eq!(names(d.path()), ["x"]);
        assert!(write_atomic(&d.path().join("missing/x"), b"y").is_err());
    }

    #[test]
    fn a_failed_rename_removes_the_temp_file() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way: the temp file is written, the rename fails.
        let p = d.path().join("busy");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("keep"), b"k").unwrap();
        assert!(replace(&p, b"x", false).is_err());
        assert_eq!(names(d.path()), ["busy"]);
    }

    #[test]
    fn temp_names_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        // Simulate a crash between write and rename: the temp file's name.
        let tmp = format!(".state.json.{}.0.tmp", std::process::id());
        assert!(is_temp_name(&tmp));
        assert!(!is_temp_name("state.json"));
        assert!(!is_temp_name(".hidden"));
        std::fs::write(d.path().join(&tmp), b"torn").unwrap();
        std::fs::write(d.path().join(".other.json.1.0.tmp"), b"not ours").unwrap();
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert_eq!(remove_temps(&p).unwrap(), 1);
        assert_eq!(names(d.path()), [".other.json.1.0.tmp", "state.json"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn async_write_runs_off_the_runtime() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        write_atomic_async(p.clone(), b"async".to_vec())
            .await
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"async");
        // On a current-thread runtime the work runs on another thread.
        let here = std::thread::current().id();
        let there = blocking(|| std::thread::current().id()).await.unwrap();
        assert_ne!(here, there);
    }

    /// `write_atomic_in_place` works (and does not panic) wherever a store's
    /// save may be called from.
    #[test]
    fn in_place_write_works_on_every_kind_of_thread() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        write_atomic_in_place(&p, b"plain").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"plain");
        for multi in [false, true] {
            let rt = if multi {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .build()
            } else {
                tokio::runtime::Builder::new_current_thread().build()
            }
            .unwrap();
            let (p1, p2) = (p.clone(), p.clone());
            rt.block_on(async move {
                // On the runtime's own thread, in a task, and on its blocking pool.
                write_atomic_in_place(&p1, b"block_on").unwrap();
                tokio::spawn(async move { write_atomic_in_place(&p2, b"task") })
                    .await
                    .unwrap()
                    .unwrap();
                let p3 = p1.clone();
                blocking(move || write_atomic_in_place(&p3, b"pool"))
                    .await
                    .unwrap()
                    .unwrap();
            });
            assert_eq!(std::fs::read(&p).unwrap(), b"pool");
        }
        assert_eq!(names(d.path()), ["s"]);
    }
}
