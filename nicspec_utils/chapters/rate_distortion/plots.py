"""Chapter 2's figures: rate-distortion curves and the corrupted deltas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .settings import PUBLISHED_COLOURS

# --- plots --------------------------------------------------------------------------------------


def plot_rd(
    points: pd.DataFrame,
    metric: str = "psnr",
    ax: Any = None,
    title: str = "",
    margin: float = 1.3,
) -> Any:
    """Draw RD curves (one line per curve; published curves dashed); returns the axes.

    The bpp axis ends at ``margin`` times our largest bpp, so long published curves do not
    squeeze ours; the quality axis fits what is visible.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5))
    styles = {"classic": ("-", "o"), "nic": ("-", "s"), "published": ("--", "x")}
    grey = iter(PUBLISHED_COLOURS * 3)
    for curve, c in points.groupby("curve", sort=False):
        c = c.sort_values("bpp")
        family = c["family"].iloc[0]
        ls, marker = styles.get(family, ("-", "o"))
        lw = 2.2 if family == "nic" else 1.3
        colour = {"color": next(grey)} if family == "published" else {}
        ax.plot(c["bpp"], c[metric], ls=ls if len(c) > 1 else "none", marker=marker, lw=lw,
                ms=5, label=curve, **colour)  # fmt: skip
    ours = points[points["family"] != "published"]
    if len(ours):
        xmax = margin * float(ours["bpp"].max())
        seen = points[points["bpp"] <= xmax][metric].replace([np.inf, -np.inf], np.nan).dropna()
        ax.set_xlim(0, xmax)
        if len(seen):
            pad = 0.05 * max(float(seen.max() - seen.min()), 1.0)
            ax.set_ylim(float(seen.min()) - pad, float(seen.max()) + pad)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel({"psnr": "PSNR (dB, RGB)", "ms_ssim_db": "MS-SSIM (dB)"}.get(metric, metric))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return ax


def plot_group_deltas(summary: pd.DataFrame, title: str = "") -> Any:
    """Bars of NIC - JPEG2000 PSNR (w.r.t. corrupted input and clean), per frequency group and
    operating point, from :func:`group_summary` (by model); returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    ops = list(dict.fromkeys(summary["operating_point"]))
    groups = [g for g in summary["group"].cat.categories if g in set(summary["group"])]
    width = 0.8 / max(len(ops), 1)
    for ax, col, name in zip(
        axes,
        ("delta_psnr", "delta_psnr_clean"),
        ("w.r.t. the corrupted input (G)", "w.r.t. the clean image (R)"),
        strict=True,
    ):
        for i, op in enumerate(ops):
            s = summary[summary["operating_point"] == op].set_index("group")
            vals = [float(s[col].get(g, np.nan)) for g in groups]
            ax.bar(np.arange(len(groups)) + (i - (len(ops) - 1) / 2) * width, vals, width,
                   label=op)  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(groups)), [f"{g} frequency" for g in groups])
        ax.set_title(f"PSNR {name}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("NIC - JPEG2000 (dB)")
    axes[1].legend(fontsize=7, title="NIC model (JPEG2000 rate-matched)", title_fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_corruption_deltas(deltas: pd.DataFrame, title: str = "") -> Any:
    """NIC - JPEG2000 PSNR per corruption (paper order; background by frequency group), one
    marker per operating point, w.r.t. the corrupted input and the clean image."""
    import matplotlib.pyplot as plt

    order = deltas.sort_values("number")["corruption"].unique().tolist()
    x = {c: i for i, c in enumerate(order)}
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    shade = {"low": "#e8f0fb", "medium": "#fbf3e0", "high": "#fbe4e4"}
    groups = deltas.drop_duplicates("corruption").set_index("corruption")["group"].astype(str)
    for ax, col, name in zip(
        axes, ("delta_psnr", "delta_psnr_clean"), ("w.r.t. corrupted input", "w.r.t. clean"),
        strict=True,
    ):  # fmt: skip
        for c in order:
            ax.axvspan(x[c] - 0.5, x[c] + 0.5, color=shade[groups[c]], lw=0)
        for op, d in deltas.groupby("operating_point", sort=False):
            ax.plot([x[c] for c in d["corruption"]], d[col], "o", ms=5, label=op)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel(f"ΔPSNR {name} (dB)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    axes[0].legend(fontsize=7, ncol=4)
    axes[0].set_title(title or "NIC - JPEG2000 at matched bpp (shading: low / medium / high)")
    fig.tight_layout()
    return fig
