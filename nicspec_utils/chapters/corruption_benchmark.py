"""Chapter 1: the corruption benchmark (Kodak-C, CLIC-C) and the corruptions' Fourier spectra.

For every (corruption, severity) this module averages, over the images of a dataset, the
spectrum of the corruption itself: ``|F(x~ - x)|`` with the paper's normalisation, luma,
``fftshift`` (:func:`spectral.error_spectrum` with the corrupted image as "reconstruction" and
the clean one as reference). From the mean energy it takes the shares in the low / medium /
high bands (:data:`spectral.BAND_EDGES`) and compares the dominant band with the paper's
grouping of the 15 corruptions (:data:`corruptions.CORRUPTIONS`).

Results are cached per (dataset, corruption, severity) as NPZ files under
``<cache_dir>/spectra/<dataset>/``, keyed (:func:`cache.config_key`) by the full configuration,
including the sha256 of every corrupted file and the digest of every clean input. Each holds the
mean ``|F|`` (float32), the band shares of the mean energy (float64, exact), the mean energy per
ring of radial frequency (rings of :data:`RING_STEP` cycles/pixel, for the band-edge sensitivity
check) and the configuration as JSON.

Aggregation over severities: a corruption's band shares are the mean of its per-severity shares
(each severity counts equally); its map is the mean of its per-severity mean ``|F|``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import corruptions as C
from ..cache import canonical_json, config_key, project_root
from ..data import Dataset, get_dataset
from ..errors import DataError, UsageError
from ..io import atomic_save_npz, read_image
from ..selection import dataset_label
from ..spectral import (
    BAND_EDGES,
    BAND_NAMES,
    LUMA,
    MAX_RADIUS,
    band_energies,
    error_spectrum,
    radial_frequency,
    radial_profile,
    zero_dc,
)
from ..widgets import linked_stack

SCHEMA = 1
# Rings of radial frequency for the stored energy profile: 1/384 cycles/pixel, so that 1/64,
# 1/32, 1/16 (low edges) and 1/4, 1/3, 5/12 (high edges) fall exactly on ring boundaries.
RING_STEP = 1.0 / 384.0
N_RINGS = int(np.ceil(MAX_RADIUS / RING_STEP)) + 1
LOW_EDGE_GRID = (1.0 / 64.0, 1.0 / 32.0, 1.0 / 16.0)
HIGH_EDGE_GRID = (1.0 / 4.0, 1.0 / 3.0, 5.0 / 12.0)
GROUP_COLOURS = {"low": "Blues", "medium": "Greens", "high": "Reds"}
VERDICTS = ("reproduced", "partly reproduced", "not reproduced")


def _safe(name: str) -> str:
    """A dataset name as a folder name (``folder:/x/y`` -> ``folder_x_y``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "dataset"


def resolve_cache_dir(cache_dir: str | os.PathLike[str]) -> Path:
    """An absolute cache folder; a relative one is taken from the project root, so a notebook
    run from ``notebooks/`` or from the root uses the same cache."""
    path = Path(cache_dir).expanduser()
    return path if path.is_absolute() else project_root() / path


def display_path(path: str | os.PathLike[str]) -> str:
    """A path relative to the project root when it lies inside it, else absolute."""
    p = Path(path).resolve()
    root = project_root()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def set_dir(cache_dir: str | os.PathLike[str], dataset_name: str) -> Path:
    """Where the corrupted set of a dataset lives: ``<cache_dir>/<dataset>``."""
    return C.corrupted_set_dir(cache_dir, dataset_name)


def select_image_ids(dataset: Dataset, count: int | None) -> list[str]:
    """The first ``count`` image ids of a dataset (``None``: all; more than there are: all)."""
    if count is None:
        return list(dataset.image_ids)
    if int(count) < 0:
        raise UsageError(f"image count must be 0 or more (None for all), got {count}")
    return list(dataset.image_ids[: int(count)])


def build_set(
    dataset: Dataset,
    corruptions: Sequence[str],
    severities: Sequence[int],
    image_ids: Sequence[str],
    seed: int,
    cache_dir: str | os.PathLike[str],
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
    """One (corruption, severity) over the selected images: mean |F|, band shares, rings."""

    corruption: str
    severity: int
    magnitude: np.ndarray
    bands: dict[str, float]
    ring_energy: np.ndarray
    n_images: int
    key: str


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
        with np.load(path) as z:
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
            )
    except (OSError, ValueError, KeyError):
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
    """Average |F| and |F|^2 of (corrupted - clean) over the images of ``clean``."""
    total: np.ndarray | None = None
    power: np.ndarray | None = None
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
    assert total is not None and power is not None
    n = len(clean)
    mean, mean_power = total / n, power / n
    bands = band_energies(mean_power, power=True)
    rings = np.bincount(
        ring_index(mean.shape).ravel(), weights=zero_dc(mean_power).ravel(), minlength=N_RINGS
    )
    return SeveritySpectrum(corruption, severity, mean.astype(np.float32), bands, rings, n, key)


def corruption_spectra(
    dataset_name: str,
    corruptions: str | Sequence[str] = "all",
    severities: str | int | Sequence[int] = "1-5",
    image_ids: Sequence[str] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] = "results/corrupted",
    jobs: int | None = None,
) -> CorruptionSpectra:
    """Mean spectrum of every (corruption, severity) of a dataset, from its corrupted set.

    Builds (or reuses) the set in ``<cache_dir>/<dataset>`` first, then reads each entry from
    ``<cache_dir>/spectra/<dataset>/`` when its configuration (files' digests included) matches,
    computing and writing it atomically otherwise.
    """
    dataset = get_dataset(dataset_name)
    names = C.parse_corruptions(corruptions)
    sevs = C.parse_severities(severities)
    ids = list(image_ids) if image_ids else list(dataset.image_ids)
    build_set(dataset, names, sevs, ids, seed, cache_dir, jobs)
    folder = set_dir(cache_dir, dataset.name)
    manifest = json.loads((folder / C.MANIFEST_NAME).read_text())
    root = resolve_cache_dir(cache_dir) / "spectra" / _safe(dataset.name)
    result = CorruptionSpectra(dataset.name, ids, int(seed))
    clean: dict[str, np.ndarray] | None = None
    for name in names:
        for severity in sevs:
            config = _entry_config(dataset, name, severity, ids, seed, manifest)
            key = config_key(config)
            path = _entry_path(root, name, severity, key)
            entry = _load_entry(path, config, key)
            if entry is None:
                if clean is None:
                    clean = {i: dataset.load(i) for i in ids}
                entry = _compute_entry(clean, folder, name, severity, dataset.normalisation, key)
                atomic_save_npz(
                    path,
                    magnitude=entry.magnitude,
                    bands=np.array([entry.bands[b] for b in BAND_NAMES]),
                    ring_energy=entry.ring_energy,
                    n_images=np.asarray(entry.n_images),
                    config=np.asarray(canonical_json(config)),
                )
                result.computed += 1
            result.entries[(name, severity)] = entry
    return result


