"""The `healthsense` entry point: version, sys-info, usage errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from healthsense import __version__


def test_version(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"healthsense {__version__}"


def test_help_lists_commands(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for name in ("sys-info", "demo"):
        assert name in out


def test_sys_info_json(run_cli):
    code, out, _ = run_cli("sys-info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["versions"]["healthsense"] == __version__
    assert info["versions"]["torch"]
    assert info["cpu_count"] >= 1
    assert isinstance(info["torch"]["cuda_available"], bool)
    assert info["default_device"] in {"cpu", "cuda", "mps"}


def test_sys_info_text(run_cli):
    code, out, _ = run_cli("sys-info")
    assert code == 0
    assert "numpy:" in out and "CUDA available:" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["sys-info", "--nope"], "unrecognized arguments: --nope"),
        (["--seed", "x", "sys-info"], "invalid int value"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(run_cli, argv, needle):
    code, out, err = run_cli(*argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_no_command_prints_help_and_exits_2(run_cli):
    code, _, err = run_cli()
    assert code == 2 and "usage:" in err


def test_common_options_before_and_after_command(run_cli):
    assert run_cli("-v", "sys-info", "--json")[0] == 0
    assert run_cli("sys-info", "--quiet", "--seed", "3", "--json")[0] == 0


def test_console_script_runs_as_module():
    proc = subprocess.run(
        [sys.executable, "-m", "healthsense", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and __version__ in proc.stdout
