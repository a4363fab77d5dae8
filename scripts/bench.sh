#!/usr/bin/env bash
# Local-storage benchmark: pgclone dump and restore against pg_dump -Fc and pg_restore, side by side
# in one run (the machine's noise makes only ratios within a run meaningful). Not a test.
#   bash scripts/bench.sh [PGBENCH_SCALE]     (default 10; the server runs with fsync=off)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scale=${1:-10}
work=$(mktemp -d /tmp/pgclone-bench.XXXXXX)
trap 'pg_stop_cluster; rm -rf "$work"' EXIT

install_packages time
cd "$PGCLONE_ROOT"
log "building pgclone (release)"
swift build -c release --product pgclone >/dev/null
pgclone="$PGCLONE_ROOT/.build/release/pgclone"
pg_start_cluster
export PGHOST=127.0.0.1 PGPORT=$PG_TEST_PORT PGUSER=$PG_TEST_USER PGPASSWORD=$PG_TEST_PASSWORD
bindir=$(pg_bindir)
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

log "creating pgbench scale $scale with non-blank filler (blank filler compresses 33x and hides the costs)"
sql -d postgres -c 'CREATE DATABASE bench'
"$bindir/pgbench" -i -q -s "$scale" bench >/dev/null 2>&1
sql -d bench -c "UPDATE pgbench_accounts SET filler = md5(aid::text) || md5((aid * 7)::text) || left(md5((aid * 13)::text), 20)"
sql -d bench -c 'VACUUM FULL pgbench_accounts'
size=$(sql -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")

# Runs a command, printing "seconds peak-KiB" (peak of the largest process GNU time waited for).
measure() { /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; return 1; }; cat "$work/time"; }
pgclone_peak() { sed -n 's/^pgclone: debug: peak resident memory (VmHWM): \([0-9]*\) bytes$/\1/p' "$work/stderr" | awk '{printf "%d", $1 / 1048576}'; }

log "pg_dump -Fc to a file"
read -r t_pgdump m_pgdump < <(measure "$bindir/pg_dump" -Fc -f "$work/bench.dump" bench)
s_pgdump=$(stat -c %s "$work/bench.dump")
log "pgclone dump"
read -r t_dump _ < <(measure "$pgclone" dump --storage-location "$work/store" --database bench --log-level debug)
p_dump=$(pgclone_peak)
s_dump=$(find "$work/store" -name '*.dump' -printf '%s\n')
log "pg_restore from the file"
sql -d postgres -c 'CREATE DATABASE bench_pg_restore'
read -r t_pgrestore m_pgrestore < <(measure "$bindir/pg_restore" --no-owner -d bench_pg_restore "$work/bench.dump")
log "pgclone restore"
read -r t_restore _ < <(measure "$pgclone" restore bench --storage-location "$work/store" --database bench_pgclone --log-level debug)
p_restore=$(pgclone_peak)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\npgbench scale %s (database %s), one run\n\n' "$scale" "$size"
printf '%-34s %9s %12s %12s %8s\n' "" "wall s" "peak RSS MiB" "object MiB" "ratio"
printf '%-34s %9s %12s %12s %8s\n' "pg_dump -Fc > file" "$t_pgdump" "$((m_pgdump / 1024))" "$((s_pgdump >> 20))" "1.00"
printf '%-34s %9s %12s %12s %8s\n' "pgclone dump (local)" "$t_dump" "$p_dump" "$((s_dump >> 20))" "$(ratio "$t_dump" "$t_pgdump")"
printf '%-34s %9s %12s %12s %8s\n' "pg_restore -d (from the file)" "$t_pgrestore" "$((m_pgrestore / 1024))" "" "1.00"
printf '%-34s %9s %12s %12s %8s\n' "pgclone restore (local, with swap)" "$t_restore" "$p_restore" "" "$(ratio "$t_restore" "$t_pgrestore")"
printf '\npeak RSS: pgclone its own VmHWM; baselines GNU time'"'"'s maximum over the process tree\n'
