#!/usr/bin/env bash
# Build vpp-evpn (release) and run the lab: evpnr on 127.0.0.1:9190 plus two
# evpnd instances on simulated VPPs and BIRD. No root needed. Ctrl-C stops it.
#
# The lab has group "demo" ready for autonomous failover (failover auto,
# dpu0-ddln0 priority 200, dpu0-chplo0 100; gateway 172.16.200.1/24 bound on
# dpu0-ddln0 after its 2 s warm-up). To try a failover, in another terminal:
#   target/release/evpnc watch events type failover
#   touch <lab dir>/dpu0-ddln0/unfit   # its health check fails: planned move
#   rm <lab dir>/dpu0-ddln0/unfit      # healthy again; no move back
#   kill -9 <pid of dpu0-ddln0's evpnd> # unreachable but still announcing:
#                                       # failover-blocked, nobody binds
#   target/release/evpnc show failover # each member's standing, fit since
# The lab prints the exact paths when it is up; docs/failover.md explains.
#
# scripts/lab.sh --tls runs everything with mutual TLS: a development CA and
# certificates in <lab dir>/pki (evpnr, every evpnd, the user admin), and it
# prints the EVPNC_TLS_* exports that point evpnc at the lab (docs/security.md).
# Extra arguments go to evpnlab (see: scripts/lab.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins >&2
exec target/release/evpnlab --failover-group "$@"
