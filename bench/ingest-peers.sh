#!/usr/bin/env bash
# bench ingest: the collector's store against PostgreSQL 15 (COPY) and SQLite (WAL, 10k rows per
# transaction) on the same synthetic events: ingest rate, bytes/event, three query latencies.
# Usage: bench/run ingest [--events N] [--no-peers]
set -euo pipefail
BUILD=${EDR_BUILD:-build}
events=2000000
peers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --no-peers) peers=0; shift ;;
    *) echo "usage: bench/run ingest [--events N] [--no-peers]" >&2; exit 2 ;;
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

"$BUILD/bench/bench_ingest" --events "$events" --store "$work/store" --peer-dir "$work/peer" 2> >(grep -v CONFWARN >&2) | tee "$work/edr.out"
[ "$peers" = 1 ] || exit 0
read -r entity sha t0 t1 < "$work/peer/target"
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
  pgq() { psql_ -t -A -c "EXPLAIN (ANALYZE, FORMAT TEXT) $1" | awk '/Execution Time/{v=$3} END{print v*1000}'; }
  anc="WITH RECURSIVE anc(e, d) AS (SELECT '\\x$entity'::bytea, 0 UNION ALL SELECT p.parent, anc.d+1 FROM processes p JOIN anc ON p.entity = anc.e WHERE p.parent IS NOT NULL AND anc.d < 64) SELECT count(*) FROM anc"
  evq="SELECT * FROM events WHERE entity = '\\x$entity'::bytea AND time_ns >= $t0 AND time_ns < $t1"
  hq="SELECT DISTINCT host FROM processes WHERE sha256 = '\\x$sha'::bytea"
  pgq "$anc" >/dev/null; pg_anc=$(pgq "$anc"); pgq "$evq" >/dev/null; pg_ev=$(pgq "$evq"); pgq "$hq" >/dev/null; pg_h=$(pgq "$hq")
  echo "RESULT pg_ingest_events_per_s $pg_rate events/s"
  echo "RESULT pg_bytes_per_event $(awk -v s="$pg_bytes" -v n="$n_events" 'BEGIN{printf "%.2f", s/n}') B/event"
  echo "RESULT pg_query_ancestry_us $pg_anc us"
  echo "RESULT pg_query_process_events_us $pg_ev us"
  echo "RESULT pg_query_hash_hosts_us $pg_h us"
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
  slq() { sqlite3 "$db" ".timer on" "$1" "$1" 2>&1 | awk '/Run Time/{v=$4} END{printf "%.1f", v*1e6}'; }
  e="\\x$entity"; s="\\x$sha"
  sl_anc=$(slq "WITH RECURSIVE anc(e, d) AS (SELECT '$e', 0 UNION ALL SELECT p.parent, anc.d+1 FROM processes p JOIN anc ON p.entity = anc.e WHERE p.parent != '\\N' AND anc.d < 64) SELECT count(*) FROM anc;")
  sl_ev=$(slq "SELECT count(*) FROM events WHERE entity = '$e' AND time_ns >= $t0 AND time_ns < $t1;")
  sl_h=$(slq "SELECT count(DISTINCT host) FROM processes WHERE sha256 = '$s';")
  echo "RESULT sqlite_ingest_events_per_s $sl_rate events/s"
  echo "RESULT sqlite_bytes_per_event $(awk -v s="$sl_bytes" -v n="$n_events" 'BEGIN{printf "%.2f", s/n}') B/event"
  echo "RESULT sqlite_query_ancestry_us $sl_anc us"
  echo "RESULT sqlite_query_process_events_us $sl_ev us"
  echo "RESULT sqlite_query_hash_hosts_us $sl_h us"
  echo "RESULT ingest_speedup_vs_sqlite $(awk -v a="$edr_rate" -v b="$sl_rate" 'BEGIN{printf "%.1f", a/b}') x"
  echo "RESULT disk_ratio_vs_sqlite $(awk -v s="$sl_bytes" -v n="$n_events" -v e="$edr_bpe" 'BEGIN{printf "%.1f", (s/n)/e}') x"
else
  echo "bench ingest: sqlite3 not installed: peer skipped" >&2
fi
