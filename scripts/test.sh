#!/usr/bin/env bash
# The test suite: unit tests, and integration tests against a throwaway PostgreSQL and the real
# pg_dump/pg_restore. Extra arguments go to `swift test` (e.g. --filter RoundTrip).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'pg_stop_cluster; moto_stop' EXIT

install_packages
install_moto
cd "$PGCLONE_ROOT"
log "building"
swift build --build-tests
pg_start_cluster
moto_start
export PGCLONE_TEST_POSTGRES_URL="postgresql://$PG_TEST_USER:$PG_TEST_PASSWORD@127.0.0.1:$PG_TEST_PORT/postgres"
export PGCLONE_TEST_BINARY="$PGCLONE_ROOT/.build/debug/pgclone"
export PGCLONE_TEST_S3_ENDPOINT="$MOTO_ENDPOINT"
log "running the tests"
swift test --skip-build "$@"
