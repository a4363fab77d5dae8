#!/usr/bin/env bash
# Benchmark: pgclone dump and restore, on local storage and on S3 (moto), against pg_dump -Fc,
# pg_restore from that file, and the AWS CLI piped into pg_restore (when `aws` is installed), side by
# side in one run: the machine's noise makes only ratios within a run meaningful. Not a test.
#   bash scripts/bench.sh [PGBENCH_SCALE]     (default 10; the server runs with fsync=off)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scale=${1:-10}
work=$(mktemp -d /tmp/pgclone-bench.XXXXXX)
trap 'pg_stop_cluster; moto_stop; rm -rf "$work"' EXIT

install_packages time
install_moto
cd "$PGCLONE_ROOT"
log "building pgclone (release)"
swift build -c release --product pgclone >/dev/null
pgclone="$PGCLONE_ROOT/.build/release/pgclone"
pg_start_cluster
moto_start
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

log "pgclone dump (S3)"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 PGCLONE_S3_ENDPOINT_URL=$MOTO_ENDPOINT
python3 -c "import boto3; boto3.client('s3', endpoint_url='$MOTO_ENDPOINT', region_name='us-east-1').create_bucket(Bucket='bench')"
read -r t_s3dump _ < <(measure "$pgclone" dump --storage-location s3://bench/dumps --database bench --log-level debug)
p_s3dump=$(pgclone_peak)
log "pgclone restore (S3)"
read -r t_s3restore _ < <(measure "$pgclone" restore bench --storage-location s3://bench/dumps --database bench_s3 --log-level debug)
p_s3restore=$(pgclone_peak)
log "pgclone restore --jobs 2 (S3, spooled to TMPDIR)"
read -r t_s3jobs _ < <(measure "$pgclone" restore bench --jobs 2 --storage-location s3://bench/dumps --database bench_s3_jobs --log-level debug)
p_s3jobs=$(pgclone_peak)
if command -v aws >/dev/null 2>&1; then
  log "aws s3 cp - | pg_restore (the -Fc file uploaded first)"
  aws --endpoint-url "$MOTO_ENDPOINT" s3 cp --quiet "$work/bench.dump" s3://bench/plain/bench.dump
  sql -d postgres -c 'CREATE DATABASE bench_aws'
  read -r t_aws m_aws < <(measure sh -c "aws --endpoint-url '$MOTO_ENDPOINT' s3 cp s3://bench/plain/bench.dump - | '$bindir/pg_restore' --no-owner -d bench_aws")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '%-40s %9s %12s %12s %8s\n' "$@"; }
printf '\npgbench scale %s (database %s), one run\n\n' "$scale" "$size"
row "" "wall s" "peak RSS MiB" "object MiB" "ratio"
row "pg_dump -Fc > file" "$t_pgdump" "$((m_pgdump / 1024))" "$((s_pgdump >> 20))" "1.00"
row "pgclone dump (local)" "$t_dump" "$p_dump" "$((s_dump >> 20))" "$(ratio "$t_dump" "$t_pgdump")"
row "pgclone dump (S3)" "$t_s3dump" "$p_s3dump" "" "$(ratio "$t_s3dump" "$t_pgdump")"
row "pg_restore -d (from the local file)" "$t_pgrestore" "$((m_pgrestore / 1024))" "" "1.00"
row "pgclone restore (local, with swap)" "$t_restore" "$p_restore" "" "$(ratio "$t_restore" "$t_pgrestore")"
row "pgclone restore (S3, with swap)" "$t_s3restore" "$p_s3restore" "" "$(ratio "$t_s3restore" "$t_pgrestore")"
row "pgclone restore --jobs 2 (S3, spooled)" "$t_s3jobs" "$p_s3jobs" "" "$(ratio "$t_s3jobs" "$t_pgrestore")"
if [ -n "${t_aws:-}" ]; then
  row "aws s3 cp - | pg_restore" "$t_aws" "$((m_aws / 1024))" "" "$(ratio "$t_aws" "$t_pgrestore")"
fi
printf '\npeak RSS: pgclone its own VmHWM; the others GNU time'"'"'s largest process (for the aws pipeline: aws or pg_restore)\n'
