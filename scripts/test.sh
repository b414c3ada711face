#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian 12 machine, then run
# the whole suite: formatting, lints (warnings are errors) and every test.
# Idempotent; quick when the dependencies are already present. Run as root
# (tests create network namespaces and install Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-test-deps.sh ]; then
    scripts/install-test-deps.sh
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# The whole output goes to the terminal and to a log; on a failure a short
# digest of every panic (and any chaos violation) is printed last, so the
# tail of a long CI log names the cause.
log="$(mktemp -t evpn-test-log.XXXXXX)"
trap 'rm -f "$log"' EXIT
if ! cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"; then
    echo "== failures (digest: each panic's first lines; chaos violations)"
    grep -a -A6 "panicked at" "$log" | cut -c1-300 | head -150 || true
    grep -a -A12 "result: FAIL" "$log" | cut -c1-300 | head -60 || true
    exit 101
fi
