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
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
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
}
