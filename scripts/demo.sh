#!/usr/bin/env bash
# pgclone's main job on its embedded default: a throwaway PostgreSQL with a sample database, dumped
# to .pgclone/, listed, changed, and restored back with the atomic swap.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'pg_stop_clusters; run_processes_stop; run_dir_remove' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

install_packages "${DEMO_PACKAGES[@]}"
run_dir_create
cd "$PGCLONE_ROOT"
log "building pgclone"
swift build -c release --product pgclone >/dev/null
pgclone="$PGCLONE_ROOT/.build/release/pgclone"

pg_start_cluster demo "$(pg_bindir)"
export DATABASE_URL=$(pg_url demo shop)
psql_shop() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

log "creating the sample database \"shop\""
psql_shop -d "$(pg_url demo)" -c 'CREATE DATABASE shop'
psql_shop -d "$DATABASE_URL" <<'SQL'
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL);
INSERT INTO sales.orders (customer, total) SELECT 'customer ' || i, i * 1.5 FROM generate_series(1, 100000) AS i;
ALTER DATABASE shop SET search_path = sales, public;
SQL
count() { psql_shop -d "$DATABASE_URL" -At -c 'SELECT count(*) FROM orders'; }

log "pgclone dump"
key=$("$pgclone" dump)
log "pgclone ls"
"$pgclone" ls
log "deleting most orders: $(count) rows before"
psql_shop -d "$DATABASE_URL" -c 'DELETE FROM orders WHERE id > 10'
log "$(count) rows now; pgclone restore shop"
"$pgclone" restore shop
log "$(count) rows after restoring $key (search_path: $(psql_shop -d "$DATABASE_URL" -At -c 'SHOW search_path'))"
log "the dump stays in $PGCLONE_ROOT/.pgclone/"
