"""Project a book profile's cost on N workers from per-task costs measured in the same run.

Two halves. **Costs** (:func:`measure`): in this process (the engine's ``serial`` setting, a
fresh results folder, one thread), the CPU seconds (this process and its children: ffmpeg) of
each kind of task the chapters are made of, on full-size Kodak images (CLIC crops are the same
512x768), ImageNet images and training images: a corruption written as PNG and its spectrum
(chapter 1); every classic codec on clean images and at its fixed setting; the NIC with real
entropy coding and with the likelihood estimate; JPEG2000 matched to a bpp and matched image by
image to a PSNR (:class:`ratematch.PsnrTargets`), both measured, on both JPEG2000 paths
(``jpeg2000``: Pillow, ``jpeg2000-ffmpeg``); one Fourier heat-map basis at crop 512 per image
for the NIC (estimate) and JPEG2000 (a map is 64 x 33 bases: :func:`engines.heatmap.table_bases`);
chapter 5's systems per ImageNet image (classifier passes included); chapter 4's training-set
steps (reading, patch PCA, per-image fits, one Adam step of a linear autoencoder) and its patch
codecs; chapter 6's input features and one-image JPEG2000 entries. ``--save-costs FILE`` writes
them (with the machine, the load average and the dataset sizes seen), ``--costs FILE`` reuses
them instead of measuring.

**Counts** (:func:`count_profile`): for each chapter, the tasks its study functions ask for
under the profile's parameters (``book/profiles.yaml`` over the notebook's own defaults),
following the chapters' loops; an evaluation another chapter already asked for (the same
codec, rate, images and input: the same store key) is counted once, where it first appears.
Dask tasks divide by the workers; steps that run in the notebook's kernel (chapter 4's
training-set steps, chapter 2's explorer, chapter 5's clean-classifier table) do not.

    OMP_NUM_THREADS=1 python scripts/project_paper.py --profile paper --profile protocol \\
        [--workers 2 --workers 16] [--save-costs costs.json | --costs costs.json] \\
        [--cuts paper:protocol] [--check-uses RESULTS]

``--cuts SMALL:LARGE`` adds, for each parameter in which profile SMALL differs from LARGE, the
hours that setting it to LARGE's value alone would add (:func:`cut_costs`). ``--check-uses
RESULTS`` compares the store entries counted per chapter with those a build of the first profile
used (:func:`entries_per_chapter`, :func:`logged_entries`). The committed costs are
``data/benchmarks/task_costs.json``; ``tests/test_project_paper.py`` projects from them.

Not counted: each chapter's kernel start, tables, bootstraps and figures (a warm chapter runs
in about a minute), the Dask rounds' imbalance (a round's last tasks run on fewer workers than
there are), the scheduler's per-task overhead, and VTM (not installed where this was written).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "book" / "profiles.yaml"
NOTEBOOKS = REPO / "notebooks"
J2K_PATHS = ("jpeg2000", "jpeg2000-ffmpeg")
CLASSIC = ("jpeg", "jpeg2000", "webp", "avif", "hevc")
FHM_BASES_PER_GRID = {64: 64 * 33}  # table_bases(64); other grids: grid * (grid // 2 + 1)
TRAIN_SETS = ("cid22-train", "gb82")
PCA_SIZES = (8, 16, 32)
IMAGENET = "imagenet-val-subset"

# kind -> (what one unit is, label in the tables). J2K kinds have a cost per path: "KIND@PATH".
KINDS: dict[str, tuple[str, str]] = {
    "corrupt": ("file", "one corruption, written as PNG"),
    "corruption-spectrum": ("file", "one corruption's spectrum"),
    "classic-clean": ("image", "classic codecs, clean ladder points"),
    "classic-maps": ("image", "classic codecs at a fixed setting, with maps"),
    "nic-real": ("image", "NIC, real entropy coding"),
    "nic-estimate": ("image", "NIC, likelihood estimate"),
    "j2k-bpp": ("image", "JPEG2000 matched to a bpp"),
    "j2k-psnr": ("image", "JPEG2000 matched to a PSNR"),
    "j2k-single": ("entry", "JPEG2000 at one image's bpp (a one-image entry)"),
    "fhm-nic": ("basis x image", "heat map, NIC (estimate)"),
    "fhm-nic-real": ("basis x image", "heat map, NIC (real coding)"),
    "fhm-j2k": ("basis x image", "heat map, JPEG2000"),
    "fhm-j2k-search": ("image", "heat map, JPEG2000's PSNR search on a crop"),
    "cls-none": ("image", "classifier on the uncompressed image"),
    "cls-none-resnet50": ("image", "ResNet-50 on the uncompressed image"),
    "cls-corrupt": ("image", "corrupting a 256x256 input"),
    "cls-nic-real": ("image", "NIC (real coding) + classifier"),
    "cls-nic-estimate": ("image", "NIC (estimate) + classifier"),
    "cls-j2k-bpp": ("image", "JPEG2000 matched to a bpp + classifier"),
    "cls-j2k-psnr": ("image", "JPEG2000 matched to a PSNR + classifier"),
    "ch4-load": ("training image", "reading a training image (luma)"),
    "ch4-pca": ("training image x size", "patch PCA of the training set"),
    "ch4-pca-fit": ("training image x size", "an image's own patch PCA"),
    "ch4-model": ("training image x rank", "AE vs PCA on an image's patches"),
    "ch4-power": ("image", "an image's power spectrum"),
    "ch4-ae-step": ("Adam step", "linear autoencoder training"),
    "ch4-patch-codec": ("image", "linear patch codec on Kodak"),
    "ch4-closed": ("image x corruption x rank", "closed-form shift prediction"),
    "ch6-features": ("image x condition", "input features (spectrum fit)"),
}
JPEG2000_KINDS = (
    "j2k-bpp", "j2k-psnr", "j2k-single", "fhm-j2k", "fhm-j2k-search", "cls-j2k-bpp", "cls-j2k-psnr",
)  # fmt: skip


# --- costs ------------------------------------------------------------------------------------


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (ffmpeg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], Any], units: float) -> tuple[float, float]:
    """(CPU s, wall s) per unit of ``fn()``."""
    c0, w0 = _cpu(), time.perf_counter()
    fn()
    return (_cpu() - c0) / units, (time.perf_counter() - w0) / units


@dataclass
class Costs:
    """Seconds per unit of each kind (CPU, and the wall time it took while measuring), with
    the conditions of the measurement and the dataset sizes seen."""

    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def record(self, kind: str, fn: Callable[[], Any], units: float,
               like: tuple[str, str, str] | None = None) -> None:  # fmt: skip
        """Measure ``fn`` (``units`` of ``kind``), printing the result as it comes. Should it
        fail and ``like`` = (other kind, numerator, denominator) be given, the cost is the
        other kind's times numerator / denominator (all measured), and the note says so."""
        try:
            cpu, wall = _timed(fn, units)
        except Exception as exc:  # noqa: BLE001 - reported, and the measurement goes on
            if like is None:
                raise
            other, num, den = like
            factor = self.cpu[num] / self.cpu[den]
            self.cpu[kind] = self.cpu[other] * factor
            self.meta[kind] = (f"failed ({type(exc).__name__}: {str(exc)[:80]}): {other} x "
                               f"{num} / {den} = {factor:.3f}")  # fmt: skip
            print(f"  {kind}: {self.meta[kind]}", file=sys.stderr, flush=True)
            return
        self.cpu[kind], self.wall[kind] = cpu, wall
        print(f"  {kind}: {cpu:.4f} CPU-s, {wall:.4f} s per unit", file=sys.stderr, flush=True)

    def of(self, kind: str, j2k: str, variant: str | int | None = None) -> float:
        """CPU seconds per unit of ``kind`` (J2K kinds on the path ``j2k``; ``variant``: the
        codec of a classic kind, the patch size of a PCA)."""
        key = kind
        if kind in JPEG2000_KINDS:
            key = f"{kind}@{j2k}"
        elif variant in ("jpeg2000", "jpeg2000-other"):  # the chapters' JPEG2000, or the other
            other = [p for p in J2K_PATHS if p != j2k][0]
            key = f"{kind}@{j2k if variant == 'jpeg2000' else other}"
        elif variant == "jpeg2000-pillow":
            key = f"{kind}@jpeg2000"
        elif variant is not None:
            key = f"{kind}@{variant}"
        if key not in self.cpu:
            raise SystemExit(f"no measured cost for {key!r}: measure again (without --costs)")
        return self.cpu[key]

    def save(self, path: Path) -> None:
        """Write as JSON."""
        data = {"meta": self.meta, "sizes": self.sizes, "cpu_s": self.cpu, "wall_s": self.wall}
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Costs:
        """Read what :meth:`save` wrote."""
        d = json.loads(path.read_text())
        costs = cls(dict(d["cpu_s"]), dict(d.get("wall_s", {})), dict(d["sizes"]), d["meta"])
        derive(costs)
        return costs


