#!/usr/bin/env bash
# Benchmark: pgclone dump and restore, on local storage and on S3 (moto), against pg_dump -Fc to a
# file, pg_restore from that file, and the AWS CLI piped from pg_dump and into pg_restore (when
# `aws` is installed), side by side in one run: the machine's noise makes only ratios within a run
# meaningful. Not a test. BENCHMARKS.md explains the figures.
#   bash scripts/bench.sh [PGBENCH_SCALE [RUNS]]     (defaults 10 and 1; each row is the median of RUNS)
# With PGCLONE_BENCH_COMPARE=REV (a commit), pgclone as of REV is built too and its dump and restore
# rows are measured right after the current ones, in the same run: a refactor's cost, within noise.
# The cluster runs with fsync on, as in production (with it off, every commit and checkpoint looks
# free); PGCLONE_BENCH_FSYNC=off turns it off.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scale=${1:-10}
runs=${2:-1}
bench_start
build_compared_pgclone
work="$PGCLONE_RUN_DIR/work"
mkdir "$work"
PG_FSYNC=${PGCLONE_BENCH_FSYNC:-on} pg_start_cluster bench "$(pg_bindir)"
moto_start
export PGHOST=127.0.0.1 PGPORT=${PG_PORT[bench]} PGUSER=$PG_USER PGPASSWORD=${PG_PASSWORD[bench]}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 PGCLONE_S3_ENDPOINT_URL=$MOTO_ENDPOINT
bindir=$(pg_bindir)
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
has_aws=$(command -v aws >/dev/null 2>&1 && echo 1 || true)

