"""The full-text index of message contents, kept by the database itself.

PostgreSQL: a ``search_vector`` tsvector column filled by a trigger with the
``SEARCH_CONFIG`` configuration, under a GIN index. SQLite: an FTS5 table over
``content`` (external content) kept by triggers. Neither is an ORM field, so
the message hot path's statements (``messaging.statements``) are unchanged:
the database updates the index in the same statement. Note that on SQLite a
later migration that rebuilds the message table drops the triggers: such a
migration must call ``index_create`` again.
"""

from django.core.exceptions import ImproperlyConfigured

from messaging.models import Message

FTS_TABLE = "messaging_message_fts"
VECTOR_COLUMN = "search_vector"
GIN_INDEX = "messaging_message_search_gin"
TRIGGER = "messaging_message_search_vector"


# Characters that make PostgreSQL's parser read a tag, e-mail, host, path, URL or
# entity as one token; as spaces, words split as in FTS5 and the query parser.
TOKEN_GLUE = "<>@/.:&"


def vector_sql(config: str, column: str) -> str:
    """The tsvector of a content column (PostgreSQL)."""
    spaces = " " * len(TOKEN_GLUE)
    return (
        f"to_tsvector('{config}'::regconfig, "
        f"translate(coalesce({column}, ''), '{TOKEN_GLUE}', '{spaces}'))"
    )


def _function_sql(config: str) -> str:
    vector = vector_sql(config, "NEW.content")
    return (
        f"CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN NEW.{VECTOR_COLUMN} := {vector}; RETURN NEW; END $$"
    )


def _postgres(config: str) -> list[str]:
    t = Message._meta.db_table
    return [
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {VECTOR_COLUMN} tsvector",
        _function_sql(config),
        f"DROP TRIGGER IF EXISTS {TRIGGER} ON {t}",
        f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE OF content ON {t} "
        f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()",
        f"UPDATE {t} SET {VECTOR_COLUMN} = {vector_sql(config, 'content')}",
        f"CREATE INDEX IF NOT EXISTS {GIN_INDEX} ON {t} USING GIN ({VECTOR_COLUMN})",
    ]


def _sqlite() -> list[str]:
    t, f = Message._meta.db_table, FTS_TABLE
    delete = (
        f"INSERT INTO {f}({f}, rowid, content) VALUES('delete', old.id, old.content);"
    )
    insert = f"INSERT INTO {f}(rowid, content) VALUES (new.id, new.content);"
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {f} USING fts5(content, "
        f"content='{t}', content_rowid='id', "
        f"tokenize='unicode61 remove_diacritics 0')",
        f"CREATE TRIGGER IF NOT EXISTS {f}_ai AFTER INSERT ON {t} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {f}_ad AFTER DELETE ON {t} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {f}_au AFTER UPDATE OF content ON {t} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {f}({f}) VALUES('rebuild')",
    ]


def index_create(connection, *, config: str) -> None:
    """Create (or rebuild, with this configuration) the index of every message."""
    statements = {"postgresql": lambda: _postgres(config), "sqlite": _sqlite}
    build = statements.get(connection.vendor)
    if build is None:
        raise ImproperlyConfigured(
            f"Message search needs PostgreSQL or SQLite, not {connection.vendor}."
        )
    with connection.cursor() as cursor:
        for statement in build():
            cursor.execute(statement)


def index_refresh(connection, *, config: str) -> None:
    """Re-index every message with this configuration (the index must exist)."""
    if connection.vendor == "postgresql":
        t = Message._meta.db_table
        statements = [
            _function_sql(config),
            f"UPDATE {t} SET {VECTOR_COLUMN} = {vector_sql(config, 'content')}",
        ]
    else:
        statements = [f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES('rebuild')"]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def index_drop(connection) -> None:
    """Remove the index, its column or table and its triggers."""
    t = Message._meta.db_table
    if connection.vendor == "postgresql":
        drop = [
            f"DROP TRIGGER IF EXISTS {TRIGGER} ON {t}",
            f"DROP FUNCTION IF EXISTS {TRIGGER}()",
            f"ALTER TABLE {t} DROP COLUMN IF EXISTS {VECTOR_COLUMN}",
        ]
    else:
        drop = [f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{s}" for s in ("ai", "ad", "au")]
        drop.append(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    with connection.cursor() as cursor:
        for statement in drop:
            cursor.execute(statement)
