"""Layering: the engine and adapters never pull in textual/rich; nothing heavy at import; the
CLI loads the TUI only to open it, and its modules import one another one way."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_imports_no_ui_and_nothing_heavy():
    mods = _modules_after("import engine, engine.api, engine.tracking\n"
                          "from engine.registry import get_adapter_class\n"
                          "[get_adapter_class(n).config_schema() for n in"
                          " __import__('engine.registry').registry.adapter_names()]")
    for banned in ("textual", "rich", "torch", "optuna"):
        assert banned not in mods, banned


def test_adapters_do_not_import_engine_or_ui():
    mods = _modules_after("import adapters.base, adapters.script")
    assert not {m for m in mods if m.split(".")[0] in ("engine", "tui", "textual", "rich")}


def test_headless_cli_imports_no_ui_and_nothing_heavy():
    # every command module loads when the parser is built: `labdeck exp list` pays for this
    mods = _modules_after("import cli.main\ncli.main.build_parser()")
    for banned in ("textual", "rich", "torch", "optuna"):
        assert banned not in mods, banned


def test_import_contracts_hold():
    """The layering and no-cycles contracts of pyproject's [tool.importlinter] (the gate runs
    the same command): cli -> tui -> engine -> adapters, no textual in engine/adapters,
    adapters by entry point only, no cycle among the modules of any package."""
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout and "KEPT" in res.stdout


def test_production_code_never_imports_the_conformance_suite():
    # adapters.conformance is for tests (it needs pytest); it ships only so that a
    # third-party adapter's tests can subclass it
    users = []
    for pkg in ("adapters", "cli", "engine", "tui"):
        for path in (ROOT / pkg).rglob("*.py"):
            if path == ROOT / "adapters" / "conformance.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.endswith("conformance") for n in names):
                    users.append(str(path.relative_to(ROOT)))
    assert not users, users
