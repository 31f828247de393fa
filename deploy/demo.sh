#!/usr/bin/env bash
# gw502 demo: a 3-host fleet with one broken host, on this machine.
#
# Boots three real systemd hosts as nspawn containers on the lab bridge
# gw502lab0 (10.77.0.0/24): web1 (nginx + app) and php1 (nginx + PHP-FPM) are
# healthy, web2's nginx proxies to port 8081 while its app listens on 8080.
# Each host runs gw502-agent; the collector runs here on 10.77.0.1. Within a
# minute `gw502ctl incidents` names web2's fault: handoff / wrong_port.
#
# Needs root and the packages of tests/run.sh (systemd-container, nginx-light,
# php8.2-fpm, python3). The fleet stays up until you press Enter or Ctrl-C;
# teardown removes every mount, process and the bridge, and a killed demo is
# swept by the next lab start. Usage: sudo deploy/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (it boots nspawn containers and creates a bridge)" >&2
  exit 64
fi
command -v systemd-nspawn >/dev/null || {
  echo "demo.sh: systemd-nspawn missing: apt-get install systemd-container (or run tests/run.sh once)" >&2
  exit 64
}

echo "building gw502 (agent, collector, gw502ctl) ..."
cargo build --workspace --bins --quiet
# Run the lab test binary itself (not through cargo) so Ctrl-C reaches it alone and
# it tears the fleet down before exiting.
bin=$(cargo test -p gw502-tests --test lab_scenarios --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m["target"]["name"] == "lab_scenarios":
        print(m["executable"])')
echo "booting the demo fleet ..."
GW502_DEMO_HOLD=1 exec "$bin" --exact demo_fleet_attributes_the_broken_host --nocapture
