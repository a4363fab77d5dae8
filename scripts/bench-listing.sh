#!/usr/bin/env bash
# What finding out which database a dump is of costs `ls`: N dumps on moto's S3 under a key that
# names its database surely (`myapp/`, listed only), and N under one an earlier release could have
# sanitised another name into (`my_app/`, whose dumps pgclone reads the first bytes of, 8 at a
# time). Prints the wall time of `pgclone ls --only-db-names` for each, best of 3.
# Usage: bash scripts/bench-listing.sh [N]   (default 200)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cleanup() { moto_stop; run_processes_stop; run_dir_remove; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

count=${1:-200}
install_packages "${TEST_PACKAGES[@]}"
run_dir_create
install_python_tools
cd "$PGCLONE_ROOT"
swift build -c release --product pgclone >/dev/null
moto_start
python3 - "$MOTO_ENDPOINT" "$count" <<'PY'
import boto3, json, struct, sys
endpoint, count = sys.argv[1], int(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
s3.create_bucket(Bucket="listing")
for prefix, database in (("myapp", "myapp"), ("my_app", "my.app")):
    for i in range(count):
        meta = json.dumps({"format": "pgclone", "formatVersion": 1, "pgcloneVersion": "bench", "serverVersion": "15",
                           "database": database, "dumpConfig": "default", "createdAt": "x", "settings": []}).encode()
        body = struct.pack("<II", 0x184D2A50, len(meta)) + meta + b"\x28\xb5\x2f\xfd"
        key = f"dumps-{prefix}/{prefix}/2026{1 + i // 28 % 12:02d}{1 + i % 28:02d}T000000.{i:06d}Z.default.dump"
        s3.put_object(Bucket="listing", Key=key, Body=body)
PY
export PGCLONE_S3_ENDPOINT_URL=$MOTO_ENDPOINT AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s
printf '%-34s %8s %10s\n' "$count dumps under" "names" "seconds"
for prefix in myapp my_app; do
  best=
  for _ in 1 2 3; do
    start=$EPOCHREALTIME
    names=$(.build/release/pgclone ls --only-db-names --storage-location "s3://listing/dumps-$prefix" -q)
    best=$(awk -v s="$start" -v e="$EPOCHREALTIME" -v b="$best" 'BEGIN { t = e - s; print (b == "" || t < b) ? t : b }')
  done
  printf '%-34s %8s %10.3f\n' "$prefix/ ($( [ $prefix = myapp ] && echo 'key names it' || echo 'dumps read'))" "$names" "$best"
done
