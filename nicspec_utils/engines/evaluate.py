"""Evaluate one configuration (codec x dataset x corruption): metrics JSON + spectra NPZ, cached.

A configuration is the codec's full config, the dataset and its selected image ids, the
corruption and severity (and its seed and implementation) and the measurement settings. It is
written to ``<out>/<config_key>/``:

- ``spectra.npz`` (:func:`store.save_maps`: maps in float16, 4.9e-4 relative): mean error
  spectra over the images (:mod:`nicspec_utils.spectral`, float32 FFTs, float64 sums),
  shifted |F| (float32 once loaded), DC kept (zero it with :func:`spectral.zero_dc` before
  plotting). Clean input: ``D``; corrupted input: ``G`` (vs the corrupted input), ``R`` (vs
  the clean image) and ``C`` (the corruption itself: corrupted vs clean, no codec). Each also
  as ``<name>_rounded`` (the reference code's rounding quirk; of these only ``D_rounded`` is
  stored as a map, see :data:`UNSTORED_MAPS`), ``radial_<name>`` (radial profile of the DC-less
  mean spectrum) with ``radius`` (cycles/pixel), and ``n_images``.
  Not written for an entry computed with ``maps=False`` (``metrics["spectra"]`` is null).
- ``metrics.json`` (written last; its presence marks a finished run): means over images of
  ``bpp``, ``psnr`` and ``ms_ssim`` (w.r.t. the codec's input), ``psnr_wrt_clean`` and
  ``ms_ssim_wrt_clean`` (w.r.t. the clean image; ``null`` for clean runs; MS-SSIM is ``null``
  for images under 161 px a side), ``n_images``, ``n_lossless``,
  ``band_energies`` (shares of mean error energy per band, see :data:`spectral.BAND_EDGES`),
  ``per_image`` records (each with its ``codec_time_s``, its share of its batch's codec time,
  ``bands``: the band energy shares of each of its maps, e.g. ``bands["D"]["high"]``, and
  ``energy``: each map's energy ``sum |F|**2`` without DC, ``total`` and per band, e.g.
  ``energy["R_rounded"]["high"]``; a per-image energy, so their mean is not the energy of the
  mean map),
  ``codec``/``codec_version``, the whole ``config``, its ``key``,
  ``nicspec`` version, ``wall_time_s`` and ``codec_time_s``.

PSNR and MS-SSIM are computed on 8-bit rounded images (as CompressAI's evaluation does, so our
numbers compare with its published curves); the mean PSNR is the mean of per-image PSNRs.
JSON has no infinity: an infinite PSNR (a lossless image) is stored as ``null``, and so is a mean
that includes one. Both files are written atomically; a rerun of the same configuration finds
``metrics.json`` with the same ``config`` and returns at once ("cached").
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..cache import canonical_json, config_key, json_safe, read_json, results_dir
from ..errors import DataError, UsageError
from ..io import atomic_write_json

SCHEMA = 1
# Mean maps no figure draws: the rounded G, R and C (their per-image band energies stay in the
# records, their mean-map band shares and radial profiles in metrics.json and spectra.npz).
# D_rounded is drawn (chapter 3 compares the two definitions on it).
UNSTORED_MAPS = frozenset({"G_rounded", "R_rounded", "C_rounded"})
DEFAULT_BATCH = 8


def get_codec(name: str, quality: float | None = None, bpp: float | None = None, **options: Any):
    """The codec registry's ``get_codec`` (imported lazily; tests monkeypatch this name)."""
    from ..codecs import get_codec as _get_codec

    return _get_codec(name, quality=quality, bpp=bpp, **options)


def is_neural_codec(name: str) -> bool:
    """Whether a codec name is a NIC (``zoo:``, ``checkpoint:``, ``nic:``), i.e. not a classic one.

    Names the registry does not know (test doubles) count as neural; the registry rejects them
    itself when they are truly unknown.
    """
    from ..codecs import CLASSIC, is_neural_name

    if is_neural_name(name):
        return True

    return name not in CLASSIC


