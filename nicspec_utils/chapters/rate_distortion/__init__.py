"""Rate–distortion on clean and corrupted data: sweeps, BD-rate tables, bpp inflation, findings.

Every operating point is one :func:`nicspec_utils.evaluate.evaluate` call, so it is cached under
the results folder and a rebuild reads it back at once. The functions return pandas DataFrames
with one row per point (or per comparison); the plotting helpers at the end draw them. The
explorer (:func:`explorer_panels`, :func:`explorer_widget`) precomputes one image's crops for
every corruption x NIC model x codec and shows them in a kernel-free ipywidgets view.

Terms used below
- A :class:`Setting` is one codec at one rate setting (a quality, a compression ratio, a
  variable-rate lambda or a fixed-rate NIC model); settings that share ``curve`` form one
  rate–distortion curve.
- Rate matching on corrupted data: each NIC model is run on the corrupted set and JPEG2000 is then
  run at that model's *mean* bpp (its compression ratio set to 24 / bpp, so every image gets that
  rate): the two are compared at the same operating point.
- bpp inflation: bpp on corrupted images / bpp on the clean images, at one fixed codec setting.
- MS-SSIM is also given in dB, ``-10 log10(1 - MS-SSIM)``, the scale its BD-rate uses.
"""

from __future__ import annotations

from .claims import SHARED_IN_CHAPTER_3, claim_checks, corrupted_rd_markdown, findings
from .plots import plot_corrupted_rd, plot_corruption_deltas, plot_group_deltas, plot_rd
from .settings import (
    CLASSIC_CODECS,
    CODEC_LABELS,
    DEFAULT_QUALITIES,
    DEFAULT_VR_LAMBDAS,
    DEFAULT_VTM_QPS,
    FIXED_QUALITY,
    FULL_LADDER,
    JPEG2000_CODECS,
    JPEG2000_OTHER_CURVES,
    POINT_COLUMNS,
    PUBLISHED_COLOURS,
    PUBLISHED_IMAGES,
    PUBLISHED_LABELS,
    PUBLISHED_OVERLAY,
    VTM_CURVE,
    Setting,
    classic_settings,
    codec_label,
    extra_settings,
    fixed_point_label,
    inflation_settings,
    jpeg2000_curve,
    ladder_key,
    nic_setting,
    nic_settings,
    parse_qualities,
    pick_points,
    resolve_models,
    vr_lambda_values,
    vtm_settings,
)
from .study import (
    CORRUPTED_POINT_COLUMNS,
    bd_table,
    bpp_inflation,
    corrupted_bd_table,
    corrupted_deltas,
    corrupted_rd_sweep,
    corrupted_study,
    corrupted_units,
    curve_bd_rate,
    group_summary,
    image_ids,
    inflation_table,
    jpeg2000_paths_table,
    msssim_db,
    point_delta,
    published_points,
    rd_sweep,
    run_setting,
    unavailable_note,
    with_unavailable,
)
from .widgets import (
    EXPLORER_CLEAN,
    EXPLORER_CORRUPTED_CACHE,
    Explorer,
    ExplorerPanel,
    cached_corrupted,
    explorer_panels,
    explorer_widget,
)

__all__ = [
    "CLASSIC_CODECS",
    "CODEC_LABELS",
    "DEFAULT_QUALITIES",
    "DEFAULT_VR_LAMBDAS",
    "DEFAULT_VTM_QPS",
    "FIXED_QUALITY",
    "FULL_LADDER",
    "JPEG2000_CODECS",
    "JPEG2000_OTHER_CURVES",
    "POINT_COLUMNS",
    "PUBLISHED_COLOURS",
    "PUBLISHED_IMAGES",
    "PUBLISHED_LABELS",
    "PUBLISHED_OVERLAY",
    "VTM_CURVE",
    "Setting",
    "classic_settings",
    "codec_label",
    "extra_settings",
    "fixed_point_label",
    "inflation_settings",
    "jpeg2000_curve",
    "ladder_key",
    "nic_setting",
    "nic_settings",
    "parse_qualities",
    "pick_points",
    "resolve_models",
    "vr_lambda_values",
    "vtm_settings",
    "CORRUPTED_POINT_COLUMNS",
    "bd_table",
    "unavailable_note",
    "with_unavailable",
    "bpp_inflation",
    "corrupted_bd_table",
    "corrupted_deltas",
    "corrupted_rd_sweep",
    "corrupted_study",
    "corrupted_units",
    "curve_bd_rate",
    "group_summary",
    "image_ids",
    "inflation_table",
    "jpeg2000_paths_table",
    "msssim_db",
    "point_delta",
    "published_points",
    "rd_sweep",
    "run_setting",
    "SHARED_IN_CHAPTER_3",
    "claim_checks",
    "corrupted_rd_markdown",
    "findings",
    "plot_corrupted_rd",
    "plot_corruption_deltas",
    "plot_group_deltas",
    "plot_rd",
    "EXPLORER_CLEAN",
    "EXPLORER_CORRUPTED_CACHE",
    "Explorer",
    "ExplorerPanel",
    "cached_corrupted",
    "explorer_panels",
    "explorer_widget",
]
