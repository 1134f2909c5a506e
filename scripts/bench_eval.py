"""Per-image cost of `nicspec eval`: the baseline commit against the working tree, in one run.

For each codec, each input (clean; corrupted; "ladder": a clean point no map reads, which the
tree stores without maps; "shared": corrupted inputs another codec saw first, which the tree reads
from the store instead of corrupting again) and each side, one fresh Python process imports
nicspec_utils (timed: the one-off start-up a long-lived worker pays once) and evaluates N Kodak
images, then 2N other ones, into a fresh results folder (no cache hits). The first run pays the
lazy imports (torch, OpenCV, imagecorruptions) and other first-call costs; the per-image wall and
codec times are the second (warm) run's, divided by 2N, so a configuration's own fixed costs
(writing its NPZ and JSON) are spread over its images; "first run" is what the N-image run spent
beyond N such per-image costs. The baseline is checked out with `git worktree add` into a
temporary folder and imported via PYTHONPATH. Target: wall <= 1.5 * codec + 0.06 s per image.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_eval.py --n 4

prints a Markdown table (and --json writes every number).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "8bdbd5c"
CODECS: list[tuple[str, dict[str, Any]]] = [
    ("jpeg", {"quality": 75}),
    ("webp", {"quality": 75}),
    ("jpeg2000", {"quality": 32}),
    ("avif", {"quality": 60}),
    ("hevc", {"quality": 60}),
    ("nic:sh-mse-0.0067", {"estimate": True}),
]
CORRUPTION = ("gaussian_noise", 3)
# (name, corrupted, maps, shared): what a chapter asks of an entry. "ladder": a clean
# rate-distortion point that no map reads; "shared": corrupted inputs another codec saw first.
INPUTS = [
    ("clean", False, True, False),
    ("corrupted", True, True, False),
    ("ladder", False, False, False),
    ("shared", True, True, True),
]
TARGET_FACTOR, TARGET_EXTRA_S = 1.5, 0.06

# runs in the child process: argv[1] is the job as JSON, prints one JSON line
WORKER = r"""
import inspect, json, sys, time
from pathlib import Path
job = json.loads(sys.argv[1])
t0 = time.perf_counter()
import importlib
# the module's home in the side's own tree (older code: nicspec_utils/evaluate.py); importing
# the other home would mix the two trees through the editable install
engines = (Path(job["root"]) / "nicspec_utils" / "engines" / "evaluate.py").is_file()
ev = importlib.import_module("nicspec_utils." + ("engines.evaluate" if engines else "evaluate"))
import_s = time.perf_counter() - t0
kwargs = dict(job["kwargs"])
if not job["maps"] and "maps" in inspect.signature(ev.evaluate).parameters:
    kwargs["maps"] = False  # a ladder point: code that cannot skip the maps computes them
runs = []
for ids in job["id_sets"]:
    if job["shared"]:  # another codec saw these corrupted inputs first (not timed)
        ev.evaluate("none", "kodak", image_ids=ids, out=job["out"], progress=False,
                    corruption=job["corruption"], severity=job["severity"])
    w, c = time.perf_counter(), time.process_time()
    path = ev.evaluate(job["codec"], "kodak", image_ids=ids, out=job["out"], progress=False,
                       corruption=job["corruption"], severity=job["severity"], **kwargs)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    m = json.loads(open(path).read())
    npz = Path(path).parent / "spectra.npz"
    runs.append({"n": len(ids), "wall_s": wall, "cpu_s": cpu, "codec_s": m["codec_time_s"],
                 "npz_bytes": npz.stat().st_size if npz.is_file() else 0})
