"""Evaluate one configuration (codec x dataset x corruption): metrics JSON + spectra NPZ, cached.

A configuration is the codec's full config, the dataset and its selected image ids, the
corruption and severity (and its seed and implementation) and the measurement settings. It is
written to ``<out>/<config_key>/``:

- ``spectra.npz``: mean error spectra over the images (:mod:`nicspec_utils.spectral`), shifted
  |F| as float64, DC kept (zero it with :func:`spectral.zero_dc` before plotting). Clean input:
  ``D``; corrupted input: ``G`` (vs the corrupted input), ``R`` (vs the clean image) and ``C``
  (the corruption itself: corrupted vs clean, no codec). Each also as ``<name>_rounded`` (the
  reference code's rounding quirk), ``radial_<name>`` (radial profile of the DC-less mean
  spectrum) with ``radius`` (cycles/pixel), and ``n_images``.
- ``metrics.json`` (written last; its presence marks a finished run): means over images of
  ``bpp``, ``psnr`` and ``ms_ssim`` (w.r.t. the codec's input), ``psnr_wrt_clean`` and
  ``ms_ssim_wrt_clean`` (w.r.t. the clean image; ``null`` for clean runs; MS-SSIM is ``null``
  for images under 161 px a side), ``n_images``, ``n_lossless``,
  ``band_energies`` (shares of mean error energy per band, see :data:`spectral.BAND_EDGES`),
  ``per_image`` records, ``codec``/``codec_version``, the whole ``config``, its ``key``,
  ``nicspec`` version, ``wall_time_s`` and ``codec_time_s``.

PSNR and MS-SSIM are computed on 8-bit rounded images (as CompressAI's evaluation does, so our
numbers compare with its published curves); the mean PSNR is the mean of per-image PSNRs.
JSON has no infinity: an infinite PSNR (a lossless image) is stored as ``null``, and so is a mean
that includes one. Both files are written atomically; a rerun of the same configuration finds
``metrics.json`` with the same ``config`` and returns at once ("cached").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .cache import canonical_json, config_key, json_safe, read_json, results_dir
from .errors import DataError, UsageError
from .io import atomic_save_npz, atomic_write_json

SCHEMA = 1
DEFAULT_BATCH = 8
NEURAL_PREFIXES = ("zoo:", "checkpoint:", "nic:")


def get_codec(name: str, quality: float | None = None, bpp: float | None = None, **options: Any):
    """The codec registry's ``get_codec`` (imported lazily; tests monkeypatch this name)."""
    from .codecs import get_codec as _get_codec

    return _get_codec(name, quality=quality, bpp=bpp, **options)


def is_neural_codec(name: str) -> bool:
    """Whether a codec name is a NIC (``zoo:``, ``checkpoint:``, ``nic:``), i.e. not a classic one.

    Names the registry does not know (test doubles) count as neural; the registry rejects them
    itself when they are truly unknown.
    """
    if name.startswith(NEURAL_PREFIXES):
        return True
    from .codecs import CLASSIC

    return name not in CLASSIC


def check_corruption(corruption: str | None, severity: int | None) -> tuple[str | None, int | None]:
    """Validate a corruption/severity pair through the corruptions module; both or neither."""
    if corruption is None and severity is None:
        return None, None
    if corruption is None:
        raise UsageError("--severity needs --corruption")
    if severity is None:
        raise UsageError("--corruption needs --severity (1..5)")
    from .corruptions import get_corruption

    name = get_corruption(corruption).name
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise UsageError(f"severity must be an integer 1..5, got {severity!r}")
    if not 1 <= int(severity) <= 5:
        raise UsageError(f"severity {severity} is out of range; choose from 1..5")
    return name, int(severity)


def _corruption_config(name: str, severity: int, seed: int) -> dict[str, Any]:
    from . import corruptions

    impl = getattr(corruptions, "imagecorruptions_version", lambda: "imagecorruptions")()
    scheme = getattr(corruptions, "SEED_SCHEME", "")
    return {"name": name, "severity": severity, "seed": seed, "impl": impl, "seed_scheme": scheme}


def _measure_config(normalisation: Any) -> dict[str, Any]:
    from .spectral import BAND_EDGES, LUMA

    return {
        "psnr": "rgb, 8-bit rounded",
        "ms_ssim": "rgb, 8-bit rounded, 5 scales",
        "spectra": {
            "normalisation": {"mean": list(normalisation.mean), "std": list(normalisation.std)},
            "luma": list(LUMA),
            "band_edges": list(BAND_EDGES),
        },
    }


