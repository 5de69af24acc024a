#!/usr/bin/env bash
# Runs the benchmarks behind BENCHMARKS.md against servers of their own: a
# private redis-server on a free loopback port and a fresh Postgres database
# (admin URL from CACHEDECK_TEST_DATABASE_URL, default postgres@127.0.0.1).
# Usage: benches/run.sh [ROWS] [GROUPS]   (defaults 1,000,000 rows; 1,200,000 groups)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
groups="${2:-1200000}"
admin="${CACHEDECK_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
scripts/ensure-services.sh
cargo build --release --no-default-features --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --daemonize yes --pidfile "$work/redis.pid" >/dev/null
db="cachedeck_bench_$$"
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
cleanup() {
  kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
db_url="${admin%/*}/$db"
export CACHEDECK_CONFIG_DIR="$work/config"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/cachedeck --redis-url "redis://127.0.0.1:$port" --database-url "$db_url" bench warm --rows "$rows"
target/release/cachedeck --redis-url "redis://127.0.0.1:$port" --database-url "$db_url" bench browse --keys "$rows"
target/release/cachedeck --redis-url "redis://127.0.0.1:$port" --database-url "$db_url" bench groups --groups "$groups"
