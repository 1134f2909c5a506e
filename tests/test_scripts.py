"""scripts/continue_family_cpu.sh: start, status and stop of background continuations, with a
stand-in for ``nicspec`` that records its arguments and, like training, stops on SIGTERM; and
scripts/build_vtm.sh on a fake VTM source tree (two trivial CMake programs named like VTM's).

The stand-in installs its SIGTERM handler first, then publishes its arguments in one rename
(so a file that exists is complete and the handler is in place) and runs until stopped; the
tests poll with generous deadlines, so a busy machine (``nice -n 10`` runs last) only slows
them down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


# --- scripts/build_vtm.sh ----------------------------------------------------------------------
BUILD_VTM = ROOT / "scripts" / "build_vtm.sh"
# A stand-in for a VTM source tree: two trivial programs named like VTM's, whose CMake file, as
# VTM's does, turns warnings into errors (the encoder has an unused variable, so the build fails
# unless the script removes -Werror) and copies the executables into <source>/bin/*Static.
FAKE_CMAKE = """cmake_minimum_required(VERSION 3.5)
project(FakeVTM CXX)
add_compile_options(-Wall -Werror)
foreach(app EncoderApp DecoderApp)
  add_executable(${app} source/App/${app}/main.cpp)
  add_custom_command(TARGET ${app} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_SOURCE_DIR}/bin
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:${app}> ${CMAKE_SOURCE_DIR}/bin/${app}Static)
endforeach()
"""
FAKE_MAIN = """#include <cstdio>
int main() { %s std::puts("VVCSoftware: VTM %s Version 9.3-fake [Linux]"); return 0; }
"""


def _fake_vtm(root: Path, broken: bool = False) -> Path:
    src = root / "VTM"
    (src / "source" / "Lib" / "CommonLib").mkdir(parents=True)
    (src / "source" / "Lib" / "CommonLib" / "version.h").write_text(
        '#if ! defined( VTM_VERSION )\n#define VTM_VERSION "9.3-fake"\n#endif\n'
    )
    (src / "cfg").mkdir()
    (src / "cfg" / "encoder_intra_vtm.cfg").write_text("IntraPeriod : 1\n")
    (src / "CMakeLists.txt").write_text(FAKE_CMAKE)
    for app, body in (("EncoderApp", "int unused;"), ("DecoderApp", "")):
        (src / "source" / "App" / app).mkdir(parents=True)
        text = FAKE_MAIN % ("return missing;" if broken and app == "DecoderApp" else body, app)
        (src / "source" / "App" / app / "main.cpp").write_text(text)
    return src


def _build_vtm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "NICSPEC_BUILD_JOBS": "2", **(env or {})}
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(BUILD_VTM), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_build_vtm_builds_a_fake_vtm_tree(tmp_path: Path) -> None:
    """The fake tree builds (despite -Werror and an unused variable), the executables land in
    BUILD_DIR/bin, the vtm codec's discovery accepts the folder, the source tree is unchanged."""
    from nicspec_utils.codecs.classic import VtmCodec

    src = _fake_vtm(tmp_path)
    before = _tree(src)
    build = tmp_path / "out"
    done = _build_vtm(str(src), str(build))
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip().splitlines()[-1] == f"export NICSPEC_VTM_DIR={build}"
    assert "VTM 9.3-fake" in done.stdout
    for app in ("EncoderAppStatic", "DecoderAppStatic"):
        assert os.access(build / "bin" / app, os.X_OK), app
    codec = VtmCodec(vtm_dir=str(build))
    assert codec.version == "VTM 9.3-fake"
    assert codec.encoder == build / "bin" / "EncoderAppStatic"
    assert _tree(src) == before  # the build ran on a copy: no bin/, CMakeLists.txt as it was
    assert "-Werror" not in (build / "src" / "CMakeLists.txt").read_text()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_build_vtm_reports_a_failed_build_in_one_line(tmp_path: Path) -> None:
    done = _build_vtm(str(_fake_vtm(tmp_path, broken=True)), str(tmp_path / "out"))
    assert done.returncode == 4
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("build_vtm.sh: error: build failed:") and "missing" in line
    assert "build.log" in line


