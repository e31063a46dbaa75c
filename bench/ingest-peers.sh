#!/usr/bin/env bash
# bench ingest: the collector's store against PostgreSQL 15 (COPY) and SQLite (WAL, 10k rows per
# transaction) on the same synthetic events: ingest rate, bytes/event, three query latencies.
# Usage: bench/run ingest [--events N] [--no-peers] [--unsplit] [--dict] [--protobuf-c] [--level N] [--restart-chunks]
set -euo pipefail
BUILD=${EDR_BUILD:-build}
events=2000000
peers=1
codec=()
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    --unsplit) codec+=(--unsplit); shift ;;
    --dict) codec+=(--dict); shift ;;
    --restart-chunks) codec+=(--restart-chunks); shift ;;
    --protobuf-c) codec+=(--protobuf-c); shift ;;
    --level) codec+=(--level "$2"); shift 2 ;;
    *) echo "usage: bench/run ingest [--events N] [--no-peers] [--unsplit] [--dict] [--protobuf-c] [--level N] [--restart-chunks]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d /tmp/edr-bench-ingest.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/peer"
pgbin=/usr/lib/postgresql/15/bin
cleanup() {
  if [ -f "$work/pg/postmaster.pid" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }

"$BUILD/bench/bench_ingest" --events "$events" "${codec[@]}" --store "$work/store" --peer-dir "$work/peer" 2> >(grep -v CONFWARN >&2) | tee "$work/edr.out"
[ "$peers" = 1 ] || exit 0
# the same sampled keys for every peer (at most $nq of them: one client session each)
nq=300
head -n "$nq" "$work/peer/targets" > "$work/peer/keys"
# p50/p99 of a column of microsecond values: prints "p50 p99"
pcts() { sort -g | awk '{v[NR]=$1} END{if(!NR){print "0 0"; exit} i50=int(0.50*(NR-1)+0.5)+1; i99=int(0.99*(NR-1)+0.5)+1; printf "%.1f %.1f\n", v[i50], v[i99]}'; }
n_events=$(wc -l < "$work/peer/events.tsv")
edr_rate=$(awk '/^RESULT ingest_events_per_s /{print $3}' "$work/edr.out")
edr_bpe=$(awk '/^RESULT store_bytes_per_event /{print $3}' "$work/edr.out")

schema_common="
CREATE TABLE processes(entity %B, host %B, pid INTEGER, parent %B, exe TEXT, cmdline TEXT, sha256 %B, start_ns BIGINT);
CREATE INDEX processes_entity ON processes(entity);
CREATE INDEX processes_sha ON processes(sha256, host);
CREATE TABLE events(host %B, time_ns BIGINT, entity %B, pid INTEGER, kind TEXT, path TEXT, remote TEXT);
CREATE INDEX events_entity_time ON events(entity, time_ns);"

# ---- PostgreSQL 15 on loopback
if [ -x "$pgbin/initdb" ] && id postgres >/dev/null 2>&1; then
  mkdir -p "$work/pg" && chown postgres "$work/pg" && chmod 700 "$work/pg"
  runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -A trust >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -w -l "$work/pg/server.log" \
    -o "-c listen_addresses=127.0.0.1 -p 54329 -k $work/pg -c fsync=off -c synchronous_commit=off" start >/dev/null
  psql_() { psql -X -q -h 127.0.0.1 -p 54329 -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
  psql_ -c "${schema_common//%B/BYTEA}" >/dev/null
  a=$(now)
  psql_ -c "\\copy processes FROM '$work/peer/procs.tsv'" -c "\\copy events FROM '$work/peer/events.tsv'"
  b=$(now)
  pg_rate=$(awk -v n="$n_events" -v a="$a" -v b="$b" 'BEGIN{printf "%.0f", n/(b-a)}')
  pg_bytes=$(psql_ -t -A -c "VACUUM ANALYZE" -c "SELECT pg_total_relation_size('events')+pg_total_relation_size('processes')" | tail -1)
  # server-side execution time of each query (EXPLAIN ANALYZE), all keys in one session
  pg_lat() { # $1: query template with @E@ @S@ @T0@ @T1@
    while read -r e s t0 t1; do
      q=${1//@E@/$e}; q=${q//@S@/$s}; q=${q//@T0@/$t0}; q=${q//@T1@/$t1}
      echo "EXPLAIN (ANALYZE, FORMAT TEXT) $q;"
    done < "$work/peer/keys" > "$work/pg.sql"
    psql_ -t -A -f "$work/pg.sql" | awk '/Execution Time/{print $3*1000}' | pcts
  }
  anc="WITH RECURSIVE anc(e, d) AS (SELECT '\\x@E@'::bytea, 0 UNION ALL SELECT p.parent, anc.d+1 FROM processes p JOIN anc ON p.entity = anc.e WHERE p.parent IS NOT NULL AND anc.d < 64) SELECT count(*) FROM anc"
  evq="SELECT * FROM events WHERE entity = '\\x@E@'::bytea AND time_ns >= @T0@ AND time_ns < @T1@"
  hq="SELECT DISTINCT host FROM processes WHERE sha256 = '\\x@S@'::bytea"
  read -r pg_anc50 pg_anc99 < <(pg_lat "$anc")
  read -r pg_ev50 pg_ev99 < <(pg_lat "$evq")
  read -r pg_h50 pg_h99 < <(pg_lat "$hq")
  echo "RESULT pg_ingest_events_per_s $pg_rate events/s"
  echo "RESULT pg_bytes_per_event $(awk -v s="$pg_bytes" -v n="$n_events" 'BEGIN{printf "%.2f", s/n}') B/event"
  echo "RESULT pg_query_ancestry_p50_us $pg_anc50 us"
  echo "RESULT pg_query_ancestry_p99_us $pg_anc99 us"
  echo "RESULT pg_query_process_events_p50_us $pg_ev50 us"
  echo "RESULT pg_query_process_events_p99_us $pg_ev99 us"
  echo "RESULT pg_query_hash_hosts_p50_us $pg_h50 us"
  echo "RESULT pg_query_hash_hosts_p99_us $pg_h99 us"
  echo "RESULT ingest_speedup_vs_pg $(awk -v a="$edr_rate" -v b="$pg_rate" 'BEGIN{printf "%.1f", a/b}') x"
  echo "RESULT disk_ratio_vs_pg $(awk -v s="$pg_bytes" -v n="$n_events" -v e="$edr_bpe" 'BEGIN{printf "%.1f", (s/n)/e}') x"
else
  echo "bench ingest: PostgreSQL 15 not installed (scripts/install-deps.sh): peer skipped" >&2
fi

# ---- SQLite, WAL, 10k rows per transaction (.import of 10k-line chunks, one transaction each)
if command -v sqlite3 >/dev/null; then
  db="$work/peer.sqlite"
  (cd "$work/peer" && split -l 10000 -d -a 5 procs.tsv p. && split -l 10000 -d -a 5 events.tsv e.)
  { echo "PRAGMA journal_mode=WAL;"; echo "${schema_common//%B/TEXT}"; echo ".mode tabs";
    for f in "$work"/peer/p.*; do echo ".import $f processes"; done
    for f in "$work"/peer/e.*; do echo ".import $f events"; done; } > "$work/load.sql"
  a=$(now)
  sqlite3 "$db" < "$work/load.sql" >/dev/null
  b=$(now)
  sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  sl_rate=$(awk -v n="$n_events" -v a="$a" -v b="$b" 'BEGIN{printf "%.0f", n/(b-a)}')
  sl_bytes=$(stat -c %s "$db")
  # sqlite3's .timer prints milliseconds at best (it printed 0.000 for every query): time each
  # query in one process with a monotonic clock instead (Python's sqlite3 module, same library)
  python3 - "$db" "$work/peer/keys" > "$work/sl.lat" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
qs = {
  "anc": "WITH RECURSIVE anc(e, d) AS (SELECT ?, 0 UNION ALL SELECT p.parent, anc.d+1 FROM processes p JOIN anc ON p.entity = anc.e WHERE p.parent != '\\N' AND anc.d < 64) SELECT count(*) FROM anc",
  "ev": "SELECT * FROM events WHERE entity = ? AND time_ns >= ? AND time_ns < ?",
  "h": "SELECT DISTINCT host FROM processes WHERE sha256 = ?",
}
for line in open(sys.argv[2]):
    e, s, t0, t1 = line.split()
    for name, q, args in (("anc", qs["anc"], ("\\\\x" + e,)), ("ev", qs["ev"], ("\\\\x" + e, int(t0), int(t1))),
                          ("h", qs["h"], ("\\\\x" + s,))):
        a = time.perf_counter()
        rows = db.execute(q, args).fetchall()
        print(name, (time.perf_counter() - a) * 1e6, len(rows) if name != "anc" else rows[0][0])
PY
  awk '{n[$1]++; r[$1]+=$3} END{printf "sqlite: %d keys; average ancestry depth %.1f, events in window %.1f, hosts per hash %.1f\n", n["h"], r["anc"]/n["anc"], r["ev"]/n["ev"], r["h"]/n["h"]}' "$work/sl.lat"
  read -r sl_anc50 sl_anc99 < <(awk '$1=="anc"{print $2}' "$work/sl.lat" | pcts)
  read -r sl_ev50 sl_ev99 < <(awk '$1=="ev"{print $2}' "$work/sl.lat" | pcts)
  read -r sl_h50 sl_h99 < <(awk '$1=="h"{print $2}' "$work/sl.lat" | pcts)
  echo "RESULT sqlite_ingest_events_per_s $sl_rate events/s"
  echo "RESULT sqlite_bytes_per_event $(awk -v s="$sl_bytes" -v n="$n_events" 'BEGIN{printf "%.2f", s/n}') B/event"
  echo "RESULT sqlite_query_ancestry_p50_us $sl_anc50 us"
  echo "RESULT sqlite_query_ancestry_p99_us $sl_anc99 us"
  echo "RESULT sqlite_query_process_events_p50_us $sl_ev50 us"
  echo "RESULT sqlite_query_process_events_p99_us $sl_ev99 us"
  echo "RESULT sqlite_query_hash_hosts_p50_us $sl_h50 us"
  echo "RESULT sqlite_query_hash_hosts_p99_us $sl_h99 us"
  echo "RESULT ingest_speedup_vs_sqlite $(awk -v a="$edr_rate" -v b="$sl_rate" 'BEGIN{printf "%.1f", a/b}') x"
  echo "RESULT disk_ratio_vs_sqlite $(awk -v s="$sl_bytes" -v n="$n_events" -v e="$edr_bpe" 'BEGIN{printf "%.1f", (s/n)/e}') x"
else
  echo "bench ingest: sqlite3 not installed: peer skipped" >&2
fi