bench_dataset "$scale"
size=$(sql -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
python3 -c "import boto3; boto3.client('s3', endpoint_url='$MOTO_ENDPOINT', region_name='us-east-1').create_bucket(Bucket='bench')"

postmaster=$(head -n 1 "${PG_DATA[bench]}/postmaster.pid")
ticks=$(getconf CLK_TCK)
# CPU seconds of the server's exited backends (the postmaster's reaped children) and of moto.
server_cpu() { awk -v t="$ticks" '{ printf "%.2f", ($16 + $17) / t }' "/proc/$postmaster/stat"; }
moto_cpu() { awk -v t="$ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$MOTO_PID/stat"; }

# measure NAME SETUP COMMAND...: runs SETUP then COMMAND (in its own session) RUNS times and keeps
# the median run's wall seconds; CPU seconds of the command and its children, of PostgreSQL and of
# moto; pgclone's own peak RSS (its debug log) and the whole session's peak RSS, sampled every
# 50 ms (the pipeline's processes together). pgclone's step lines of the last run are kept.
declare -A wall cpu pgcpu motocpu peak pipeline s_level
measure() {
  local name=$1 setup=$2 results=() i t u s
  shift 2
  for ((i = 0; i < runs; i++)); do
    eval "$setup"
    local s0 m0 pid max=0 now
    s0=$(server_cpu); m0=$(moto_cpu)
    setsid /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      now=$({ ps -o rss= -s "$pid" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }')
      ((now > max)) && max=$now
      sleep 0.05
    done
    wait "$pid" || { cat "$work/stderr" >&2; return 1; }
    sleep 0.2 # the postmaster reaps the backend
    read -r t u s <"$work/time"
    results+=("$t $(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') \
$(awk -v a="$s0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }') \
$(awk -v a="$m0" -v b="$(moto_cpu)" 'BEGIN { printf "%.2f", b - a }') \
$(sed -n 's/^pgclone: debug: peak resident memory (VmHWM): \([0-9]*\) bytes$/\1/p' "$work/stderr" | awk '{ printf "%d", $1 / 1048576 } END { if (NR == 0) printf "-" }') \
$((max / 1024))")
  done
  local median
  median=$(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(((runs + 1) / 2))p")
  read -r wall[$name] cpu[$name] pgcpu[$name] motocpu[$name] peak[$name] pipeline[$name] <<<"$median"
  grep -E '^pgclone: debug: (step |worker |bottleneck)' "$work/stderr" | sed 's/^pgclone: debug: /    /' >"$work/steps.$name" || true
  cp "$work/stdout" "$work/stdout.$name"
}
recreate() { drop "$1"; sql -d postgres -c "CREATE DATABASE \"$1\""; }
drop() { sql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$1\""; }
dbg=(--log-level debug)

log "pg_dump -Fc to a file"
measure pg_dump "rm -f '$work/bench.dump'" "$bindir/pg_dump" -Fc -f "$work/bench.dump" bench
s_pgdump=$(stat -c %s "$work/bench.dump")
if [ -n "$has_aws" ]; then
  log "pg_dump -Fc | aws s3 cp -"
  measure aws_dump : sh -c "'$bindir/pg_dump' -Fc bench | aws --endpoint-url '$MOTO_ENDPOINT' s3 cp --quiet - s3://bench/plain/bench.dump"
fi
for level in 1 3 6; do
  log "pgclone dump (local, level $level)"
  measure "dump_$level" "rm -rf '$work/level$level'" "$pgclone" dump --storage-location "$work/level$level" --database bench --compression-level "$level" "${dbg[@]}"
  s_level[$level]=$(find "$work/level$level" -name '*.dump' -printf '%s\n')
done
log "pgclone dump (S3)"
measure s3_dump : "$pgclone" dump --storage-location s3://bench/dumps --database bench "${dbg[@]}"
if [ -n "$compare" ]; then
  log "pgclone $label dump (local, S3)"
  measure c_dump_1 "rm -rf '$work/compare'" "$baseline" dump --storage-location "$work/compare" --database bench "${dbg[@]}"
  measure c_s3_dump : "$baseline" dump --storage-location s3://bench/compare --database bench "${dbg[@]}"
fi

log "pg_restore from the file"
measure pg_restore "recreate bench_pg_restore" "$bindir/pg_restore" --no-owner -d bench_pg_restore "$work/bench.dump"
log "zstd -dc | pg_restore (of pgclone's local dump: a zstd frame)"
measure zstd_restore "recreate bench_zstd" sh -c "zstd -dcq '$work/level1/bench/'*.dump | '$bindir/pg_restore' --no-owner -d bench_zstd"
log "pgclone restore (local)"
measure restore : "$pgclone" restore bench --storage-location "$work/level1" --database bench_local --json "${dbg[@]}"
log "pgclone restore (S3)"
measure s3_restore : "$pgclone" restore bench --storage-location s3://bench/dumps --database bench_s3 --json "${dbg[@]}"
if [ -n "$compare" ]; then
  log "pgclone $label restore (local, S3)"
  measure c_restore : "$baseline" restore bench --storage-location "$work/level1" --database bench_c_local --json "${dbg[@]}"
  measure c_s3_restore : "$baseline" restore bench --storage-location s3://bench/dumps --database bench_c_s3 --json "${dbg[@]}"
fi
log "pg_restore -j 2 from the file"
measure pg_restore_j2 "recreate bench_pg_restore_j2" "$bindir/pg_restore" --no-owner -j 2 -d bench_pg_restore_j2 "$work/bench.dump"
for jobs in 1 2 4; do
  log "pgclone restore --jobs $jobs (S3, in pieces)"
  measure "s3_jobs$jobs" : "$pgclone" restore bench --jobs "$jobs" --storage-location s3://bench/dumps --database "bench_s3_jobs$jobs" --json "${dbg[@]}"
  grep -E '^pgclone: debug: pieces: ' "$work/stderr" | sed 's/^pgclone: debug: //' >"$work/pieces.s3_jobs$jobs" || true
done
# The same dump without its index (as an earlier build's): --jobs spools the archive to TMPDIR.
python3 - "$MOTO_ENDPOINT" <<'PY'
import boto3, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
key = next(o["Key"] for o in s3.list_objects_v2(Bucket="bench", Prefix="dumps/")["Contents"])
body = s3.get_object(Bucket="bench", Key=key)["Body"].read()
json_length = int.from_bytes(body[-12:-8], "little")
s3.put_object(Bucket="bench", Key=key.replace("dumps/", "noindex/", 1), Body=body[:len(body) - (8 + json_length + 12)])
PY
log "pgclone restore --jobs 2 (S3, no index: spooled to TMPDIR)"
measure s3_spooled : "$pgclone" restore bench --jobs 2 --storage-location s3://bench/noindex --database bench_s3_spooled --json "${dbg[@]}"
if [ -n "$has_aws" ]; then
  log "aws s3 cp - | pg_restore"
  measure aws_restore "recreate bench_aws" sh -c "aws --endpoint-url '$MOTO_ENDPOINT' s3 cp --quiet s3://bench/plain/bench.dump - | '$bindir/pg_restore' --no-owner -d bench_aws"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '%-38s %7s %6s %8s %9s %7s %7s %7s %7s\n' "$@"; }
line() { # name label baseline [object bytes]
  local object=""
  [ -n "${4:-}" ] && object=$(($4 >> 20))
  row "$2" "${wall[$1]}" "$(ratio "${wall[$1]}" "${wall[$3]}")" "${peak[$1]}" "${pipeline[$1]}" "$object" "${cpu[$1]}" "${pgcpu[$1]}" "${motocpu[$1]}"
}
printf '\npgbench scale %s with non-blank filler + %s documents (database %s); median of %s run(s)\n\n' \
  "$scale" "$((scale * 1000))" "$size" "$runs"
row "" "wall s" "ratio" "pgclone" "pipeline" "object" "CPU s" "CPU s" "CPU s"
row "" "" "" "RSS MiB" "RSS MiB" "MiB" "client" "server" "moto"
line pg_dump "pg_dump -Fc > file" pg_dump "$s_pgdump"
[ -n "$has_aws" ] && line aws_dump "pg_dump -Fc | aws s3 cp -" pg_dump
line dump_1 "pgclone dump (local)" pg_dump "${s_level[1]}"
line dump_3 "pgclone dump (local, level 3)" pg_dump "${s_level[3]}"
line dump_6 "pgclone dump (local, level 6)" pg_dump "${s_level[6]}"
line s3_dump "pgclone dump (S3)" pg_dump
if [ -n "$compare" ]; then
  line c_dump_1 "pgclone $label dump (local)" pg_dump
  line c_s3_dump "pgclone $label dump (S3)" pg_dump
fi
[ -n "$has_aws" ] && row "  S3 dump vs the aws pipeline" "" "$(ratio "${wall[s3_dump]}" "${wall[aws_dump]}")"
line pg_restore "pg_restore -d (from the -Fc file)" pg_restore
line zstd_restore "zstd -dc | pg_restore" pg_restore
line restore "pgclone restore (local, with swap)" pg_restore
line s3_restore "pgclone restore (S3, with swap)" pg_restore
if [ -n "$compare" ]; then
  line c_restore "pgclone $label restore (local)" pg_restore
  line c_s3_restore "pgclone $label restore (S3)" pg_restore
fi
line pg_restore_j2 "pg_restore -j 2 -d (from the file)" pg_restore
for jobs in 1 2 4; do
  line "s3_jobs$jobs" "pgclone restore --jobs $jobs (S3, pieces)" pg_restore
done
line s3_spooled "pgclone restore --jobs 2 (S3, spooled)" pg_restore
row "  --jobs 2 vs one stream (S3)" "" "$(ratio "${wall[s3_jobs2]}" "${wall[s3_restore]}")"
row "  --jobs 2 vs pg_restore -j 2" "" "$(ratio "${wall[s3_jobs2]}" "${wall[pg_restore_j2]}")"
[ -n "$has_aws" ] && line aws_restore "aws s3 cp - | pg_restore" pg_restore
printf '\nclient CPU: the command and its children (pg_dump, pg_restore, zstd, aws); server: PostgreSQL backends;\n'
printf 'pgclone RSS: its own VmHWM; pipeline RSS: all processes of the command together, sampled every 50 ms\n'
printf '\npgclone restore phases (last run, over the database the run before restored), seconds\n'
for name in restore s3_restore s3_jobs1 s3_jobs2 s3_jobs4 s3_spooled c_restore c_s3_restore; do
  [ -f "$work/stdout.$name" ] || continue
  python3 - "$name" "$work/stdout.$name" <<'PY'
import json, sys
phases = json.load(open(sys.argv[2])).get("phases", {})
order = ["lock_wait", "prepare", "create_temporary", "restore", "restore_schema", "restore_data", "restore_indexes",
         "restore_constraints", "settings", "swap", "cleanup"]
print("  %-12s" % sys.argv[1] + " ".join("%s %.2f" % (p, phases[p]) for p in order if p in phases))
PY
done
# The model of more sessions (BENCHMARKS.md): from the one-session run, the data phase divides
# among N sessions down to its longest piece, the indexes among N down to the longest index; the
# rest stays. An upper bound on the speed-up: it assumes N cores for PostgreSQL and pgclone.
printf '
index builds, one at a time, on the restored database (seconds)
'
sql -d bench_s3_jobs1 -c "SELECT indexrelid::regclass FROM pg_index JOIN pg_class c ON c.oid = indrelid WHERE c.relnamespace = 'public'::regnamespace" \
  | while read -r index; do
    start=$(date +%s.%N)
    sql -d bench_s3_jobs1 -c "REINDEX INDEX $index"
    printf '  %-32s %.2f\n' "$index" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
  done | tee "$work/indexes"
for jobs in 1 2 4; do printf '  s3_jobs%s: %s\n' "$jobs" "$(cat "$work/pieces.s3_jobs$jobs" 2>/dev/null)"; done
python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
phases = json.load(open(f"{work}/stdout.s3_jobs1"))["phases"]
pieces = open(f"{work}/pieces.s3_jobs1").read()
together, longest = map(float, re.search(r"([0-9.]+) s together, ([0-9.]+) s the longest", pieces).groups())
indexes = [float(line.split()[-1]) for line in open(f"{work}/indexes") if line.strip()]
data, built = phases["restore_data"], phases["restore_indexes"]
rest = sum(phases.values()) - data - built
measured = {}
for jobs in (1, 2, 4):
    measured[jobs] = sum(json.load(open(f"{work}/stdout.s3_jobs{jobs}"))["phases"].values())
print("\nmodel: rest %.2f s + data %.2f s / N (longest piece %.2f s) + indexes %.2f s / N (longest index %.2f s)"
      % (rest, data, longest, built, max(indexes or [0])))
for jobs in (1, 2, 4, 8, 16):
    model = rest + max(data / jobs, longest) + max(built / jobs, max(indexes or [0]))
    print("  N=%-3d model %7.2f s   measured %s" % (jobs, model, "%.2f s" % measured[jobs] if jobs in measured else "-"))
PY
printf '\npgclone steps (last run): bytes out, time busy and waiting, rate while busy, bottleneck\n'
for name in dump_1 s3_dump restore s3_restore; do
  printf '  %s\n' "$name"
  cat "$work/steps.$name"
done