def check_corruption(corruption: str | None, severity: int | None) -> tuple[str | None, int | None]:
    """Validate a corruption/severity pair through the corruptions module; both or neither."""
    if corruption is None and severity is None:
        return None, None
    if corruption is None:
        raise UsageError("--severity needs --corruption")
    if severity is None:
        raise UsageError("--corruption needs --severity (1..5)")
    from ..corruptions import get_corruption

    name = get_corruption(corruption).name
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise UsageError(f"severity must be an integer 1..5, got {severity!r}")
    if not 1 <= int(severity) <= 5:
        raise UsageError(f"severity {severity} is out of range; choose from 1..5")
    return name, int(severity)


def _corruption_config(name: str, severity: int, seed: int) -> dict[str, Any]:
    from .. import corruptions

    impl = corruptions.corruption_impl(name)
    scheme = getattr(corruptions, "SEED_SCHEME", "")
    return {"name": name, "severity": severity, "seed": seed, "impl": impl, "seed_scheme": scheme}


def _measure_config(normalisation: Any) -> dict[str, Any]:
    from ..spectral import BAND_EDGES, LUMA

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


def _ms_ssim_or_none(x: np.ndarray, refs: Sequence[np.ndarray]) -> list[float | None]:
    """MS-SSIM of ``x`` against each of ``refs`` (x's filtering shared), or Nones (with a
    warning) for images too small for its five scales."""
    from ..metrics import MS_SSIM_MIN_SIDE, ms_ssim_many

    if min(x.shape[:2]) < MS_SSIM_MIN_SIDE:
        warnings.warn(
            f"MS-SSIM needs {MS_SSIM_MIN_SIDE} px a side; stored as null for a "
            f"{x.shape[1]}x{x.shape[0]} image",
            stacklevel=2,
        )
        return [None] * len(refs)
    return list(ms_ssim_many(x, refs))


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


def _cached(metrics_path: Path, config: dict[str, Any], maps: bool = True) -> dict[str, Any] | None:
    """The stored metrics if ``metrics_path`` holds this very configuration (and its maps,
    when ``maps`` asks for them: an entry stored without maps is then computed again)."""
    data = read_json(metrics_path)
    if not isinstance(data, dict):
        return None
    if maps and data.get("spectra") is None:
        return None
    if data.get("config") != json.loads(canonical_json(config)):
        warnings.warn(f"{metrics_path} holds another configuration; recomputing", stacklevel=3)
        return None
    return data


def _stored(plan: Plan, maps: bool = True) -> tuple[Path, dict[str, Any] | None]:
    """The planned entry's metrics.json path and its metrics if finished (None if not): from
    the store's folder, else, when that folder is the results folder, from a bundle
    (:func:`store.bundle_entry`, read-only). A hit is noted in the uses log
    (:func:`store.note_use`)."""
    from ..store import bundle_entry, note_use

    metrics_path = plan.folder / "metrics.json"
    hit = _cached(metrics_path, plan.config, maps)
    source = None
    if hit is None and plan.folder.parent.resolve() == results_dir().resolve():
        bundled = bundle_entry(plan.key)
        if bundled is not None:
            found = _cached(bundled / "metrics.json", plan.config, maps)
            if found is not None:
                metrics_path, hit, source = bundled / "metrics.json", found, bundled.parent.parent
    if hit is not None:
        note_use(plan.key, source.name if source is not None else None)
    return metrics_path, hit


def _corrupt_all(plan: Plan, ids: Sequence[str], cleans: list[np.ndarray]) -> list[np.ndarray]:
    """The corrupted inputs of ``ids``, each computed once and shared: read from the store's
    corrupted set (``<results>/corrupted/<dataset>``, the one chapter 1 and ``nicspec
    corrupt`` build) when it holds the image, else corrupted (keyed by content) and added
    there. A set made with other settings (seed, library version) is left alone."""
    from ..corruptions import corrupt, corrupted_set_dir, load_or_corrupt_many

    assert plan.corruption is not None and plan.severity is not None
    root = corrupted_set_dir(plan.folder.parent / "corrupted", plan.dataset.name)
    try:
        return load_or_corrupt_many(plan.dataset, ids, plan.corruption, plan.severity,
                                    plan.seed, root, cleans)  # fmt: skip
    except (UsageError, OSError):
        return [corrupt(c, plan.corruption, plan.severity, seed=plan.seed) for c in cleans]


