"""Benchmark: the reference Fourier-heat-map cost model against nicspec's batched one.

Reference cost model (Yin et al.'s code as used by the paper): one fresh Python process per basis,
images coded one at a time with real entropy coding. Ours: one process, NIC estimate mode, many
perturbed images per forward pass (:func:`nicspec_utils.fourier_heatmap.heatmap`). Both sides
run as subprocesses (so both pay interpreter start, imports and model loading), on the same
bases, images and random signs; the script reports the ratio, checks that the per-basis mean
PSNRs agree within ``--tol`` dB and projects the full grid x (grid/2+1) map on Kodak at 512x512.

    OMP_NUM_THREADS=1 python scripts/bench_fourier_heatmap.py --bases 8 --images 4 --crop 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

KODAK_IMAGES = 24
FULL_CROP = 512


def pick_bases(grid: int, n: int) -> list[tuple[int, int]]:
    """``n`` table entries spread evenly over the one-sided table (row-major order)."""
    from nicspec_utils.engines.heatmap import table_bases

    allb = table_bases(grid)
    idx = np.unique(np.linspace(0, len(allb) - 1, n).round().astype(int))
    return [allb[i] for i in idx]


def _threads() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def worker_reference(args: argparse.Namespace) -> dict[str, Any]:
    """One basis, as the reference does it: this whole process, batch of one, real coding."""
    from nicspec_utils.codecs import get_codec
    from nicspec_utils.data import get_dataset
    from nicspec_utils.engines.heatmap import _record, centre_crop, perturbed_inputs

    _threads()
    codec = get_codec(args.codec, estimate=False, device=args.device)
    ds = get_dataset("kodak").select(limit=args.images)
    cleans = np.stack([centre_crop(ds.load(i), args.crop) for i in ds.image_ids])
    t0 = time.perf_counter()
    inputs = perturbed_inputs(cleans, args.r, args.c, args.grid, args.eps, args.seed)
    results = [codec.compress(im) for im in inputs]
    rec = _record(cleans, inputs, results)
    return {"compute_s": time.perf_counter() - t0, **rec}


def worker_ours(args: argparse.Namespace) -> dict[str, Any]:
    """All bases in one process, batched estimate mode."""
    from nicspec_utils.engines.heatmap import heatmap

    _threads()
    bases = [tuple(b) for b in json.loads(args.bases_json)]
    with tempfile.TemporaryDirectory() as tmp:
        res = heatmap(
            args.codec, "kodak", grid=args.grid, crop=args.crop, limit=args.images,
            eps=args.eps, seed=args.seed, estimate=True, batch_size=args.batch_size,
            cache_dir=tmp, bases=bases, progress=False, codec_options={"device": args.device},
        )  # fmt: skip
    return {
        "compute_s": res.timing["compute_s"],
        "perturbed": {f"{r},{c}": res.table_perturbed[r, c] for r, c in bases},
        "clean": {f"{r},{c}": res.table_clean[r, c] for r, c in bases},
    }


def _run(argv: list[str]) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if out.returncode:
        sys.exit(f"worker failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def main() -> int:
    """Parse arguments; run a worker or the whole benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", default="nic:sh-mse-0.0067")
    p.add_argument("--bases", type=int, default=8, help="number of bases")
    p.add_argument("--images", type=int, default=4, help="Kodak images")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--eps", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu", help="torch device of the NIC model (both sides)")
    p.add_argument("--tol", type=float, default=0.05, help="dB")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--worker", choices=("reference", "ours"), help=argparse.SUPPRESS)
    p.add_argument("--r", type=int, help=argparse.SUPPRESS)
    p.add_argument("--c", type=int, help=argparse.SUPPRESS)
    p.add_argument("--bases-json", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        fn = worker_reference if args.worker == "reference" else worker_ours
        print(json.dumps(fn(args)))
        return 0

    common = [
        "--codec", args.codec, "--images", str(args.images), "--crop", str(args.crop),
        "--grid", str(args.grid), "--eps", str(args.eps), "--seed", str(args.seed),
        "--batch-size", str(args.batch_size), "--device", args.device,
    ]  # fmt: skip
    bases = pick_bases(args.grid, args.bases)
    n_img = len(bases) * args.images
    print(f"{len(bases)} bases x {args.images} Kodak crops of {args.crop}, {args.codec}")

    ref_wall, ref_compute, ref = 0.0, 0.0, {}
    for r, c in bases:
        out, wall = _run([*common, "--worker", "reference", "--r", str(r), "--c", str(c)])
        ref_wall += wall
        ref_compute += out["compute_s"]
        ref[f"{r},{c}"] = out
    ours, ours_wall = _run([*common, "--worker", "ours", "--bases-json", json.dumps(bases)])

    diffs = []
    for k, rec in ref.items():
        for name, key in (("perturbed", "psnr_perturbed"), ("clean", "psnr_clean")):
            diffs.append(abs(float(np.mean(rec[key])) - ours[name][k]))
    max_diff = max(diffs)

    # projection: per-process overhead + per-image cost scaled by pixels (CNN cost ~ area)
    n_full = args.grid * (args.grid // 2 + 1)
    scale = (FULL_CROP / args.crop) ** 2
    overhead = (ref_wall - ref_compute) / len(bases)
    ref_img = ref_compute / n_img
    ours_img = ours["compute_s"] / n_img
    ours_fixed = ours_wall - ours["compute_s"]
    proj_ref = n_full * (overhead + KODAK_IMAGES * ref_img * scale)
    proj_ours = ours_fixed + n_full * KODAK_IMAGES * ours_img * scale
    numbers = {
        "codec": args.codec,
        "bases": len(bases),
        "images": args.images,
        "crop": args.crop,
        "batch_size": args.batch_size,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "device": args.device,
        "reference_wall_s": ref_wall,
        "reference_per_process_overhead_s": overhead,
        "reference_per_image_s": ref_img,
        "ours_wall_s": ours_wall,
        "ours_per_image_s": ours_img,
        "speedup": ref_wall / ours_wall,
        "max_abs_diff_db": max_diff,
        "agree": max_diff <= args.tol,
        "projected_full_map_bases": n_full,
        "projected_reference_h": proj_ref / 3600,
        "projected_ours_h": proj_ours / 3600,
    }
    print(f"reference: {ref_wall:.1f} s ({overhead:.2f} s/process overhead, {ref_img:.3f} s/image)")
    print(f"ours:      {ours_wall:.1f} s ({ours_img:.3f} s/image)")
    print(f"speedup:   {numbers['speedup']:.1f}x; max |dPSNR| = {max_diff:.4f} dB")
    print(
        f"projected full {args.grid}x{args.grid // 2 + 1} map, Kodak 24 x {FULL_CROP}^2 on this "
        f"CPU: reference {proj_ref / 3600:.1f} h, ours {proj_ours / 3600:.1f} h"
    )
    if args.json:
        from nicspec_utils.io import atomic_write_json

        atomic_write_json(args.json, numbers)
    if not numbers["agree"]:
        print(f"maps differ by more than {args.tol} dB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
