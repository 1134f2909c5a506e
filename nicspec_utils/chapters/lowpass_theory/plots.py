"""Chapter 4's figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .settings import CUTOFF_LEVEL
from .study import PCA, LinearAE, PowerLaw

# --- plots --------------------------------------------------------------------------------------


def plot_eigen_spectra(pcas: Mapping[int, PCA], fits: Mapping[int, PowerLaw]) -> Any:
    """Eigenvalue vs rank (log-log) per patch size, with the fitted power laws."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for size, p in pcas.items():
        ranks = np.arange(1, p.eigenvalues.size + 1)
        (line,) = ax.loglog(ranks, p.eigenvalues, lw=1.2, label=f"{size}x{size}")
        f = fits[size]
        rr = ranks[(ranks >= f.lo) & (ranks <= f.hi)]
        ax.loglog(rr, f(rr), ls="--", color=line.get_color(), lw=1,
                  label=f"fit: exponent {f.exponent:.2f}, R$^2$ {f.r2:.3f}")  # fmt: skip
    ax.set_xlabel("rank n")
    ax.set_ylabel("eigenvalue (luma variance)")
    ax.legend(fontsize=8)
    ax.set_title("PCA of natural-image patches: eigenvalue spectrum")
    return fig


def plot_components(pca: PCA, closeness: pd.DataFrame, n: int = 16, ncols: int = 8) -> Any:
    """The first ``n`` components as images, titled with rank, radius and pair fraction."""
    import matplotlib.pyplot as plt

    n = min(n, len(closeness))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.45 * ncols, 1.65 * nrows), squeeze=False)
    for ax, img, row in zip(axes.ravel(), pca.images(n), closeness.itertuples(), strict=False):
        lim = float(np.abs(img).max())
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        title = f"#{row.rank} ρ={row.radius:.2f}\npair {row.pair_fraction:.2f}"
        ax.set_title(title + f" ring {row.ring_fraction:.2f}", fontsize=6)
        ax.axis("off")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle(f"leading principal components, {pca.size}x{pca.size} patches", fontsize=10)
    fig.tight_layout()
    return fig


def plot_power_spectra(
    spectra: Mapping[str, tuple[np.ndarray, np.ndarray]], fits: Mapping[str, PowerLaw]
) -> Any:
    """Radially averaged power spectra (log-log) with their power-law fits."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, (r, p) in spectra.items():
        (line,) = ax.loglog(r, p, lw=1.2, label=name)
        f = fits[name]
        rr = r[(r >= f.lo) & (r <= f.hi)]
        ax.loglog(rr, f(rr), ls="--", color=line.get_color(), lw=1,
                  label=f"fit: α = {f.exponent:.2f}, R$^2$ {f.r2:.3f}")  # fmt: skip
    ax.set_xlabel("radial frequency ρ (cycles/px)")
    ax.set_ylabel("mean power (luma)")
    ax.legend(fontsize=8)
    ax.set_title("power spectra of natural images")
    return fig


def plot_training(aes: Mapping[int, LinearAE], pca: PCA) -> Any:
    """Training MSE of each linear AE against the PCA optimum of its rank."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, ae in aes.items():
        steps = np.arange(1, ae.losses.size + 1) * ae.log_every
        (line,) = ax.semilogy(steps, ae.losses, lw=1, label=f"AE k={k}")
        ax.axhline(pca.optimum_mse(k), color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("per-pixel MSE (luma)")
    ax.set_title("linear AE training (dashed: PCA optimum of the same rank)")
    ax.legend(fontsize=8)
    return fig


def plot_response(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], size: int, title: str = ""
) -> Any:
    """Radial energy gain of each rank-k map (PCA solid, trained AE dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours: dict[str, Any] = {}
    for label, (r, g) in curves.items():
        kind, k = label.split(" ", 1)
        style = "-" if kind == "PCA" else "--"
        (line,) = ax.plot(r, g, style, color=colours.get(k), marker=".", lw=1.2, label=label)
        colours.setdefault(k, line.get_color())
    ax.axhline(CUTOFF_LEVEL, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("radial frequency ρ (cycles/px)")
    ax.set_ylabel("energy gain |P e|² / |e|²")
    ax.set_title(title or f"frequency response of rank-k maps on {size}x{size} patches")
    ax.legend(fontsize=8, ncol=2)
    return fig


def plot_shift(table: pd.DataFrame) -> Any:
    """Added G and R error as shares of each shift's energy, per model and corruption."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["corruption"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        g = table[table["corruption"] == name].set_index("model").reindex(models)
        x = np.arange(len(models))
        ax.bar(x - 0.2, g["dG"], 0.4, label="G added")
        ax.bar(x + 0.2, g["dR"], 0.4, label="R added")
        ax.set_xticks(x, models, rotation=60, ha="right", fontsize=7)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(f"{name} ({g['group'].iloc[0]})", fontsize=9)
    axes[0, 0].set_ylabel("share of the shift's energy")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
