#!/usr/bin/env bash
# Installs every Debian 12 package the project needs to build, test, demo and
# benchmark. Idempotent and non-interactive: packages already present are skipped.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config git
  # libraries (found through pkg-config)
  librdkafka-dev libprotobuf-c-dev protobuf-c-compiler librocksdb-dev
  libuv1-dev libzstd-dev libxxhash-dev libyaml-dev libjansson-dev libcmocka-dev
  libxml2-dev libgraphviz-dev libcap-dev
  # exe sha256 in the sensor (libcrypto, SHA extensions)
  libssl-dev
  # eBPF: CO-RE objects and skeletons
  libbpf-dev bpftool clang llvm libelf-dev zlib1g-dev
  # fuzzing runtime (libFuzzer) and sanitizers for clang
  libclang-rt-14-dev
  # tools used by tests and benchmarks
  kcat iproute2 nftables
  # an XFS image (reflink clones) made by the eBPF sensor tests
  xfsprogs
  # headless browser for the incident-card rendering test (tests/graph)
  chromium
  # peers of bench/run ingest: PostgreSQL 15 (COPY) and SQLite (WAL)
  postgresql-15 sqlite3 libsqlite3-dev
  # sensor-overhead benchmark peer (bench/run sensor-overhead)
  auditd
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