def _codec_config(codec: Any) -> dict[str, Any]:
    cfg = dict(codec.config())
    cfg.setdefault("codec", codec.name)
    cfg.setdefault("version", codec.version)
    return cfg


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals or len(vals) != len(values):
        return None
    m = float(np.mean(vals))
    return m if math.isfinite(m) else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)


def _ms_ssim_or_none(x: np.ndarray, y: np.ndarray) -> float | None:
    """MS-SSIM, or None (with a warning) for images too small for its five scales."""
    from .metrics import MS_SSIM_MIN_SIDE, ms_ssim

    if min(x.shape[:2]) < MS_SSIM_MIN_SIDE:
        warnings.warn(
            f"MS-SSIM needs {MS_SSIM_MIN_SIDE} px a side; stored as null for a "
            f"{x.shape[1]}x{x.shape[0]} image",
            stacklevel=2,
        )
        return None
    return ms_ssim(x, y)


def _check_writable(folder: Path) -> None:
    """DataError now, before any coding, when results could not be written under ``folder``."""
    import os

    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"cannot write results to {folder}: {parent} is not a writable folder")


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def summary_line(metrics: dict[str, Any]) -> str:
    """One line: ``jpeg2000 on kodak (24 images): 0.501 bpp, 29.12 dB PSNR, MS-SSIM 0.951``."""

    def db(v: float | None) -> str:
        return "inf dB" if v is None else f"{v:.2f} dB"

    ssim = metrics.get("ms_ssim")

    where = metrics["dataset"]
    if metrics.get("corruption"):
        where += f" + {metrics['corruption']}-{metrics['severity']}"
    n = metrics["n_images"]
    line = (
        f"{metrics['codec']} on {where} ({n} image{'' if n == 1 else 's'}): "
        f"{metrics['bpp']:.3f} bpp, {db(metrics['psnr'])} PSNR, MS-SSIM "
        + ("n/a" if ssim is None else f"{ssim:.3f}")
    )
    if metrics.get("corruption"):
        line += f"; w.r.t. clean {db(metrics['psnr_wrt_clean'])} PSNR"
    return line


