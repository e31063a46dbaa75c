# Shell helpers shared by the sensor benchmarks (sourced, not run).
proc_cpu() { # seconds on a CPU of a pid so far, all its threads (ns resolution)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.4f", s / 1e9 }'
}
# median and range of whitespace-separated numbers on stdin
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
range() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
# start_ebpf_sensor BENCH LOG [ARGS...]: edr-sensor ($S) with --source=ebpf --output=null and
# ARGS in the background, its pid in $pid; waits for its eBPF source to start, or says the
# bench is skipped (no BPF here) and exits 0
start_ebpf_sensor() {
  local bench=$1 log=$2; shift 2
  "$S" --source=ebpf --output=null "$@" >/dev/null 2>"$log" & pid=$!
  for _ in $(seq 100); do grep -q "started" "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  grep -q "source ebpf started" "$log" ||
    { echo "$bench: skipped: the eBPF source did not start: $(tail -3 "$log")"; exit 0; }
}
