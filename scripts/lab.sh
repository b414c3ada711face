#!/usr/bin/env bash
# Build vpp-evpn (release) and run the lab: evpnr on 127.0.0.1:9190 plus two
# evpnd instances on simulated VPPs and BIRD. No root needed. Ctrl-C stops it.
# Extra arguments go to evpnlab (see: scripts/lab.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins >&2
exec target/release/evpnlab "$@"
