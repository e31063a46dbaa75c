#!/usr/bin/env bash
# eBPF source completeness under load: edr-sensor --source ebpf --output jsonl watches the
# paced workload of bench sensor-overhead (bench_sensor_workload run: posix_spawn+exec,
# file create+write / rename / delete, loopback TCP connects, each stream on its own
# thread) and what it emitted is checked kind by kind against what the workload did (the
# peer, counted by the workload itself in the same run; bench_sensor_workload count-jsonl):
#   exec       ProcessStart of a spawned pid; exec_argv: with the exact argv passed
#   file       create and first write of DIR/f-N, rename DIR/f-N -> DIR/g-N (both paths),
#              delete of DIR/g-N; each operation counted once
#   connect    to the workload's listener, local and remote 127.0.0.1 with ports
# plus the sensor's drop counters (ring buffer, queue) and exec hashes shipped late.
#   bench/ebpf-completeness.sh [BUILD_DIR]
#   env: EXEC_RATE (2000/s) FILE_RATE (20000 ops/s) CONN_RATE (1000/s) DURATION (5 s)
#        EXEC_IMAGE (tiny | true, as in sensor-overhead)
set -euo pipefail
B=${1:-build}
EXEC_RATE=${EXEC_RATE:-2000}
FILE_RATE=${FILE_RATE:-20000}
CONN_RATE=${CONN_RATE:-1000}
SECONDS_RUN=${DURATION:-5}
IMAGE=${EXEC_IMAGE:-tiny}
W="$B/bench/bench_sensor_workload"
[ "$(id -u)" -eq 0 ] || { echo "ebpf-completeness: needs root (BPF)"; exit 77; }
for f in "$B/bin/edr-sensor" "$W"; do
  [ -x "$f" ] || { echo "ebpf-completeness: $f missing (build first)"; exit 1; }
done

tmp=$(mktemp -d /tmp/edr-ebpf-bench-XXXXXX)
chmod 700 "$tmp"
mkdir "$tmp/w"
sensor=""
cleanup() { [ -n "$sensor" ] && kill "$sensor" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$B/bin/edr-sensor" --source ebpf --output jsonl --state-dir "$tmp/state" \
  --set sensor.health_interval=1s >"$tmp/out.jsonl" 2>"$tmp/sensor.log" &
sensor=$!
for _ in $(seq 100); do
  grep -q "source ebpf started" "$tmp/sensor.log" 2>/dev/null && break
  kill -0 "$sensor" 2>/dev/null || { cat "$tmp/sensor.log"; exit 1; }
  sleep 0.1
done
grep -q "source ebpf started" "$tmp/sensor.log" || { cat "$tmp/sensor.log"; exit 1; }

gen=$("$W" run "$tmp/w" "$SECONDS_RUN" "$EXEC_RATE" "$FILE_RATE" "$CONN_RATE" "$IMAGE")
sleep 2 # one health interval after the last record: the drop counters are final
kill -TERM "$sensor"
wait "$sensor" || true
sensor=""
seen=$("$W" count-jsonl "$tmp/out.jsonl" "$tmp/w" "$(sed -n 's/.* port \([0-9]*\).*/\1/p' <<<"$gen")")
echo "workload: $gen"
echo "sensor:   $seen"
grep -E 'ringbuf|dropped|without their' "$tmp/sensor.log" | tail -3 || true

field() { sed -n "s/.* $2 \([0-9.]*\).*/\1/p" <<<"$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", 100 * a / b; else print "n/a" }'; }
g_exec=$(field "$gen" exec); g_conn=$(field "$gen" connects); g_writes=$(field "$gen" writes)
g_cycles=$(awk -v f="$(field "$gen" file_ops)" 'BEGIN { printf "%d", f / 3 }')
awk -v a="$(field "$gen" exec_rate)" -v b="$EXEC_RATE" -v c="$(field "$gen" file_rate)" -v d="$FILE_RATE" \
  'BEGIN { if (a < 0.99 * b || c < 0.99 * d) printf "warning: the workload ran below its target rates (exec %d/s of %d, file ops %d/s of %d): the machine is busy\n", a, b, c, d }'
echo "RESULT ebpf_exec_rate $(field "$gen" exec_rate) exec/s"
echo "RESULT ebpf_file_rate $(field "$gen" file_rate) ops/s"
echo "RESULT ebpf_connect_rate $(awk -v c="$g_conn" -v s="$(field "$gen" wall_s)" 'BEGIN { printf "%.0f", c / s }') connects/s"
echo "RESULT ebpf_exec_completeness $(pct "$(field "$seen" exec)" "$g_exec") %"
echo "RESULT ebpf_exec_argv_completeness $(pct "$(field "$seen" exec_argv)" "$g_exec") %"
echo "RESULT ebpf_file_create_completeness $(pct "$(field "$seen" creates)" "$g_cycles") %"
echo "RESULT ebpf_file_write_completeness $(pct "$(field "$seen" writes)" "$g_writes") %"
echo "RESULT ebpf_file_rename_completeness $(pct "$(field "$seen" renames)" "$g_cycles") %"
echo "RESULT ebpf_file_delete_completeness $(pct "$(field "$seen" deletes)" "$g_cycles") %"
echo "RESULT ebpf_file_completeness $(pct "$(field "$seen" file_ops)" "$(field "$gen" file_ops)") %"
echo "RESULT ebpf_connect_completeness $(pct "$(field "$seen" connects)" "$g_conn") %"
echo "RESULT ebpf_sensor_drops_total $(field "$seen" drops) events"
echo "RESULT ebpf_exec_hash_late $(field "$seen" hash_late) events"
