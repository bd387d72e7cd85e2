"""One data layer: every SQL statement on labdeck's database lives in engine/data (and the
migrations in engine/schema.py); the scheduler, workers, API, CLI, TUI and adapters call it.
A scan of the source finds SQL in string literals (docstrings aside) and statement calls
(``.execute(``, ``.executemany(``, ...) everywhere else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("engine", "adapters", "tui", "cli")
DATA_LAYER = ("engine/data/", "engine/schema.py")
# A tuner's storage is a database of the tuner's own, not labdeck's: Optuna's (its tables, its
# schema, opened through its RDBStorage: labdeck claims slot tokens and writes heartbeats there
# with SQLAlchemy Core and makes its SQLite transactions BEGIN IMMEDIATE) and the random
# tuner's file (rstudies, rtrials), as a third-party tuner keeps its own. Statements on
# labdeck's own tables do not belong there: their string literals may not name one (Optuna
# has "studies" and "trials" too, so those two names prove nothing).
TUNER_STORAGES = ("engine/studies/optuna_storage.py", "engine/studies/random_tuner.py")
LABDECK_ONLY_TABLES = re.compile(
    r"\b(experiments|runs|metric_keys|metric_seq|metrics|jobs|eval_results|indexes"
    r"|scheduler_lease)\b")

# Uppercase, structural: SQL here is written in capitals, prose ("delete a study") is not
SQL = re.compile(
    r"\bSELECT\s+\S|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bREPLACE\s+INTO\b|\bWITH\s+\w+\s+AS\s*\(|\bPRAGMA\s+\w+|\bBEGIN(\s+(IMMEDIATE|DEFERRED"
    r"|EXCLUSIVE|TRANSACTION))?\s*$|^\s*(COMMIT|ROLLBACK)\s*$"
    r"|\b(CREATE|DROP)\s+(TABLE|INDEX|UNIQUE|VIEW|TRIGGER)\b|\bALTER\s+TABLE\b")
STATEMENT_CALLS = {"execute", "executemany", "executescript", "exec_driver_sql"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_in(path: Path) -> list[tuple[int, str]]:
    """(line, what) of each SQL string literal and statement call in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docs and SQL.search(node.value)):
            found.append((node.lineno, node.value.strip()[:70]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in STATEMENT_CALLS):
            found.append((node.lineno, f".{node.func.attr}(...)"))
    return sorted(found)


def modules_with_sql(root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    """Every scanned module (its path from ``root``) that holds SQL, data layer included."""
    out = {}
    for pkg in SCANNED:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            found = sql_in(path)
            if found:
                out[rel] = found
    return out


def _labdeck_tables_named(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    return [(n.lineno, n.value.strip()[:70]) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
            and SQL.search(n.value) and LABDECK_ONLY_TABLES.search(n.value)]


def test_no_sql_outside_the_data_layer():
    found = modules_with_sql()
    assert any(p.startswith("engine/data/") for p in found), "the scan finds no SQL at all"
    outside = {p: hits for p, hits in found.items()
               if not p.startswith(DATA_LAYER) and p not in TUNER_STORAGES}
    assert not outside, "SQL outside engine/data (move it into a data module):\n" + "\n".join(
        f"{p}:{line}: {what}" for p, hits in outside.items() for line, what in hits)


def test_tuner_storages_touch_only_their_own_tables():
    for rel in TUNER_STORAGES:
        assert not _labdeck_tables_named(ROOT / rel), rel


def test_the_scan_sees_what_it_must(tmp_path):
    sample = ('"""SELECT a FROM b in a docstring is prose."""\n'
              'x = "SELECT id FROM jobs WHERE status=?"\n'
              'y = f"UPDATE runs SET status=? WHERE id={1}"\n'
              'z = "delete a study\'s labdeck records"\n'
              'conn.execute(y)\n')
    tmp = tmp_path / "sample.py"
    tmp.write_text(sample)
    assert [line for line, _ in sql_in(tmp)] == [2, 3, 5]
