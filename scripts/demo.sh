#!/usr/bin/env bash
# The main job end to end on this machine; see README.md.
set -euo pipefail
BUILD=${1:-build}
BIN="$BUILD/bin"
echo "== telemetry through the embedded Kafka cluster =="
"$BIN/edr" demo --events 200000 --hosts 50

# ---- root-cause analysis on real attack telemetry (issue 5) ----
# The OTRF Log4Shell recording (Sysmon for Linux) is imported into a RocksDB
# store, then the analysis starts from the last attack process (whoami, pid
# 17832) and walks back to where the attack entered.
OUT=${EDR_DEMO_OUT:-demo-out}
DATASET=../shared/datasets/otrf-log4shell/linux-sysmon-syslog.jsonl
if [ -f "$DATASET" ]; then
  echo
  echo "== root cause of the Log4Shell attack (OTRF dataset) =="
  rm -rf "$OUT/log4shell-store"
  mkdir -p "$OUT"
  chmod 700 "$OUT"
  "$BIN/edr" import sysmon "$DATASET" --store "$OUT/log4shell-store"
  "$BIN/edr" rca --store "$OUT/log4shell-store" --pid 17832
  "$BIN/edr" rca --store "$OUT/log4shell-store" --pid 17832 --format html -o "$OUT/log4shell-incident.html"
  "$BIN/edr" rca --store "$OUT/log4shell-store" --pid 17832 --format svg -o "$OUT/log4shell-graph.svg"
  echo "incident card: $(realpath "$OUT/log4shell-incident.html")"
  echo "attack graph:  $(realpath "$OUT/log4shell-graph.svg")"
else
  echo "demo: $DATASET not found: skipping the root-cause part (shared/ must sit beside the checkout)"
fi
