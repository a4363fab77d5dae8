#!/usr/bin/env bash
# Benchmark: pgclone's single-stream S3 restore against `restore --jobs 2` in pieces, alternating,
# ROUNDS rounds of first restores (the database each restores into dropped, and a CHECKPOINT, before
# each run), on the bench dataset (scripts/lib.sh bench_dataset) with fsync on and S3 on moto.
# Prints each run's wall seconds and phases, --jobs 2's COPY sessions, and the ratio per round: on
# this noisy machine a ratio taken within a round means more than one run's figure. Not a test.
# BENCHMARKS.md explains it.
#   bash scripts/bench-pieces.sh [PGBENCH_SCALE [ROUNDS]]     (defaults 100 and 4)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scale=${1:-100}
rounds=${2:-4}
bench_start
PG_FSYNC=on pg_start_cluster bench "$(pg_bindir)"
moto_start
export PGHOST=127.0.0.1 PGPORT=${PG_PORT[bench]} PGUSER=$PG_USER PGPASSWORD=${PG_PASSWORD[bench]}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 PGCLONE_S3_ENDPOINT_URL=$MOTO_ENDPOINT
bench_dataset "$scale"
python3 -c "import boto3; boto3.client('s3', endpoint_url='$MOTO_ENDPOINT', region_name='us-east-1').create_bucket(Bucket='bench')"
"$pgclone" dump --storage-location s3://bench/dumps --database bench >/dev/null 2>&1

# run NAME ARGS...: a first restore into bench_NAME; prints its wall seconds.
run() {
  local name=$1 start
  shift
  psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"bench_$name\"" -c CHECKPOINT
  sync
  sleep 1
  start=$(date +%s.%N)
  "$pgclone" restore bench --storage-location s3://bench/dumps --database "bench_$name" --json "$@" \
    >"$PGCLONE_RUN_DIR/$name.json" 2>"$PGCLONE_RUN_DIR/$name.err" || { cat "$PGCLONE_RUN_DIR/$name.err" >&2; exit 1; }
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}
phases() {
  python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["phases"]; print(" ".join("%s %.2f" % (k, v) for k, v in p.items() if v >= 0.01))' "$1"
}
printf '\npgbench scale %s with non-blank filler + %s documents; %s rounds, each a single-stream S3 restore then --jobs 2\n\n' \
  "$scale" "$((scale * 1000))" "$rounds"
for ((round = 1; round <= rounds; round++)); do
  one=$(run stream)
  two=$(run jobs2 --jobs 2 --log-level debug)
  printf 'round %d: one stream %6.2f s   --jobs 2 %6.2f s   ratio %.2f\n' "$round" "$one" "$two" \
    "$(awk -v a="$two" -v b="$one" 'BEGIN { print a / b }')"
  printf '  one stream: %s\n  --jobs 2:   %s\n' "$(phases "$PGCLONE_RUN_DIR/stream.json")" "$(phases "$PGCLONE_RUN_DIR/jobs2.json")"
  # Each COPY session's share: busy (decompressing and loading) or starved (waiting for storage).
  sed -n 's/^pgclone: debug: \(worker .*\)/    \1/p' "$PGCLONE_RUN_DIR/jobs2.err"
done
