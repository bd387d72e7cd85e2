from helpers import script_command

from adapters.conformance import AdapterConformance
from adapters.script import ScriptAdapter
from engine.registry import adapter_names, get_adapter_class


class TestScriptAdapterConformance(AdapterConformance):
    adapter_cls = ScriptAdapter
    quick_config = {"command": script_command("--mode json --steps {steps} --sleep 0.01"),
                    "steps": 20}
    max_logs_after_stop = 10  # a child process keeps printing for one 50 ms poll


def test_registered_through_entry_points():
    assert "script" in adapter_names()
    assert get_adapter_class("script") is ScriptAdapter


def test_placeholders_are_the_only_extra_keys():
    cfg = ScriptAdapter.validate_config({"command": "python t.py --lr {lr}", "lr": 0.1})
    assert cfg["lr"] == 0.1 and cfg["cwd"]
    assert ScriptAdapter().render_command({**cfg, "lr": "a b"}) == "python t.py --lr 'a b'"
    parsed = ScriptAdapter.parse_assignments(["lr=1e-3", "name=abc", "timeout_s=5"])
    assert parsed == {"lr": 1e-3, "name": "abc", "timeout_s": 5.0}
