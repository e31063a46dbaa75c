#!/usr/bin/env bash
# bench/run sensor-overhead: one workload (fork+exec, file create/write/rename/delete,
# loopback connects at fixed rates) timed three times in the same run: without a
# sensor, with edr-sensor (source auto: ebpf where it starts, else fallback), and with
# auditd (rules for execve, connect and writes in the workload dir).
# CPU overhead % = extra CPU per unit of work: (workload CPU + daemon CPU) per exec
# generated, against the baseline's workload CPU per exec (all three kinds of
# operation are generated in fixed proportion, so per exec is per unit of work).
# Completeness = events seen / generated. Needs root; env: DUR (s), EXEC_RATE,
# FILE_RATE (ops/s, create+write, rename, delete), CONN_RATE, SENSOR_SOURCE.
set -euo pipefail
BUILD=${EDR_BUILD:-build}
W="$BUILD/bench/bench_sensor_workload"
S="$BUILD/bin/edr-sensor"
DUR=${DUR:-10}
EXEC_RATE=${EXEC_RATE:-2000}
FILE_RATE=${FILE_RATE:-20000}
CONN_RATE=${CONN_RATE:-200}
SRC=${SENSOR_SOURCE:-auto}
[ -x "$W" ] && [ -x "$S" ] || { echo "sensor-overhead: build first ($W, $S)" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
  echo "sensor-overhead: skipped: needs root (kernel sources and auditd)"; exit 0
fi
tmp=$(mktemp -d /tmp/edr-overhead-XXXXXX)
sensor_pid=""; auditd_started=""; rules_added=""
cleanup() {
  [ -n "$sensor_pid" ] && kill "$sensor_pid" 2>/dev/null && wait "$sensor_pid" 2>/dev/null || true
  if [ -n "$rules_added" ]; then
    auditctl -d always,exit -F arch=b64 -S execve -k edrbench_exec >/dev/null 2>&1 || true
    auditctl -d always,exit -F arch=b64 -S connect -k edrbench_conn >/dev/null 2>&1 || true
    auditctl -W "$tmp/w2" -p w -k edrbench_file >/dev/null 2>&1 || true
  fi
  if [ -n "$auditd_started" ]; then kill "$auditd_started" 2>/dev/null; wait "$auditd_started" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)
proc_cpu() { # utime+stime seconds of a pid
  awk -v t="$ticks" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
field() { sed -n "s/.* $2 \([0-9.]*\).*/\1/p" <<<"$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "0.0" }'; }

echo "workload: ${DUR}s, exec ${EXEC_RATE}/s, file ops ${FILE_RATE}/s, connects ${CONN_RATE}/s"

# 1. no sensor
mkdir -p "$tmp/w0"
base=$("$W" run "$tmp/w0" "$DUR" "$EXEC_RATE" "$FILE_RATE" "$CONN_RATE")
echo "baseline: $base"
base_cpu=$(field "$base" cpu_s)

# 2. edr-sensor. Run a: frames encoded as for Kafka and discarded (output null): the
# CPU overhead. Run b: events as JSON lines to a file, to count what it saw.
start_sensor() { # $1 output, $2 file for stdout
  "$S" --source="$SRC" --output="$1" --state-dir="$tmp/state" \
       --set "sensor.fallback_paths=$tmp" --set sensor.health_interval=1s \
       >"$2" 2>"$tmp/sensor.log" &
  sensor_pid=$!
  for _ in $(seq 100); do grep -q "started" "$tmp/sensor.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "started" "$tmp/sensor.log" || { cat "$tmp/sensor.log" >&2; exit 1; }
}
stop_sensor() { kill -TERM "$sensor_pid"; wait "$sensor_pid" || true; sensor_pid=""; }
base_n=$(field "$base" exec)
# extra CPU seconds, scaled to the baseline's amount of work
extra() { awk -v c="$1" -v n="$2" -v b="$base_cpu" -v bn="$base_n" 'BEGIN { printf "%.3f", c * bn / n - b }'; }

mkdir -p "$tmp/w1a" "$tmp/w1"
start_sensor null /dev/null
fidelity=$(sed -n 's/.*source \([a-z]*\) started.*/\1/p' "$tmp/sensor.log" | head -1)
c0=$(proc_cpu "$sensor_pid")
withn=$("$W" run "$tmp/w1a" "$DUR" "$EXEC_RATE" "$FILE_RATE" "$CONN_RATE")
sleep 1
c1=$(proc_cpu "$sensor_pid")
stop_sensor
echo "with edr-sensor ($fidelity, output null): $withn; edr-sensor process CPU $(awk -v a="$c1" -v b="$c0" 'BEGIN{printf "%.2f", a - b}') s"
s_cpu=$(extra "$(awk -v a="$(field "$withn" cpu_s)" -v d1="$c1" -v d0="$c0" 'BEGIN{print a + d1 - d0}')" "$(field "$withn" exec)")

start_sensor jsonl "$tmp/sensor.jsonl"
c0=$(proc_cpu "$sensor_pid")
with=$("$W" run "$tmp/w1" "$DUR" "$EXEC_RATE" "$FILE_RATE" "$CONN_RATE")
sleep 1 # let the sensor catch up
c1=$(proc_cpu "$sensor_pid")
stop_sensor
echo "with edr-sensor ($fidelity, output jsonl): $with; edr-sensor process CPU $(awk -v a="$c1" -v b="$c0" 'BEGIN{printf "%.2f", a - b}') s"
seen=$("$W" count-jsonl "$tmp/sensor.jsonl" "$tmp/w1" "$(field "$with" port)")
echo "edr-sensor saw: $seen"
sj_cpu=$(extra "$(awk -v a="$(field "$with" cpu_s)" -v d1="$c1" -v d0="$c0" 'BEGIN{print a + d1 - d0}')" "$(field "$with" exec)")

# 3. auditd
mkdir -p "$tmp/w2"
audit_log=/var/log/audit/audit.log
if ! command -v auditctl >/dev/null; then
  echo "auditd not installed (scripts/install-deps.sh installs it)"; a_cpu=""
else
  if pgrep -x auditd >/dev/null; then
    echo "auditd already runs here: not touching it (stop it to include the auditd peer)"; apid=""
  else
    # our own auditd with a private configuration: log in $tmp, never rotated
    mkdir -p "$tmp/auditconf"
    sed -e "s|^log_file.*|log_file = $tmp/audit.log|" -e "s|^max_log_file .*|max_log_file = 4096|" \
        -e "s|^max_log_file_action.*|max_log_file_action = IGNORE|" \
        -e "s|^space_left .*|space_left = 2|" -e "s|^admin_space_left .*|admin_space_left = 1|" \
        /etc/audit/auditd.conf >"$tmp/auditconf/auditd.conf"
    chmod 0640 "$tmp/auditconf/auditd.conf"
    auditd -n -c "$tmp/auditconf" >/dev/null 2>&1 &
    apid=$!; auditd_started=$apid
    for _ in $(seq 50); do [ -s "$tmp/audit.log" ] && break; sleep 0.1; done
    kill -0 "$apid" 2>/dev/null || apid=""
  fi
  audit_log="$tmp/audit.log"
  if [ -z "$apid" ]; then
    a_cpu=""
  else
    auditctl -e 1 >/dev/null
    auditctl -b 8192 >/dev/null # the backlog Debian's own rules set
    cp /usr/bin/true "$tmp/w2/wl-true"
    auditctl -a always,exit -F arch=b64 -S execve -k edrbench_exec >/dev/null
    auditctl -a always,exit -F arch=b64 -S connect -k edrbench_conn >/dev/null
    auditctl -w "$tmp/w2" -p w -k edrbench_file >/dev/null
    rules_added=1
    off=$(stat -c %s "$audit_log" 2>/dev/null || echo 0)
    kpid=$(pgrep -x kauditd | head -1 || true)
    a0=$(proc_cpu "$apid"); k0=$([ -n "$kpid" ] && proc_cpu "$kpid" || echo 0)
    wa=$("$W" run "$tmp/w2" "$DUR" "$EXEC_RATE" "$FILE_RATE" "$CONN_RATE")
    # auditd writes behind: wait until its log stops growing
    last=-1
    for _ in $(seq 60); do
      cur=$(stat -c %s "$audit_log" 2>/dev/null || echo 0)
      [ "$cur" = "$last" ] && break
      last=$cur; sleep 0.5
    done
    a1=$(proc_cpu "$apid"); k1=$([ -n "$kpid" ] && proc_cpu "$kpid" || echo 0)
    echo "with auditd: $wa"
    tail -c +"$((off + 1))" "$audit_log" >"$tmp/audit.new" || true
    a_exec=$(grep 'type=SYSCALL' "$tmp/audit.new" | grep 'key="edrbench_exec"' | grep -c "exe=\"$tmp/w2/wl-true\"" || true)
    a_conn=$(grep 'type=SYSCALL' "$tmp/audit.new" | grep 'key="edrbench_conn"' | grep -c 'comm="bench_sensor_wo"' || true)
    a_file=$(grep 'type=SYSCALL' "$tmp/audit.new" | grep -c 'key="edrbench_file"' || true)
    a_lost=$(auditctl -s | sed -n 's/^lost \([0-9]*\)/\1/p')
    a_cpu=$(extra "$(awk -v a="$(field "$wa" cpu_s)" -v d1="$a1" -v d0="$a0" -v k1="$k1" -v k0="$k0" \
      'BEGIN { print a + (d1 - d0) + (k1 - k0) }')" "$(field "$wa" exec)")
  fi
fi

echo "sensor source: $fidelity"
echo "RESULT sensor_overhead_cpu_pct $(pct "$s_cpu" "$base_cpu") %"
echo "RESULT sensor_jsonl_overhead_cpu_pct $(pct "$sj_cpu" "$base_cpu") %"
[ -n "$a_cpu" ] && echo "RESULT auditd_overhead_cpu_pct $(pct "$a_cpu" "$base_cpu") %"
echo "RESULT sensor_complete_exec_pct $(pct "$(field "$seen" exec)" "$(field "$with" exec)") %"
echo "RESULT sensor_complete_file_ops_pct $(pct "$(field "$seen" file_ops)" "$(field "$with" file_ops)") %"
echo "RESULT sensor_complete_connects_pct $(pct "$(field "$seen" connects)" "$(field "$with" connects)") %"
echo "RESULT sensor_drops $(field "$seen" drops) events"
if [ -n "$a_cpu" ]; then
  echo "RESULT auditd_complete_exec_pct $(pct "$a_exec" "$(field "$wa" exec)") %"
  echo "RESULT auditd_complete_file_ops_pct $(pct "$a_file" "$(field "$wa" file_ops)") %"
  echo "RESULT auditd_complete_connects_pct $(pct "$a_conn" "$(field "$wa" connects)") %"
  echo "RESULT auditd_lost ${a_lost:-0} records"
fi
echo "achieved rates: exec $(awk -v n="$(field "$with" exec)" -v d="$DUR" 'BEGIN{printf "%.0f", n/d}')/s," \
     "file ops $(awk -v n="$(field "$with" file_ops)" -v d="$DUR" 'BEGIN{printf "%.0f", n/d}')/s (targets 2000 and 20000)"
