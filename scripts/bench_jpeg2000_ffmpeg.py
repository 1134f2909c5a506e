"""The paper's JPEG2000 (``jpeg2000-ffmpeg``) image by image against batched, side by side.

The same N crops (``--crop`` px squares from the Kodak images: the top-left corner of kodim01,
kodim02, ..., then further corners) are coded in one process, for each case:

- ``one ratio``: every crop at compression ratio 24 / ``--bpp`` (evaluation, rate-distortion
  ladders, ``match_rate``): ``compress`` per crop against ``compress_batch``;
- ``a ratio per crop``: crop k at its own even ratio around 24 / ``--bpp`` (chapter 5's
  JPEG2000 matched per image to a NIC's bpp): ``compress`` per crop against
  ``codecs.base.compress_each``;
- ``PSNR-matched``: each crop at its own target PSNR (chapter 5's and chapters 2-3's PSNR
  matching: the ratio search, 3-5 codings a crop): ``compress`` per crop against
  ``compress_batch`` (the crops' searches in lockstep).

Image by image each coding starts two ffmpeg processes (encode, decode); a batch starts two
per call (per round of the searches when PSNR-matched). Sides alternate ``--repeats`` times; the
wall time per coding is the mean over the repeats. The outputs of the two sides must be
identical (every file's bytes and every reconstruction), else the script exits 1. The CPU
model and the load (``uptime``) are printed before and after.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_jpeg2000_ffmpeg.py --n 16

prints a Markdown table (and --json writes every number).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT / "data" / "kodak"
CASES = ("one ratio", "a ratio per crop", "PSNR-matched")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")]
    return names[0] if names else "unknown CPU"


def crops(n: int, side: int) -> list[np.ndarray]:
    """``n`` ``side`` x ``side`` crops: each Kodak image's top-left corner, then the others."""
    paths = sorted(KODAK.glob("kodim*.png"))
    if not paths:
        sys.exit(f"no Kodak images in {KODAK}")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    out: list[np.ndarray] = []
    for corner in range(4):
        for im in images:
            h, w = im.shape[:2]
            y, x = (0 if corner in (0, 1) else h - side), (0 if corner in (0, 2) else w - side)
            out.append(np.ascontiguousarray(im[y : y + side, x : x + side]))
            if len(out) == n:
                return out
    sys.exit(f"--n {n}: at most {len(out)} crops")


def _identical(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(
        x.bitstream == y.bitstream
        and x.setting == y.setting
        and np.array_equal(x.reconstruction, y.reconstruction)
        for x, y in zip(a, b, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print the table; 1 when a batch's output differs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=16, help="crops (default 16)")
    ap.add_argument("--crop", type=int, default=256, help="crop side in px (default 256)")
    ap.add_argument("--bpp", type=float, default=0.5, help="the one ratio's bpp (default 0.5)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each side (default 2)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"of: {', '.join(CASES)}")
    ap.add_argument("--json", type=Path, help="write every number here")
    args = ap.parse_args(argv)

    from nicspec_utils.codecs import ffmpeg_unavailable, get_codec
    from nicspec_utils.codecs import jpeg2000_ffmpeg as jf
    from nicspec_utils.codecs.base import compress_each
    from nicspec_utils.metrics import psnr

    why = ffmpeg_unavailable()
    if why is not None:
        sys.exit(why)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}")
    images = crops(args.n, args.crop)
    codec = get_codec("jpeg2000-ffmpeg", bpp=args.bpp)
    ratio = int(codec.setting)  # type: ignore[arg-type]
    coders = [codec.at(ratio + 2 * ((k % 9) - 4)) for k in range(len(images))]
    ref = [r.reconstruction for r in codec.compress_batch(images)]
    targets = [(f"crop{k}", psnr(im, rec) + 0.3 * ((k % 5) - 2))
               for k, (im, rec) in enumerate(zip(images, ref, strict=True))]  # fmt: skip

    processes = [0]
    real_run = jf._run

    def counting(cmd: list[str], timeout: float, cwd: Path | None = None) -> Any:
        processes[0] += 1
        return real_run(cmd, timeout, cwd)

    jf._run = counting  # type: ignore[assignment]
    sides: dict[str, tuple[Callable[[], list[Any]], Callable[[], list[Any]]]] = {
        "one ratio": (
            lambda: [codec.compress(im) for im in images],
            lambda: codec.compress_batch(images),
        ),
        "a ratio per crop": (
            lambda: [c.compress(im) for c, im in zip(coders, images, strict=True)],
            lambda: compress_each(coders, images),
        ),
        "PSNR-matched": (
            lambda: [
                c.compress(im)
                for c in [get_codec("jpeg2000-ffmpeg", target_psnr=targets)]
                for im in images
            ],
            lambda: get_codec("jpeg2000-ffmpeg", target_psnr=targets).compress_batch(images),
        ),
    }
    model, load_before = _cpu_model(), _uptime()
    print(f"{model}; {len(images)} crops of {args.crop}x{args.crop}; {codec.version}")
    print(f"load before: {load_before}", flush=True)
    rows, ok = [], True
    for case in cases:
        walls: dict[str, list[float]] = {"image by image": [], "batched": []}
        procs: dict[str, int] = {}
        outs: dict[str, list[Any]] = {}
        for _ in range(args.repeats):
            for side, run in zip(walls, sides[case], strict=True):
                processes[0] = 0
                t0 = time.perf_counter()
                outs[side] = run()
                walls[side].append(time.perf_counter() - t0)
                procs[side] = processes[0]
        same = _identical(outs["image by image"], outs["batched"])
        ok = ok and same
        codings = procs["image by image"] // 2  # two processes a coding, image by image
        one, batch = (float(np.mean(walls[s])) / codings for s in walls)
        rows.append(
            {
                "case": case,
                "codings": codings,
                "processes image by image": procs["image by image"],
                "processes batched": procs["batched"],
                "s per coding image by image": one,
                "s per coding batched": batch,
                "ratio": one / batch,
                "identical": same,
                "walls": walls,
            }
        )
        print(f"{case}: {one:.3f} / {batch:.3f} s a coding, {one / batch:.1f}x", flush=True)
    load_after = _uptime()
    print(f"load after: {load_after}\n")
    print(
        "| case | codings | ffmpeg processes (image by image / batched) "
        "| s per coding, image by image | s per coding, batched | ratio | outputs identical |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['codings']} | {r['processes image by image']} / "
            f"{r['processes batched']} | {r['s per coding image by image']:.3f} | "
            f"{r['s per coding batched']:.3f} | {r['ratio']:.1f}x | "
            f"{'yes' if r['identical'] else 'NO'} |"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": model,
                    "load_before": load_before,
                    "load_after": load_after,
                    "version": codec.version,
                    "n": len(images),
                    "crop": args.crop,
                    "ratio": ratio,
                    "rows": rows,
                },
                indent=1,
            )  # fmt: skip
        )
    if not ok:
        print("batched outputs differ from image-by-image ones", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
