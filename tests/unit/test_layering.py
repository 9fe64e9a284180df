"""One door to the database: ``store/`` is the only production package that imports psycopg or
hands SQL to a connection (DESIGN.md, "Who imports whom"; issue 12, "What to build" 1).

The production packages are the ones ``pyproject.toml`` installs; tests and benchmarks aside.
Imports and SQL are found by parsing each module with :mod:`ast`, so a mention in a comment
or a docstring does not count, and an import inside a function does.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
#: Production modules outside store/ allowed to import psycopg or write SQL: none.
ALLOWED: Final[frozenset[str]] = frozenset()
#: a string that starts like an SQL statement
SQL: Final = re.compile(
    r"^\s*(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|WITH\s+\w+\s+AS|COPY|CREATE|"
    r"ALTER|DROP|TRUNCATE)\b",
    re.IGNORECASE,
)
#: methods that take SQL on a psycopg connection or cursor
SQL_METHODS: Final = frozenset({"execute", "executemany", "copy", "stream"})


def packages() -> list[str]:
    """The top-level packages ``pyproject.toml`` installs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*") for p in include})


def modules() -> Iterator[tuple[str, ast.Module]]:
    """Every production module outside store/ as (path relative to the root, its syntax)."""
    for package in packages():
        if package == "store":
            continue
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text("utf-8"))


def imports_psycopg(tree: ast.Module) -> list[int]:
    """Line numbers of the imports of psycopg (or any of its modules) in ``tree``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(n.split(".")[0] == "psycopg" for n in names):
            lines.append(node.lineno)
    return lines


def _text(node: ast.AST) -> str:
    """The literal text of a string expression (constants, f-strings, concatenations)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        value = node.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _text(node.func.value)  # "...".encode(), "...".format(...)
    return ""


def sql_calls(tree: ast.Module) -> list[int]:
    """Line numbers of ``x.execute("SELECT …")``-like calls with SQL text in ``tree``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SQL_METHODS
        and node.args
        and SQL.match(_text(node.args[0]))
    ]


def test_the_helpers_see_what_they_look_for() -> None:
    sample = ast.parse(
        "import psycopg.rows\n"
        "def f(conn):\n"
        "    from psycopg import sql\n"
        "    conn.execute('SELECT 1')\n"
        "    conn.execute(f'DELETE FROM t WHERE id = {x}'.encode())\n"
        "    conn.execute(query)\n"
        "    frame.copy()\n"
        "    '''Select the rows (a docstring is no SQL).'''\n"
    )
    assert imports_psycopg(sample) == [1, 3]
    assert sql_calls(sample) == [4, 5]


def test_only_store_imports_psycopg() -> None:
    """Issue 12: ``store/`` is the only package that imports psycopg (tests and benchmarks
    aside)."""
    seen = list(modules())
    assert {p.split("/")[0] for p, _ in seen} >= {"api", "dashboards", "ecosense", "pipelines"}
    offenders = [
        f"{path}:{line}"
        for path, tree in seen
        if path not in ALLOWED
        for line in imports_psycopg(tree)
    ]
    assert offenders == [], "only store/ may import psycopg"


def test_no_sql_outside_store() -> None:
    """No production module outside store/ hands SQL text to a connection."""
    offenders = [
        f"{path}:{line}"
        for path, tree in modules()
        if path not in ALLOWED
        for line in sql_calls(tree)
    ]
    assert offenders == [], "SQL belongs in a store/ repository"
