#!/usr/bin/env bash
# The main job on embedded defaults: install, then simulate a month of a 2,048-GPU platform,
# diagnose every failure, compute the KPIs and priorities and write the report (no cluster, no
# server). Extra arguments go to `fleetmedic demo` (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/fleetmedic demo "$@"