# --- tables ----------------------------------------------------------------------------------


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


def grouping_agreement(table: Any) -> Any:
    """Add ``dominant`` (band with the largest share), ``paper_share`` (share in the paper's
    band) and ``agree`` (dominant == the paper's group) to a :func:`band_table`."""
    out = table.copy()
    shares = out[list(BAND_NAMES)].to_numpy()
    out["dominant"] = [BAND_NAMES[i] for i in shares.argmax(axis=1)]
    out["paper_share"] = [row[g] for g, (_, row) in zip(out["group"], out.iterrows(), strict=True)]
    out["agree"] = out["dominant"] == out["group"]
    return out


def severity_pivot(spectra: CorruptionSpectra) -> Any:
    """Display table: dominant band and its share per corruption (rows) and severity (columns),
    e.g. ``"medium 62%"``."""
    table = grouping_agreement(band_table(spectra, by_severity=True))
    table["cell"] = [
        f"{r.dominant} {100 * getattr(r, r.dominant):.0f}%" for r in table.itertuples()
    ]
    table["corruption"] = [_fmt_name(n) for n in table["corruption"]]
    pivot = table.pivot(index=["number", "corruption", "group"], columns="severity", values="cell")
    pivot.columns = [f"severity {s}" for s in pivot.columns]
    return pivot.reset_index().rename(columns={"number": "#", "group": "paper's group"})


