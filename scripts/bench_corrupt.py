"""`nicspec corrupt` on Dask against a plain loop over `imagecorruptions`, side by side.

The same (image, corruption, severity) triples, into fresh folders: the 15 corruptions x 5
severities of kodim01 and kodim02 by default (150 PNG files):

- ``loop``: one Python process, ``imagecorruptions.corrupt`` for each triple, the result saved
  as PNG with Pillow (the same encoder settings as nicspec: compress level 6), nothing else;
- ``nicspec serial``: ``nicspec corrupt --scheduler serial`` (in-process, one image at a time);
- ``nicspec N worker(s)``: ``nicspec corrupt --jobs N`` (a fresh LocalCluster of N
  single-threaded workers, one task per (image, corruption)), start-up of the cluster included.

Each side runs in a fresh process (imports and numba's first compile of glass blur included)
and is timed by wall clock and by the CPU time of its whole process tree (workers included;
less sensitive than wall time to other jobs on the machine). The one-core sides (the loop,
serial, 1 worker) are pinned to one CPU with ``taskset`` (OpenCV would otherwise borrow the
second core); N workers get N CPUs. The machine's load (``uptime``) is printed before and
after.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_corrupt.py --images kodim01,kodim02

prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LOOP = """
import sys, time
from pathlib import Path
import numpy as np
from PIL import Image
import imagecorruptions
from nicspec_utils.data import get_dataset

start = time.perf_counter()
out, images = Path(sys.argv[1]), sys.argv[2].split(",")
dataset = get_dataset(sys.argv[3])
for image_id in images:
    clean = dataset.load(image_id)
    for name in imagecorruptions.get_corruption_names():
        for severity in range(1, 6):
            result = imagecorruptions.corrupt(clean, corruption_name=name, severity=severity)
            path = out / name / str(severity) / f"{image_id}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.uint8(result)).save(path, compress_level=6)
print(time.perf_counter() - start)
"""


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _pinned(cmd: list[str], cpus: int) -> list[str]:
    """``cmd`` on the first ``cpus`` CPUs this process may use (as it is without taskset)."""
    allowed = sorted(os.sched_getaffinity(0))
    if not shutil.which("taskset") or cpus >= len(allowed):
        return cmd
    return ["taskset", "-c", ",".join(map(str, allowed[:cpus])), *cmd]


def _cpu() -> float:
    """CPU seconds (user + system) of the finished children and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree) of one command."""
    cpu, start = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="kodak")
    parser.add_argument("--images", default="kodim01,kodim02")
    parser.add_argument("--workers", default="1,2", help="LocalCluster sizes to time")
    parser.add_argument("--no-serial", action="store_true", help="skip `--scheduler serial`")
    args = parser.parse_args()
    n_files = 15 * 5 * len(args.images.split(","))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NICSPEC_PROGRESS": "0", "NICSPEC_SCHEDULER": "", "PYTHONPATH": str(ROOT)}  # fmt: skip
    nicspec = [sys.executable, "-m", "nicspec_utils.cli", "corrupt", "--dataset", args.dataset,
               "--images", args.images, "--no-progress"]  # fmt: skip
    before = _uptime()
    rows: list[tuple[str, tuple[float, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-corrupt-") as tmp:
        root = Path(tmp)
        loop = [sys.executable, "-c", LOOP, str(root / "loop"), args.images, args.dataset]
        label = "plain loop over imagecorruptions.corrupt (1 process, 1 CPU)"
        rows.append((label, _run(_pinned(loop, 1), env)))
        if not args.no_serial:
            cmd = [*nicspec, "--out", str(root / "serial"), "--scheduler", "serial"]
            label = "nicspec corrupt --scheduler serial (in-process, 1 CPU)"
            rows.append((label, _run(_pinned(cmd, 1), env)))
        for n in [int(w) for w in args.workers.split(",") if w.strip()]:
            cmd = [*nicspec, "--out", str(root / f"w{n}"), "--jobs", str(n)]
            label = f"nicspec corrupt --jobs {n} (LocalCluster, {n} worker{'s' * (n > 1)}, {n} CPU)"
            rows.append((label, _run(_pinned(cmd, n), env)))
        for folder in root.iterdir():
            found = len(list(folder.rglob("*.png")))
            if found != n_files:
                raise SystemExit(f"{folder.name}: {found} files, expected {n_files}")
    after = _uptime()
    loop_s = rows[0][1][0]
    print(f"{n_files} files ({args.images}, 15 corruptions x 5 severities):\n")
    print("| run | wall (s) | CPU (s) | files/s | wall vs plain loop |")
    print("|---|---:|---:|---:|---:|")
    for label, (wall, cpu) in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {n_files / wall:.2f} | {loop_s / wall:.2f}x |")
    print(f"\nload before: {before}\nload after:  {after}\ncores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
