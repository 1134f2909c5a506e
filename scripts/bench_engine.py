"""Benchmark: one evaluation grid on a LocalCluster of 2 workers against 1 worker.

Both clusters are started and warmed (every worker imports the package and codes one image)
before the clock starts; each run writes into its own empty results folder, so nothing is
served from a store. The grid is a chapter-2-like sweep: JPEG2000 over its ladder and JPEG,
WebP over theirs, clean and under two corruptions, on N Kodak images. Prints a Markdown table.

    OMP_NUM_THREADS=1 python scripts/bench_engine.py --images 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def grid(out: Path, ids: list[str]) -> int:
    """The sweep; returns the number of entries it computed."""
    from nicspec_utils.chapters import rate_distortion as rd
    from nicspec_utils.engines import scheduler

    settings = rd.settings.classic_settings("jpeg,jpeg2000,webp", "", 4)
    submitted = 0
    rd.study.rd_sweep(settings, "kodak", ids, out=out)
    submitted += scheduler.last_run["submitted"]
    rd.study.bpp_inflation(
        settings[:4], "kodak", ids, "gaussian_noise,fog", "3", out=out
    )  # corrupted entries of the same settings
    submitted += scheduler.last_run["submitted"]
    return submitted


def run(workers: int, ids: list[str], root: Path) -> tuple[float, int]:
    """Wall time of the grid on a warm cluster of ``workers``; entries computed."""
    from nicspec_utils.engines import evaluate, scheduler

    os.environ[scheduler.SCHEDULER_ENV] = ""
    os.environ[scheduler.PROGRESS_ENV] = "0"
    scheduler.close()
    client = scheduler.get_client(workers=workers)
    warm = root / f"warm-{workers}"
    # one task per worker: imports, the codec registry and a first coding, off the clock
    client.run(lambda: __import__("nicspec_utils.engines.evaluate"))
    futures = [
        client.submit(
            evaluate.run_task,
            {"codec_name": "jpeg", "dataset": "kodak", "image_ids": [f"kodim{20 + i:02d}"],
             "corruption": None, "severity": None, "quality": 50 + i, "bpp": None,
             "codec_options": None, "seed": 0, "out": str(warm), "estimate": False,
             "limit": None, "progress": False, "batch_size": 8},
            pure=False,
        )
        for i in range(workers)
    ]  # fmt: skip
    client.gather(futures)
    out = root / f"grid-{workers}"
    start = time.perf_counter()
    n = grid(out, ids)
    seconds = time.perf_counter() - start
    scheduler.close()
    return seconds, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="Kodak images (default 4)")
    args = parser.parse_args()
    ids = [f"kodim{i:02d}" for i in range(1, args.images + 1)]
    root = Path(tempfile.mkdtemp(prefix="nicspec-bench-engine-"))
    try:
        one, n1 = run(1, ids, root)
        two, n2 = run(2, ids, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("Model name")), "?")  # fmt: skip
    load = os.getloadavg()[0]
    print(f"machine: {model}, {os.cpu_count()} CPUs, load {load:.1f} before the second run")
    print("| cluster | entries | images each | wall (s) | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| 1 worker | {n1} | {len(ids)} | {one:.1f} | 1.00x |")
    print(f"| 2 workers | {n2} | {len(ids)} | {two:.1f} | {one / two:.2f}x |")


if __name__ == "__main__":
    main()
