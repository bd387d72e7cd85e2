"""A bad config value says, in words, what the field takes (issue 15): the config schema's
own parsing and checking, so the CLI's ``--set`` and the TUI's forms say the same."""

import subprocess
import sys

import pytest
from helpers import labdeck_env

from adapters.base import ConfigError, ConfigSchema, Field


@pytest.mark.parametrize(("field", "text", "message"), [
    (Field("epochs", "int", 10), "lots", "expected a whole number (int), got 'lots'"),
    (Field("epochs", "int", 10), "2.5", "expected a whole number (int), got '2.5'"),
    (Field("lr", "float", 0.1), "fast", "expected a number, got 'fast'"),
    (Field("log", "bool", True), "maybe", "expected true or false, got 'maybe'"),
    (Field("bits", "int", 64, choices=(64, 128)), "lots",
     "expected one of 64, 128, got 'lots'"),
])
def test_parse_names_the_expected_type_in_words(field, text, message):
    with pytest.raises(ValueError) as exc:
        field.parse(text)
    assert str(exc.value) == message


def test_check_names_the_expected_type_in_words():
    schema = ConfigSchema((Field("epochs", "int", 10), Field("lr", "float", 0.1),
                           Field("log", "bool", True), Field("name", "str", ""),
                           Field("mode", "str", "a", choices=("a", "b"))))
    with pytest.raises(ConfigError) as exc:
        schema.validate({"epochs": "lots", "lr": "fast", "log": "yes", "name": 3, "mode": "c"})
    assert exc.value.errors == {
        "epochs": "expected a whole number (int), got str 'lots'",
        "lr": "expected a number, got str 'fast'",
        "log": "expected true or false, got str 'yes'",
        "name": "expected text, got int 3",
        "mode": "expected one of a, b, got 'c'",
    }


def test_cli_set_says_what_an_int_field_takes(home):
    res = subprocess.run([sys.executable, "-m", "cli", "exp", "create", "x", "--adapter",
                          "vlm_quantization", "--set", "epochs=lots"], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "epochs: expected a whole number (int), got 'lots'" in res.stderr
    assert "could not convert" not in res.stderr
