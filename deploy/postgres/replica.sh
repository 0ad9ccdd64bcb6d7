#!/bin/sh
# The entrypoint of docker-compose.yml's `db-replica` (profile `cluster`): a hot standby of `db`.
# At its first start (an empty data directory) it copies the primary with pg_basebackup -R,
# which also writes the standby's connection to the primary (primary_conninfo) and
# standby.signal; later starts serve the copy as it is and stream from the primary again.
# Runs as the image's postgres user, with the same image as `db` (either image: both set PGDATA).
set -eu
: "${PGDATA:?the image sets PGDATA}"
: "${PRIMARY_HOST:=db}"
: "${PRIMARY_PORT:=5432}"
: "${PRIMARY_USER:=${POSTGRES_USER:-postgres}}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="${POSTGRES_PASSWORD:?the primary user's password}"
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$PRIMARY_USER"; do sleep 1; done
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  # -X stream: the WAL written during the copy comes along; -c fast: no wait for a checkpoint.
  pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$PRIMARY_USER" -D "$PGDATA" -R -X stream -c fast
  unset PGPASSWORD
  echo "replica: copied $PRIMARY_HOST into $PGDATA; streaming from it"
fi
exec postgres -D "$PGDATA" -c hot_standby=on "$@"
