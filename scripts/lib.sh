# Shared by scripts/demo.sh and scripts/test.sh: installing what is missing, and a throwaway
# PostgreSQL cluster on a free loopback port, run as a non-root user, stopped on exit.
# shellcheck shell=bash

set -euo pipefail

PGCLONE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages pgclone builds and tests with, if any is missing.
install_packages() {
  local wanted=(postgresql postgresql-contrib libpq-dev libcurl4-openssl-dev libzstd-dev pkg-config curl prometheus prometheus-pushgateway tmux "$@")
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The newest PostgreSQL server binaries installed.
pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$dir/initdb" ] || { echo "no PostgreSQL server found under /usr/lib/postgresql" >&2; return 1; }
  echo "$dir"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throwaway cluster in a temporary directory as user postgres (PostgreSQL refuses root),
# with password authentication on 127.0.0.1 only. Exports PG_TEST_PORT, PG_TEST_USER,
# PG_TEST_PASSWORD and PG_TEST_DIR; pg_stop_cluster stops it and removes the directory.
pg_start_cluster() {
  local bindir runner=()
  bindir=$(pg_bindir)
  PG_TEST_DIR=$(mktemp -d /tmp/pgclone-pg.XXXXXX)
  PG_TEST_PORT=$(free_port)
  PG_TEST_USER=pgclone
  PG_TEST_PASSWORD="pw-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  export PG_TEST_DIR PG_TEST_PORT PG_TEST_USER PG_TEST_PASSWORD
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PG_TEST_DIR"
    runner=(runuser -u postgres --)
  fi
  printf '%s\n' "$PG_TEST_PASSWORD" > "$PG_TEST_DIR/pwfile"
  chmod 600 "$PG_TEST_DIR/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_TEST_DIR/pwfile"
  log "starting a throwaway PostgreSQL ($("$bindir/postgres" --version)) on 127.0.0.1:$PG_TEST_PORT"
  "${runner[@]}" "$bindir/initdb" -D "$PG_TEST_DIR/data" -U "$PG_TEST_USER" --pwfile="$PG_TEST_DIR/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  rm -f "$PG_TEST_DIR/pwfile"
  "${runner[@]}" "$bindir/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_TEST_PORT -c unix_socket_directories=$PG_TEST_DIR -c max_connections=200 -c fsync=off" \
    start >/dev/null || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  PG_STOP_RUNNER=("${runner[@]}")
  PG_STOP_BINDIR=$bindir
}

pg_stop_cluster() {
  [ -n "${PG_TEST_DIR:-}" ] || return 0
  if [ -f "$PG_TEST_DIR/data/postmaster.pid" ]; then
    "${PG_STOP_RUNNER[@]}" "$PG_STOP_BINDIR/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_TEST_DIR"
  PG_TEST_DIR=
}

# moto's S3 server (PyPI), for the S3 tests: installed if missing, started on a free loopback port
# with its signature checks off (the tests that check signatures start their own). Exports
# MOTO_ENDPOINT; moto_stop stops it.
install_moto() {
  if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import moto, flask, flask_cors, boto3' 2>/dev/null; then
    log "installing moto[server] from PyPI"
    python3 -m pip install --quiet 'moto[server]>=5' boto3
  fi
}

moto_start() {
  local port
  port=$(free_port)
  MOTO_LOG=$(mktemp /tmp/pgclone-moto.XXXXXX)
  # Parts smaller than S3's 5 MiB minimum let the tests exercise many parts with little data.
  S3_UPLOAD_PART_MIN_SIZE=65536 moto_server -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" || { cat "$MOTO_LOG" >&2; return 1; }
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  export MOTO_ENDPOINT
  log "moto's S3 server on $MOTO_ENDPOINT"
}

moto_stop() {
  [ -n "${MOTO_PID:-}" ] || return 0
  kill "$MOTO_PID" 2>/dev/null || true
  wait "$MOTO_PID" 2>/dev/null || true
  rm -f "$MOTO_LOG"
  MOTO_PID=
}