print("BENCH " + json.dumps({"import_s": import_s, "runs": runs}))
"""


def run_side(
    pythonpath: Path,
    codec: str,
    kwargs: dict[str, Any],
    variant: tuple[str, bool, bool, bool],
    n: int,
    out: Path,
) -> dict[str, Any]:
    """One fresh process: import time, N images (pays the one-off costs), then 2N others (warm:
    the per-image numbers)."""
    ids = [f"kodim{i:02d}" for i in range(1, 3 * n + 1)]
    _, corrupted, maps, shared = variant
    job = {
        "root": str(pythonpath),
        "maps": maps,
        "shared": shared,
        "codec": codec,
        "kwargs": kwargs,
        "corruption": CORRUPTION[0] if corrupted else None,
        "severity": CORRUPTION[1] if corrupted else None,
        "out": str(out),
        "id_sets": [ids[:n], ids[n:]],
    }
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1"}
    env.setdefault("NICSPEC_DATA_MIRROR", "/work/shared/data")
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(job)],
        capture_output=True, text=True, env=env, cwd=pythonpath,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    data = json.loads(line[6:])
    first, second = data["runs"]
    per_wall = second["wall_s"] / second["n"]
    per_codec = second["codec_s"] / second["n"]
    return {
        **data,
        "wall_per_image_s": per_wall,
        "codec_per_image_s": per_codec,
        "cpu_per_image_s": second["cpu_s"] / second["n"],
        "first_run_extra_s": first["wall_s"] - n * per_wall,
        "npz_mb": first["npz_bytes"] / 1e6,
    }


def _fmt_side(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return ["error: " + r["error"][:60], "", "", "", ""]
    wall, codec = r["wall_per_image_s"], r["codec_per_image_s"]
    ok = wall <= TARGET_FACTOR * max(codec, 0.0) + TARGET_EXTRA_S
    ratio = f"{wall / codec:.1f}" if codec > 0 else "n/a"
    return [f"{wall:.3f}", f"{codec:.3f}", ratio, "yes" if ok else "no", f"{r['npz_mb']:.1f}"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4, help="images per run (the second run has 2N)")
    p.add_argument("--baseline", default=BASELINE, help="baseline commit")
    p.add_argument("--codecs", help="comma-separated subset of: " + ",".join(c for c, _ in CODECS))
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument(
        "--inputs",
        default=",".join(v[0] for v in INPUTS),
        help="comma-separated subset of: " + ",".join(v[0] for v in INPUTS),
    )
    args = p.parse_args(argv)
    if not 1 <= args.n <= 8:
        p.error("--n must be 1..8 (Kodak has 24 images; the runs use 3N)")
    wanted = set(args.codecs.split(",")) if args.codecs else None
    codecs = [(c, kw) for c, kw in CODECS if wanted is None or c in wanted]
    names = args.inputs.split(",")
    variants = [v for v in INPUTS if v[0] in names]
    if len(variants) != len(names):
        p.error("--inputs: choose from " + ",".join(v[0] for v in INPUTS))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            for codec, kwargs in codecs:
                for variant in variants:
                    row: dict[str, Any] = {"codec": codec, "input": variant[0],
                                           "corrupted": variant[1]}  # fmt: skip
                    for side, path in (("baseline", base), ("tree", ROOT)):
                        out = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{side}-"))
                        started = time.perf_counter()
                        row[side] = run_side(path, codec, kwargs, variant, args.n, out)
                        row[side]["process_s"] = time.perf_counter() - started
                    rows.append(row)
                    print(f"done: {codec} {variant[0]}", file=sys.stderr)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                capture_output=True,
            )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    corr = f"{CORRUPTION[0]}-{CORRUPTION[1]}"
    print(
        f"Per image on Kodak (512x768), warm run of 2N={2 * args.n} images after N, per cell, "
        f"baseline {args.baseline} vs working tree; wall and codec s/image, ratio wall/codec, "
        f"target wall <= {TARGET_FACTOR} x codec + {TARGET_EXTRA_S} s; NPZ MB per configuration."
    )
    print()
    head = ["codec", "input", "start-up s (base / tree)"]
    for side in ("base", "tree"):
        head += [f"{side} wall", f"{side} codec", f"{side} ratio", f"{side} target", f"{side} NPZ"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        b, t = row["baseline"], row["tree"]

        def startup(r: dict[str, Any]) -> str:
            if "error" in r:
                return "-"
            return f"{r['import_s']:.1f}+{r['first_run_extra_s']:.1f}"

        labels = {"clean": "clean", "ladder": "clean, no maps (RD ladder)",
                  "corrupted": corr, "shared": f"{corr}, inputs stored"}  # fmt: skip
        kind = labels[row.get("input", "clean")]
        cells = [row["codec"], kind, f"{startup(b)} / {startup(t)}"]
        print("| " + " | ".join(cells + _fmt_side(b) + _fmt_side(t)) + " |")
    print()
    print(
        "start-up = importing nicspec_utils + the first run's time beyond N per-image costs "
        "(lazy imports such as torch, OpenCV, imagecorruptions; codec/model set-up)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
