#!/usr/bin/env bash
# Benchmark: pgclone's single-stream S3 restore against `restore --jobs 2` in pieces, alternating,
# ROUNDS rounds of first restores (the database each restores into dropped, and a CHECKPOINT, before
# each run), on the bench dataset (scripts/lib.sh bench_dataset) with fsync on and S3 on moto.
# Prints each run's wall seconds and phases, --jobs 2's COPY sessions, and the ratio per round: on
# this noisy machine a ratio taken within a round means more than one run's figure. Not a test.
# Each round also measures the floor: the same rows as COPY text in local files, loaded by psql
# (`\copy`, a client that costs next to nothing; no S3, no zstd) with one session, one COPY per
# table, then with two sessions taking the tables' 4 MiB pieces in turn, the indexes and
# constraints after by pg_restore (`--section=post-data`, `-j 2` after two sessions): what the
# server alone allows two sessions on this machine. BENCHMARKS.md explains it. With PGCLONE_BENCH_COMPARE=REV (a commit), each round also runs REV's
# `--jobs 2` (built in release mode), last: a change's cost to the restore in pieces.
#   bash scripts/bench-pieces.sh [PGBENCH_SCALE [ROUNDS]]     (defaults 100 and 4)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scale=${1:-100}
rounds=${2:-4}
bench_start
build_compared_pgclone
PG_FSYNC=on pg_start_cluster bench "$(pg_bindir)"
moto_start
export PGHOST=127.0.0.1 PGPORT=${PG_PORT[bench]} PGUSER=$PG_USER PGPASSWORD=${PG_PASSWORD[bench]}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 PGCLONE_S3_ENDPOINT_URL=$MOTO_ENDPOINT
bench_dataset "$scale"
python3 -c "import boto3; boto3.client('s3', endpoint_url='$MOTO_ENDPOINT', region_name='us-east-1').create_bucket(Bucket='bench')"
"$pgclone" dump --storage-location s3://bench/dumps --database bench >/dev/null 2>&1

# The floor's files: the schema, each table's rows, and its pieces dealt to two sessions in turn
# (table after table, as a dump holds them).
floor="$PGCLONE_RUN_DIR/floor"
mkdir -p "$floor/pieces"
"$(pg_bindir)/pg_dump" -Fc --schema-only -f "$floor/schema.dump" bench
mapfile -t tables < <(psql -X -At -d bench -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relkind = 'r'
  AND c.relnamespace = 'public'::regnamespace ORDER BY pg_relation_size(c.oid) DESC")
for table in "${tables[@]}"; do
  psql -X -q -d bench -c "\\copy $table to '$floor/$table.copy'"
  printf "\\\\copy %s from '%s'\n" "$table" "$floor/$table.copy" >>"$floor/whole.sql"
  split -C 4M -d -a 5 "$floor/$table.copy" "$floor/pieces/$table."
  for piece in "$floor/pieces/$table".*; do [ ! -e "$piece" ] || echo "$table $piece"; done
done | awk -v w="$floor" '{ printf "\\copy %s from '\''%s'\''\n", $1, $2 > (w "/" (NR % 2 ? "one" : "two") ".sql") }'

# floor NAME SESSIONS: loads the floor's files into a fresh database bench_NAME with SESSIONS
# (1 or 2) psql sessions; prints its data and index phases' wall seconds.
floor() {
  local name=bench_$1 a b c
  psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$name\"" \
    -c "CREATE DATABASE \"$name\""
  "$(pg_bindir)/pg_restore" --section=pre-data -d "$name" "$floor/schema.dump"
  psql -X -q -d postgres -c CHECKPOINT
  sync
  sleep 1
  a=$(date +%s.%N)
  if [ "$2" = 1 ]; then
    psql -X -q -v ON_ERROR_STOP=1 -d "$name" -c 'SET synchronous_commit = off' -f "$floor/whole.sql"
  else
    psql -X -q -v ON_ERROR_STOP=1 -d "$name" -c 'SET synchronous_commit = off' -f "$floor/one.sql" &
    psql -X -q -v ON_ERROR_STOP=1 -d "$name" -c 'SET synchronous_commit = off' -f "$floor/two.sql" &
    wait %1 && wait %2
  fi
  b=$(date +%s.%N)
  "$(pg_bindir)/pg_restore" --section=post-data -j "$2" -d "$name" "$floor/schema.dump"
  c=$(date +%s.%N)
  awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { printf "%.2f %.2f\n", b - a, c - b }'
}

# run NAME ARGS...: a first restore into bench_NAME with $binary (pgclone's build unless set);
# prints its wall seconds.
run() {
  local name=$1 start
  shift
  psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"bench_$name\"" -c CHECKPOINT
  sync
  sleep 1
  start=$(date +%s.%N)
  "${binary:-$pgclone}" restore bench --storage-location s3://bench/dumps --database "bench_$name" --json "$@" \
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
  if [ -n "${baseline:-}" ]; then
    old=$(binary=$baseline run jobs2_old --jobs 2)
    printf '  %s --jobs 2 %6.2f s   ratio %.2f\n  %s:    %s\n' "$label" "$old" \
      "$(awk -v a="$old" -v b="$one" 'BEGIN { print a / b }')" "$label" "$(phases "$PGCLONE_RUN_DIR/jobs2_old.json")"
  fi
  read -r data1 index1 < <(floor floor1 1)
  read -r data2 index2 < <(floor floor2 2)
  awk -v d1="$data1" -v i1="$index1" -v d2="$data2" -v i2="$index2" 'BEGIN {
    printf "  floor (psql): one session %6.2f s (data %.2f, indexes %.2f)   two %6.2f s (data %.2f, indexes %.2f)   ratio %.2f\n",
      d1 + i1, d1, i1, d2 + i2, d2, i2, (d2 + i2) / (d1 + i1) }'
done
