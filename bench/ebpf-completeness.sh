#!/usr/bin/env bash
# eBPF source completeness under load: edr-sensor --source ebpf --output jsonl
# watches bench_ebpf_load (fork+exec and file create/write/rename/delete at
# fixed rates); events seen are counted against what the load generated (its
# peer, in the same run), and the sensor's own drop counters are reported.
#   bench/ebpf-completeness.sh [BUILD_DIR]    env: EXEC_RATE FILE_RATE DURATION (s)
set -euo pipefail
B=${1:-build}
EXEC_RATE=${EXEC_RATE:-2000}
FILE_RATE=${FILE_RATE:-20000}
SECONDS_RUN=${DURATION:-5}
[ "$(id -u)" -eq 0 ] || { echo "ebpf-completeness: needs root (BPF)"; exit 77; }
for f in "$B/bin/edr-sensor" "$B/bench/bench_ebpf_load"; do
  [ -x "$f" ] || { echo "ebpf-completeness: $f missing (build first)"; exit 1; }
done

tmp=$(mktemp -d /tmp/edr-ebpf-bench-XXXXXX)
chmod 700 "$tmp"
mkdir "$tmp/w"
tag="edrbench$$"
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

"$B/bench/bench_ebpf_load" --dir "$tmp/w" --tag "$tag" --exec-rate "$EXEC_RATE" \
  --file-rate "$FILE_RATE" --seconds "$SECONDS_RUN" >"$tmp/gen.txt"
sleep 2
kill -TERM "$sensor"
wait "$sensor" || true
sensor=""

python3 - "$tmp/out.jsonl" "$tmp/gen.txt" "$tag" "$tmp/w/" "$EXEC_RATE" "$FILE_RATE" <<'EOF'
import json, sys
out, gen, tag, wdir, exec_rate, file_rate = sys.argv[1:]
g = {}
for line in open(gen):
    k, n, secs = line.split()
    g[k] = (int(n), float(secs))
starts = creates = writes = renames = deletes = bad = 0
drops = {}
for line in open(out, errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        bad += 1
        continue
    act = e.get("event", {}).get("action")
    if act == "process_start":
        args = e.get("process", {}).get("args", [])
        if args[:2] == ["true", tag]:
            starts += 1
    elif act in ("file_create", "file_write", "file_delete", "file_rename"):
        p = e.get("file", {}).get("path", "")
        if act == "file_rename":
            p = e.get("edr", {}).get("file", {}).get("old_path", "")
        if not p.startswith(wdir):
            continue
        if act == "file_create": creates += 1
        elif act == "file_write": writes += 1
        elif act == "file_rename": renames += 1
        else: deletes += 1
    elif act == "sensor_health":
        for d in e.get("edr", {}).get("sensor_health", {}).get("drops", []):
            drops[(d.get("source"), d.get("reason"))] = int(d.get("count", 0))
n_exec, t_exec = g["execs"]
n_file, t_file = g["fileops"]
seen_file = creates + writes + renames + deletes
print(f"generated: {n_exec} exec in {t_exec:.2f}s, {n_file} file ops in {t_file:.2f}s; "
      f"seen: {starts} exec, create {creates} write {writes} rename {renames} delete {deletes}; "
      f"unparsable lines {bad}")
for (src, why), n in sorted(drops.items()):
    print(f"drop: {src} {why} {n}")
print(f"RESULT ebpf_exec_rate {n_exec / max(t_exec, 1e-9):.0f} exec/s")
print(f"RESULT ebpf_file_rate {n_file / max(t_file, 1e-9):.0f} ops/s")
print(f"RESULT ebpf_exec_completeness {100.0 * starts / max(n_exec, 1):.2f} %")
print(f"RESULT ebpf_file_completeness {100.0 * seen_file / max(n_file, 1):.2f} %")
print(f"RESULT ebpf_drops {sum(n for (s, _), n in drops.items() if s and s.startswith('ebpf'))} events")
print(f"RESULT ebpf_sensor_drops_total {sum(drops.values())} events")
EOF
