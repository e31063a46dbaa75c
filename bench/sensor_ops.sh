#!/usr/bin/env bash
# bench/run sensor-ops: what the eBPF sensor costs per operation, measured in tight
# unpaced loops (bench_sensor_workload loop) that are far steadier than the paced mix of
# sensor-overhead: a file cycle (open O_CREAT + write + close, rename, unlink) on a tmpfs
# this script mounts (the ext4 root varies 45-100 us per cycle between runs here), a
# posix_spawn+waitpid of a 129-byte static ELF, and getppid(), a syscall no sensor hooks.
#
# Each repetition runs the three loops three times, back to back: with no BPF attached,
# under bench_hook_floor (an empty program on every hook the sensor attaches: what the
# kernel charges for the hooks alone, the floor of any sensor built on them) and under
# edr-sensor (--source ebpf --output null, frames encoded as for Kafka and discarded).
# CPU per operation is the loop process's own plus its reaped children's (user+system),
# so it includes the BPF programs, which run inside the loop's syscalls, but not the
# sensor process's CPU (printed separately, per repetition). Overhead % = (mode - none) /
# none within the same repetition; the figures are medians over REPS (default 5).
# Needs root. Env: REPS, N_FILE (20000), N_SPAWN (3000), N_SYSCALL (2000000), SENSOR_SET
# (e.g. sensor.ebpf_hooks=raw, then also FLOOR_MODE=raw for the matching empty hooks;
# sensor.ebpf_ia32=true, then FLOOR_MODE=tracepoint+ia32).
set -euo pipefail
. "$(dirname "$0")/stats_lib.sh"
BUILD=${EDR_BUILD:-build}
W="$BUILD/bench/bench_sensor_workload"
F="$BUILD/bench/bench_hook_floor"
S="$BUILD/bin/edr-sensor"
REPS=${REPS:-5}
N_FILE=${N_FILE:-20000}
N_SPAWN=${N_SPAWN:-3000}
N_SYSCALL=${N_SYSCALL:-2000000}
[ -x "$W" ] && [ -x "$S" ] && [ -x "$F" ] || { echo "sensor-ops: build first ($W, $F, $S)" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "sensor-ops: skipped: needs root (BPF programs and a tmpfs mount)"; exit 0
fi
tmp=$(mktemp -d /tmp/edr-ops-XXXXXX)
pid=""; mounted=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$mounted" ] && umount "$tmp/fs" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/fs" "$tmp/state"
mount -t tmpfs -o size=256m,mode=0700 edr-ops "$tmp/fs" && mounted=1 ||
  { echo "sensor-ops: cannot mount a tmpfs at $tmp/fs" >&2; exit 1; }

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * (a - b) / b }'; }
ns() { sed -n 's/.*cpu_ns_per_op \([0-9.]*\).*/\1/p' <<<"$1"; }
loops() { # prints "SYSCALL_NS FILE_NS SPAWN_NS"
  local a b c
  a=$("$W" loop "$tmp/fs" syscall "$N_SYSCALL") && b=$("$W" loop "$tmp/fs" file "$N_FILE") &&
    c=$("$W" loop "$tmp/fs" spawn "$N_SPAWN") || { echo "sensor-ops: a loop failed: $a $b $c" >&2; exit 1; }
  echo "$(ns "$a") $(ns "$b") $(ns "$c")"
}
start_floor() {
  "$F" "${FLOOR_MODE:-tracepoint}" >"$tmp/floor.out" 2>"$tmp/floor.log" & pid=$!
  for _ in $(seq 100); do grep -q attached "$tmp/floor.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "sensor-ops: bench_hook_floor did not attach: $(cat "$tmp/floor.log")" >&2; exit 1
}
start_sensor() {
  local extra=()
  for kv in ${SENSOR_SET:-}; do extra+=(--set "$kv"); done
  start_ebpf_sensor sensor-ops "$tmp/sensor.log" --state-dir="$tmp/state" "${extra[@]}"
  sleep 0.5 # the start-up /proc scan is over
}
stop_bg() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