def dataset_sizes() -> dict[str, int]:
    """Images of each dataset the chapters use, on this machine (0: not here)."""
    from nicspec_utils.data import get_dataset
    from nicspec_utils.errors import NicspecError
    from nicspec_utils.selection import CLIC, resolve

    out = {}
    for role, name in (("kodak", "kodak"), ("clic", resolve(CLIC)), ("imagenet", IMAGENET),
                       *((n, n) for n in TRAIN_SETS)):  # fmt: skip
        try:
            out[role] = len(get_dataset(name).image_ids)
        except NicspecError:
            out[role] = 0
    return out


def measure(out: Path, quick: bool = False) -> Costs:
    """Measure every kind of :data:`KINDS` (module doc); ``quick``: fewer images (a test)."""
    import numpy as np
    from PIL import Image

    from nicspec_utils import corruptions
    from nicspec_utils.data import get_dataset
    from nicspec_utils.engines.evaluate import evaluate, run_point
    from nicspec_utils.spectral import error_spectrum

    costs = Costs(sizes=dataset_sizes())
    ids = ["kodim01"] if quick else ["kodim01", "kodim02"]
    warm = ["kodim23"]
    fog = {"corruption": "fog", "severity": 3}
    kw: dict[str, Any] = {"out": out, "progress": False}
    kodak = get_dataset("kodak")

    def ev(codec: str, image_ids: Sequence[str], **more: Any) -> Callable[[], Any]:
        return lambda: evaluate(codec, "kodak", image_ids=list(image_ids), **kw, **more)

    print("chapters 1-3 and 6: evaluations", file=sys.stderr)
    evaluate("jpeg", "kodak", image_ids=ids + warm, quality=50, **fog, **kw)  # store fog-3 inputs
    ev("jpeg2000", warm, quality=32)()  # Pillow's codec and the metrics, once
    from nicspec_utils.chapters.rate_distortion.settings import DEFAULT_QUALITIES, FIXED_QUALITY

    ev("jpeg2000-ffmpeg", warm, quality=32)()
    for codec in (*CLASSIC, "jpeg2000-ffmpeg"):
        family = codec.partition("-")[0]  # both JPEG2000 paths share JPEG2000's ladder
        ladder = DEFAULT_QUALITIES[family]
        q = ladder[len(ladder) // 2]
        costs.record(f"classic-clean@{codec}", ev(codec, ids, quality=q, maps=False), len(ids))
        fixed = FIXED_QUALITY[family]
        costs.record(f"classic-maps@{codec}", ev(codec, ids, quality=fixed, **fog), len(ids))
    nic = "nic:sh-mse-0.0067"
    ev(nic, warm, **fog)()  # torch and the model, once
    costs.record("nic-real", ev(nic, ids, **fog), len(ids))
    costs.record("nic-estimate", ev(nic, ids, estimate=True, **fog), len(ids))
    point = run_point(nic, "kodak", ids, **fog, out=out)
    targets = [(str(r["id"]), float(r["psnr"])) for r in point.metrics["per_image"]]
    for j2k in J2K_PATHS:
        ev(j2k, warm, quality=24)()
        costs.record(f"j2k-bpp@{j2k}", ev(j2k, ids, bpp=round(point.bpp, 4), **fog), len(ids))
        costs.record(
            f"j2k-psnr@{j2k}",
            lambda j2k=j2k: run_point(j2k, "kodak", ids, target_psnr=targets, out=out, **fog),
            len(ids),
        )
        costs.record(
            f"j2k-single@{j2k}",
            lambda j2k=j2k: [
                run_point(j2k, "kodak", [i], bpp=0.4 + 0.01 * n, maps=False, out=out, **fog)
                for n, i in enumerate(ids)
            ],
            len(ids),
        )

    print("chapter 1: corruptions and their spectra", file=sys.stderr)
    img = kodak.load("kodim05")
    corruptions.corrupt(img, "glass_blur", 1)  # numba's compile, once
    names = corruptions.corruption_names()
    made: list[np.ndarray] = []

    def corrupt_all() -> None:
        for n, name in enumerate(names):
            made.append(corruptions.corrupt(img, name, 3))
            Image.fromarray(made[-1]).save(out / f"c{n}.png")

    costs.record("corrupt", corrupt_all, len(names))

    def spectra() -> None:
        for n in range(len(names)):
            x = np.asarray(Image.open(out / f"c{n}.png"))
            error_spectrum(x, img, kodak.normalisation, dtype=np.float32)

    costs.record("corruption-spectrum", spectra, len(names))

    _measure_heatmaps(costs, out, ids)
    _measure_classification(costs, out, quick)
    _measure_lowpass(costs, out, ids, quick)

    print("chapter 6: input features", file=sys.stderr)
    from nicspec_utils.chapters import beyond_the_paper as bp

    costs.record(
        "ch6-features",
        lambda: [bp.input_features(kodak.load(i), kodak.normalisation) for i in ids],
        len(ids),
    )
    derive(costs)
    return costs


def derive(costs: Costs) -> None:
    """Costs derived from measured ones (each note says how): a NIC heat-map basis with real
    coding (the estimate's basis times real / estimate coding of whole images) and JPEG2000's
    PSNR search on a clean 512 x 512 crop (a basis's coding times PSNR / bpp matching of whole
    images: the search codes the crop as often as that one does)."""
    ratio = costs.cpu["nic-real"] / costs.cpu["nic-estimate"]
    costs.cpu["fhm-nic-real"] = costs.cpu["fhm-nic"] * ratio
    costs.meta["fhm-nic-real"] = f"derived: fhm-nic x nic-real / nic-estimate = {ratio:.3f}"
    for j2k in J2K_PATHS:
        ratio = costs.cpu[f"j2k-psnr@{j2k}"] / costs.cpu[f"j2k-bpp@{j2k}"]
        costs.cpu[f"fhm-j2k-search@{j2k}"] = costs.cpu[f"fhm-j2k@{j2k}"] * ratio
        costs.meta[f"fhm-j2k-search@{j2k}"] = f"derived: fhm-j2k x j2k-psnr / j2k-bpp = {ratio:.3f}"


def _measure_heatmaps(costs: Costs, out: Path, ids: Sequence[str]) -> None:
    """One heat-map basis per image at crop 512 (a few bases, on ``ids``)."""
    from nicspec_utils.engines.heatmap import heatmap

    print("chapter 3b: heat-map bases at crop 512", file=sys.stderr)
    bases = [(20, 20), (31, 25), (40, 10)]
    units = len(bases) * len(ids)
    common = {"grid": 64, "crop": 512, "images": list(ids), "eps": 4.0, "progress": False,
              "scheduler": "serial", "cache_dir": out / "fhm"}  # fmt: skip
    nic = "nic:sh-mse-0.0067"
    heatmap(nic, "kodak", bases=[(2, 2)], **common)  # the model, once
    costs.record("fhm-nic", lambda: heatmap(nic, "kodak", bases=bases, **common), units)
    for j2k in J2K_PATHS:
        like = None if j2k == J2K_PATHS[0] else (
            f"fhm-j2k@{J2K_PATHS[0]}", f"j2k-bpp@{j2k}", f"j2k-bpp@{J2K_PATHS[0]}")  # fmt: skip

        def run(j2k: str = j2k, bases: Sequence[tuple[int, int]] = bases) -> Any:
            return heatmap(j2k, "kodak", bpp=0.5, bases=list(bases), **common)

        costs.record(f"fhm-j2k@{j2k}", lambda run=run: (run(bases=[(2, 2)]), run()),
                     units + len(ids), like)  # fmt: skip


def _measure_classification(costs: Costs, out: Path, quick: bool) -> None:
    """Chapter 5's systems per ImageNet image (each classify call: coding + classifier)."""
    from nicspec_utils import corruptions
    from nicspec_utils.data import get_dataset
    from nicspec_utils.engines.classify import available, classify, prepare

    print("chapter 5: classification systems", file=sys.stderr)
    if not costs.sizes.get("imagenet"):
        raise SystemExit(f"{IMAGENET} is not on this machine: set NICSPEC_DATA_MIRROR")
    all_ids = get_dataset(IMAGENET).image_ids
    warm, ids = all_ids[:1], all_ids[1 : 3 if quick else 7]
    n = len(ids)
    kw = {"out": out}
    nic = "nic:sh-mse-0.0067"

    def warm_up(kind: str, fn: Callable[[], Any], units: float, like: Any = None) -> None:
        with contextlib.suppress(Exception):  # the measured pass reports it
            fn()

    pillow = J2K_PATHS[0]
    for image_ids in (warm, ids):  # the first pass loads the classifier and the model
        run = costs.record if image_ids is ids else warm_up
        run("cls-none", lambda image_ids=image_ids: classify("none", IMAGENET, image_ids, **kw), n)
        for mode, est in (("real", False), ("estimate", True)):
            run(f"cls-nic-{mode}",
                lambda image_ids=image_ids, est=est: classify(nic, IMAGENET, image_ids,
                                                              estimate=est, **kw), n)  # fmt: skip
        res = classify(nic, IMAGENET, image_ids, estimate=False, **kw)
        for j2k in J2K_PATHS:
            for m in ("bpp", "psnr"):
                like = None if j2k == pillow else (
                    f"cls-j2k-{m}@{pillow}", f"j2k-{m}@{j2k}", f"j2k-{m}@{pillow}")  # fmt: skip
                rate = ({"bpp": res.bpp_by_image()} if m == "bpp"
                        else {"codec_options": {"target_psnr": res.psnr_targets()}})  # fmt: skip
                run(f"cls-j2k-{m}@{j2k}",
                    lambda image_ids=image_ids, j2k=j2k, rate=rate: classify(
                        j2k, IMAGENET, image_ids, **rate, **kw), n, like)  # fmt: skip
    if available("resnet50")[0]:
        classify("none", IMAGENET, warm, classifier="resnet50", **kw)
        costs.record(
            "cls-none-resnet50",
            lambda: classify("none", IMAGENET, ids, classifier="resnet50", **kw),
            n,
        )
    else:
        costs.cpu["cls-none-resnet50"] = costs.cpu["cls-none"]
        costs.meta["cls-none-resnet50"] = "resnet50 not available here: EfficientNet's cost"
    small = prepare(get_dataset(IMAGENET).load(ids[0]))
    names = corruptions.corruption_names()
    costs.record("cls-corrupt", lambda: [corruptions.corrupt(small, c, 3) for c in names],
                 len(names))  # fmt: skip


def _measure_lowpass(costs: Costs, out: Path, ids: Sequence[str], quick: bool) -> None:
    """Chapter 4: training-set steps per image, an Adam step, the Kodak-side work."""
    from nicspec_utils.chapters.lowpass_theory import study as lt
    from nicspec_utils.engines.evaluate import evaluate_with_codec

    print("chapter 4: training-set steps", file=sys.stderr)
    have = [n for n in TRAIN_SETS if costs.sizes.get(n)]
    if not have:
        raise SystemExit("no training set on this machine: set NICSPEC_DATA_MIRROR")
    per = 1 if quick else 2
    training = lt.TrainingSet(tuple(have), per, 0)
    n = len(training.refs())
    costs.record("ch4-load", training.lumas, n)
    patches = 1000
    for size in PCA_SIZES:
        costs.record(
            f"ch4-pca@{size}", lambda s=size: lt.pca_study(training, [s], patches, out=out), n
        )
        costs.record(
            f"ch4-pca-fit@{size}",
            lambda s=size: lt.image_pca_fits(training, [s], patches, out=out),
            n,
        )
    steps = 100 if quick else 400
    x = lt.sample_patches(training.lumas(), 8, patches, 0)
    ae: dict[int, Any] = {}
    costs.record("ch4-ae-step", lambda: ae.setdefault(16, lt.train_linear_ae(x, 8, 16, steps)),
                 steps)  # fmt: skip
    pca = lt.pca_study(training, [8], patches, out=out)[8]
    costs.record("ch4-model", lambda: lt.image_model_table(training, pca, ae, patches), n)
    costs.record("ch4-power", lambda: lt.image_power_fits("kodak", list(ids), out=out), len(ids))
    costs.record(
        "ch4-closed",
        lambda: lt.closed_form_images(pca, [4], "kodak", list(ids), ["fog"], 3, 0, out=out),
        len(ids),
    )
    costs.record(
        "ch4-patch-codec",
        lambda: evaluate_with_codec(lt.pca_codec(pca, 4), "kodak", image_ids=list(ids),
                                    corruption="fog", severity=3, out=out, progress=False),
        len(ids),
    )  # fmt: skip


# --- counts -----------------------------------------------------------------------------------


def notebook_defaults(chapter: str) -> dict[str, Any]:
    """The literal values of a chapter's ``parameters`` cell."""
    import jupytext

    nb = jupytext.read(NOTEBOOKS / f"{chapter}.md")
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def profile_parameters(name: str, path: Path = PROFILES) -> dict[str, dict[str, Any]]:
    """Chapter -> its parameters under profile ``name`` (the notebook's defaults beneath)."""
    profiles = yaml.safe_load(path.read_text())["profiles"]
    if name not in profiles:
        raise SystemExit(f"no profile {name!r} in {path}; have {', '.join(profiles)}")
    given = profiles[name].get("chapters") or {}
    chapters = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]*_*.md"))
    return {ch: {**notebook_defaults(ch), **(given.get(ch) or {})} for ch in chapters}


