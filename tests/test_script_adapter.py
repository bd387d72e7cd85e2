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


def test_the_command_gets_the_jobs_devices(tmp_path, monkeypatch):
    """The worker's environment, with the GPUs the scheduler gave the job, reaches the
    command (which then sees exactly those devices)."""
    from adapters.conformance import RecordingReporter

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    monkeypatch.setenv("LABDECK_GPU_INDICES", "3")
    script = tmp_path / "devices.py"
    script.write_text("import json, os\n"
                      "print(json.dumps({'step': 0,"
                      " 'visible': float(os.environ['CUDA_VISIBLE_DEVICES']),"
                      " 'indices': float(os.environ['LABDECK_GPU_INDICES']),"
                      " 'pci_order': float(os.environ['CUDA_DEVICE_ORDER'] == 'PCI_BUS_ID')}))\n")
    rep = RecordingReporter(tmp_path / "run")
    cfg = ScriptAdapter.validate_config({"command": f"python {script}"})
    result = ScriptAdapter().train(cfg, rep)
    assert result["exit_code"] == 0, rep.lines
    assert rep.metrics == [(0, {"visible": 3.0, "indices": 3.0, "pci_order": 1.0})]
