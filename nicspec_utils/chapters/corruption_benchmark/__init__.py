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

from .claims import (
    agreement_sentence,
    edge_sensitivity,
    format_agreement,
    group_counts,
    grouping_agreement,
    sensitivity_sentence,
    severity_exceptions,
    severity_pivot,
    verdict,
)
from .plots import plot_radial_profiles, plot_spectra_grid
from .settings import (
    GROUP_COLOURS,
    HIGH_EDGE_GRID,
    LOW_EDGE_GRID,
    N_RINGS,
    RING_STEP,
    SCHEMA,
    VERDICTS,
    display_path,
    resolve_cache_dir,
    select_image_ids,
    set_dir,
    severity_span,
)
from .study import (
    CorruptionSpectra,
    SeveritySpectrum,
    band_table,
    build_set,
    corruption_spectra,
    ring_index,
    shares_from_rings,
)
from .widgets import gallery_picks, gallery_thumbnails, gallery_widget, thumbnail

__all__ = [
    "GROUP_COLOURS",
    "HIGH_EDGE_GRID",
    "LOW_EDGE_GRID",
    "N_RINGS",
    "RING_STEP",
    "SCHEMA",
    "VERDICTS",
    "display_path",
    "resolve_cache_dir",
    "select_image_ids",
    "set_dir",
    "severity_span",
    "CorruptionSpectra",
    "SeveritySpectrum",
    "band_table",
    "build_set",
    "corruption_spectra",
    "ring_index",
    "shares_from_rings",
    "agreement_sentence",
    "edge_sensitivity",
    "format_agreement",
    "group_counts",
    "grouping_agreement",
    "sensitivity_sentence",
    "severity_exceptions",
    "severity_pivot",
    "verdict",
    "plot_radial_profiles",
    "plot_spectra_grid",
    "gallery_picks",
    "gallery_thumbnails",
    "gallery_widget",
    "thumbnail",
]
