#!/usr/bin/env bash
# The main job end to end on this machine; see README.md.
set -euo pipefail
BUILD=${1:-build}
BIN="$BUILD/bin"
echo "== telemetry through the embedded Kafka cluster =="
"$BIN/edr" demo --events 200000 --hosts 50

# ---- edr-sensor into Kafka (issue 3) ----
# The endpoint sensor produces into an `edr kafka serve` cluster: the eBPF
# source where this kernel and user allow it, else the synthetic source (it
# says which). The frames are read back with kcat and checked.
echo
echo "== edr-sensor into Kafka =="
SK=$(mktemp -d /tmp/edr-demo-sensor-XXXXXX)
"$BIN/edr" kafka serve --bootstrap-file "$SK/boot" --set kafka.embedded.brokers=1 >/dev/null 2>&1 &
SK_PID=$!
trap 'kill $SK_PID 2>/dev/null || true; rm -rf "$SK"' EXIT
for _ in $(seq 100); do [ -s "$SK/boot" ] && break; sleep 0.1; done
SK_BOOT=$(cat "$SK/boot")
SK_ARGS=(--brokers="$SK_BOOT" --state-dir="$SK/state" --set sensor.health_interval=1s)
SK_SRC=synthetic
if [ "$(id -u)" -eq 0 ]; then
  "$BIN/edr-sensor" "${SK_ARGS[@]}" --source=ebpf 2>"$SK/sensor.log" &
  SENSOR_PID=$!
  sleep 2
  if kill -0 "$SENSOR_PID" 2>/dev/null; then
    SK_SRC=ebpf
    # some activity for it to see: a short process tree, files, a loopback connect
    for i in 1 2 3; do sh -c "echo demo > $SK/f$i; mv $SK/f$i $SK/g$i; rm $SK/g$i; ls / >/dev/null"; done
    (exec 3<>/dev/tcp/$(cut -d, -f1 <<<"$SK_BOOT" | tr ':' '/')) 2>/dev/null || true
    sleep 2
    kill -TERM "$SENSOR_PID"; wait "$SENSOR_PID" || true
  else
    wait "$SENSOR_PID" 2>/dev/null || true
    echo "ebpf source unavailable here ($(grep -m1 -i 'error' "$SK/sensor.log" || echo 'see log')): using synthetic"
  fi
else
  echo "not root: the eBPF source needs root, using synthetic"
fi
if [ "$SK_SRC" = synthetic ]; then
  "$BIN/edr-sensor" "${SK_ARGS[@]}" --source=synth --hosts=20 --rate=100000 --max-events=200000 \
    2>"$SK/sensor.log"
fi
echo "sensor source: $SK_SRC"
grep -E "source .* started|stopped:" "$SK/sensor.log" | sed 's/^/  /' || true
# a third-party client reads the topic: the frames are plain Kafka messages
kcat -C -b "$SK_BOOT" -t edr.telemetry.v1 -e -q -f '%s' >"$SK/frames.bin" 2>/dev/null
echo "kcat read $(stat -c %s "$SK/frames.bin") bytes of frames; check:"
"$BIN/edr" frame inspect "$SK/frames.bin" | sed -n '/frames (/,$p'
if [ "$SK_SRC" = ebpf ]; then
  # a fleet's worth of volume for the collector's figures: the same sensor's
  # synthetic source (20 hosts) into the same topic
  "$BIN/edr-sensor" --brokers="$SK_BOOT" --state-dir="$SK/state" --source=synth --hosts=20 \
    --max-events=200000 2>"$SK/sensor-synth.log"
  echo "plus the synthetic source (20 hosts):"
  grep -E "stopped:" "$SK/sensor-synth.log" | sed 's/^/  /' || true
fi

# ---- collector: Kafka -> RocksDB store (issue 4) ----
echo
echo "== edr-collector: Kafka -> RocksDB store =="
OUT=${EDR_DEMO_OUT:-demo-out}
mkdir -p "$OUT"
chmod 700 "$OUT"
rm -rf "$OUT/store"
C0=$(date +%s.%N)
"$BIN/edr-collector" --brokers="$SK_BOOT" --store "$OUT/store" --exit-when-idle 3 \
  --set collector.metrics_listen=127.0.0.1:0 2>"$SK/collector.log" || {
  echo "collector failed:"; tail -5 "$SK/collector.log"; exit 1; }
C1=$(date +%s.%N)
"$BIN/edr" store stats --store "$OUT/store" | sed 's/^/  /'
EV=$("$BIN/edr" store stats --store "$OUT/store" | awk '$1=="events"{print $2}')
awk -v e="$EV" -v a="$C0" -v b="$C1" 'BEGIN{printf "  stored %d events in %.1f s wall: the consumer group join (about 3 s) and the 3 s idle wait at the end are most of it; the rate is the stop line'"'"'s events per CPU-second\n", e, b-a}'
grep -o "stopping: .*" "$SK/collector.log" | sed 's/^/  collector /' || true
echo "  (bytes_per_event counts the whole store directory: RocksDB's fixed files weigh on small stores)"
kill $SK_PID 2>/dev/null || true
wait $SK_PID 2>/dev/null || true


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
