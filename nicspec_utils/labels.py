"""The names things go by in the book: datasets, codec families and NIC curves.

Every chapter takes its labels from here, so a curve or a dataset is called the same on every
page (and a chapter never imports another chapter for a name).
"""

from __future__ import annotations

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
