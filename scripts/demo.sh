#!/usr/bin/env bash
# pgclone's main job on its embedded default: a throwaway PostgreSQL with a sample database, dumped
# to .pgclone/, listed, changed, and restored back with the atomic swap.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap pg_stop_cluster EXIT

install_packages
cd "$PGCLONE_ROOT"
log "building pgclone"
swift build -c release --product pgclone >/dev/null
pgclone="$PGCLONE_ROOT/.build/release/pgclone"

pg_start_cluster
export DATABASE_URL="postgresql://$PG_TEST_USER:$PG_TEST_PASSWORD@127.0.0.1:$PG_TEST_PORT/shop"
psql_shop() { PGPASSWORD=$PG_TEST_PASSWORD psql -h 127.0.0.1 -p "$PG_TEST_PORT" -U "$PG_TEST_USER" -X -q -v ON_ERROR_STOP=1 "$@"; }

log "creating the sample database \"shop\""
psql_shop -d postgres -c 'CREATE DATABASE shop'
psql_shop -d shop <<'SQL'
CREATE SCHEMA sales;
CREATE TABLE sales.orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL);
INSERT INTO sales.orders (customer, total) SELECT 'customer ' || i, i * 1.5 FROM generate_series(1, 100000) AS i;
ALTER DATABASE shop SET search_path = sales, public;
SQL
count() { psql_shop -d shop -At -c 'SELECT count(*) FROM orders'; }

log "pgclone dump"
key=$("$pgclone" dump)
log "pgclone ls"
"$pgclone" ls
log "deleting most orders: $(count) rows before"
psql_shop -d shop -c 'DELETE FROM orders WHERE id > 10'
log "$(count) rows now; pgclone restore shop"
"$pgclone" restore shop
log "$(count) rows after restoring $key (search_path: $(psql_shop -d shop -At -c 'SHOW search_path'))"
log "the dump stays in $PGCLONE_ROOT/.pgclone/"
