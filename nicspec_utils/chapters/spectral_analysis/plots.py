"""Chapter 3's figures: the D / G / R maps, radial profiles and the trend with the rate."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...labels import colour
from ...report import figure_bytes as figure_bytes
from ...report import show_figure as show_figure
from ...spectral import radial_profile, zero_dc
from ...widgets import encode_preview
from .settings import JPEG2000, NIC
from .study import select


def plot_trend(trend: pd.DataFrame, title: str = "") -> Any:
    """Energy (log) and high-band share of G and R against severity, one column per corruption:
    NIC solid, JPEG2000 at the NIC's bpp dashed; G blue, R orange."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(trend["corruption"]))
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 5.6), squeeze=False)
    colours = {"G": "tab:blue", "R": "tab:orange"}
    styles = {NIC: "-", JPEG2000: "--"}
    for j, name in enumerate(names):
        sub = trend[trend["corruption"] == name]
        for (m, codec), s in sub.groupby(["measure", "codec"], sort=False):
            s = s.sort_values("severity")
            kw = {"color": colours[str(m)], "ls": styles.get(str(codec), ":"), "marker": "o",
                  "ms": 3, "label": f"{m} {codec}"}  # fmt: skip
            axes[0, j].plot(s["severity"], s["energy"], **kw)
            axes[1, j].plot(s["severity"], s["high"], **kw)
        group = sub["group"].iloc[0] if len(sub) else ""
        axes[0, j].set_title(f"{name.replace('_', ' ')} ({group})", fontsize=9)
        axes[0, j].set_yscale("log")
        axes[1, j].set_ylim(0, 1)
        axes[1, j].set_xlabel("severity")
        for ax in axes[:, j]:
            ax.tick_params(labelsize=7)
            ax.set_xticks(sorted(set(sub["severity"])))
    axes[0, 0].set_ylabel("energy (DC excluded)")
    axes[1, 0].set_ylabel("high-band share")
    axes[0, -1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- plots --------------------------------------------------------------------------------------


def colour_range(spectra: Sequence[np.ndarray]) -> tuple[float, float]:
    """Shared logarithmic colour range of DC-zeroed maps: 1st percentile of the positive values
    to the maximum ((1, 10) when there are none)."""
    positive = np.concatenate(
        [zero_dc(m)[zero_dc(m) > 0].ravel() for m in spectra] or [np.empty(0)]
    )
    if not positive.size:
        return 1.0, 10.0
    return float(np.percentile(positive, 1)), float(positive.max())


def plot_maps(
    spectra: Mapping[str, np.ndarray],
    title: str = "",
    ncols: int = 4,
    block: int = 1,
    levels: int | None = None,
) -> Any:
    """Mean |F| maps (DC zeroed) on one shared logarithmic colour scale, one panel each.

    ``block`` > 1 averages each map over ``block`` x ``block`` frequency tiles; ``levels`` draws
    it with that many colours (None: continuous).
    """
    import matplotlib.pyplot as plt
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm

    maps = {k: block_mean(zero_dc(v), block) for k, v in spectra.items()}
    vmin, vmax = colour_range(list(maps.values()))
    cmap = colormaps["viridis"] if levels is None else colormaps["viridis"].resampled(levels)
    n = len(maps)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.4 * ncols + 1, 3.0 * nrows), squeeze=False, layout="constrained"
    )
    image = None
    for k, (ax, (label, m)) in enumerate(zip(axes.ravel(), maps.items(), strict=False)):
        h, w = m.shape
        extent = (-0.5, 0.5 - 1 / w, 0.5 - 1 / h, -0.5)
        image = ax.imshow(
            np.maximum(m, vmin), norm=LogNorm(vmin=vmin, vmax=vmax), cmap=cmap, extent=extent
        )
        ax.set_title(label, fontsize=8)
        if k // ncols == nrows - 1 or k + ncols >= n:
            ax.set_xlabel("fx (cycles/px)", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel("fy (cycles/px)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean |F|")
    if title:
        fig.suptitle(title)
    return fig


def plot_profiles(
    spectra: Mapping[str, np.ndarray],
    title: str = "",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    ax: Any = None,
) -> Any:
    """Radial profiles of mean |F| (DC excluded), log scale, with the band edges marked;
    ``styles`` maps a label to matplotlib line options; ``ax``: draw there."""
    import matplotlib.pyplot as plt

    from ...spectral import BAND_EDGES

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    else:
        fig = ax.figure
    for label, spec in spectra.items():
        radius, profile = radial_profile(zero_dc(spec))
        ax.plot(radius, profile, label=label, **dict((styles or {}).get(label, {})))
    for edge in BAND_EDGES:
        ax.axvline(edge, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("radial frequency (cycles/px)")
    ax.set_ylabel("mean |F|")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_d_profiles(rows: Sequence[Mapping[str, Any]]) -> Any:
    """D radial profiles, one panel per dataset: each model in its colour (:func:`labels.colour`,
    the same on every page), NIC solid, JPEG2000 at the model's bpp dashed."""
    import matplotlib.pyplot as plt

    from ...labels import dataset_label

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes.ravel(), datasets, strict=True):
        spectra, styles = {}, {}
        for r in select(rows, dataset=ds):
            label = f"{r['codec']} {r['model']} ({r['bpp']:.3f} bpp)"
            spectra[label] = r["point"].drawn("D")
            styles[label] = {"color": colour(str(r["model"])),
                             "ls": "-" if r["codec"] == NIC else "--", "lw": 1.2}  # fmt: skip
        plot_profiles(spectra, title=f"D, {dataset_label(ds)}", styles=styles, ax=ax)
    fig.tight_layout()
    return fig


# --- kernel-free browser of the maps --------------------------------------------------------------


def block_mean(a: np.ndarray, block: int) -> np.ndarray:
    """Mean over ``block`` x ``block`` tiles (the edges that do not fill a tile are dropped)."""
    if block <= 1:
        return np.asarray(a, dtype=np.float64)
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    t = np.asarray(a[:h, :w], dtype=np.float64).reshape(h // block, block, w // block, block)
    return t.mean(axis=(1, 3))


def render_maps(
    maps: Sequence[tuple[np.ndarray, float, float]],
    block: int = 4,
    levels: int = 64,
    gap: int = 6,
    fmt: str = "png",
    quality: int = 90,
) -> bytes:
    """DC-zeroed |F| maps side by side (``gap`` white px apart) as one small palette PNG (or,
    with ``fmt="webp"``, WebP at ``quality``: a quarter of the PNG's bytes for the maps of the
    book); each ``(spectrum, vmin, vmax)`` is averaged over tiles of ``block`` px and log-scaled
    between its ``vmin`` and ``vmax`` onto ``levels`` viridis colours."""
    from matplotlib import colormaps
    from PIL import Image

    parts = []
    for spectrum, vmin, vmax in maps:
        m = block_mean(zero_dc(spectrum), block)
        lo, hi = math.log10(max(vmin, 1e-12)), math.log10(max(vmax, vmin * 1.0001, 1e-12))
        t = (np.log10(np.maximum(m, vmin)) - lo) / max(hi - lo, 1e-12)
        parts.append(np.clip(np.round(t * (levels - 1)), 0, levels - 1).astype(np.uint8))
    height = max(a.shape[0] for a in parts)
    white = np.full((height, gap), levels, dtype=np.uint8)  # palette entry `levels` is white
    row = []
    for i, a in enumerate(parts):
        pad = np.full((height - a.shape[0], a.shape[1]), levels, dtype=np.uint8)
        row += [white] if i else []
        row.append(np.vstack([a, pad]))
    cmap = colormaps["viridis"].resampled(levels)
    colours = [cmap(i)[:3] for i in range(levels)] + [(1.0, 1.0, 1.0)]
    palette = (np.asarray(colours) * 255).round().astype(np.uint8)
    img = Image.fromarray(np.hstack(row), mode="P")
    img.putpalette(palette.ravel().tolist())
    if fmt != "png":
        return encode_preview(img.convert("RGB"), fmt, quality)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_map(
    spectrum: np.ndarray, vmin: float, vmax: float, block: int = 4, levels: int = 64
) -> bytes:
    """One map as a palette PNG (see :func:`render_maps`)."""
    return render_maps([(spectrum, vmin, vmax)], block=block, levels=levels)
