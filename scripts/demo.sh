#!/usr/bin/env bash
# The main job end to end on this machine; see README.md.
set -euo pipefail
BUILD=${1:-build}
BIN="$BUILD/bin"
echo "== telemetry through the embedded Kafka cluster =="
"$BIN/edr" demo --events 200000 --hosts 50
