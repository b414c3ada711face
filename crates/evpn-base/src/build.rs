//! Build identity: version and git commit, as logged in `starting` and
//! exported as `<prefix>_build_info`.

/// Package version, e.g. "0.1.0".
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Git commit (12 hex digits) or "unknown".
pub const COMMIT: &str = env!("EVPN_GIT_COMMIT");

/// `--version` text: `<program> <version> (commit <commit>)`.
pub fn version_line(program: &str) -> String {
    format!("{program} {VERSION} (commit {COMMIT})")
}
