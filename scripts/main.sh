#!/usr/bin/env bash
# The main job on embedded defaults: install, then diagnose the bundled example of a failed
# 4-rank training job (no cluster, no server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/fleetmedic diagnose examples/oom-cascade "$@"
