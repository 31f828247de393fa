#!/usr/bin/env bash
# Agent footprint next to `ss -tlnp` on a synthetic host: 1,000 listeners and
# 50,000 established loopback connections in a private network namespace.
# Usage (repo root, as root): bash bench/agent-footprint.sh
# Knobs: LISTENERS, CONNECTIONS, ROUNDS, STEADY, SOURCES=containers,varnish
# (see bench/agent_footprint.py and bench/footprint_sources.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gw502-agent -p gw502-collector
exec unshare --net python3 bench/agent_footprint.py