def _save_spectra(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The NPZ of mean maps, written atomically in the store's map encoding
    (:func:`store.save_maps`: float16, Hermitian maps by half, zlib; 1.9 MB for a corrupted
    Kodak entry's six maps, 9.5 MB as float32)."""
    from ..store import save_maps

    save_maps(path, arrays)


def _measure_one(
    codec_name: str,
    image_id: str,
    clean: np.ndarray,
    inp: np.ndarray,
    res: Any,
    corrupted: bool,
    accs: dict[str, Any],
    normalisation: Any,
    codec_time_s: float | None = None,
) -> dict[str, Any]:
    """Per-image metrics of one coded image; adds its spectra to the accumulators.

    PSNR and MS-SSIM read each image's 8-bit levels once; MS-SSIM w.r.t. the input and the
    clean image share the reconstruction's filtering; the spectra are float32
    (:func:`spectral.image_spectra`); each map's band energy shares go in ``bands`` and its
    energies (DC excluded: ``total``, ``low``, ``medium``, ``high``) in ``energy``.
    """
    from ..metrics import levels_8bit, psnr
    from ..spectral import BAND_NAMES, image_spectra

    rec = np.asarray(res.reconstruction)
    if rec.shape != inp.shape:
        raise DataError(f"codec {codec_name} returned a {rec.shape} reconstruction for {inp.shape}")
    if any(a.shape not in (None, rec.shape[:2]) for a in accs.values()):
        raise DataError(
            f"image {image_id} is {rec.shape[1]}x{rec.shape[0]}; spectra need all images of a "
            "dataset in one size"
        )
    q_rec, q_inp = levels_8bit(rec), levels_8bit(inp)
    q_clean = levels_8bit(clean) if corrupted else q_inp
    ssim = _ms_ssim_or_none(q_rec, [q_inp, q_clean] if corrupted else [q_inp])
    item: dict[str, Any] = {
        "id": image_id,
        "height": int(rec.shape[0]),
        "width": int(rec.shape[1]),
        "bits": float(res.bits),
        "bpp": float(res.bpp),
        "psnr": _finite(psnr(q_rec, q_inp)),
        "ms_ssim": ssim[0],
        "psnr_wrt_clean": _finite(psnr(q_rec, q_clean)) if corrupted else None,
        "ms_ssim_wrt_clean": ssim[1] if corrupted else None,
        "codec_time_s": codec_time_s,
    }
    if not accs:  # no maps asked for: no spectra
        return item
    spectra = image_spectra(clean, inp if corrupted else None, rec, normalisation)
    bands: dict[str, dict[str, float]] = {}
    energy: dict[str, dict[str, float]] = {}
    for name, acc in accs.items():
        acc.add_spectrum(spectra[name])
        energy[name] = _band_sums(spectra[name])
        total = energy[name]["total"]
        bands[name] = {b: energy[name][b] / total if total else 0.0 for b in BAND_NAMES}
    item["bands"] = bands
    item["energy"] = energy
    return item


def _band_sums(spectrum: np.ndarray) -> dict[str, float]:
    """Energy ``sum |F|**2`` of one map, DC excluded: ``total`` and per band (the sums whose
    shares :func:`spectral.band_energies` gives), in float64."""
    from ..spectral import BAND_EDGES, BAND_NAMES, _band_labels

    s = np.asarray(spectrum).ravel().astype(np.float64)
    sums = np.bincount(_band_labels(np.shape(spectrum), BAND_EDGES), weights=s * s, minlength=4)
    out = {b: float(v) for b, v in zip(BAND_NAMES, sums[:3], strict=True)}
    return {"total": float(sums[:3].sum()), **out}


@dataclass(frozen=True)
class Plan:
    """One store entry before it is computed: the selection, its configuration and key."""

    dataset: Any
    ids: list[str]
    corruption: str | None
    severity: int | None
    seed: int
    config: dict[str, Any]
    key: str
    folder: Path


def plan_entry(
    codec: Any,
    dataset: Any,
    image_ids: Sequence[str] | None = None,
    corruption: str | None = None,
    severity: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    limit: int | None = None,
) -> Plan:
    """The store entry of ``codec`` on a selection: its configuration (codec, dataset, image
    ids and the sha256 of their files, corruption, measurement and its code version) and key."""
    from ..data import Dataset, get_dataset
    from ..store import MEASURE_VERSION, input_digests

    corruption, severity = check_corruption(corruption, severity)
    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(image_ids) if image_ids else None, limit)
    ids = ds.image_ids
    if not ids:
        raise DataError(f"dataset {ds.name!r} has no images to evaluate")
    if ds.transform == "none":  # a labelled folder keeps its sizes: check them before any work
        from ..data import header_size

        sizes = sorted({header_size(f) for f in ds.files})
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h}" for w, h in sizes[:4])
            raise DataError(
                f"images of {ds.name} differ in size ({shown}); spectra need one size: "
                "choose images of one size with --images"
            )
    config: dict[str, Any] = {
        "schema": SCHEMA,
        "codec": _codec_config(codec),
        "dataset": ds.name,
        "image_ids": ids,
        "inputs": input_digests(ds, ids),
        "transform": ds.transform,
        "corruption": None
        if corruption is None
        else _corruption_config(corruption, severity, int(seed)),  # type: ignore[arg-type]
        "measure": {**_measure_config(ds.normalisation), "version": MEASURE_VERSION},
    }
    key = config_key(config)
    folder = (Path(out) if out is not None else results_dir()) / key
    _check_writable(folder)
    return Plan(ds, ids, corruption, severity, int(seed), config, key, folder)


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
    maps: bool = True,
) -> tuple[Path, dict[str, Any], bool]:
    """Evaluate ``codec`` (a Codec instance); return (metrics.json path, metrics, was cached).

    ``maps=False`` skips the spectra (maps, per-image band energies) where no result uses them
    (a rate-distortion ladder); a later call that asks for maps computes the entry again.
    The entry is claimed (an exclusive lock on its folder) while it is computed, so two
    processes never compute it twice: the second waits and then reads the first one's result.
    """
    from ..store import claim, note_use

    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    plan = plan_entry(codec, dataset, image_ids, corruption, severity, seed, out, limit)
    metrics_path, hit = _stored(plan, maps)
    if hit is None:
        with claim(plan.folder):
            hit = _cached(metrics_path, plan.config, maps)  # another process finished it
            if hit is None:
                computed = _compute_entry(codec, plan, progress, batch_size, maps)
                note_use(plan.key)
                return metrics_path, computed, False
    if progress:
        print(f"cached: {metrics_path}", file=sys.stderr)
    return metrics_path, hit, True


