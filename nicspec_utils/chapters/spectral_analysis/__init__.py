"""Chapter 3: D, G, R spectra of NIC vs rate-matched JPEG2000, band shares, verdicts.

Every point is one cached :func:`evaluate.evaluate` run; :func:`run_point` returns its metrics
and the mean spectra of its ``spectra.npz`` (``D`` for a clean input; ``G``, ``R``, ``C`` for a
corrupted one; each also ``*_rounded``). Band shares are those of :func:`spectral.band_energies`
applied to the mean magnitude spectrum, so they describe the maps that are drawn.

The studies return *rows*: dicts with the keys of :data:`ROW_KEYS` plus ``point`` (a
:class:`Point`); :func:`share_table` turns rows into band-share tables, the ``claim*_table``
functions into the tables that test the paper's claims, :func:`spectra_browser` into a
kernel-free widget of pre-rendered maps.

Verdicts (issue #16) come from :mod:`nicspec_utils.stats`: every claim is an effect computed
*per image* and paired (NIC and JPEG2000 on the same image, corruption and severity, read from
the evaluations' per-image records), under two matchings: JPEG2000 at the NIC's mean bpp
(``bpp``) and JPEG2000 at each image's NIC PSNR w.r.t. the codec's input within
:data:`ratematch.PSNR_TOL` dB (``psnr``: the NIC row's ``psnr_matched`` point), and for the
spectral measures with and without the reference code's rounding. :func:`unit_table` collects
the per-image values, :func:`claim_checks` the effects, seeded cluster-bootstrap intervals over
images and verdicts, :func:`verdict_grid` and :func:`changes_markdown` what the chapter prints.
Every NIC point is entropy coded for real (its bpp is the coded size, not the likelihood
estimate), so a bpp match compares like with like.
"""

from __future__ import annotations

from .claims import (
    CLAIM1,
    CLAIM1_J2K,
    CLAIM1_J2K_SPLIT,
    CLAIM5_MSSSIM,
    CLAIMS,
    changes_markdown,
    claim1_checks,
    claim1_j2k_markdown,
    claim1_table,
    claim2_checks,
    claim2_table,
    claim3_checks,
    claim3_table,
    claim5_checks,
    claim_checks,
    findings_markdown,
    findings_table,
    group_gap,
    old_verdicts,
    trend_checks,
    verdict_grid,
)
from .plots import (
    block_mean,
    colour_range,
    figure_bytes,
    plot_d_profiles,
    plot_maps,
    plot_profiles,
    plot_trend,
    render_map,
    render_maps,
    show_figure,
)
from .settings import (
    ARTEFACT_TV,
    J2K,
    JPEG2000,
    MATCHINGS,
    N_BOOT,
    NIC,
    PSNR_KEY,
    ROUNDINGS,
    ROW_KEYS,
    SIDES,
    UNIT_KEYS,
    UNMATCHED_PSNR,
    VTM,
    model_label,
    model_lmbda,
    parse_variant,
)
from .study import (
    d_study,
    energy,
    gr_study,
    interpolate_shares,
    pair_rows,
    paired,
    paired_units,
    psnr_matched_j2k,
    psnr_report,
    psnr_targets,
    psnr_tol_of,
    rate_matched_j2k,
    select,
    share_table,
    shares,
    trend_ratios,
    trend_table,
    tv_distance,
    unit_table,
    variant_study,
    variant_table,
    vtm_rows,
    vtm_study,
    vtm_table,
)
from .widgets import MapBrowser, browser_panels, spectra_browser

__all__ = [
    "ARTEFACT_TV",
    "J2K",
    "JPEG2000",
    "MATCHINGS",
    "NIC",
    "N_BOOT",
    "PSNR_KEY",
    "ROUNDINGS",
    "ROW_KEYS",
    "SIDES",
    "UNIT_KEYS",
    "UNMATCHED_PSNR",
    "VTM",
    "model_label",
    "model_lmbda",
    "parse_variant",
    "d_study",
    "energy",
    "gr_study",
    "interpolate_shares",
    "pair_rows",
    "paired",
    "paired_units",
    "psnr_matched_j2k",
    "psnr_report",
    "psnr_targets",
    "psnr_tol_of",
    "rate_matched_j2k",
    "select",
    "share_table",
    "shares",
    "trend_ratios",
    "trend_table",
    "tv_distance",
    "unit_table",
    "variant_study",
    "variant_table",
    "vtm_rows",
    "vtm_study",
    "vtm_table",
    "CLAIM1",
    "CLAIM1_J2K",
    "CLAIM1_J2K_SPLIT",
    "CLAIM5_MSSSIM",
    "CLAIMS",
    "changes_markdown",
    "claim1_checks",
    "claim1_j2k_markdown",
    "claim1_table",
    "claim2_checks",
    "claim2_table",
    "claim3_checks",
    "claim3_table",
    "claim5_checks",
    "claim_checks",
    "findings_markdown",
    "findings_table",
    "group_gap",
    "old_verdicts",
    "trend_checks",
    "verdict_grid",
    "block_mean",
    "colour_range",
    "figure_bytes",
    "plot_d_profiles",
    "plot_maps",
    "plot_profiles",
    "plot_trend",
    "render_map",
    "render_maps",
    "show_figure",
    "MapBrowser",
    "browser_panels",
    "spectra_browser",
]
