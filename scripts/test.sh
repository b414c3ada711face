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
cargo test --workspace --locked --no-fail-fast