def _compute_entry(
    codec: Any, plan: Plan, progress: bool, batch_size: int, maps: bool = True
) -> dict[str, Any]:
    """Compute the planned entry and write it (records, maps, then metrics.json last); return
    its metrics."""
    from ..spectral import SpectrumAccumulator, band_energies, radial_profile, zero_dc

    started = time.perf_counter()
    ds, ids, config, key, folder = plan.dataset, plan.ids, plan.config, plan.key, plan.folder
    corruption, severity = plan.corruption, plan.severity
    metrics_path = folder / "metrics.json"
    measures = ("D",) if corruption is None else ("G", "R", "C")
    accs = {
        m + suffix: SpectrumAccumulator(ds.normalisation, round_like_reference=rounded)
        for m in measures
        for suffix, rounded in (("", False), ("_rounded", True))
        if maps
    }
    records: list[dict[str, Any]] = []
    codec_time = 0.0
    label = f"{codec.name} {ds.name}" + (f" {corruption}-{severity}" if corruption else "")
    bar = _progress_bar(len(ids), progress, label)
    try:
        for chunk in _chunks(ids, batch_size):
            cleans = [ds.load(i) for i in chunk]
            inputs = cleans if corruption is None else _corrupt_all(plan, chunk, cleans)
            t0 = time.perf_counter()
            batch = getattr(codec, "compress_batch", None)
            results = batch(inputs) if batch is not None else [codec.compress(x) for x in inputs]
            batch_time = time.perf_counter() - t0
            codec_time += batch_time
            if len(results) != len(inputs):
                raise DataError(
                    f"codec {codec.name} returned {len(results)} results for {len(inputs)}"
                )
            for image_id, clean, inp, res in zip(chunk, cleans, inputs, results, strict=True):
                records.append(
                    _measure_one(
                        codec.name,
                        image_id,
                        clean,
                        inp,
                        res,
                        corruption is not None,
                        accs,
                        ds.normalisation,
                        codec_time_s=batch_time / len(inputs),
                    )  # fmt: skip
                )
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    arrays: dict[str, np.ndarray] = {"n_images": np.asarray(len(records))}
    bands: dict[str, dict[str, float]] = {}
    for name, acc in accs.items():
        mean = acc.result()
        if name not in UNSTORED_MAPS:
            arrays[name] = mean.astype(np.float32)
        arrays["radius"], arrays[f"radial_{name}"] = radial_profile(zero_dc(mean))
        bands[name] = band_energies(acc.result_power(), power=True)

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
        "spectra": "spectra.npz" if maps else None,
        "config": json.loads(canonical_json(config)),
        "codec_time_s": codec_time,
        "wall_time_s": time.perf_counter() - started,
        "per_image": records,
    }
    metrics = json_safe(metrics)
    if maps:
        _save_spectra(folder / "spectra.npz", arrays)
    from ..store import write_records

    digests = dict(zip(ids, config["inputs"], strict=True))
    write_records(folder, records, _record_meta(metrics), digests)
    atomic_write_json(metrics_path, metrics)
    return metrics


