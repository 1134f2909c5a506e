"""scripts/continue_family_cpu.sh: start, status and stop of background continuations, with a
stand-in for ``nicspec`` that records its arguments and, like training, stops on SIGTERM.

The stand-in installs its SIGTERM handler first, then publishes its arguments in one rename
(so a file that exists is complete and the handler is in place) and runs until stopped; the
tests poll with generous deadlines, so a busy machine (``nice -n 10`` runs last) only slows
them down.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "continue_family_cpu.sh"

FAKE_NICSPEC = """#!/usr/bin/env bash
trap 'echo stopped >> "$FAKE_ARGS.$$"; exit 130' TERM
{
  echo "$@"
  echo "threads=$OMP_NUM_THREADS"
  echo "cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
} > "$FAKE_ARGS.tmp.$$"
mv "$FAKE_ARGS.tmp.$$" "$FAKE_ARGS.$$"
for _ in $(seq 6000); do sleep 0.1; done  # at most 10 minutes, should a test fail to stop it
"""
DEADLINE_S = 300.0  # generous: how long a loaded machine may take, not how long a pass takes


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after :data:`DEADLINE_S` seconds."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {DEADLINE_S:.0f} s for {what}")
        time.sleep(0.1)


def _args_files(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.glob("args.*") if not p.name.startswith("args.tmp.")]


def _script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "nicspec"
    fake.write_text(FAKE_NICSPEC)
    fake.chmod(0o755)
    return {**os.environ, "NICSPEC": str(fake), "FAKE_ARGS": str(tmp_path / "args")}


def test_start_status_stop(tmp_path: Path, env: dict[str, str]) -> None:
    runs = tmp_path / "runs"
    try:
        started = _script("start", str(runs), "300", "sh-mse-0.018", env=env)
        assert started.returncode == 0, started.stderr
        assert "sh-mse-0.018: started" in started.stdout
        again = _script("start", str(runs), "300", "sh-mse-0.018", env=env)
        assert "already running" in again.stdout  # never two processes on one run folder
        assert "running" in _script("status", str(runs), env=env).stdout
        _wait_for(lambda: bool(_args_files(tmp_path)), "the stand-in to start")
        (args_file,) = _args_files(tmp_path)
        args = args_file.read_text()
        assert (
            "train --recipe sh-mse-0.018 --init-weights data/models/sh-mse-0.018.safetensors"
            in args
        )
        assert f"--steps 300 --checkpoint-every 100 --runs-dir {runs}" in args
        assert "threads=1" in args
        assert "stopping" in _script("stop", str(runs), env=env).stdout
        # it got SIGTERM, the signal training saves on, and ran its handler
        _wait_for(lambda: "stopped" in args_file.read_text(), "the stand-in's SIGTERM handler")
        _wait_for(
            lambda: "running" not in _script("status", str(runs), env=env).stdout,
            "the run to stop",
        )
    finally:
        _script("stop", str(runs), env=env)


def test_one_core_per_run_and_a_warning_beyond(tmp_path: Path, env: dict[str, str]) -> None:
    """Each run is pinned to its own allowed CPU; one run more than the cores is warned about."""
    cpus = sorted(os.sched_getaffinity(0))
    shipped = sorted(p.stem for p in (ROOT / "data" / "models").glob("*.safetensors"))
    if len(cpus) + 1 > len(shipped):
        pytest.skip("more cores than shipped models to start")
    runs = tmp_path / "runs"
    try:
        started = _script("start", str(runs), "300", *shipped[: len(cpus) + 1], env=env)
        assert started.returncode == 0, started.stderr
        assert started.stderr.count("time-share") == 1
        _wait_for(lambda: len(_args_files(tmp_path)) >= len(cpus) + 1, "every stand-in")
        texts = [f.read_text() for f in _args_files(tmp_path)]
        pinned = sorted(int(t.split("cpus=")[1].split()[0]) for t in texts)
        assert pinned == sorted(cpus + [cpus[0]])  # round-robin: the extra run shares the first
    finally:
        _script("stop", str(runs), env=env)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["start", "r", "many", "sh-mse-0.018"], "STEPS must be a positive integer", 2),
        (["start", "r", "10", "ghost"], "no data/models/ghost.safetensors", 1),
        (["launch", "r"], "start", 2),
    ],
)
def test_bad_input(
    args: list[str], message: str, code: int, tmp_path: Path, env: dict[str, str]
) -> None:
    args = [a if a != "r" else str(tmp_path / "runs") for a in args]
    done = _script(*args, env=env)
    assert done.returncode == code and message in done.stderr
