"""Layering: the engine and adapters never pull in textual/rich; nothing heavy at import."""

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_imports_no_ui_and_nothing_heavy():
    mods = _modules_after("import engine, engine.api, engine.cli.main, engine.tracking\n"
                          "from engine.registry import get_adapter_class\n"
                          "[get_adapter_class(n).config_schema() for n in"
                          " __import__('engine.registry').registry.adapter_names()]")
    for banned in ("textual", "rich", "torch", "optuna"):
        assert banned not in mods, banned


def test_adapters_do_not_import_engine_or_ui():
    mods = _modules_after("import adapters.base, adapters.script")
    assert not {m for m in mods if m.split(".")[0] in ("engine", "tui", "textual", "rich")}
