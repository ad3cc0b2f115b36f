"""Create model engine's tables (as a given year's database has them) for tests and the sandbox.

The DDL lives in sql/model_engine/<version>.sql, shipped as the package data
``migrate.sql``. Those files spell the schema as the literal
``hosted_model_inference``; callers may ask for any other schema name, so that a
test can check that nothing in the tool assumes the default one.
"""

from __future__ import annotations

import re
from importlib import resources

from sqlalchemy.engine import Connection

SCHEMA_VERSIONS: tuple[str, ...] = ("2024", "2026")
DEFAULT_SCHEMA = "hosted_model_inference"

# Word boundaries keep index names such as ix_hosted_model_inference_x (none today,
# but cheap to guard) from being rewritten along with the schema qualifier.
_SCHEMA_TOKEN = re.compile(r"\b" + DEFAULT_SCHEMA + r"\b")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier the way PostgreSQL's quote_ident does, always quoting.

    Always quoting keeps mixed-case or odd schema names exactly as given.
    """
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def model_engine_ddl(version: str = "2026", schema: str = DEFAULT_SCHEMA) -> str:
    """The DDL text of one schema version, with the schema name substituted."""
    if version not in SCHEMA_VERSIONS:
        raise ValueError(
            f"unknown model engine schema version {version!r}; known: {SCHEMA_VERSIONS}"
        )
    text = (resources.files("migrate.sql") / "model_engine" / f"{version}.sql").read_text("utf-8")
    quoted = quote_ident(schema)
    # A function replacement, so that backslashes in the quoted name are not
    # read as group references.
    return _SCHEMA_TOKEN.sub(lambda _m: quoted, text)


def split_statements(sql: str) -> list[str]:
    """Split DDL on top-level semicolons, dropping ``--`` comments.

    Good enough for our own DDL files (no dollar quoting, no semicolons inside
    string literals); it exists so every statement goes to the server alone,
    without the driver's parameter parsing touching the ``%`` in LIKE patterns.
    """
    statements: list[str] = []
    current: list[str] = []
    in_string = False
    i = 0
    while i < len(sql):
        ch = sql[i]
        if in_string:
            current.append(ch)
            if ch == "'":
                in_string = False
        elif ch == "'":
            in_string = True
            current.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end
            continue
        elif ch == ";":
            stmt = "".join(current).strip()
            if stmt:
                statements.append(stmt)
            current = []
        else:
            current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


def create_model_engine_tables(
    conn: Connection, version: str = "2026", schema: str = DEFAULT_SCHEMA
) -> None:
    """Create model engine's ``bundles`` and ``endpoints`` tables in ``schema``.

    Runs inside the caller's transaction and does not commit: the caller decides
    (``engine.begin()`` commits on exit).
    """
    for statement in split_statements(model_engine_ddl(version, schema)):
        # exec_driver_sql with no parameters: the DDL's '%' must reach the server as is.
        conn.exec_driver_sql(statement.replace("%", "%%"))
