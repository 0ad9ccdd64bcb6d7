"""`make bench`: the app against a raw asyncpg baseline and pgbench, on the same SQL, in one run."""