@dataclass
class Tally:
    """Units per (chapter, kind, serial), each store entry counted once."""

    units: dict[tuple[str, str, bool, str | int | None], float] = field(default_factory=dict)
    seen: set[tuple[Any, ...]] = field(default_factory=set)

    def add(self, chapter: str, kind: str, units: float, serial: bool = False,
            variant: str | int | None = None) -> None:  # fmt: skip
        """Add ``units`` of ``kind`` (``serial``: in the notebook's kernel; ``variant``: see
        :meth:`Costs.of`)."""
        if units:
            key = (chapter, kind, serial, variant)
            self.units[key] = self.units.get(key, 0.0) + units

    def entry(self, chapter: str, kind: str, key: tuple[Any, ...], images: int,
              serial: bool = False, variant: str | None = None) -> bool:  # fmt: skip
        """An evaluation of ``images`` images under store key ``key``: counted the first time;
        return whether it was new."""
        if key in self.seen or not images:
            return False
        self.seen.add(key)
        self.add(chapter, kind, images, serial, variant)
        return True


def _n(sizes: Mapping[str, int], role: str, n: int | None) -> int:
    """Images a chapter takes: the first ``n`` of the dataset (None: all)."""
    have = int(sizes.get(role, 0))
    return have if n is None else min(int(n), have)


