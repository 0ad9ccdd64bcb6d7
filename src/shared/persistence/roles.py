"""Least privilege: the server's role may read and write rows, and nothing else.

Migrations run as the schema's owner; ``grant_row_access`` (run by ``library migrate`` with
``LIBRARY_DB_APP_ROLE``, and by the tests and ``make run``) lets the server's role select,
insert, update and delete rows of every table, now and in later migrations, and no more: no
DDL (it owns nothing and cannot create in the schema), no TRUNCATE, no superuser.
"""

from __future__ import annotations

import re

import asyncpg

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(role: str) -> str:
    if not _ROLE.match(role):
        raise ValueError(f"not a plain role name: {role!r}")
    return f'"{role}"'


async def ensure_login_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    """Create ``role`` (LOGIN, no other attribute) unless it exists; set its password if given."""
    name = _ident(role)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await conn.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    if password is not None:
        # A literal (ALTER ROLE takes no parameters), quoted by the server itself.
        quoted = await conn.fetchval("SELECT quote_literal($1)", password)
        await conn.execute(f"ALTER ROLE {name} PASSWORD {quoted}")


async def grant_row_access(conn: asyncpg.Connection, role: str) -> None:
    """Let ``role`` read and write the rows of every table of the schema, and nothing more.

    Run as the schema's owner, after the migrations. RuntimeError if ``role`` could still do
    more: a superuser, an owner of tables, or allowed to create in the schema.
    """
    name = _ident(role)
    attributes = await conn.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
        "WHERE rolname = $1",
        role,
    )
    if attributes is None:
        raise RuntimeError(f"the role {role} does not exist: create it first (LOGIN only)")
    if any(attributes.values()):
        raise RuntimeError(
            f"the server's role {role} must not be a superuser or create roles or databases"
        )
    owned = await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = $1",
        role,
    )
    if owned:
        raise RuntimeError(f"the server's role {role} owns tables: migrate as another role")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
    await conn.execute(
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}"
    )
    await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}")
    # Tables later migrations create (as this owner) are the role's to read and write too.
    await conn.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {name}"
    )
    await conn.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {name}"
    )
    if await conn.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", role):
        # PostgreSQL before 15 let PUBLIC create in the public schema.
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {name}")
    if await conn.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", role):
        raise RuntimeError(f"the role {role} may still create objects in the public schema")
