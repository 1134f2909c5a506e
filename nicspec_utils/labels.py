"""The names things go by in the book: datasets, codec families and NIC curves.

Every chapter takes its labels from here, so a curve or a dataset is called the same on every
page (and a chapter never imports another chapter for a name).
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

KODAK = "kodak"
STAND_IN = "clic2025-val"
CLIC2020_TEST = "clic2020-test"
IMAGENET = "imagenet-val-subset"

DATASET_LABELS = {
    KODAK: "Kodak",
    STAND_IN: "CLIC 2025 (stand-in for CLIC 2020)",
    CLIC2020_TEST: "CLIC 2020 test",
    IMAGENET: "ImageNet validation subset",
    "cid22-train": "CID22 training",
    "gb82": "GB82",
}

# The reference codec of every comparison, and the neural side of one.
ANCHOR = "JPEG2000"
NIC_LABEL = "NIC"

# The curves of the shipped NIC family (one per kind of model).
CURVE_LADDER = "SH ladder (MSE)"
CURVE_VR = "SH-VR (MSE)"
CURVE_PRUNED = "SH pruned 95% (MSE)"
CURVE_MSSSIM = "SH (MS-SSIM)"


def dataset_label(name: str) -> str:
    """The name a dataset goes by in the book (the CLIC 2025 stand-in says so)."""
    return DATASET_LABELS.get(name, name)


def nic_kind(name: str, meta: dict[str, Any] | None = None) -> str:
    """The curve a shipped NIC model belongs to, from its manifest entry."""
    if meta is None:
        from .nic.models import shipped_models

        meta = shipped_models().get(name, {})
    if meta.get("architecture") == "scale-hyperprior-vr" or "-vr-" in name:
        return CURVE_VR
    if str(meta.get("metric", "")).replace("_", "-") == "ms-ssim" or "msssim" in name:
        return CURVE_MSSSIM
    if meta.get("sparsity") or "pruned" in name:
        return CURVE_PRUNED
    return CURVE_LADDER


# --- colours: one per codec, NIC curve and NIC model, on every page ----------------------------

# Classic codecs and published curves (keys: lower-case codec names, as the registry spells them).
CODEC_COLOURS = {
    "none": "#7f7f7f",
    "jpeg": "#8c564b",
    "jpeg2000": "#1f77b4",
    "jpeg2000-ffmpeg": "#6baed6",
    "webp": "#17becf",
    "avif": "#bcbd22",
    "hevc": "#e377c2",
    "vtm": "#000000",
    "bpg": "#525252",
    "bmshj2018 hyperprior": "#b8860b",
    "elic": "#8c6d31",
}
# The NIC curves: one hue each; a model of a curve gets a shade of it (darker: higher lambda).
CURVE_COLOURS = {
    CURVE_LADDER: "#d62728",
    CURVE_VR: "#ff7f0e",
    CURVE_PRUNED: "#9467bd",
    CURVE_MSSSIM: "#2ca02c",
}
CURVE_SHADES = {CURVE_LADDER: "Reds", CURVE_VR: "Oranges", CURVE_PRUNED: "Purples",
                CURVE_MSSSIM: "Greens"}  # fmt: skip
# Lambda ranges the shades span (the paper's MSE ladder; MS-SSIM lambdas are larger).
LAMBDA_SPAN = {"mse": (0.0018, 0.0932), "ms-ssim": (2.0, 60.0)}
# Colours for names this module does not know (user codecs): stable, from the name's hash.
FALLBACK_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
                    "#e6550d", "#31a354", "#756bb1", "#636363")  # fmt: skip
NIC_PREFIX = "NIC "
MATCHED_PREFIX = "JPEG2000 @ "
_LAMBDA = re.compile(r"(\d+(?:\.\d+)?)$")


def _codec_key(name: str) -> str:
    """A name as a colour key: ``"HEVC (x265)"`` -> ``"hevc"``, ``"VTM (published)"`` ->
    ``"vtm"``, ``"nic:x"`` -> ``"x"``."""
    key = re.sub(r"\s*\([^)]*\)", "", name).strip().lower()
    for prefix in ("nic:", "checkpoint:", "zoo:"):
        key = key.removeprefix(prefix)
    return key


def _is_model(name: str) -> bool:
    return name.startswith("sh-") or any(m in name for m in ("-mse-", "msssim", "pruned"))


def model_colour(name: str) -> str:
    """A NIC model's colour: its curve's hue (:func:`nic_kind`, from the name), shaded by its
    lambda within the curve's range (the variable-rate model: the curve's own colour)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    name = _codec_key(name)
    kind = nic_kind(name, {})
    found = _LAMBDA.search(name)
    if kind == CURVE_VR or not found:
        return CURVE_COLOURS[kind]
    lo, hi = LAMBDA_SPAN["ms-ssim" if kind == CURVE_MSSSIM else "mse"]
    t = (math.log(float(found.group(1))) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return str(to_hex(colormaps[CURVE_SHADES[kind]](0.45 + 0.5 * min(max(t, 0.0), 1.0))))


def colour(name: str) -> str:
    """The colour of a codec, NIC curve, NIC model or classification system in every figure.

    ``"JPEG2000"``, ``"HEVC (x265)"``, ``"VTM (published)"``: the codec's colour;
    :data:`CURVE_LADDER` etc.: the curve's; ``"sh-mse-0.0067"``, ``"nic:sh-mse-0.0067"`` or
    ``"NIC sh-mse-0.0067"``: the model's (:func:`model_colour`); ``"JPEG2000 @ sh-mse-0.0067"``
    (JPEG2000 matched to a model): the model's too, so the pair reads together (draw it with
    :func:`style`); anything else: a stable colour from its name."""
    name = str(name).strip()
    if name in CURVE_COLOURS:
        return CURVE_COLOURS[name]
    for prefix in (NIC_PREFIX, MATCHED_PREFIX):
        if name.startswith(prefix):
            return model_colour(_codec_key(name.removeprefix(prefix)))
    key = _codec_key(name)
    if key in CODEC_COLOURS:
        return CODEC_COLOURS[key]
    if _is_model(key):
        return model_colour(key)
    return FALLBACK_COLOURS[zlib.crc32(key.encode()) % len(FALLBACK_COLOURS)]


def is_matched(name: str) -> bool:
    """Whether ``name`` is JPEG2000 matched to a NIC model (``"JPEG2000 @ <model>"``)."""
    return str(name).startswith(MATCHED_PREFIX)


def style(name: str, kind: str = "bar") -> dict[str, Any]:
    """Matplotlib options for ``name`` (see :func:`colour`): a NIC model and the JPEG2000 matched
    to it share a colour; the JPEG2000 is drawn lighter and hatched (``kind="bar"``) or dashed
    (``kind="line"``)."""
    c = colour(name)
    if kind == "line":
        return {"color": c, "ls": "--" if is_matched(name) else "-"}
    if is_matched(name):
        return {"facecolor": _lighter(c), "edgecolor": c, "hatch": "///", "lw": 0.8}
    return {"facecolor": c, "edgecolor": c, "lw": 0.8}


def _lighter(hex_colour: str, amount: float = 0.55) -> str:
    """``hex_colour`` mixed with white (``amount`` of white)."""
    from matplotlib.colors import to_hex, to_rgb

    r, g, b = to_rgb(hex_colour)
    return str(to_hex((r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)))


# --- column names: what a table's reader sees ------------------------------------------------

# Raw column names (as the studies write them) -> the reader's name, with its unit.
COLUMN_LABELS = {
    "n_images": "images",
    "bpp": "bpp",
    "psnr": "PSNR (dB)",
    "ms_ssim": "MS-SSIM",
    "ms_ssim_db": "MS-SSIM (dB)",
    "anchor_points": "anchor points",
    "bpp_range": "bpp range",
    "psnr_range": "PSNR range (dB)",
    "bd_rate_psnr_pct": "BD-rate, PSNR (%)",
    "bd_psnr_db": "BD-PSNR (dB)",
    "bd_rate_msssim_pct": "BD-rate, MS-SSIM (%)",
    "operating_point": "NIC model (rate)",
    "nic_bpp": "NIC bpp",
    "j2k_bpp": "JPEG2000 bpp",
    "nic_psnr": "NIC PSNR vs input (dB)",
    "j2k_psnr": "JPEG2000 PSNR vs input (dB)",
    "delta_psnr": "ΔPSNR vs input, NIC − JPEG2000 (dB)",
    "nic_psnr_clean": "NIC PSNR vs clean (dB)",
    "j2k_psnr_clean": "JPEG2000 PSNR vs clean (dB)",
    "delta_psnr_clean": "ΔPSNR vs clean, NIC − JPEG2000 (dB)",
    "psnr_wrt_clean": "PSNR vs clean (dB)",
    "ci_low": "95 % CI low",
    "ci_high": "95 % CI high",
    "n_clusters": "clusters (images)",
    "images_needed": "images needed",
    "nic_minus_j2k": "NIC − JPEG2000",
    "mcnemar_p": "McNemar p",
    "clustered_p": "clustered p",
    "pair_fraction": "pair fraction",
    "sinusoid_fraction": "sinusoid fraction",
    "sinusoid_radius": "sinusoid radius (cycles/px)",
    "ring_fraction": "ring fraction",
    "centroid_radius": "centroid radius (cycles/px)",
    "mse_D": "MSE D",
    "mse_G": "MSE G",
    "mse_R": "MSE R",
    "E_delta": "E[δ²]",
}


def column_label(name: Any) -> Any:
    """The reader's name of a table column: :data:`COLUMN_LABELS`, then a raw name's words
    (``"psnr_wrt_clean NIC"`` -> ``"PSNR vs clean (dB) NIC"``, ``"some_name"`` ->
    ``"some name"``); names that are not strings (a MultiIndex level, a number) unchanged."""
    if not isinstance(name, str):
        return name
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    head, sep, tail = name.partition(" ")
    if sep and head in COLUMN_LABELS:
        return f"{COLUMN_LABELS[head]} {tail}"
    if "_" in name and " " not in name and not name.isupper():
        return name.replace("_", " ")
    return name


def reader_columns(df: Any) -> Any:
    """``df`` with its columns renamed by :func:`column_label` (a copy; tuples level by level)."""
    return df.rename(columns=column_label)