def _split(text: Any) -> list[str]:
    return [p.strip() for p in str(text or "").split(",") if p.strip()]


def _nic_kind(estimate: bool) -> str:
    return "nic-estimate" if estimate else "nic-real"


def count_profile(params: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, int]) -> Tally:
    """Every chapter's tasks under ``params`` (:func:`profile_parameters`), in book order."""
    t = Tally()
    counters = {
        "01_corruption_benchmark": _count_ch1,
        "02_rate_distortion": _count_ch2,
        "03_spectral_analysis": _count_ch3,
        "03b_fourier_heatmaps": _count_ch3b,
        "04_lowpass_theory": _count_ch4,
        "05_classification": _count_ch5,
        "06_beyond_the_paper": _count_ch6,
    }
    for chapter, p in params.items():
        if chapter in counters:
            counters[chapter](t, chapter, p, sizes)
    return t


def _count_ch1(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    from nicspec_utils.corruptions import parse_corruptions, parse_severities

    files = (
        (_n(sizes, "kodak", p["kodak_images"]) + _n(sizes, "clic", p["clic_images"]))
        * len(parse_corruptions(p["corruptions"]))
        * len(parse_severities(str(p["severities"])))
    )
    t.add(ch, "corrupt", files)
    t.add(ch, "corruption-spectrum", files)


def _pair(
    t: Tally,
    ch: str,
    nic: tuple[Any, ...],
    ds: str,
    n: int,
    cond: tuple[Any, ...],
    estimate: bool,
    bpp: bool = True,
    psnr: bool = False,
    serial: bool = False,
) -> None:
    """A NIC entry and JPEG2000 matched to it (in bpp, and in PSNR with ``psnr``)."""
    key = ("eval", *nic, ds, n, *cond, estimate)
    t.entry(ch, _nic_kind(estimate), key, n, serial)
    if bpp:
        t.entry(ch, "j2k-bpp", ("j2k-bpp", key), n, serial)
    if psnr:
        t.entry(ch, "j2k-psnr", ("j2k-psnr", key), n, serial)


def _count_ch2(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    from nicspec_utils.chapters.rate_distortion import settings as rd
    from nicspec_utils.corruptions import parse_corruptions, parse_severities

    est = bool(p["estimate"])
    clean = {"kodak": _n(sizes, "kodak", p["kodak_images"]),
             "clic": _n(sizes, "clic", p["clic_images"])}  # fmt: skip
    classic = rd.classic_settings(p["classic_codecs"], p["classic_qualities"], p["classic_points"])
    nic = rd.nic_settings(p["nic_models"], p["vr_lambdas"])
    for ds, n in clean.items():
        for s in classic:
            key = ("eval", s.codec, s.quality, ds, n, None, None)
            t.entry(ch, "classic-clean", key, n, variant=s.codec)
        for s in nic:
            t.entry(ch, _nic_kind(est), ("eval", s.codec, s.lmbda, ds, n, None, None, est), n)
    names = parse_corruptions(p["corruptions"])
    sevs = parse_severities(p["severity"])
    corrupted = {("clic" if d == "clic" else d): _n(sizes, "clic" if d == "clic" else d,
                                                   p["corrupted_images"])
                 for d in _split(p["corrupted_datasets"])}  # fmt: skip
    models = [rd.nic_setting(m) for m in _split(p["corrupted_models"])]
    for ds, n in corrupted.items():
        for s in models:
            for sev in sevs:
                for c in names:
                    _pair(t, ch, (s.codec, None), ds, n, (c, sev), est)
    if p.get("explorer", True) and corrupted:  # one image, every corruption x model, in-kernel
        panels = len(names) * len(models)
        t.add(ch, _nic_kind(est), panels, serial=True)
        t.add(ch, "j2k-bpp", panels, serial=True)
    for ds, n in corrupted.items():
        for s in rd.inflation_settings(p["inflation_codecs"], p["corrupted_models"]):
            classic = s.family == "classic"
            kind = "classic-maps" if classic else _nic_kind(est)
            tail = () if classic else (est,)
            for cond in [(None, None), *((c, sev) for sev in sevs for c in names)]:
                key = ("eval", s.codec, s.quality if classic else None, ds, n, *cond, *tail)
                t.entry(ch, kind, key, n, variant=s.codec if classic else None)
    if p.get("both_jpeg2000") and clean["kodak"]:  # the other JPEG2000 path's clean ladder
        for s in rd.classic_settings("jpeg2000", p["classic_qualities"], None):
            key = ("eval", "jpeg2000-other", s.quality, "kodak", clean["kodak"], None, None)
            t.entry(ch, "classic-clean", key, clean["kodak"], variant="jpeg2000-other")
    if "corrupted_rd_images" in p:  # corrupted RD curves: classic ladders, the MSE and VR NICs
        _count_corrupted_rd(t, ch, p, sizes, est)


def _count_corrupted_rd(
    t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int], est: bool
) -> None:
    """Chapter 2's corrupted RD curves (``corrupted_rd_sweep``): every classic codec at
    ``corrupted_rd_points`` rates and the ladder's and variable-rate model's NIC settings, on
    each (corruption, severity), no maps (the corrupted study's entries serve where they meet)."""
    from nicspec_utils.chapters.rate_distortion import settings as rd
    from nicspec_utils.corruptions import parse_corruptions, parse_severities
    from nicspec_utils.labels import CURVE_LADDER, CURVE_VR

    sets = {d: _n(sizes, d, p["corrupted_rd_images"]) for d in _split(p["corrupted_rd_datasets"])}
    names = parse_corruptions(p["corrupted_rd_corruptions"])
    sevs = parse_severities(p["corrupted_rd_severities"])
    classic = rd.classic_settings(
        p["classic_codecs"], p["classic_qualities"], p["corrupted_rd_points"], full=()
    )
    nic = [s for s in rd.nic_settings(p["nic_models"], p["vr_lambdas"])
           if s.curve in (CURVE_LADDER, CURVE_VR)]  # fmt: skip
    for ds, n in sets.items():
        for sev in sevs:
            for c in names:
                for s in classic:
                    key = ("eval", s.codec, s.quality, ds, n, c, sev)
                    t.entry(ch, "classic-clean", key, n, variant=s.codec)
                for s in nic:
                    key = ("eval", s.codec, s.lmbda, ds, n, c, sev, est)
                    t.entry(ch, _nic_kind(est), key, n)


def _count_ch3(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    from nicspec_utils.chapters.spectral_analysis import settings as sa
    from nicspec_utils.corruptions import parse_corruptions, parse_severities

    k = _n(sizes, "kodak", p["kodak_images"])
    sets = {"kodak": k, "clic": _n(sizes, "clic", p["clic_images"])}
    models = _split(p["nic_models"])
    gr = _split(p["gr_models"]) or models
    names = parse_corruptions(p["corruptions"])
    sev = int(p["severity"])

    def pair(model: str, lam: float | None, ds: str, n: int, cond: tuple[Any, ...]) -> None:
        # pair_rows: the NIC codes for real (estimate False) and JPEG2000 matches in both
        _pair(t, ch, (f"nic:{model}", lam), ds, n, cond, False, psnr=True)

    for ds, n in sets.items():
        for m in models:
            pair(m, None, ds, n, (None, None))
    for m in gr:
        for c in names:
            pair(m, None, "kodak", k, (c, sev))
    trend = p.get("trend_model") or p["base_model"]
    for c in parse_corruptions(p["trend_corruptions"]):
        for s in parse_severities(str(p["trend_severities"])):
            pair(trend, None, "kodak", k, (c, int(s)))
    base = p["base_model"]
    variants = [sa.parse_variant(v, sa.model_lmbda(base)) for v in _split(p["variants"])]
    for m, lam in [(base, None), *variants]:
        for cond in ((None, None), (p["noise"], sev)):
            pair(m, lam, "kodak", k, cond)


def _bases(grid: int) -> int:
    return FHM_BASES_PER_GRID.get(grid, grid * (grid // 2 + 1))


def _psnr_models(which: Any, models: Sequence[str]) -> list[str]:
    """Chapter 3b's ``psnr_matching``: ``all``, ``none`` (or absent) or a comma list."""
    name = str(which or "none").strip()
    if name == "all":
        return list(models)
    return [] if name in ("none", "") else [m for m in models if m in _split(name)]


def _count_ch3b(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Counted in bases x images at the chapter's crop (a basis costs about its pixels): per
    model a rate-matched pair (the NIC's maps, its clean baselines coded and estimated, one basis
    each; JPEG2000's baseline at most 1 + RATE_STEPS times, then its maps); the variants' NIC
    maps (a pruned variant: a rate-matched pair); where ``psnr_matching`` asks (the ladder's
    models and the pruned variants), JPEG2000 searched image by image to the NIC's clean PSNR
    on the crop, then its baseline and maps at those ratios."""
    from nicspec_utils.chapters.fourier_heatmaps import RATE_STEPS

    scale = (int(p["crop"]) / 512) ** 2
    n = _n(sizes, "kodak", p["kodak_images"])
    per_map = _bases(int(p["grid"])) * n * int(p["draws"]) * scale
    one = n * scale  # one basis on every image: a clean baseline
    nic_maps = "fhm-nic" if p["estimate"] else "fhm-nic-real"
    models = _split(p["nic_models"])
    variants = [v for v in _split(p["variants"]) if v != p["base_model"]]
    pruned = [v for v in variants if "pruned" in v]

    def rate_matched() -> None:
        t.add(ch, nic_maps, per_map)
        t.add(ch, "fhm-nic-real", one)  # the coded baseline (the rate to match)
        t.add(ch, "fhm-nic", one)  # the estimate's baseline
        t.add(ch, "fhm-j2k", per_map + (1 + RATE_STEPS) * one)

    for _ in models:
        rate_matched()
    if variants and p["base_model"] not in models:
        t.add(ch, nic_maps, per_map + one)
    for v in variants:
        if v in pruned:
            rate_matched()
        else:
            t.add(ch, nic_maps, per_map + one)
    for _ in _psnr_models(p.get("psnr_matching"), [*models, *pruned]):
        t.add(ch, "fhm-j2k-search", one)
        t.add(ch, "fhm-j2k", per_map + one)


def _count_ch4(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    from nicspec_utils.corruptions import parse_corruptions

    per = p["train_images"]
    train = sum(_n(sizes, d, per) for d in TRAIN_SETS)
    t.add(ch, "ch4-load", train, serial=True)
    pca_sizes = sorted({int(s) for s in _split(p["patch_sizes"])} | {int(p["ae_patch"])})
    for s in pca_sizes:
        t.add(ch, "ch4-pca", train, serial=True, variant=s)
    for s in {int(s) for s in _split(p["patch_sizes"])}:
        t.add(ch, "ch4-pca-fit", train, serial=True, variant=s)
    spec = p["spectrum_images"]  # the training selection's first images, Kodak's, CLIC's
    spectra = sum(min(_n(sizes, d, per), _n(sizes, d, spec)) for d in TRAIN_SETS)
    spectra += _n(sizes, "kodak", spec) + _n(sizes, "clic", spec)
    t.add(ch, "ch4-power", 2 * spectra, serial=True)  # the mean profiles, then per image
    ranks = [int(k) for k in _split(p["ae_ranks"])]
    shift = [int(k) for k in _split(p["shift_ranks"])]
    t.add(ch, "ch4-ae-step", len(set(ranks) | set(shift)) * int(p["ae_steps"]), serial=True)
    t.add(ch, "ch4-model", train * len(ranks), serial=True)
    k = _n(sizes, "kodak", p["kodak_images"])
    names = parse_corruptions(p["corruptions"])
    t.add(ch, "ch4-closed", 2 * k * len(names) * len(shift), serial=True)  # table + per image
    for rank in shift:
        for cond in [(None, None), *((c, int(p["severity"])) for c in names)]:
            t.entry(ch, "ch4-patch-codec", ("patch", rank, k, *cond), k)
    est = bool(p["estimate"])
    for m in _split(p["nic_models"]):
        for cond in [(None, None), *((c, int(p["severity"])) for c in names)]:
            t.entry(ch, _nic_kind(est), ("eval", f"nic:{m}", None, "kodak", k, *cond, est), k)


def _count_ch5(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Per image and condition: the uncompressed classification, the corruption (on a
    256 x 256 input), and per NIC model its output, JPEG2000 at its bpp and, where PSNR
    matching asks, JPEG2000 at its PSNR, each classified."""
    from nicspec_utils.chapters.classification import psnr_conditions
    from nicspec_utils.corruptions import parse_corruptions

    est = bool(p["estimate"])
    models = _split(p["nic_models"])
    grids = [(_n(sizes, "imagenet", p["imagenet_images"]), parse_corruptions(p["corruptions"]))]
    kc = p["kodak_corruptions"]
    grids.append((_n(sizes, "kodak", p["kodak_images"]), parse_corruptions(kc) if kc else []))
    for n, names in grids:
        if not n:
            continue
        conds: list[str | None] = [None, *names]
        psnr = psnr_conditions(conds, p["psnr_matching"])
        t.add(ch, "cls-none", n * len(conds))
        t.add(ch, "cls-corrupt", n * len(names))
        t.add(ch, f"cls-nic-{'estimate' if est else 'real'}", n * len(conds) * len(models))
        t.add(ch, "cls-j2k-bpp", n * len(conds) * len(models))
        t.add(ch, "cls-j2k-psnr", n * len(psnr) * len(models))
        for cond in conds:  # the store entries (classify.json): one per condition and system
            t.seen.add(("cls", n, cond, "none"))
            for m in models:
                t.seen |= {("cls", n, cond, m, side) for side in ("nic", "bpp")}
                if cond in psnr:
                    t.seen.add(("cls", n, cond, m, "psnr"))
    n = grids[0][0]
    for c in _split(p["clean_classifiers"]):
        if c == "resnet50":
            t.add(ch, "cls-none-resnet50", n, serial=True)
        elif c != p.get("classifier", "efficientnet-lite0"):
            t.add(ch, "cls-none", n, serial=True)


def _count_ch6(t: Tally, ch: str, p: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    from nicspec_utils.chapters.beyond_the_paper import DENSE_FAMILY, parse_levels
    from nicspec_utils.corruptions import parse_corruptions

    est = bool(p["estimate"])
    k = _n(sizes, "kodak", p["kodak_images"])
    sev = int(p["severity"])
    noises = [(c, sev) for c in parse_corruptions(p["noises"])]
    rungs = [f"checkpoint:ladder/{level}" for level in parse_levels(p["ladder_levels"])]
    rungs += [f"nic:{p['base_model']}", f"nic:{p['long_pruned']}"]
    for codec in rungs:
        for cond in [(None, None), *noises]:
            _pair(t, ch, (codec, None), "kodak", k, cond, est)
    for m in DENSE_FAMILY:
        t.entry(ch, _nic_kind(est), ("eval", f"nic:{m}", None, "kodak", k, None, None, est), k)
    conds = [(None, None), *((c, sev) for c in parse_corruptions(p["choice_corruptions"]))]
    for ds, n in (("kodak", k), ("clic", _n(sizes, "clic", p["clic_images"]))):
        for cond in conds:
            key = ("eval", f"nic:{p['choice_model']}", None, ds, n, *cond, est)
            t.entry(ch, _nic_kind(est), key, n)
            t.add(ch, "j2k-single", n)  # one JPEG2000 entry per image at its bpp
            t.seen |= {("j2k-single", ds, *cond, i) for i in range(n)}
            t.add(ch, "ch6-features", n)
            if cond[0]:
                t.add(ch, "corrupt", n)  # the features task corrupts its own inputs


# --- the projection ---------------------------------------------------------------------------

CHAPTER_LABELS = {
    "01_corruption_benchmark": "1",
    "02_rate_distortion": "2",
    "03_spectral_analysis": "3",
    "03b_fourier_heatmaps": "3b",
    "04_lowpass_theory": "4",
    "05_classification": "5",
    "06_beyond_the_paper": "6",
}


@dataclass(frozen=True)
class Row:
    """One line of a projection: CPU hours, and how they run (Dask tasks or the kernel)."""

    chapter: str
    kind: str
    units: float
    cpu_h: float
    serial: bool

    def wall_h(self, workers: int) -> float:
        """Hours on ``workers`` workers (a kernel step runs on one)."""
        return self.cpu_h if self.serial else self.cpu_h / workers


def project(tally: Tally, costs: Costs, j2k: str) -> list[Row]:
    """Rows of the projection: units times the measured CPU seconds per unit."""
    rows: dict[tuple[str, str, bool], list[float]] = {}
    for (chapter, kind, serial, variant), units in tally.units.items():
        seconds = units * costs.of(kind, j2k, variant)
        got = rows.setdefault((chapter, kind, serial), [0.0, 0.0])
        got[0] += units
        got[1] += seconds / 3600
    order = list(CHAPTER_LABELS)
    return [
        Row(ch, kind, u, h, serial)
        for (ch, kind, serial), (u, h) in sorted(
            rows.items(), key=lambda kv: (order.index(kv[0][0]), list(KINDS).index(kv[0][1]))
        )
    ]


def totals(rows: Iterable[Row], workers: int) -> tuple[float, float]:
    """(CPU h, wall h on ``workers``) of ``rows``."""
    rows = list(rows)
    return sum(r.cpu_h for r in rows), sum(r.wall_h(workers) for r in rows)


def markdown(rows: Sequence[Row], workers: Sequence[int]) -> str:
    """The projection as a Markdown table, one line per (chapter, kind), then the total."""
    head = ["chapter", "task kind", "tasks", "unit", "CPU h"] + [f"wall h, {w} workers"
                                                                 for w in workers]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|---|" + "---:|" * (len(head) - 4)]
    for r in rows:
        unit, label = KINDS[r.kind]
        label += " (in the kernel)" if r.serial else ""
        cells = [CHAPTER_LABELS[r.chapter], label, f"{r.units:,.0f}", unit, f"{r.cpu_h:.2f}"]
        cells += [f"{r.wall_h(w):.2f}" for w in workers]
        lines.append("| " + " | ".join(cells) + " |")
    cpu = sum(r.cpu_h for r in rows)
    cells = ["**all**", "", "", "", f"**{cpu:.1f}**"]
    cells += [f"**{totals(rows, w)[1]:.1f}**" for w in workers]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chapter_hours(rows: Sequence[Row], workers: int) -> dict[str, float]:
    """Wall hours per chapter on ``workers``."""
    out: dict[str, float] = {}
    for r in rows:
        out[CHAPTER_LABELS[r.chapter]] = out.get(CHAPTER_LABELS[r.chapter], 0.0) + r.wall_h(workers)
    return out


def projected_hours(profile: str, costs: Costs, workers: int = 2, j2k: str = "") -> float:
    """Wall hours of ``profile`` on ``workers`` from ``costs`` (a test's entry point)."""
    j2k = j2k or costs.meta.get("jpeg2000", "jpeg2000")
    rows = project(count_profile(profile_parameters(profile), costs.sizes), costs, j2k)
    return totals(rows, workers)[1]


def entries_per_chapter(
    params: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, int]
) -> dict[str, int]:
    """Distinct store entries each chapter asks for (counted alone: shared ones in each),
    for chapters 2, 3, 4, 5 and 6 (1 and 3b keep other caches)."""
    chapters = [c for c in CHAPTER_LABELS if c not in ("01_corruption_benchmark",
                                                       "03b_fourier_heatmaps")]  # fmt: skip
    return {c: len(count_profile({c: params[c]}, sizes).seen) for c in chapters if c in params}


def logged_entries(uses: Path, results: Path | None = None) -> dict[str, int]:
    """Distinct store keys each chapter's ``<results>/uses/<profile>/<chapter>.keys`` log names
    (what a real build used), and for chapter 5 the ``classify.json`` entries under ``results``
    (it logs none)."""
    out = {}
    for log in sorted(uses.glob("*.keys")):
        keys = {line.split()[0] for line in log.read_text().splitlines() if line.strip()}
        if keys:
            out[log.stem] = len(keys)
    if results is not None:
        out["05_classification"] = sum(1 for _ in results.glob("*/classify.json"))
    return out


def cut_costs(
    small: str, large: str, costs: Costs, j2k: str, workers: int = 2
) -> list[tuple[str, str, Any, Any, float]]:
    """What each cut of ``small`` against ``large`` costs: for every chapter parameter whose
    value differs, the wall hours on ``workers`` that setting it to ``large``'s value (alone)
    adds to ``small``. Rows (chapter, parameter, small's value, large's value, hours), dearest
    first."""
    a, b = profile_parameters(small), profile_parameters(large)

    def hours(params: Mapping[str, Mapping[str, Any]]) -> float:
        return totals(project(count_profile(params, costs.sizes), costs, j2k), workers)[1]

    base = hours(a)
    rows = []
    for chapter, params in a.items():
        for key, value in params.items():
            other = b[chapter].get(key, value)
            if other == value or key in ("description", "n_boot", "gallery_images"):
                continue
            trial = {ch: dict(p) for ch, p in a.items()}
            trial[chapter][key] = other
            rows.append((chapter, key, value, other, hours(trial) - base))
    return sorted(rows, key=lambda r: -r[4])


def main(argv: Sequence[str] | None = None) -> None:
    """Measure (or read) the costs, then print each profile's projection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", help="profile to project (repeatable)")
    parser.add_argument("--workers", type=int, action="append", help="workers (repeatable)")
    parser.add_argument("--costs", type=Path, help="read the per-task costs from this file")
    parser.add_argument("--save-costs", type=Path, help="write the measured costs to this file")
    parser.add_argument("--jpeg2000", choices=("reference", *J2K_PATHS), default="reference",
                        help="the JPEG2000 path the chapters run (reference: "
                             "codecs.reference_jpeg2000(), ffmpeg where installed)")  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        help="measure on one image per kind (a check of the measuring code)",
    )
    parser.add_argument("--check-uses", type=Path, metavar="RESULTS",
                        help="compare the first profile's counted store entries with those a "
                             "build of it used (RESULTS/uses/PROFILE/*.keys)")  # fmt: skip
    parser.add_argument("--cuts", metavar="SMALL:LARGE",
                        help="also print what each parameter SMALL cuts from LARGE would add "
                             "(e.g. paper:protocol), on the first --workers")  # fmt: skip
    args = parser.parse_args(argv)
    profiles = args.profile or ["paper"]
    workers = args.workers or [2]
    os.environ["NICSPEC_SCHEDULER"] = "serial"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from nicspec_utils.codecs import reference_jpeg2000

    j2k = reference_jpeg2000() if args.jpeg2000 == "reference" else args.jpeg2000
    if args.costs:
        costs = Costs.load(args.costs)
    else:
        with tempfile.TemporaryDirectory(prefix="nicspec-project-") as tmp:
            os.environ["NICSPEC_RESULTS"] = tmp
            os.environ["NICSPEC_FRESH"] = "1"
            load0, w0 = os.getloadavg(), time.perf_counter()
            costs = measure(Path(tmp), quick=args.quick)
            load1 = os.getloadavg()
        costs.meta.update(
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            load_before=[round(x, 2) for x in load0], load_after=[round(x, 2) for x in load1],
            measure_wall_s=round(time.perf_counter() - w0, 1), jpeg2000=j2k,
        )  # fmt: skip
        if args.save_costs:
            costs.save(args.save_costs)
    m = costs.meta
    print(f"Costs measured {m.get('date')} on {m.get('machine')}, load average "
          f"{m.get('load_before')} before and {m.get('load_after')} after "
          f"({m.get('measure_wall_s')} s); JPEG2000 path projected: {j2k}\n")  # fmt: skip
    print("| task kind | unit | CPU s per unit | wall s per unit (while measuring) |")
    print("|---|---|---:|---:|")
    for key in sorted(costs.cpu, key=lambda k: (list(KINDS).index(k.split("@")[0]), k)):
        kind = key.split("@")[0]
        unit, label = KINDS.get(kind, ("", kind))
        where = key.partition("@")[2]
        wall = costs.wall.get(key)
        print(f"| {label}{f' ({where})' if where else ''} | {unit} | {costs.cpu[key]:.4f} | "
              f"{'' if wall is None else f'{wall:.4f}'} |")  # fmt: skip
    for key, note in sorted(m.items()):
        if key.split("@")[0] in KINDS:
            print(f"\n- {key}: {note}", end="")
    print()
    for name in profiles:
        rows = project(count_profile(profile_parameters(name), costs.sizes), costs, j2k)
        other = [p for p in J2K_PATHS if p != j2k][0]
        alt = project(count_profile(profile_parameters(name), costs.sizes), costs, other)
        print(f"\n### Profile `{name}` (JPEG2000: {j2k})\n")
        print(markdown(rows, workers))
        for w in workers:
            cpu, wall = totals(rows, w)
            per = ", ".join(f"{c} {h:.2f} h" for c, h in chapter_hours(rows, w).items())
            print(f"\n{name}: {cpu:.1f} CPU h, {wall:.1f} h on {w} workers; with {other}: "
                  f"{totals(alt, w)[1]:.1f} h; per chapter: {per}")  # fmt: skip
    if args.check_uses:
        name = profiles[0]
        counted = entries_per_chapter(profile_parameters(name), costs.sizes)
        logged = logged_entries(args.check_uses / "uses" / name, args.check_uses)
        print(f"\n### Store entries of `{name}`: counted here, used by the build in "
              f"{args.check_uses}\n\n| chapter | counted | used |\n|---|---:|---:|")  # fmt: skip
        for chapter, n in counted.items():
            print(f"| {CHAPTER_LABELS[chapter]} | {n} | {logged.get(chapter, '–')} |")
    if args.cuts:
        small, _, large = args.cuts.partition(":")
        w = workers[0]
        print(f"\n### What each cut of `{small}` against `{large}` costs (h on {w} workers)\n")
        print(f"| chapter | parameter | `{small}` | `{large}` | adds h |\n|---|---|---|---|---:|")
        for chapter, key, value, other, extra in cut_costs(small, large, costs, j2k, w):
            label = CHAPTER_LABELS.get(chapter, chapter)
            cells = [f"`{v}`" if v not in ("", None) else repr(v) for v in (value, other)]
            print(f"| {label} | `{key}` | {cells[0]} | {cells[1]} | {extra:+.2f} |")


if __name__ == "__main__":
    main()
