#!/usr/bin/env bash
# Create .venv with fleetmedic installed. With --dev, also the test tools and the system packages the
# test suite needs (Java for PySpark, Chromium for chart images; Prometheus, Alertmanager and NATS
# for the tests marked `services`), installed from Debian when run as root. Safe to run again: it
# only adds what is missing. Services are never started system-wide: the tests start their own
# processes on free ports with temporary directories.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/setup.sh: missing system packages: $* (install them, or run as root)" >&2
    return 1
  fi
  apt-get update -qq >/dev/null
  # policy-rc.d 101: the packages' postinst scripts must not start their daemons system-wide.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || {
    [ "$added" = 1 ] && rm -f "$policy"; return 1; }
  if [ "$added" = 1 ]; then rm -f "$policy"; fi
}

need=()
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv python3-pip)
if [ "$dev" = 1 ]; then
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
fi
if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[dev]'
else
  .venv/bin/python -m pip install -q -e .
fi
