#!/usr/bin/env bash
# bench/run sensor-scan: what the eBPF sensor's scan of every process's descriptors
# (sensor.ebpf_fd_scan: the BPF programs sockets and perf events hold) costs. bench_sensor_workload
# hold keeps PROCS processes (200) with DESCRIPTORS open descriptors each (1000; SOCKETS
# (100) of them UDP sockets, one with a classic filter). Each repetition runs the
# sensor (--source ebpf --output null) for SECONDS (10) with the scan every second, then
# with it off, the peer in the same run: the difference in the sensor process's CPU
# (user+system: the iterator runs in the reading process) is the scans'. Figures:
# medians over REPS (3) of the cost of one scan, per descriptor visited, and the share
# of a core at the default period (10 s). Needs root.
set -euo pipefail
. "$(dirname "$0")/stats_lib.sh"
BUILD=${EDR_BUILD:-build}
W="$BUILD/bench/bench_sensor_workload"
S="$BUILD/bin/edr-sensor"
REPS=${REPS:-3}
PROCS=${PROCS:-200}
DESCRIPTORS=${DESCRIPTORS:-1000}
SOCKETS=${SOCKETS:-100}
SECONDS_ON=${SECONDS_ON:-10}
[ -x "$W" ] && [ -x "$S" ] || { echo "sensor-scan: build first ($W, $S)" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "sensor-scan: skipped: needs root (BPF programs)"; exit 0
fi
tmp=$(mktemp -d /tmp/edr-scan-XXXXXX)
pid=""; holder=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/state"
"$W" hold "$PROCS" "$DESCRIPTORS" "$SOCKETS" >"$tmp/hold.out" 2>"$tmp/hold.log" & holder=$!
for _ in $(seq 300); do grep -q holding "$tmp/hold.out" 2>/dev/null && break
  kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
grep -q holding "$tmp/hold.out" || { echo "sensor-scan: the holder failed: $(cat "$tmp/hold.log")" >&2; exit 1; }
fds=0
for d in /proc/[0-9]*/fd; do n=$(ls "$d" 2>/dev/null | wc -l) && fds=$((fds + n)); done
echo "sensor-scan: $fds open descriptors on this host ($PROCS processes holding $DESCRIPTORS each)"

# run_sensor PERIOD: CPU seconds of the sensor over SECONDS_ON, from 3 s after its start, in $cpu
run_sensor() {
  start_ebpf_sensor sensor-scan "$tmp/sensor.log" --state-dir="$tmp/state" --set "sensor.ebpf_fd_scan=$1"
  sleep 3 # the start-up /proc scan and the first descriptor scan are over
  local c0; c0=$(proc_cpu "$pid")
  sleep "$SECONDS_ON"
  cpu=$(awk -v a="$(proc_cpu "$pid")" -v b="$c0" 'BEGIN { printf "%.4f", a - b }')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

per_scan=""
for r in $(seq "$REPS"); do
  run_sensor 1s; on=$cpu
  run_sensor 0; off=$cpu
  ms=$(awk -v a="$on" -v b="$off" -v n="$SECONDS_ON" 'BEGIN { printf "%.2f", 1000 * (a - b) / n }')
  echo "rep $r: sensor CPU over ${SECONDS_ON} s: scan every second $on s, scan off $off s; $ms ms a scan"
  per_scan="$per_scan $ms"
done
m=$(echo "$per_scan" | median)
echo "RESULT sensor_fd_scan_descriptors $fds descriptors"
echo "RESULT sensor_fd_scan_ms $m ms"
echo "RESULT sensor_fd_scan_ns_per_descriptor $(awk -v m="$m" -v n="$fds" 'BEGIN { printf "%.0f", m * 1e6 / n }') ns"
echo "RESULT sensor_fd_scan_core_pct_at_10s $(awk -v m="$m" 'BEGIN { printf "%.3f", m / 10000 * 100 }') %"