def _no_cmake_path(tmp_path: Path) -> str:
    """A PATH with the basic tools the script needs before its tool checks, and no cmake."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("grep", "sed", "head", "make", "g++"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


@pytest.mark.parametrize(
    ("case", "message", "code"),
    [
        ("no-args", "usage: scripts/build_vtm.sh SRC_DIR [BUILD_DIR]", 2),
        ("missing", "no such folder", 2),
        ("no-cmakelists", "has no CMakeLists.txt: not a VTM source tree", 2),
        ("no-version", "defines no VTM_VERSION: not a VTM source tree", 2),
        ("build-inside", "lies inside SRC_DIR", 2),
        ("no-cmake", "cmake is not installed", 3),
        ("no-compiler", "no-such-c++ is not installed", 3),
    ],
)
def test_build_vtm_bad_input(case: str, message: str, code: int, tmp_path: Path) -> None:
    src = _fake_vtm(tmp_path)
    args, env = [str(src), str(tmp_path / "out")], {}
    if case == "no-args":
        args = []
    elif case == "missing":
        args[0] = str(tmp_path / "nowhere")
    elif case == "no-cmakelists":
        (src / "CMakeLists.txt").unlink()
    elif case == "no-version":
        (src / "source" / "Lib" / "CommonLib" / "version.h").write_text("/* no version */\n")
    elif case == "build-inside":
        args[1] = str(src / "build")
    elif case == "no-cmake":
        env = {"PATH": _no_cmake_path(tmp_path)}
    elif case == "no-compiler":
        env = {"CXX": "no-such-c++"}
    done = _build_vtm(*args, env=env)
    assert done.returncode == code, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("build_vtm.sh: error: ") and message in line
    assert not (tmp_path / "out" / "bin").exists()


# --- scripts/run_paper_profile.sh ----------------------------------------------------------------


def test_the_paper_run_script_runs_its_steps_in_order(tmp_path: Path) -> None:
    """quick's chapters first when the summary page is to run (their ledger goes beside the
    paper's verdicts), then each paper chapter followed by a bundle that merges it in, then the
    bundle's verification, each logged; a failing step stops the run."""
    calls = tmp_path / "calls"
    fake = tmp_path / "nicspec"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1 $2" != "results verify" ] || exit 3\n')
    fake.chmod(0o755)
    env = {**os.environ, "NICSPEC_BIN": str(fake), "NICSPEC_DATA_MIRROR": str(tmp_path),
           "CHAPTERS": "02_rate_distortion,07_claims", "MAP_FACTOR": "4"}  # fmt: skip
    script = ROOT / "scripts" / "run_paper_profile.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "results")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 3  # the fake's verify failed: the script stops there
    assert calls.read_text().splitlines() == [
        "book --profile quick --no-html",
        "book --profile paper --chapters 02_rate_distortion --no-html",
        "results bundle --profile paper --map-factor 4",
        "book --profile paper --chapters 07_claims --no-html",
        "results bundle --profile paper --map-factor 4",
        "results verify --bundle data/results/paper --sample 5",
    ]
    log = (tmp_path / "results" / "paper-run.log").read_text()
    assert [line.split()[1:3] for line in log.splitlines()] == [
        ["start", "quick"], ["done", "quick"],
        ["start", "paper:02_rate_distortion"], ["done", "paper:02_rate_distortion"],
        ["start", "bundle:02_rate_distortion"], ["done", "bundle:02_rate_distortion"],
        ["start", "paper:07_claims"], ["done", "paper:07_claims"],
        ["start", "bundle:07_claims"], ["done", "bundle:07_claims"],
        ["start", "verify"],
    ]  # fmt: skip
    # without CHAPTERS: the chapters data/results/paper lacks (all of them here), no quick
    # run unless the summary page is among them
    calls.unlink()
    env["CHAPTERS"] = "04_lowpass_theory"
    subprocess.run(["bash", str(script), str(tmp_path / "results")], env=env,
                   capture_output=True, text=True, timeout=60)  # fmt: skip
    assert calls.read_text().splitlines()[0] == (
        "book --profile paper --chapters 04_lowpass_theory --no-html"
    )
    # SET: a part of a long chapter, its parameters replaced (nicspec book --set), one each
    calls.unlink()
    env["SET"] = "draws=1 kodak_images=3"
    subprocess.run(["bash", str(script), str(tmp_path / "results")], env=env,
                   capture_output=True, text=True, timeout=60)  # fmt: skip
    assert calls.read_text().splitlines()[0] == (
        "book --profile paper --chapters 04_lowpass_theory --no-html --set draws=1 "
        "--set kodak_images=3"
    )
