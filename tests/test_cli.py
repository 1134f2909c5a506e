"""The ``nicspec`` command line: help, version, unknown commands, and both ways to start it."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nicspec_utils
from nicspec_utils import cli

# Sub-commands that the README documents and the book's chapters call.
DOCUMENTED = {"data", "corrupt", "eval", "train", "models", "book"}


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    """The sub-command names registered on the parser."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def _console_script() -> str | None:
    """The installed ``nicspec`` script: beside this interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / "nicspec"
    if beside.exists():
        return str(beside)
    return shutil.which("nicspec")


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    registered = _subcommands(parser)
    assert registered >= DOCUMENTED
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nicspec")
    for name in sorted(registered):
        assert f"\n    {name} " in out, f"sub-command {name!r} missing from --help"


def test_data_verify_kodak(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's first data command: the committed Kodak images match their checksums."""
    assert cli.main(["data", "verify", "kodak"]) == 0
    assert "24 images of kodak" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: nicspec {name}")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"nicspec {nicspec_utils.__version__}"


@pytest.mark.parametrize("argv", [["no-such-command"], []], ids=["unknown", "missing"])
def test_bad_subcommand_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # one line, no usage dump
    assert lines[0].startswith("nicspec: error: ")


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nicspec_utils.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: nicspec" in proc.stdout
    for name in DOCUMENTED:
        assert name in proc.stdout


def test_console_script() -> None:
    script = _console_script()
    if script is None:
        pytest.skip("the nicspec console script is not installed (pip install -e .)")
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"nicspec {nicspec_utils.__version__}"
    unknown = subprocess.run([script, "frobnicate"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr
