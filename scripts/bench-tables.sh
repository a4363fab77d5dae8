#!/usr/bin/env bash
# Dumping and restoring a schema of many small tables (a table of contents of megabytes, many
# small commits), with fsync on as in production: pg_dump to a file against pgclone's dump, and
# pg_restore from a file against pgclone's restore, streamed and with --jobs 2 (each replacing the
# database the run before restored); with PGCLONE_BENCH_COMPARE=REV, pgclone as of REV in the same
# run. Prints the median wall seconds of RUNS and the current build's phases. Not a test.
# Usage: bash scripts/bench-tables.sh [TABLES [RUNS]]   (defaults 2000 and 3)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tables=${1:-2000}
runs=${2:-3}
trap 'pg_stop_clusters; run_processes_stop; run_dir_remove' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

install_packages "${TEST_PACKAGES[@]}"
run_dir_create
cd "$PGCLONE_ROOT"
log "building pgclone (release)"
swift build -c release --product pgclone >/dev/null
pgclone="$PGCLONE_ROOT/.build/release/pgclone"
build_compared_pgclone
PG_FSYNC=on pg_start_cluster tables "$(pg_bindir)"
export PGHOST=127.0.0.1 PGPORT=${PG_PORT[tables]} PGUSER=$PG_USER PGPASSWORD=${PG_PASSWORD[tables]}
bindir=$(pg_bindir)
work="$PGCLONE_RUN_DIR/work"
mkdir "$work"

log "creating $tables tables of 10 rows, each with a primary key"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE many'
psql -X -q -v ON_ERROR_STOP=1 -d many -c "
DO \$\$ BEGIN
  FOR i IN 1..$tables LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 10) AS g', i);
    -- Each table takes locks till its transaction ends: max_locks_per_transaction bounds them.
    IF i % 1000 = 0 THEN COMMIT; END IF;
  END LOOP;
END \$\$"
"$bindir/pg_dump" -Fc -f "$work/many.dump" many
"$pgclone" dump --database many --storage-location "$work/store" -q >/dev/null

# median COMMAND...: the median wall seconds of RUNS runs.
median() {
  local times=() i start
  for ((i = 0; i < runs; i++)); do
    start=$EPOCHREALTIME
    "$@" >"$work/stdout" 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }
    times+=("$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.2f", e - s }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}
recreate() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }

log "pg_dump to a file, pgclone dump"
dump_file() { "$bindir/pg_dump" -Fc -f "$work/again.dump" many; }
dump_pgclone() { rm -rf "$work/again" && "$pgclone" dump --database many --storage-location "$work/again"; }
pg_dumped=$(median dump_file)
dumped=$(median dump_pgclone)

log "pg_restore from the file"
restore_file() { recreate many_pg && "$bindir/pg_restore" --no-owner -d many_pg "$work/many.dump"; }
pg=$(median restore_file)
log "pgclone restore"
"$pgclone" restore many --storage-location "$work/store" --database many_pgclone -q >/dev/null
current=$(median "$pgclone" restore many --storage-location "$work/store" --database many_pgclone --json)
phases=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["phases"]; print("  ".join("%s %.3f" % (k, p.get(k, 0)) for k in ["prepare", "restore", "settings", "swap", "cleanup"]))' "$work/stdout")
log "pgclone restore --jobs 2"
"$pgclone" restore many --storage-location "$work/store" --database many_jobs --jobs 2 -q >/dev/null
jobs=$(median "$pgclone" restore many --storage-location "$work/store" --database many_jobs --jobs 2 --json)
if [ -n "$compare" ]; then
  log "pgclone $compare restore"
  before=$("$baseline" restore many --storage-location "$work/store" --database many_before -q >/dev/null && median "$baseline" restore many --storage-location "$work/store" --database many_before)
fi

printf '\n%s tables of 10 rows, fsync on; median of %s run(s), wall seconds\n\n' "$tables" "$runs"
printf '%-44s %7s\n' "pg_dump -Fc > file" "$pg_dumped"
printf '%-44s %7s\n' "pgclone dump (local)" "$dumped"
printf '%-44s %7s\n' "pg_restore -d (from the -Fc file)" "$pg"
printf '%-44s %7s\n' "pgclone restore (local, replacing)" "$current"
printf '%-44s %7s\n' "pgclone restore --jobs 2 (local, replacing)" "$jobs"
[ -n "$compare" ] && printf '%-44s %7s\n' "pgclone $label restore (local, replacing)" "$before"
printf '\npgclone phases (last run): %s\n' "$phases"