def severity_exceptions(spectra: CorruptionSpectra, label: str) -> str:
    """One Markdown sentence: the (corruption, severity) pairs whose dominant band is not the
    paper's group, severities grouped per corruption."""
    table = grouping_agreement(band_table(spectra, by_severity=True))
    bad = table[~table["agree"]]
    head = f"On {label}, {len(bad)} of {len(table)} (corruption, severity) pairs disagree"
    if bad.empty:
        return head + "."
    parts = []
    for name, rows in bad.groupby("corruption", sort=False):
        bands = ", ".join(sorted(set(rows["dominant"]), key=BAND_NAMES.index))
        parts.append(
            f"{_fmt_name(name)} at severit{'ies' if len(rows) > 1 else 'y'} "
            f"{severity_span(list(rows['severity']))} ({bands})"
        )
    return f"{head}: {'; '.join(parts)}."


def edge_sensitivity(
    spectra: CorruptionSpectra,
    low_edges: Sequence[float] = LOW_EDGE_GRID,
    high_edges: Sequence[float] = HIGH_EDGE_GRID,
) -> Any:
    """Number of corruptions whose dominant band matches the paper, for each pair of edges."""
    import pandas as pd

    counts = {
        f"high ≥ {hi:.3g}": {
            f"low < {lo:.3g}": int(
                grouping_agreement(band_table(spectra, edges=(lo, hi)))["agree"].sum()
            )
            for lo in low_edges
        }
        for hi in high_edges
    }
    frame = pd.DataFrame(counts)
    frame.attrs["n_corruptions"] = len(spectra.corruptions)
    return frame


