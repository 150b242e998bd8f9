#!/usr/bin/env bash
# Recreate the store the labeled tickets (bench/tickets/labeled.jsonl) were written about.
# The simulation is deterministic per seed: same command, same jobs, attempts, events and diagnoses.
#   bash bench/tickets/build_store.sh /tmp/tickets_eval.duckdb
set -euo pipefail
db="${1:?usage: build_store.sh PATH.duckdb}"
cd "$(dirname "$0")/../.."
rm -f "$db" "$db.wal"
.venv/bin/fleetmedic simulate --gpus 256 --days 7 --seed 42 --heal auto --db "$db" --format json > "${db%.duckdb}_summary.json"
echo "store: $db  summary: ${db%.duckdb}_summary.json"