def _cached(metrics_path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The stored metrics if ``metrics_path`` holds this very configuration."""
    data = read_json(metrics_path)
    if not isinstance(data, dict):
        return None
    if data.get("config") != json.loads(canonical_json(config)):
        warnings.warn(f"{metrics_path} holds another configuration; recomputing", stacklevel=3)
        return None
    return data


def _corrupt_all(
    cleans: list[np.ndarray], corruption: str, severity: int | None, seed: int
) -> list[np.ndarray]:
    """Corrupt each clean image (keyed by content, as the corrupted sets are)."""
    from .corruptions import corrupt

    assert severity is not None
    return [corrupt(c, corruption, severity, seed=int(seed)) for c in cleans]


def _measure_one(
    codec_name: str,
    image_id: str,
    clean: np.ndarray,
    inp: np.ndarray,
    res: Any,
    corrupted: bool,
    accs: dict[str, Any],
) -> dict[str, Any]:
    """Per-image metrics of one coded image; adds its spectra to the accumulators."""
    from .metrics import psnr

    rec = np.asarray(res.reconstruction)
    if rec.shape != inp.shape:
        raise DataError(f"codec {codec_name} returned a {rec.shape} reconstruction for {inp.shape}")
    if any(a.shape not in (None, rec.shape[:2]) for a in accs.values()):
        raise DataError(
            f"image {image_id} is {rec.shape[1]}x{rec.shape[0]}; spectra need all images of a "
            "dataset in one size"
        )
    item: dict[str, Any] = {
        "id": image_id,
        "height": int(rec.shape[0]),
        "width": int(rec.shape[1]),
        "bits": float(res.bits),
        "bpp": float(res.bpp),
        "psnr": _finite(psnr(rec, inp)),
        "ms_ssim": _ms_ssim_or_none(rec, inp),
        "psnr_wrt_clean": None,
        "ms_ssim_wrt_clean": None,
    }
    if corrupted:
        item["psnr_wrt_clean"] = _finite(psnr(rec, clean))
        item["ms_ssim_wrt_clean"] = _ms_ssim_or_none(rec, clean)
        pairs = {"G": (rec, inp), "R": (rec, clean), "C": (inp, clean)}
    else:
        pairs = {"D": (rec, clean)}
    for name, (a, b) in pairs.items():
        accs[name].add(a, b)
        accs[name + "_rounded"].add(a, b)
    return item


def run_with_codec(
    codec: Any,
    dataset: Any,
    image_ids: Sequence[str] | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> tuple[Path, dict[str, Any], bool]:
    """Evaluate ``codec`` (a Codec instance); return (metrics.json path, metrics, was cached)."""
    from .data import Dataset, get_dataset
    from .spectral import SpectrumAccumulator, band_energies, radial_profile, zero_dc

    started = time.perf_counter()
    corruption, severity = check_corruption(corruption, severity)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(image_ids) if image_ids else None, limit)
    ids = ds.image_ids
    if not ids:
        raise DataError(f"dataset {ds.name!r} has no images to evaluate")

    config: dict[str, Any] = {
        "schema": SCHEMA,
        "codec": _codec_config(codec),
        "dataset": ds.name,
        "image_ids": ids,
        "corruption": None
        if corruption is None
        else _corruption_config(corruption, severity, int(seed)),  # type: ignore[arg-type]
        "measure": _measure_config(ds.normalisation),
    }
    key = config_key(config)
    folder = Path(out) if out is not None else results_dir()
    folder = folder / key
    metrics_path = folder / "metrics.json"
    _check_writable(folder)
    hit = _cached(metrics_path, config)
    if hit is not None:
        if progress:
            print(f"cached: {metrics_path}", file=sys.stderr)
        return metrics_path, hit, True

    measures = ("D",) if corruption is None else ("G", "R", "C")
    accs = {
        m + suffix: SpectrumAccumulator(ds.normalisation, round_like_reference=rounded)
        for m in measures
        for suffix, rounded in (("", False), ("_rounded", True))
    }
    records: list[dict[str, Any]] = []
    codec_time = 0.0
    label = f"{codec.name} {ds.name}" + (f" {corruption}-{severity}" if corruption else "")
    bar = _progress_bar(len(ids), progress, label)
    try:
        for chunk in _chunks(ids, batch_size):
            cleans = [ds.load(i) for i in chunk]
            inputs = (
                cleans if corruption is None else _corrupt_all(cleans, corruption, severity, seed)
            )
            t0 = time.perf_counter()
            batch = getattr(codec, "compress_batch", None)
            results = batch(inputs) if batch is not None else [codec.compress(x) for x in inputs]
            codec_time += time.perf_counter() - t0
            if len(results) != len(inputs):
                raise DataError(
                    f"codec {codec.name} returned {len(results)} results for {len(inputs)}"
                )
            for image_id, clean, inp, res in zip(chunk, cleans, inputs, results, strict=True):
                records.append(
                    _measure_one(
                        codec.name, image_id, clean, inp, res, corruption is not None, accs
                    )
                )
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    arrays: dict[str, np.ndarray] = {"n_images": np.asarray(len(records))}
    bands: dict[str, dict[str, float]] = {}
    radius = None
    for name, acc in accs.items():
        mean = acc.result()
        arrays[name] = mean
        radius, profile = radial_profile(zero_dc(mean))
        arrays[f"radial_{name}"] = profile
        bands[name] = band_energies(acc.result_power(), power=True)
    assert radius is not None
    arrays["radius"] = radius

    per = {k: [r[k] for r in records] for k in ("bpp", "psnr", "ms_ssim")}
    corrupted = corruption is not None
    metrics: dict[str, Any] = {
        "nicspec": __version__,
        "schema": SCHEMA,
        "key": key,
        "codec": codec.name,
        "codec_version": codec.version,
        "dataset": ds.name,
        "corruption": corruption,
        "severity": severity,
        "n_images": len(records),
        "bpp": float(np.mean(per["bpp"])),
        "psnr": _mean(per["psnr"]),
        "ms_ssim": _mean(per["ms_ssim"]),
        "psnr_wrt_clean": _mean([r["psnr_wrt_clean"] for r in records]) if corrupted else None,
        "ms_ssim_wrt_clean": _mean([r["ms_ssim_wrt_clean"] for r in records])
        if corrupted
        else None,
        "n_lossless": sum(r["psnr"] is None for r in records),
        "band_energies": bands,
        "spectra": "spectra.npz",
        "config": json.loads(canonical_json(config)),
        "codec_time_s": codec_time,
        "wall_time_s": time.perf_counter() - started,
        "per_image": records,
    }
    metrics = json_safe(metrics)
    atomic_save_npz(folder / "spectra.npz", **arrays)
    atomic_write_json(metrics_path, metrics)
    return metrics_path, metrics, False


def evaluate_with_codec(codec: Any, dataset: Any, **kwargs: Any) -> Path:
    """Evaluate a Codec instance; keyword arguments as :func:`run_with_codec`. Returns the JSON."""
    return run_with_codec(codec, dataset, **kwargs)[0]


def evaluate(
    codec_name: str,
    dataset: str,
    image_ids: Sequence[str] | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    quality: float | None = None,
    bpp: float | None = None,
    codec_options: dict[str, Any] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    estimate: bool = False,
    limit: int | None = None,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH,
) -> Path:
    """Evaluate a codec by name on a dataset (optionally corrupted); return metrics.json's path.

    ``out`` defaults to :func:`cache.results_dir`; ``estimate`` asks NIC codecs for the
    likelihood estimate of the rate instead of real entropy coding (codec option ``estimate``).
    """
    return _evaluate(
        codec_name, dataset, image_ids, corruption, severity, quality, bpp, codec_options,
        seed, out, estimate, limit, progress, batch_size,
    )[0]  # fmt: skip


def _evaluate(
    codec_name: str,
    dataset: str,
    image_ids: Sequence[str] | None,
    corruption: str | None,
    severity: int | None,
    quality: float | None,
    bpp: float | None,
    codec_options: dict[str, Any] | None,
    seed: int,
    out: str | Path | None,
    estimate: bool,
    limit: int | None,
    progress: bool,
    batch_size: int,
) -> tuple[Path, dict[str, Any], bool]:
    if quality is not None and bpp is not None:
        raise UsageError("give either a quality or a bpp target, not both")
    check_corruption(corruption, severity)
    options = dict(codec_options or {})
    if estimate:
        if not is_neural_codec(codec_name):
            raise UsageError("--estimate applies to neural codecs only")
        options["estimate"] = True
    codec = get_codec(codec_name, quality=quality, bpp=bpp, **options)
    return run_with_codec(
        codec,
        dataset,
        image_ids=image_ids,
        corruption=corruption,
        severity=severity,
        seed=seed,
        out=out,
        limit=limit,
        progress=progress,
        batch_size=batch_size,
    )


# --- command line -------------------------------------------------------------------------------


def _number(text: str) -> float | int:
    """Parse a number, keeping integers integral (``50`` -> 50, ``0.5`` -> 0.5)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, value); the value is read as JSON when it parses, else a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--option needs key=value, got {text!r}")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key, parsed


