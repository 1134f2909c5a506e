"""Chapter 1's computation: the corrupted sets and the cached mean spectrum of every
(corruption, severity), with band shares from the spectra or their ring profiles."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import corruptions as C
from ...cache import canonical_json, config_key
from ...data import Dataset, get_dataset
from ...errors import DataError, UsageError
from ...io import read_image
from ...spectral import (
    BAND_EDGES,
    BAND_NAMES,
    LUMA,
    band_energies,
    error_spectrum,
    radial_frequency,
    zero_dc,
)
from ...store import load_maps, save_maps
from .settings import N_RINGS, RING_STEP, SCHEMA, _safe, resolve_cache_dir, set_dir


def build_set(
    dataset: Dataset,
    corruptions: Sequence[str],
    severities: Sequence[int],
    image_ids: Sequence[str],
    seed: int,
    cache_dir: str | os.PathLike[str] | None,
    jobs: int | None = None,
) -> C.BuildStats:
    """Build (or reuse) the corrupted set in ``<cache_dir>/<dataset>`` with Dask tasks; see
    :func:`corruptions.build_corrupted_set`. ``jobs``: workers of the local cluster (None: the
    engine's, i.e. ``$NICSPEC_WORKERS`` or every core, shared with the other chapters)."""
    if not image_ids:
        raise UsageError(f"no images of {dataset.name!r} selected")
    return C.build_corrupted_set_stats(
        dataset,
        list(corruptions),
        list(severities),
        set_dir(cache_dir, dataset.name),
        image_ids=list(image_ids),
        jobs=None if jobs is None else int(jobs),
        seed=int(seed),
        progress=False,
    )


# --- spectra ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeveritySpectrum:
    """One (corruption, severity) over the selected images: mean |F|, band shares, rings, and
    each image's own band shares (``image_shares``: images x bands, in ``image_ids`` order)."""

    corruption: str
    severity: int
    magnitude: np.ndarray
    bands: dict[str, float]
    ring_energy: np.ndarray
    n_images: int
    key: str
    image_shares: np.ndarray = field(default_factory=lambda: np.zeros((0, len(BAND_NAMES))))
    image_ids: tuple[str, ...] = ()


@dataclass
class CorruptionSpectra:
    """Every (corruption, severity) of one dataset; ``computed`` counts the cache misses."""

    dataset: str
    image_ids: list[str]
    seed: int
    entries: dict[tuple[str, int], SeveritySpectrum] = field(default_factory=dict)
    computed: int = 0

    @property
    def corruptions(self) -> list[str]:
        """Corruption names in the paper's order."""
        names = {c for c, _ in self.entries}
        return [n for n in C.corruption_names() if n in names]

    @property
    def severities(self) -> list[int]:
        """Severities present, sorted."""
        return sorted({s for _, s in self.entries})

    @property
    def shape(self) -> tuple[int, int]:
        """Spectrum shape (H, W)."""
        first = next(iter(self.entries.values()))
        return first.magnitude.shape  # type: ignore[return-value]

    def __getitem__(self, key: tuple[str, int]) -> np.ndarray:
        return self.entries[key].magnitude

    def magnitude(self, corruption: str) -> np.ndarray:
        """Mean |F| of a corruption over its severities (float64, DC kept)."""
        maps = [e.magnitude for (c, _), e in self.entries.items() if c == corruption]
        if not maps:
            raise UsageError(f"no spectra of {corruption!r} in {self.dataset}")
        return np.mean(np.stack(maps).astype(np.float64), axis=0)


def _entry_config(
    dataset: Dataset,
    corruption: str,
    severity: int,
    image_ids: Sequence[str],
    seed: int,
    manifest: Mapping[str, Any],
) -> dict[str, Any]:
    files = manifest.get("files", {})
    sources = manifest.get("sources", {})
    rels = {i: f"{corruption}/{severity}/{i}.png" for i in image_ids}
    missing = [r for r in rels.values() if r not in files]
    if missing:
        raise DataError(f"the corrupted set lacks {missing[0]}; build it first")
    norm = dataset.normalisation
    return {
        "schema": SCHEMA,
        "what": "mean |F(corrupted - clean)|",
        "dataset": dataset.name,
        "corruption": corruption,
        "severity": int(severity),
        "seed": int(seed),
        "image_ids": list(image_ids),
        "files": {i: files[r] for i, r in rels.items()},
        "sources": {i: sources.get(i) for i in image_ids},
        "corruption_impl": manifest.get("config", {}),
        "normalisation": {"mean": list(norm.mean), "std": list(norm.std)},
        "luma": list(LUMA),
        "band_edges": list(BAND_EDGES),
        "ring_step": RING_STEP,
    }


def _entry_path(root: Path, corruption: str, severity: int, key: str) -> Path:
    return root / f"{corruption}-s{severity}-{key}.npz"


def _load_entry(path: Path, config: dict[str, Any], key: str) -> SeveritySpectrum | None:
    """A cached entry, or None when missing, unreadable or made with another configuration."""
    if not path.is_file():
        return None
    try:
        z = load_maps(path)
        if str(z["config"]) != canonical_json(config):
            return None
        bands = dict(zip(BAND_NAMES, (float(v) for v in z["bands"]), strict=True))
        return SeveritySpectrum(
            config["corruption"],
            config["severity"],
            np.array(z["magnitude"]),
            bands,
            np.array(z["ring_energy"]),
            int(z["n_images"]),
            key,
            np.array(z["image_shares"], dtype=np.float64),
            tuple(config["image_ids"]),
        )
    except (DataError, ValueError, KeyError):
        return None


def ring_index(shape: tuple[int, ...]) -> np.ndarray:
    """Ring of every element of a shifted spectrum: ``k`` where ``k * RING_STEP <= rho <
    (k + 1) * RING_STEP``, compared exactly like :func:`spectral.band_energies` does."""
    edges = np.arange(N_RINGS + 1) * RING_STEP
    return np.searchsorted(edges, radial_frequency(shape), side="right") - 1


def _compute_entry(
    clean: Mapping[str, np.ndarray],
    folder: Path,
    corruption: str,
    severity: int,
    normalisation: Any,
    key: str,
) -> SeveritySpectrum:
    """Average |F| and |F|^2 of (corrupted - clean) over the images of ``clean``, and each
    image's band shares of its own energy |F|^2."""
    total: np.ndarray | None = None
    power: np.ndarray | None = None
    per_image = []
    for image_id, x in clean.items():
        x_tilde = read_image(folder / corruption / str(severity) / f"{image_id}.png")
        spec = error_spectrum(x_tilde, x, normalisation)
        if total is None:
            total, power = np.zeros_like(spec), np.zeros_like(spec)
        elif spec.shape != total.shape:
            raise DataError(f"{image_id}: spectra need all images of a dataset in one size")
        assert power is not None
        total += spec
        power += spec**2
        own = band_energies(spec**2, power=True)
        per_image.append([own[b] for b in BAND_NAMES])
    assert total is not None and power is not None
    n = len(clean)
    mean, mean_power = total / n, power / n
    bands = band_energies(mean_power, power=True)
    rings = np.bincount(
        ring_index(mean.shape).ravel(), weights=zero_dc(mean_power).ravel(), minlength=N_RINGS
    )
    return SeveritySpectrum(
        corruption, severity, mean.astype(np.float32), bands, rings, n, key,
        np.asarray(per_image, dtype=np.float64), tuple(clean),
    )  # fmt: skip


def corruption_spectra(
    dataset_name: str,
    corruptions: str | Sequence[str] = "all",
    severities: str | int | Sequence[int] = "1-5",
    image_ids: Sequence[str] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
) -> CorruptionSpectra:
    """Mean spectrum of every (corruption, severity) of a dataset, from its corrupted set.

    Builds (or reuses) the set in ``<cache_dir>/<dataset>`` first, then reads each entry from
    ``<cache_dir>/spectra/<dataset>/`` when its configuration (files' digests included) matches,
    computing and writing it atomically otherwise.
    """
    from ...store import served_file

    dataset = get_dataset(dataset_name)
    names = C.parse_corruptions(corruptions)
    sevs = C.parse_severities(severities)
    ids = list(image_ids) if image_ids else list(dataset.image_ids)
    if not dataset.catalogue:  # without the images, the set's manifest comes from a bundle
        build_set(dataset, names, sevs, ids, seed, cache_dir, jobs)
    folder = set_dir(cache_dir, dataset.name)
    manifest_path = served_file(folder / C.MANIFEST_NAME, dataset.name)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable corrupted-set manifest {manifest_path} ({exc})") from None
    root = resolve_cache_dir(cache_dir) / "spectra" / _safe(dataset.name)
    result = CorruptionSpectra(dataset.name, ids, int(seed))
    clean: dict[str, np.ndarray] | None = None
    for name in names:
        for severity in sevs:
            config = _entry_config(dataset, name, severity, ids, seed, manifest)
            key = config_key(config)
            path = _entry_path(root, name, severity, key)
            entry = _load_entry(served_file(path, dataset.name), config, key)
            if entry is None:
                if clean is None:
                    clean = {i: dataset.load(i) for i in ids}
                entry = _compute_entry(clean, folder, name, severity, dataset.normalisation, key)
                # the magnitude map in the store's encoding (float16, by its Hermitian half:
                # 0.3 MB, 1.6 MB as float32); bands and ring energies stay float64
                save_maps(
                    path,
                    {
                        "magnitude": entry.magnitude,
                        "bands": np.array([entry.bands[b] for b in BAND_NAMES]),
                        "ring_energy": entry.ring_energy,
                        "image_shares": entry.image_shares,
                        "n_images": np.asarray(entry.n_images),
                        "config": np.asarray(canonical_json(config)),
                    },
                )
                # what a rerun will read: a fresh run and a rerun draw the same figures
                entry = _load_entry(path, config, key) or entry
                result.computed += 1
            result.entries[(name, severity)] = entry
    return result


# --- tables ----------------------------------------------------------------------------------


def image_table(spectra: Sequence[CorruptionSpectra]) -> Any:
    """Each image's own band shares: one row per (dataset, image, corruption, severity) with
    ``group`` (the paper's) and ``low``, ``medium``, ``high`` (fractions summing to 1)."""
    import pandas as pd

    rows = []
    for s in spectra:
        for (name, severity), entry in s.entries.items():
            group = C.get_corruption(name).group
            for image_id, shares in zip(entry.image_ids, entry.image_shares, strict=True):
                rows.append(
                    {"dataset": s.dataset, "image": image_id, "corruption": name,
                     "group": group, "severity": severity}
                    | dict(zip(BAND_NAMES, map(float, shares), strict=True))
                )  # fmt: skip
    cols = ["dataset", "image", "corruption", "group", "severity", *BAND_NAMES]
    return pd.DataFrame(rows, columns=cols)


def shares_from_rings(
    ring_energy: np.ndarray, edges: tuple[float, float] = BAND_EDGES
) -> dict[str, float]:
    """Band shares from a ring energy profile; ``edges`` must be multiples of RING_STEP."""
    lo, hi = (int(round(e / RING_STEP)) for e in edges)
    for e, k in zip(edges, (lo, hi), strict=True):
        if not np.isclose(k * RING_STEP, e, rtol=0, atol=1e-12):
            raise UsageError(f"band edge {e} is not a multiple of {RING_STEP:.6g} cycles/pixel")
    if not 0 < lo < hi:
        raise UsageError(f"band edges must satisfy 0 < low < high, got {edges}")
    energy = np.asarray(ring_energy, dtype=np.float64)
    parts = {"low": energy[:lo].sum(), "medium": energy[lo:hi].sum(), "high": energy[hi:].sum()}
    total = float(energy.sum())
    if total == 0:
        return dict.fromkeys(BAND_NAMES, 0.0)
    return {k: float(v) / total for k, v in parts.items()}


def band_table(
    spectra: CorruptionSpectra,
    by_severity: bool = False,
    edges: tuple[float, float] | None = None,
) -> Any:
    """Energy shares per corruption (mean over severities) or per (corruption, severity).

    Columns: ``number``, ``corruption``, ``group`` (the paper's), [``severity``], ``low``,
    ``medium``, ``high`` (fractions summing to 1). ``edges`` other than the default recomputes
    the shares from the ring profiles (:func:`shares_from_rings`).
    """
    import pandas as pd

    rows = []
    for (name, severity), entry in spectra.entries.items():
        c = C.get_corruption(name)
        shares = entry.bands if edges is None else shares_from_rings(entry.ring_energy, edges)
        rows.append(
            {"number": c.number, "corruption": name, "group": c.group, "severity": severity}
            | shares
        )
    cols = ["number", "corruption", "group", "severity", *BAND_NAMES]
    frame = pd.DataFrame(rows, columns=cols).sort_values(["number", "severity"])
    if by_severity:
        return frame.reset_index(drop=True)
    out = frame.groupby(["number", "corruption", "group"], as_index=False, sort=True)[
        list(BAND_NAMES)
    ].mean()
    return out.reset_index(drop=True)