def severity_span(values: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    runs: list[list[int]] = []
    for v in sorted(set(values)):
        if runs and runs[-1][-1] == v - 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def format_agreement(agreement: Any) -> Any:
    """A display copy of :func:`grouping_agreement`: shares in percent, "yes"/"no"."""
    out = agreement[["number", "corruption", "group", *BAND_NAMES, "dominant", "agree"]].copy()
    for band in BAND_NAMES:
        out[band] = [f"{100 * v:.1f} %" for v in out[band]]
    out["corruption"] = [_fmt_name(n) for n in out["corruption"]]
    out["agree"] = ["yes" if a else "no" for a in out["agree"]]
    return out.rename(
        columns={"number": "#", "group": "paper's group", "dominant": "dominant band",
                 "agree": "agrees"}
    ).set_index("#")  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _fmt_name(name: str) -> str:
    return name.replace("_", " ")


def agreement_sentence(agreement: Any, label: str) -> str:
    """One Markdown sentence: how many corruptions agree with the paper, and the exceptions."""
    n, k = len(agreement), int(agreement["agree"].sum())
    head = (
        f"On {label}, {k} of {n} corruptions put the largest share of their energy in the "
        "paper's band"
    )
    bad = agreement[~agreement["agree"]]
    if bad.empty:
        return head + "; there are no exceptions."
    parts = [
        f"{_fmt_name(r.corruption)} (paper: {r.group}; measured: {r.dominant}, "
        f"{_pct(getattr(r, r.dominant))}, {_pct(r.paper_share)} in {r.group})"
        for r in bad.itertuples()
    ]
    return f"{head}; the exceptions are {', '.join(parts)}."


def group_counts(agreements: Mapping[str, Any]) -> Any:
    """Agreeing corruptions per paper group (rows) and dataset (columns), as ``"k / n"``."""
    import pandas as pd

    data = {}
    for label, agreement in agreements.items():
        grouped = agreement.groupby("group", sort=False)["agree"]
        data[label] = {g: f"{int(s.sum())} / {len(s)}" for g, s in grouped}
    order = [g for g in C.GROUPS if any(g in d for d in data.values())]
    return pd.DataFrame(data).reindex(order)


def verdict(agreements: Mapping[str, Any]) -> tuple[str, str]:
    """(verdict, Markdown explanation) of the grouping claim from per-dataset agreements.

    Rule: *reproduced* when every corruption agrees on every dataset; *partly reproduced* when at
    least half of all (dataset, corruption) pairs agree; *not reproduced* otherwise.
    """
    if not agreements:
        raise UsageError("no dataset was measured")
    total = sum(len(a) for a in agreements.values())
    agree = sum(int(a["agree"].sum()) for a in agreements.values())
    if agree == total:
        word = VERDICTS[0]
    elif 2 * agree >= total:
        word = VERDICTS[1]
    else:
        word = VERDICTS[2]
    always = set.intersection(*(set(a.loc[~a["agree"], "corruption"]) for a in agreements.values()))
    text = (
        f"**{word.capitalize()}.** Over {len(agreements)} dataset(s), {agree} of {total} "
        f"(dataset, corruption) pairs have their dominant band in the paper's group "
        f"(rule: all pairs agree: reproduced; at least half: partly; fewer: not)."
    )
    if always and len(agreements) > 1:
        listed = ", ".join(_fmt_name(n) for n in C.corruption_names() if n in always)
        text += f" Disagreeing on every dataset: {listed}."
    return word, text


def sensitivity_sentence(sensitivities: Mapping[str, Any]) -> str:
    """How the agreement count moves over the band-edge grid of :func:`edge_sensitivity`."""
    parts = []
    for label, grid in sensitivities.items():
        values = grid.to_numpy()
        lo, hi = int(values.min()), int(values.max())
        span = f"{lo}" if lo == hi else f"{lo} to {hi}"
        parts.append(f"{span} of {grid.attrs.get('n_corruptions', '?')} on {label}")
    cells = max((g.size for g in sensitivities.values()), default=0)
    return (
        f"Over the {cells} pairs of band edges tried, the corruptions whose dominant band "
        f"matches the paper's group number {'; '.join(parts)}."
    )


# --- figures ---------------------------------------------------------------------------------


def _log_limits(maps: Sequence[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([m[m > 0].ravel() for m in maps])
    if values.size == 0:
        return 1e-3, 1.0
    return float(np.percentile(values, 1)), float(values.max())


def plot_spectra_grid(spectra: CorruptionSpectra, ncols: int = 5, title: str | None = None) -> Any:
    """Mean |F| of each corruption (mean over severities, DC zeroed), one shared log colour
    scale, axes in cycles/pixel, the band edges drawn as circles. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Circle

    names = spectra.corruptions
    maps = [zero_dc(spectra.magnitude(n)) for n in names]
    vmin, vmax = _log_limits(maps)
    nrows = int(np.ceil(len(names) / ncols))
    ncols = min(ncols, len(names))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(2.4 * ncols + 0.8, 2.5 * nrows), squeeze=False, layout="constrained"
    )
    image = None
    for ax, name, m in zip(axes.flat, names, maps, strict=False):
        c = C.get_corruption(name)
        image = ax.imshow(
            np.clip(m, vmin, None),
            norm=LogNorm(vmin=vmin, vmax=vmax),
            cmap="magma",
            extent=(-0.5, 0.5, 0.5, -0.5),
            interpolation="antialiased",
        )
        for edge in BAND_EDGES:
            ax.add_patch(Circle((0, 0), edge, fill=False, ls="--", lw=0.6, color="w"))
        ax.set_title(f"{c.number}. {_fmt_name(name)} ({c.group})", fontsize=9)
        ax.set_xticks([-0.5, 0, 0.5])
        ax.set_yticks([-0.5, 0, 0.5])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label=r"mean $|F(\tilde{x} - x)|$")
    sevs = spectra.severities
    which = (
        f"severity {sevs[0]}" if len(sevs) == 1 else f"mean over severities {severity_span(sevs)}"
    )
    n = len(spectra.image_ids)
    default = f"{dataset_label(spectra.dataset)}: {n} image{'s' * (n != 1)}, {which}"
    fig.suptitle(title or default, fontsize=10)
    return fig


def plot_radial_profiles(spectra_list: Sequence[CorruptionSpectra]) -> Any:
    """Radial profile of each corruption's mean |F| (DC zeroed), one panel per dataset, lines
    coloured by the paper's group, band edges dashed. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(spectra_list), figsize=(6.2 * len(spectra_list), 4.2), squeeze=False,
        layout="constrained", sharey=True,
    )  # fmt: skip
    for ax, spectra in zip(axes[0], spectra_list, strict=True):
        names = spectra.corruptions
        for group in C.GROUPS:
            members = [n for n in names if C.get_corruption(n).group == group]
            cmap = plt.get_cmap(GROUP_COLOURS[group])
            for i, name in enumerate(members):
                radius, profile = radial_profile(zero_dc(spectra.magnitude(name)))
                colour = cmap(0.45 + 0.5 * (i + 1) / (len(members) + 1))
                ax.plot(radius, profile, color=colour, lw=1.2, label=_fmt_name(name))
        for edge in BAND_EDGES:
            ax.axvline(edge, color="grey", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("radial frequency (cycles/pixel)")
        ax.set_title(dataset_label(spectra.dataset), fontsize=10)
    axes[0][0].set_ylabel(r"mean $|F(\tilde{x} - x)|$ over the ring")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    return fig


# --- gallery ---------------------------------------------------------------------------------


def _encode(img: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpeg":
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0)
    else:
        Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def thumbnail(
    img: np.ndarray,
    width: int = 192,
    detail: int = 128,
    fmt: str = "jpeg",
    quality: int = 75,
) -> bytes:
    """Encoded preview: the whole image scaled to ``width`` px wide, and beside it a
    ``detail`` x ``detail`` crop from the centre at 1:1 (noise and blur show only there)."""
    from PIL import Image

    if fmt not in ("jpeg", "png"):
        raise UsageError(f"thumbnail format must be jpeg or png, got {fmt!r}")
    h, w = img.shape[:2]
    height = max(1, round(h * width / w))
    small = np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.LANCZOS))
    d = min(detail, h, w)
    top, left = (h - d) // 2, (w - d) // 2
    crop = img[top : top + d, left : left + d]
    rows = max(height, d)
    canvas = np.full((rows, width + 6 + d, 3), 255, dtype=np.uint8)
    canvas[:height, :width] = small
    canvas[:d, width + 6 :] = crop
    return _encode(canvas, fmt, quality)


def gallery_picks(selected: Mapping[str, Sequence[str]], count: int) -> list[tuple[str, str]]:
    """Up to ``count`` (dataset, image id) pairs, taken in turn from each dataset's selection."""
    if int(count) < 0:
        raise UsageError(f"gallery_images must be 0 or more, got {count}")
    queues = [[(name, i) for i in ids] for name, ids in selected.items()]
    picks: list[tuple[str, str]] = []
    for rank in range(max((len(q) for q in queues), default=0)):
        picks += [q[rank] for q in queues if rank < len(q)]
    return picks[: int(count)]


def gallery_thumbnails(
    picks: Sequence[tuple[str, str]],
    corruptions: Sequence[str],
    severities: Sequence[int],
    cache_dir: str | os.PathLike[str],
    **kwargs: Any,
) -> dict[tuple[str, str | None, int | None], bytes]:
    """Previews ``{(label, corruption, severity): bytes}`` of (dataset, image id) ``picks`` from
    their built sets; ``label`` is ``"<dataset label>: <image id>"`` and the clean image is
    ``(label, None, None)``. Keyword arguments go to :func:`thumbnail`."""
    out: dict[tuple[str, str | None, int | None], bytes] = {}
    for dataset_name, image_id in picks:
        dataset = get_dataset(dataset_name)
        folder = set_dir(cache_dir, dataset.name)
        label = f"{dataset_label(dataset.name)}: {image_id}"
        out[(label, None, None)] = thumbnail(dataset.load(image_id), **kwargs)
        for name in corruptions:
            for severity in severities:
                path = folder / name / str(severity) / f"{image_id}.png"
                if not path.is_file():
                    raise DataError(f"{path} is missing; build the corrupted set first")
                out[(label, name, severity)] = thumbnail(read_image(path), **kwargs)
    return out


def gallery_widget(
    thumbs: Mapping[tuple[str, str | None, int | None], bytes],
    fmt: str = "jpeg",
) -> Any:
    """Dropdowns (image, corruption, severity) driving nested ``Stack``s of precomputed images.

    Every dropdown's ``index`` is ``jslink``-ed to the ``selected_index`` of the stacks it
    controls, so the widget works from its embedded state in a static page, with no kernel.
    """
    try:
        import ipywidgets as w
    except ImportError:
        raise UsageError(
            "the gallery needs ipywidgets (pip install 'nicspec-utils[book]')"
        ) from None

    images = list(dict.fromkeys(k[0] for k in thumbs))
    names = [n for n in C.corruption_names() if any(k[1] == n for k in thumbs)]
    sevs = sorted({k[2] for k in thumbs if k[2] is not None})
    if not images or not names or not sevs:
        raise UsageError("the gallery needs at least one image, corruption and severity")

    def pic(key: tuple[str, str | None, int | None]) -> Any:
        if key not in thumbs:
            raise DataError(f"no preview for {key}")
        # at most its column's width, scaled down with its aspect ratio kept (narrow pages)
        return w.Image(
            value=thumbs[key], format=fmt, layout={"max_width": "100%", "height": "auto"}
        )

    layout = {"width": "max-content", "max_width": "100%"}
    # Rows wrap and the whole widget is at most as wide as the text column it sits in: the two
    # previews side by side (~660 px) and the three menus do not fit a narrow column on one line.
    row = {"flex_flow": "row wrap", "max_width": "100%"}
    column = {"max_width": "100%", "min_width": "0"}
    pick_image = w.Dropdown(options=images, description="image", layout=layout)
    pick_corruption = w.Dropdown(
        options=[f"{C.get_corruption(n).number}. {_fmt_name(n)} ({C.get_corruption(n).group})"
                 for n in names],
        description="corruption",
        layout=layout,
    )  # fmt: skip
    pick_severity = w.Dropdown(
        options=[str(s) for s in sevs], description="severity", layout={"max_width": "100%"}
    )
    clean = linked_stack([pic((i, None, None)) for i in images], pick_image)
    per_image = []
    for i in images:
        per_corruption = []
        for n in names:
            per_corruption.append(linked_stack([pic((i, n, s)) for s in sevs], pick_severity))
        per_image.append(linked_stack(per_corruption, pick_corruption))
    corrupted = linked_stack(per_image, pick_image)
    caption = "left: whole image (downscaled); right: the centre at 1:1"
    return w.VBox(
        [
            w.HBox([pick_image, pick_corruption, pick_severity], layout=row),
            w.HBox(
                [
                    w.VBox([w.HTML("<b>clean</b>"), clean], layout=column),
                    w.VBox([w.HTML("<b>corrupted</b>"), corrupted], layout=column),
                ],
                layout=row,
            ),
            w.HTML(f"<small>{caption}</small>"),
        ],
        layout={"max_width": "100%"},
    )