echo "sensor-ops: $REPS repetitions; loops of $N_SYSCALL getppid, $N_FILE file cycles (tmpfs), $N_SPAWN spawns"
for m in none floor sensor; do for k in sys file spawn; do eval "v_${m}_$k=''"; done; done
o_floor_file=""; o_floor_spawn=""; o_sensor_file=""; o_sensor_spawn=""; d_sys_floor=""; d_sys_sensor=""
s_cpu=""
for r in $(seq "$REPS"); do
  read -r n_sys n_file n_spawn <<<"$(loops)"
  start_floor
  read -r f_sys f_file f_spawn <<<"$(loops)"
  stop_bg
  start_sensor
  c0=$(proc_cpu "$pid")
  read -r s_sys s_file s_spawn <<<"$(loops)"
  sleep 0.2 # the sensor drains its ring buffer
  sc=$(awk -v a="$(proc_cpu "$pid")" -v b="$c0" 'BEGIN { printf "%.3f", a - b }')
  stop_bg
  echo "rep $r: getppid ns none $n_sys floor $f_sys sensor $s_sys; file cycle ns none $n_file floor $f_file sensor $s_file; spawn ns none $n_spawn floor $f_spawn sensor $s_spawn; sensor process CPU $sc s"
  v_none_sys="$v_none_sys $n_sys"; v_none_file="$v_none_file $n_file"; v_none_spawn="$v_none_spawn $n_spawn"
  v_floor_sys="$v_floor_sys $f_sys"; v_floor_file="$v_floor_file $f_file"; v_floor_spawn="$v_floor_spawn $f_spawn"
  v_sensor_sys="$v_sensor_sys $s_sys"; v_sensor_file="$v_sensor_file $s_file"; v_sensor_spawn="$v_sensor_spawn $s_spawn"
  o_floor_file="$o_floor_file $(pct "$f_file" "$n_file")"; o_sensor_file="$o_sensor_file $(pct "$s_file" "$n_file")"
  o_floor_spawn="$o_floor_spawn $(pct "$f_spawn" "$n_spawn")"; o_sensor_spawn="$o_sensor_spawn $(pct "$s_spawn" "$n_spawn")"
  d_sys_floor="$d_sys_floor $(awk -v a="$f_sys" -v b="$n_sys" 'BEGIN { printf "%.1f", a - b }')"
  d_sys_sensor="$d_sys_sensor $(awk -v a="$s_sys" -v b="$n_sys" 'BEGIN { printf "%.1f", a - b }')"
  s_cpu="$s_cpu $sc"
done
us() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
echo "RESULT ops_file_cycle_none_us $(us "$(echo "$v_none_file" | median)") us"
echo "RESULT ops_file_cycle_hook_floor_us $(us "$(echo "$v_floor_file" | median)") us"
echo "RESULT ops_file_cycle_sensor_us $(us "$(echo "$v_sensor_file" | median)") us"
echo "RESULT ops_spawn_none_us $(us "$(echo "$v_none_spawn" | median)") us"
echo "RESULT ops_spawn_hook_floor_us $(us "$(echo "$v_floor_spawn" | median)") us"
echo "RESULT ops_spawn_sensor_us $(us "$(echo "$v_sensor_spawn" | median)") us"
echo "RESULT ops_syscall_none_ns $(echo "$v_none_sys" | median) ns"
echo "RESULT hook_floor_syscall_path_ns $(echo "$d_sys_floor" | median) ns"
echo "RESULT sensor_syscall_path_ns $(echo "$d_sys_sensor" | median) ns"
echo "RESULT hook_floor_file_cycle_overhead_pct $(echo "$o_floor_file" | median) %"
echo "RESULT sensor_file_cycle_overhead_pct $(echo "$o_sensor_file" | median) %"
echo "RESULT hook_floor_spawn_overhead_pct $(echo "$o_floor_spawn" | median) %"
echo "RESULT sensor_spawn_overhead_pct $(echo "$o_sensor_spawn" | median) %"
echo "RESULT sensor_process_cpu_s_per_rep $(echo "$s_cpu" | median) s"
