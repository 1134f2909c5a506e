"""scripts/continue_family_cpu.sh: start, status and stop of background continuations, with a
stand-in for ``nicspec`` that records its arguments and, like training, stops on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "continue_family_cpu.sh"

FAKE_NICSPEC = """#!/usr/bin/env bash
echo "$@" > "$FAKE_ARGS.$$"
echo "threads=$OMP_NUM_THREADS" >> "$FAKE_ARGS.$$"
echo "cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)" >> "$FAKE_ARGS.$$"
trap 'echo stopped >> "$FAKE_ARGS.$$"; exit 130' TERM
for _ in $(seq 100); do sleep 0.1; done
"""


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
    started = _script("start", str(runs), "300", "sh-mse-0.018", env=env)
    assert started.returncode == 0, started.stderr
    assert "sh-mse-0.018: started" in started.stdout
    again = _script("start", str(runs), "300", "sh-mse-0.018", env=env)
    assert "already running" in again.stdout  # never two processes on one run folder
    assert "running" in _script("status", str(runs), env=env).stdout
    deadline = time.time() + 20
    while not list(tmp_path.glob("args.*")) and time.time() < deadline:
        time.sleep(0.1)
    (args_file,) = tmp_path.glob("args.*")
    args = args_file.read_text()
    assert "train --recipe sh-mse-0.018 --init-weights data/models/sh-mse-0.018.safetensors" in args
    assert f"--steps 300 --checkpoint-every 100 --runs-dir {runs}" in args
    assert "threads=1" in args
    assert "stopping" in _script("stop", str(runs), env=env).stdout
    deadline = time.time() + 20
    while "running" in _script("status", str(runs), env=env).stdout and time.time() < deadline:
        time.sleep(0.2)
    assert "stopped" in args_file.read_text()  # it got SIGTERM, the signal training saves on


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
        deadline = time.time() + 20
        while len(list(tmp_path.glob("args.*"))) < len(cpus) + 1 and time.time() < deadline:
            time.sleep(0.1)
        deadline = time.time() + 20
        while time.time() < deadline:
            texts = [f.read_text() for f in tmp_path.glob("args.*")]
            if all("cpus=" in t for t in texts):
                break
            time.sleep(0.1)
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