def _run_cli(args: argparse.Namespace) -> int:
    options = dict(parse_option(o) for o in args.option or [])
    if args.lmbda is not None:
        options["lmbda"] = args.lmbda
    if args.vtm_dir is not None:
        options["vtm_dir"] = args.vtm_dir
    ids = [i.strip() for i in (args.images or "").split(",") if i.strip()] or None
    path, metrics, cached = _evaluate(
        args.codec,
        args.dataset,
        ids,
        args.corruption,
        args.severity,
        args.quality,
        args.bpp,
        options,
        args.seed,
        Path(args.out) if args.out else None,
        args.estimate,
        args.limit,
        not args.no_progress,
        args.batch_size,
    )
    print(path)
    print(summary_line(metrics) + (" (cached)" if cached else ""))
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``nicspec eval``."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a codec on a dataset: metrics JSON + D/G/R spectra, cached",
        description="Compress every image of a dataset (optionally corrupted) with one codec "
        "setting; write <out>/<config key>/metrics.json and spectra.npz. A rerun of the same "
        "configuration is read from the cache.",
    )
    p.add_argument(
        "--codec",
        required=True,
        help="none, jpeg, jpeg2000, webp, avif, hevc, vtm, zoo:ARCH, checkpoint:PATH or nic:NAME",
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=_number, help="the codec's rate setting")
    rate.add_argument("--bpp", type=float, help="target bits per pixel (rate matching)")
    p.add_argument("--lmbda", type=float, help="lambda of a variable-rate NIC model")
    p.add_argument(
        "--option", action="append", metavar="KEY=VALUE", help="codec option (repeatable)"
    )
    p.add_argument("--estimate", action="store_true", help="NIC: estimated instead of real bpp")
    p.add_argument(
        "--vtm-dir", help="VTM: folder with the encoder/decoder apps (default $NICSPEC_VTM_DIR)"
    )
    p.add_argument("--dataset", required=True, help="dataset name (see `nicspec data`)")
    p.add_argument("--images", help="comma-separated image ids (default: all)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--corruption", help="corruption name or number (needs --severity)")
    p.add_argument("--severity", type=int, help="corruption severity 1..5")
    p.add_argument("--seed", type=int, default=0, help="corruption seed (default 0)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images per codec call")
    p.add_argument("--out", help="results folder (default $NICSPEC_RESULTS or ./results)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run_cli)