def _record_meta(metrics: dict[str, Any]) -> dict[str, Any]:
    """The configuration's columns of every per-image record."""
    config = metrics["config"]
    corruption = config.get("corruption") or {}
    codec = config.get("codec") or {}
    return {
        "key": metrics["key"],
        "codec": metrics["codec"],
        "codec_version": metrics["codec_version"],
        "codec_config": canonical_json(codec),
        "dataset": metrics["dataset"],
        "corruption": corruption.get("name"),
        "severity": corruption.get("severity"),
        "seed": corruption.get("seed"),
        "measure_version": (config.get("measure") or {}).get("version"),
    }


DISPLAY_FILE = "display.json"


@dataclass
class Point:
    """One finished evaluation: its metrics and its mean maps (the keys of ``spectra.npz``).

    ``display``: for an entry of a results bundle whose maps were reduced to fit it (see
    :func:`bundle.write_bundle`), the reduction ``factor`` and each map's band shares and energy
    computed before the reduction (``scalars``); the maps then serve figures only."""

    metrics: dict[str, Any]
    spectra: dict[str, np.ndarray]
    display: dict[str, Any] | None = None

    @property
    def bpp(self) -> float:
        """Mean bits per pixel."""
        return float(self.metrics["bpp"])

    def drawn(self, measure: str) -> np.ndarray:
        """The map ``measure`` for a figure: logged as drawn (:func:`store.note_drawn`), so a
        results bundle keeps this entry's maps fine enough to draw."""
        from ..store import note_drawn

        note_drawn(str(self.metrics.get("key") or ""))
        return self.spectra[measure]

    def band_shares(self, measure: str) -> dict[str, float]:
        """Low / medium / high shares of the mean map's energy (DC excluded), at full
        resolution even where the maps were reduced."""
        from ..spectral import band_energies

        if self.display is not None:
            return {k: float(v) for k, v in self.display["scalars"][measure]["shares"].items()}
        return band_energies(self.spectra[measure])

    def energy(self, measure: str) -> float:
        """Total energy ``sum |F|**2`` of the mean map, DC excluded (at full resolution)."""
        if self.display is not None:
            return float(self.display["scalars"][measure]["energy"])
        return map_energy(self.spectra[measure])


def map_energy(spectrum: np.ndarray) -> float:
    """Total energy ``sum |F|**2`` of a centred magnitude spectrum, DC excluded."""
    from ..spectral import zero_dc

    return float((zero_dc(spectrum) ** 2).sum())


