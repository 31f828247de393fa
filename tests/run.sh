#!/usr/bin/env bash
# The test command of the README quick start: installs what the tests need on
# a fresh Debian machine, starts PostgreSQL for the shared storage suite, then
# runs every test of the workspace. `.ci/run` calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  nginx-light            # real nginx: error-log lines, config dumps, probes
  php8.2-fpm             # real PHP-FPM pools for FastCGI probes and the lab
  haproxy                # real HAProxy: edge host in the lab, log lines
  apache2                # real Apache (mod_proxy, mod_proxy_fcgi): a matrix origin proxy
  caddy                  # real Caddy: a matrix origin proxy (Debian 12 has a candidate)
  tzdata                 # /usr/share/zoneinfo for the matrix's non-UTC hosts
  postgresql             # the PostgreSQL half of the storage suite
  prometheus-alertmanager # real Alertmanager for escalation routing
  varnish                # real varnishd: the agent's Varnish source and the Varnish matrix cells
  systemd-container      # systemd-nspawn: the lab's real systemd hosts
  chromium fonts-dejavu-core fonts-liberation # headless browser tests of `gw502ctl ui`
  docker.io              # the Docker Engine of the matrix's container hosts (dockerd, docker-proxy, runc)
  systemd dbus iproute2 nftables curl python3 util-linux
  gcc make               # C parts of dependencies: bundled SQLite, jemalloc
  dpkg-dev binutils      # the .deb packages: dpkg-shlibdeps for Depends, strip
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Packaged services must not start on the machine itself (PID 1 is not systemd).
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

GW502_TEST_DATABASE_URL="$(bash .ci/postgres.sh)"
export GW502_TEST_DATABASE_URL
echo "postgres suite: ${GW502_TEST_DATABASE_URL%%@*}@..."

cargo build --workspace --bins --quiet
cargo test --workspace --no-fail-fast "$@"
