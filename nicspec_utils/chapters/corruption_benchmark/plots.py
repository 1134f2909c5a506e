"""Chapter 1's figures: the corruption spectra and their radial profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import corruptions as C
from ...selection import dataset_label
from ...spectral import BAND_EDGES, radial_profile, zero_dc
from .settings import GROUP_COLOURS, _fmt_name, severity_span
from .study import CorruptionSpectra

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
