"""Project the `paper` profile's cost on this machine from measured per-image task costs.

Measures, in this process (serial engine, a fresh results folder), the wall time per image of
each kind of task the book's sweeps are made of, on 2 full-size Kodak images (CLIC crops are the
same 512x768): a classic codec clean and corrupted, JPEG2000 matched to a bpp (its own rate
control) and to a PSNR (a search), the NIC with real entropy coding and with the likelihood
estimate, one corruption applied and written. It then counts the (entry, image) tasks of each
chapter under `book/profiles.yaml`'s `paper` profile, following the chapters' loops, multiplies,
and divides by the workers. Counts are the chapters' structure as of this commit; the Fourier heat
maps and classification use the costs of the cost models in their own benchmarks (stated). Prints
a Markdown table.

    OMP_NUM_THREADS=1 python scripts/project_paper.py [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
KODAK, CLIC = 24, 26
N_CORRUPTIONS, N_SEVERITIES = 15, 5
IDS = ["kodim01", "kodim02"]


def _per_image(fn, repeat_ids: list[str]) -> float:
    start = time.perf_counter()
    fn(repeat_ids)
    return (time.perf_counter() - start) / len(repeat_ids)


def measure(out: Path) -> dict[str, float]:
    """Seconds per image of each task kind (after one warm-up evaluation of each)."""
    from nicspec_utils import corruptions
    from nicspec_utils.data import get_dataset
    from nicspec_utils.engines.evaluate import evaluate

    def ev(codec: str, corrupt: bool = False, **kw):  # noqa: ANN202
        def run(ids: list[str]) -> None:
            evaluate(codec, "kodak", ids, *(("fog", 3) if corrupt else (None, None)), out=out,
                     progress=False, **kw)  # fmt: skip

        return run

    warm = ["kodim23"]
    kinds = {
        "classic clean (JPEG2000 at a ratio)": ev("jpeg2000", quality=32),
        "classic corrupted (JPEG2000 at a ratio)": ev("jpeg2000", True, quality=24),
        "JPEG2000 matched to a bpp": ev("jpeg2000", True, bpp=0.5),
        "NIC, real entropy coding": ev("nic:sh-mse-0.0067", True),
        "NIC, likelihood estimate": ev("nic:sh-mse-0.0067", True, estimate=True),
    }
    costs = {}
    for name, fn in kinds.items():
        fn(warm)
        costs[name] = _per_image(fn, IDS)
    ds = get_dataset("kodak")
    img = ds.load("kodim05")
    corruptions.corrupt(img, "glass_blur", 1)  # numba's compile, once
    start = time.perf_counter()
    for name in corruptions.corruption_names():
        corruptions.corrupt(img, name, 3)
    costs["one corruption (mean of the 15)"] = (time.perf_counter() - start) / 15
    return costs


def counts(paper: dict) -> dict[str, dict[str, int]]:
    """(entry, image) tasks per chapter and kind under the paper profile."""
    ch2, ch3 = paper["02_rate_distortion"], paper["03_spectral_analysis"]
    both = KODAK + CLIC
    ladders = {"jpeg": 5, "jpeg2000": 9, "webp": 5, "avif": 5, "hevc": 5}
    vr = len(str(ch2["vr_lambdas"]).split(","))
    corrupted_models = len(str(ch2["corrupted_models"]).split(","))
    corrupted_sets = both if "clic" in str(ch2["corrupted_datasets"]) else KODAK
    grid = N_CORRUPTIONS * N_SEVERITIES
    inflation = len(str(ch2["inflation_codecs"]).split(","))
    out = {
        "1 corruption benchmark": {"corruption": both * grid},
        "2 rate-distortion": {
            "classic clean": both * sum(ladders.values()),
            "NIC real": both * (7 + vr) + corrupted_sets * grid * corrupted_models,
            "JPEG2000 matched to a bpp": corrupted_sets * grid * corrupted_models,
            "classic corrupted": corrupted_sets * grid * inflation,
        },
    }
    gr = len(str(ch3["gr_models"]).split(","))
    d_models = len(str(ch3["nic_models"]).split(","))
    trend = len(str(ch3["trend_corruptions"]).split(",")) * N_SEVERITIES
    variants = len(str(ch3["variants"]).split(","))
    nic3 = both * d_models + KODAK * (gr * N_CORRUPTIONS + trend + variants * (1 + N_CORRUPTIONS))
    out["3 D/G/R spectra"] = {
        "NIC real": nic3,
        "JPEG2000 matched to a bpp": nic3,
        "JPEG2000 matched to a PSNR": nic3,
    }
    return out


KIND_COST = {
    "corruption": "one corruption (mean of the 15)",
    "classic clean": "classic clean (JPEG2000 at a ratio)",
    "classic corrupted": "classic corrupted (JPEG2000 at a ratio)",
    "NIC real": "NIC, real entropy coding",
    "JPEG2000 matched to a bpp": "JPEG2000 matched to a bpp",
}
PSNR_SEARCH_FACTOR = 6  # a PSNR match codes an image about 6 times (bisection over the ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("NICSPEC_SCHEDULER", "serial")
    paper = yaml.safe_load((REPO / "book" / "profiles.yaml").read_text())["profiles"]["paper"]
    paper = paper["chapters"]
    with tempfile.TemporaryDirectory(prefix="nicspec-project-") as tmp:
        costs = measure(Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs while measuring\n")
    print("| task kind | s per image (measured) |\n|---|---|")
    for name, value in costs.items():
        print(f"| {name} | {value:.3f} |")
    print(f"\n| chapter | task kind | tasks (entry x image) | CPU h | wall h on {args.workers} |")
    print("|---|---|---|---|---|")
    total = 0.0
    for chapter, kinds in counts(paper).items():
        for kind, n in kinds.items():
            if kind == "JPEG2000 matched to a PSNR":
                per = costs[KIND_COST["JPEG2000 matched to a bpp"]] * PSNR_SEARCH_FACTOR
            else:
                per = costs[KIND_COST[kind]]
            hours = n * per / 3600
            total += hours
            print(f"| {chapter} | {kind} | {n:,} | {hours:.1f} | {hours / args.workers:.1f} |")
    print(f"| **all counted** | | | **{total:.1f}** | **{total / args.workers:.1f}** |")


if __name__ == "__main__":
    main()
