"""Chapter 2's figures: rate-distortion curves and the corrupted deltas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...labels import colour

# --- plots --------------------------------------------------------------------------------------


def rd_xlim(points: pd.DataFrame, margin: float = 1.3) -> float | None:
    """Where the bpp axis ends: ``margin`` times the largest NIC bpp (the NIC models sit at
    0.2-0.8 bpp; the classic ladders run to 2-3 bpp and would squeeze them), else ``margin``
    times our largest bpp; None without points of ours."""
    ours = points[points["family"] != "published"]
    nic = ours[ours["family"] == "nic"]
    base = nic if len(nic) else ours
    return margin * float(base["bpp"].max()) if len(base) else None


def plot_rd(
    points: pd.DataFrame,
    metric: str = "psnr",
    ax: Any = None,
    title: str = "",
    margin: float = 1.3,
    legend: bool = True,
) -> Any:
    """Draw RD curves (one line per curve in its colour from :func:`labels.colour`; published
    curves dashed); returns the axes.

    The bpp axis ends at :func:`rd_xlim` (the NIC models' range, not the classic codecs' whole
    ladders: the points beyond it are in the chapter's table, and a note in the corner says how
    far they go); the quality axis fits what is visible.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5))
    styles = {"classic": ("-", "o"), "nic": ("-", "s"), "published": ("--", "x")}
    for curve, c in points.groupby("curve", sort=False):
        c = c.sort_values("bpp")
        family = c["family"].iloc[0]
        ls, marker = styles.get(family, ("-", "o"))
        lw = 2.2 if family == "nic" else 1.3
        ax.plot(c["bpp"], c[metric], ls=ls if len(c) > 1 else "none", marker=marker, lw=lw,
                ms=5, label=curve, color=colour(str(curve)))  # fmt: skip
    xmax = rd_xlim(points, margin)
    if xmax is not None:
        seen = points[points["bpp"] <= xmax][metric].replace([np.inf, -np.inf], np.nan).dropna()
        ax.set_xlim(0, xmax)
        if len(seen):
            pad = 0.05 * max(float(seen.max() - seen.min()), 1.0)
            ax.set_ylim(float(seen.min()) - pad, float(seen.max()) + pad)
        beyond = points[(points["family"] != "published") & (points["bpp"] > xmax)]
        if len(beyond):
            ax.annotate(f"classic codecs continue to {float(beyond['bpp'].max()):.2g} bpp",
                        (0.99, 0.02), xycoords="axes fraction", ha="right", va="bottom",
                        fontsize=8, color="dimgray")  # fmt: skip
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel({"psnr": "PSNR (dB, RGB)", "ms_ssim_db": "MS-SSIM (dB)"}.get(metric, metric))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(fontsize=8)
    return ax


def plot_rd_pair(points: pd.DataFrame, title: str = "", margin: float = 1.3) -> Any:
    """PSNR and MS-SSIM (dB) RD curves side by side (:func:`plot_rd`), with one legend for both
    below them, at a size that can be read; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    for ax, metric in zip(axes, ("psnr", "ms_ssim_db"), strict=True):
        plot_rd(points, metric, ax=ax, margin=margin, legend=False)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(4, max(len(names), 1)),
               fontsize=9, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


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
                   label=op, color=colour(str(op)))  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(groups)), [f"{g} frequency" for g in groups])
        ax.set_title(f"PSNR {name}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("NIC - JPEG2000 (dB)")
    axes[1].legend(fontsize=8, title="NIC model (JPEG2000 rate-matched)", title_fontsize=8)
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
            ax.plot([x[c] for c in d["corruption"]], d[col], "o", ms=5, label=op,
                    color=colour(str(op)))  # fmt: skip
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel(f"ΔPSNR {name} (dB)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=8)
    axes[0].legend(fontsize=8, ncol=4)
    axes[0].set_title(title or "NIC - JPEG2000 at matched bpp (shading: low / medium / high)")
    fig.tight_layout()
    return fig


def plot_corrupted_rd(
    points: pd.DataFrame, metric: str = "psnr", ncols: int = 3, title: str = ""
) -> Any:
    """RD curves on corrupted images (:func:`study.corrupted_rd_sweep` rows of one dataset and
    severity), one panel per corruption in the paper's order, titled with its frequency group;
    ``metric``: ``psnr`` (w.r.t. the corrupted input) or ``psnr_wrt_clean``. One legend for
    the figure; returns it."""
    import matplotlib.pyplot as plt

    order = points.sort_values("number")["corruption"].unique().tolist()
    ncols = max(1, min(ncols, len(order)))
    nrows = -(-len(order) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    ref = {"psnr": "w.r.t. the corrupted input", "psnr_wrt_clean": "w.r.t. the clean image"}
    for ax, name in zip(axes.flat, order, strict=False):
        d = points[points["corruption"] == name]
        plot_rd(d, metric, ax=ax, title=f"{name} ({d['group'].astype(str).iloc[0]})")
        ax.set_ylabel(f"PSNR (dB), {ref.get(metric, metric)}", fontsize=8)
        ax.set_title(ax.get_title(), fontsize=9)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(order) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
               bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    if title:
        fig.suptitle(title)
    rows_of_legend = -(-len(labels) // 5)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * rows_of_legend, 1, 1))
    return fig