def display_scalars(maps: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """What :class:`Point` computes from each 2-D map (band shares, energy), for a bundle that
    keeps the maps reduced."""
    from ..spectral import band_energies
    from ..store import MAP_MIN_SIDE

    return {
        name: {"shares": band_energies(a), "energy": map_energy(a)}
        for name, a in maps.items()
        if np.ndim(a) == 2 and min(np.shape(a)) >= MAP_MIN_SIDE
    }


def load_point(metrics_path: str | Path) -> Point:
    """Read a finished evaluation (metrics.json, the spectra.npz beside it and, in a bundle
    with reduced maps, display.json)."""
    path = Path(metrics_path)
    metrics = json.loads(path.read_text())
    from ..store import load_maps

    maps = metrics.get("spectra", "spectra.npz")
    display = read_json(path.parent / DISPLAY_FILE)
    return Point(
        metrics,
        load_maps(path.parent / maps) if maps else {},
        display if isinstance(display, dict) else None,
    )


def run_point(
    codec: str,
    dataset: str,
    ids: Sequence[str],
    *,
    corruption: str | None = None,
    severity: int | None = None,
    bpp: float | None = None,
    lmbda: float | None = None,
    seed: int = 0,
    estimate: bool = False,
    out: str | Path | None = None,
    target_psnr: Sequence[tuple[str, float]] | None = None,
    maps: bool = True,
    quality: float | None = None,
) -> Point:
    """Evaluate (cached) one codec on ``ids``: a NIC ``nic:<name>`` (``lmbda``: the lambda of a
    variable-rate model; ``estimate``: the likelihood rate), a classic codec at ``bpp`` or at
    ``quality`` (its own knob: a VTM QP, say), or JPEG2000 at per-image ``target_psnr`` ((image
    id, dB) pairs in the order of ``ids``; a NaN target, from a placeholder of this round, makes
    the evaluation wait for the next round)."""
    neural = is_neural_codec(codec)
    options: dict[str, Any] = {"lmbda": float(lmbda)} if lmbda is not None else {}
    if target_psnr is not None:
        if any(math.isnan(float(p)) for _, p in target_psnr):
            bpp = math.nan  # the engine's "blocked" rate target: computed in the next round
        else:
            options["target_psnr"] = [[str(i), float(p)] for i, p in target_psnr]
            bpp = None
    path = evaluate(
        codec,
        dataset,
        image_ids=list(ids),
        corruption=corruption,
        severity=severity if corruption else None,
        quality=quality,
        bpp=None if neural else bpp,
        codec_options=options or None,
        seed=seed,
        out=out,
        estimate=bool(estimate) and neural,
        progress=False,
        maps=maps,
    )
    return load_point(path)


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
    maps: bool = True,
) -> Path:
    """Evaluate a codec by name on a dataset (optionally corrupted); return metrics.json's path.

    ``out`` defaults to :func:`cache.results_dir`; ``estimate`` asks NIC codecs for the
    likelihood estimate of the rate instead of real entropy coding (codec option ``estimate``);
    ``maps=False``: no spectra where no result uses them (:func:`run_with_codec`).
    """
    return evaluate_entry(
        codec_name, dataset, image_ids, corruption, severity, quality, bpp, codec_options,
        seed, out, estimate, limit, progress, batch_size, maps,
    )[0]  # fmt: skip


def evaluate_entry(
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
    maps: bool = True,
) -> tuple[Path, dict[str, Any], bool]:
    if quality is not None and bpp is not None:
        raise UsageError("give either a quality or a bpp target, not both")
    check_corruption(corruption, severity)
    options = dict(codec_options or {})
    if estimate:
        if not is_neural_codec(codec_name):
            raise UsageError("--estimate applies to neural codecs only")
        options["estimate"] = True
    from . import scheduler as engine

    collector = engine.collecting()
    if collector is not None and bpp is not None and math.isnan(bpp):
        # a rate target that waits on a task of this round (JPEG2000 matched to a NIC's bpp)
        collector.blocked += 1
        return _placeholder(collector, f"blocked-{collector.blocked}", codec_name, dataset,
                            image_ids, corruption, severity, limit, maps=maps)  # fmt: skip
    codec = get_codec(codec_name, quality=quality, bpp=bpp, **options)
    if collector is not None:
        plan = plan_entry(codec, dataset, image_ids, corruption, severity, seed, out, limit)
        metrics_path, hit = _stored(plan, maps)
        if hit is not None:
            return metrics_path, hit, True
        task = {
            "codec_name": codec_name, "dataset": dataset, "image_ids": plan.ids,
            "corruption": corruption, "severity": severity, "quality": quality, "bpp": bpp,
            "codec_options": codec_options, "seed": seed, "out": out, "estimate": estimate,
            "limit": None, "progress": False, "batch_size": batch_size, "maps": maps,
        }  # fmt: skip
        from ..corruptions import registered_corruptions

        device = str(plan.config["codec"].get("device", "cpu"))
        # a GPU codec's task goes to a worker that declares the resource (dask-worker
        # --resources GPU=1); CPU tasks go anywhere
        resources = {"GPU": 1} if device.startswith("cuda") else None
        collector.submit(plan.key, run_task, task, registered_corruptions(), resources=resources)
        return _placeholder(collector, plan.key, codec.name, dataset, plan.ids, corruption,
                            severity, None, codec.version, maps=maps)  # fmt: skip
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
        maps=maps,
    )


def run_task(task: dict[str, Any], registered: Sequence[Any] = ()) -> str:
    """One store entry computed in a worker (the engine's task); returns its key.
    ``registered``: the client's corruptions of its own, registered here too."""
    from ..corruptions import restore_registered

    warnings.filterwarnings("ignore", message=".*torch.jit.script.*")  # compressai's, on load
    restore_registered(registered)
    _, metrics, _ = evaluate_entry(**task)
    return str(metrics["key"])


_SHAPES: dict[tuple[str, str], tuple[int, int]] = {}


def _placeholder(
    collector: Any,
    key: str,
    codec_name: str,
    dataset: Any,
    image_ids: Sequence[str] | None,
    corruption: str | None,
    severity: int | None,
    limit: int | None,
    codec_version: str = "",
    maps: bool = True,
) -> tuple[Path, dict[str, Any], bool]:
    """NaN stand-ins for an entry still being computed (see :mod:`nicspec_utils.engine`)."""
    from ..data import Dataset, get_dataset
    from .scheduler import placeholder_entry

    ds = dataset if isinstance(dataset, Dataset) else get_dataset(str(dataset))
    ds = ds.select(list(image_ids) if image_ids else None, limit)
    ids = ds.image_ids
    if (ds.name, ids[0]) not in _SHAPES:
        _SHAPES[(ds.name, ids[0])] = tuple(ds.load(ids[0]).shape[:2])  # type: ignore[assignment]
    shape = _SHAPES[(ds.name, ids[0])]
    names = (["D"] if corruption is None else ["G", "R", "C"]) if maps else []
    names += [m + "_rounded" for m in names]
    nan = float("nan")
    corrupted = corruption is not None
    per_image = [
        {"id": i, "height": shape[0], "width": shape[1], "bits": nan, "bpp": nan, "psnr": nan,
         "ms_ssim": nan, "psnr_wrt_clean": nan if corrupted else None,
         "ms_ssim_wrt_clean": nan if corrupted else None}
        for i in ids
    ]  # fmt: skip
    metrics: dict[str, Any] = {
        "placeholder": True, "nicspec": __version__, "schema": SCHEMA, "key": key,
        "codec": codec_name, "codec_version": codec_version, "dataset": ds.name,
        "corruption": corruption, "severity": severity, "n_images": len(ids), "bpp": nan,
        "psnr": nan, "ms_ssim": nan, "psnr_wrt_clean": nan if corrupted else None,
        "ms_ssim_wrt_clean": nan if corrupted else None, "n_lossless": 0,
        "band_energies": {m: {"low": nan, "medium": nan, "high": nan} for m in names},
        "spectra": "spectra.npz" if maps else None, "config": {}, "codec_time_s": nan,
        "wall_time_s": nan,
        "per_image": per_image,
    }  # fmt: skip
    return placeholder_entry(collector, key, metrics, shape, names), metrics, False
